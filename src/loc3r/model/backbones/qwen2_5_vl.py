"""Qwen2.5-VL adapter (``Qwen2_5_VLForConditionalGeneration``).

Preprocessing (matches transformers' ``Qwen2VLVideoProcessor`` / ``Qwen2VLImageProcessorPil`` layout):

1. If ``T`` is not a multiple of ``temporal_patch_size`` (2), the last frame is repeated (as HF does); the padded
   frame gets no camera token and does not count in the layout footprint.
2. Each frame is resized with Pillow bicubic to ``smart_resize(H, W, factor = patch * merge, min_pixels,
   max_pixels)`` (both sides multiples of 28, area within the limits, aspect ratio kept).
3. ``x / 255``, normalise with the CLIP mean/std (or the checkpoint's), channels first.
4. Patchify: ``[T, C, H, W] -> (t, tps, C, h/m, m, p, w/m, m, p) -> (t, h/m, w/m, m, m, C, tps, p, p)`` flattened to
   ``[t * h * w, C * tps * p * p]`` with ``t = T / tps``, ``h = H / p``, ``w = W / p`` — the order of HF's
   processor, so the vision tower's merger emits one LLM token per ``m x m`` patch block, row-major per temporal
   group. Hence one :class:`VisionSegment` per temporal group: ``grid (h/m) x (w/m)`` covering frames
   ``(2g, 2g + 1)``.

Positions (M-RoPE, ``[3, L]``: temporal, height, width), the rule of transformers 5.x ``get_rope_index``:
text tokens advance all three axes by one; a video block starting at ``s`` gives the token of group ``g``,
row ``r``, column ``c`` the position ``(s + floor(g * tokens_per_second * tps / fps), s + r, s + c)`` and the text
after the block starts at ``s + max(h/m, w/m)``. ``fps`` is the (assumed) sampling rate of the clip's frames
(processor option ``video_fps``, default 2 as qwen-vl-utils). loc3r's camera token(s) of group ``g`` (one per
original frame) are placed right before that group's vision tokens with position ``(s + t_g, s, s)``: same time
as their frame, the top-left spatial slot; they do not shift any other position, so without camera tokens the
positions are exactly HF's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from loc3r.model.backbones.base import (
    BackboneAdapter,
    ChatTemplate,
    QwenVisionTokens,
    TokenKind,
    VideoEncoding,
    normalize_frames,
    pooled_features,
    read_mean_std,
    register_backbone,
    resize_frames,
    tiny_text_config,
)

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of ``factor``, area in ``[min_pixels, max_pixels]``, aspect kept."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be < 200, got {max(height, width) / min(height, width):.1f}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@register_backbone
class Qwen25VLAdapter(QwenVisionTokens, BackboneAdapter):
    name = "qwen2_5_vl"
    model_type = "qwen2_5_vl"
    hf_model_class = Qwen2_5_VLForConditionalGeneration

    # ------------------------------------------------------------------ model construction
    def tiny_config(self, vocab_size: int, token_ids: dict[str, int], **overrides: Any) -> PreTrainedConfig:
        """Tiny Qwen2.5-VL: 2-block vision tower (width 32), 2-layer LLM (width 64, head_dim 16).

        ``mrope_section`` must sum to head_dim / 2 = 8 -> ``[2, 3, 3]`` (temporal, height, width).
        """
        text = tiny_text_config(
            self,
            vocab_size,
            token_ids,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        )
        text_overrides = overrides.pop("text_config", {})
        text.update(text_overrides)
        if "rope_parameters" not in text_overrides:
            # Keep M-RoPE consistent with a resized LLM: the sections must sum to head_dim / 2; split it in Qwen's
            # own 1/4 : 3/8 : 3/8 (temporal : height : width) ratio ([16, 24, 24] at head_dim 128, [2, 3, 3] at 16).
            half = text["hidden_size"] // text["num_attention_heads"] // 2
            temporal = half // 4
            height = (half - temporal) // 2
            section = [temporal, height, half - temporal - height]
            text["rope_parameters"] = dict(text["rope_parameters"], mrope_section=section)
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=text["hidden_size"],
            patch_size=14,
            temporal_patch_size=2,
            spatial_merge_size=2,
            window_size=112,
            fullatt_block_indexes=[1],
            tokens_per_second=2,
        )
        vision.update(overrides.pop("vision_config", {}))
        vision["out_hidden_size"] = text["hidden_size"]
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **overrides)
        self.set_token_ids(config, token_ids)
        return config

    # ------------------------------------------------------------------ preprocessing
    def tiny_preprocessing(self, vlm_config: PreTrainedConfig) -> dict:
        """Tiny frames (e.g. 112 x 112) must not be upscaled to HF's 128-token minimum."""
        options = self.default_preprocessing(vlm_config)
        factor = vlm_config.vision_config.patch_size * vlm_config.vision_config.spatial_merge_size
        options.update(min_pixels=factor * factor, max_pixels=16 * 16 * factor * factor)
        return options

    def default_preprocessing(self, vlm_config: PreTrainedConfig, local_dir: Any = None) -> dict:
        """HF's Qwen2-VL video defaults (area 128..768 merged tokens of 28x28), overridden by the checkpoint's files."""
        vc = vlm_config.vision_config
        factor = vc.patch_size * vc.spatial_merge_size
        options = {
            "min_pixels": 128 * factor * factor,
            "max_pixels": 768 * factor * factor,
            "image_mean": list(OPENAI_CLIP_MEAN),
            "image_std": list(OPENAI_CLIP_STD),
            "video_fps": 2.0,
        }
        found = self.read_processor_json(
            local_dir, ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        )
        self.read_pixel_bounds(options, found)
        for key in ("min_pixels", "max_pixels"):
            if found.get(key) is not None:
                options[key] = int(found[key])
        return read_mean_std(options, found)

    def preprocess_video(
        self, frames: np.ndarray, vlm_config: PreTrainedConfig, options: dict, where: str = "sample"
    ) -> VideoEncoding:
        vc = vlm_config.vision_config
        patch, merge, tps = int(vc.patch_size), int(vc.spatial_merge_size), int(vc.temporal_patch_size)
        num_frames = frames.shape[0]
        height, width = smart_resize(
            frames.shape[1], frames.shape[2], patch * merge, int(options["min_pixels"]), int(options["max_pixels"])
        )
        pixels = normalize_frames(resize_frames(frames, height, width), options["image_mean"], options["image_std"])
        flat, segments, group_frames, grid = self.patchify(pixels, num_frames, patch, merge, tps)
        return VideoEncoding(
            pixel_values=torch.from_numpy(flat),
            segments=segments,
            group_frames=group_frames,
            num_frames=num_frames,
            frame_size=(height, width),
            grid_thw=grid,
            extra={"second_per_grid_t": tps / float(options.get("video_fps", 2.0))},
        )

    def collate_pixels(self, encodings: list[VideoEncoding]) -> dict[str, torch.Tensor]:
        return {
            "pixel_values_videos": torch.cat([e.pixel_values for e in encodings], dim=0),
            "video_grid_thw": torch.tensor([e.grid_thw for e in encodings], dtype=torch.long),
            "second_per_grid_ts": torch.tensor([e.extra["second_per_grid_t"] for e in encodings], dtype=torch.float32),
        }

    # ------------------------------------------------------------------ prompt and positions
    def chat_template(self) -> ChatTemplate:
        """Qwen2.5-VL's chat format with its default system prompt and a video before the user text."""
        return ChatTemplate(
            prefix="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
            video_prefix=self.vision_start_token,
            video_suffix=self.vision_end_token,
            user_suffix="<|im_end|>\n<|im_start|>assistant\n",
            answer_end="<|im_end|>",
            version="qwen2_5_vl/v1",
        )

    def position_ids(
        self, kinds: np.ndarray, encoding: VideoEncoding, vlm_config: PreTrainedConfig, options: dict
    ) -> np.ndarray:
        kinds = np.asarray(kinds)
        length = len(kinds)
        pos = np.zeros((3, length), dtype=np.int64)
        # float32 like HF (``tokens_per_second * second_per_grid_ts`` is a float32 tensor), so truncation agrees
        interval = np.float32(vlm_config.vision_config.tokens_per_second) * np.float32(
            encoding.extra["second_per_grid_t"]
        )
        current = 0
        i = 0
        block_done = False
        while i < length:
            if kinds[i] == TokenKind.TEXT:
                pos[:, i] = current
                current += 1
                i += 1
                continue
            if block_done:
                raise ValueError("a loc3r sequence holds exactly one video block; found a second one")
            start = current
            for g, seg in enumerate(encoding.segments):
                t_pos = start + int(np.float32(g) * interval)  # HF: (arange(t) * interval).long() + start
                while i < length and kinds[i] == TokenKind.CAMERA:
                    pos[:, i] = (t_pos, start, start)
                    i += 1
                i = self.grid_positions(pos, kinds, i, seg, t_pos, start, g)
            seg0 = encoding.segments[0]
            current = start + max(seg0.grid_h, seg0.grid_w)
            block_done = True
        return pos

    # ------------------------------------------------------------------ module access
    def encode_video(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = vlm.model.get_video_features(pixel_inputs["pixel_values_videos"], pixel_inputs["video_grid_thw"])
        return pooled_features(out)

    def vision_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        visual = vlm.model.visual
        return [m for name, m in visual.named_children() if name != "merger"]

    def projector_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        return [vlm.model.visual.merger]
