"""Qwen3-VL adapter (``Qwen3VLForConditionalGeneration``: Qwen3-VL-2B / 4B / 8B / 32B Instruct).

Preprocessing (the algorithm of transformers' ``Qwen3VLVideoProcessor``; ours, Pillow instead of torchvision):

1. A clip needs at least ``temporal_patch_size`` (2) frames (HF refuses fewer); if ``T`` is odd the last frame is
   repeated (the padded frame gets no camera token and does not count in the layout footprint).
2. All frames are resized (Pillow bicubic) to the video ``smart_resize`` of HF: sides multiples of
   ``patch * merge`` (32), and the WHOLE clip's pixel count ``t_bar * h * w`` within ``[min_pixels, max_pixels]``
   (HF ``size.shortest_edge / longest_edge``); with ``cap_pixels_per_frame`` (qwen-vl-utils' rule) the per-frame
   budget is ``max(min(max_video_tokens * 32^2, max_pixels / T), 1.05 * min_pixels)``.
3. ``x / 255``, normalised with mean = std = 0.5 (or the checkpoint's), patchified exactly like Qwen2.5-VL
   (``[t * h * w, C * 2 * 16 * 16]``, merge blocks contiguous), so the merger emits one LLM token per 2 x 2
   patch block, row-major per temporal group: one :class:`VisionSegment` per group of 2 frames.

Prompt: each temporal group is its own block ``<{t:.1f} seconds><|vision_start|> ... <|vision_end|>`` with ``t`` the
mean time of the group's first and last frame (``Qwen3VLProcessor._calculate_timestamps``); frame times come from
the sampled frame indices and the source fps when the loader records them, else from the assumed sampling rate
(:func:`~loc3r.model.backbones.base.frame_times`) — never HF's silent 24 fps. This is the format Qwen3-VL was
trained with (Qwen's processor replaces the template's ``<|vision_start|><|video_pad|><|vision_end|>`` by the
blocks). transformers 5.2x's processor replaces only ``<|video_pad|>`` and so keeps an extra outer
``<|vision_start|> ... <|vision_end|>`` pair; we follow the original format.

Positions (M-RoPE, ``[3, L]``, ``get_rope_index`` of transformers 5.x): text advances all axes by one; the vision
tokens of a group whose block starts at ``s`` get ``(s, s + r, s + c)`` (the temporal axis carries no time: the
timestamps do) and the text after the group starts at ``s + max(h/m, w/m)``. loc3r's camera token(s) of a group
(one per original frame) sit right after the group's ``<|vision_start|>`` with position ``(s, s, s)``; they shift
no other position, so without camera tokens the positions are exactly HF's. ``mm_token_type_ids`` (2 on video
tokens) is always in the batch: the HF model falls back to 1-D positions without it.

DeepStack: the vision tower also returns features of some of its layers (``deepstack_visual_indexes``), each merged
to the LLM width; the LLM adds the k-th to its hidden states at the vision positions after decoder layer k
(:meth:`Qwen3VLAdapter.decoder_vision_kwargs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, Qwen3VLConfig, Qwen3VLForConditionalGeneration

from loc3r.data.schema import SampleError
from loc3r.model.backbones.base import (
    BackboneAdapter,
    ChatTemplate,
    QwenVisionTokens,
    TokenKind,
    VideoEncoding,
    VisionFeatures,
    frame_times,
    normalize_frames,
    read_mean_std,
    register_backbone,
    resize_frames,
    tiny_text_config,
)

IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]


def video_smart_resize(
    num_frames: int, height: int, width: int, temporal_factor: int, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """Qwen3-VL's video resize rule: sides multiples of ``factor``, ``t_bar * h * w`` within the pixel limits
    (``num_frames >= temporal_factor``: :meth:`Qwen3VLAdapter.preprocess_video` checks it)."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be < 200, got {max(height, width) / min(height, width):.1f}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def group_timestamps(times: np.ndarray, temporal_patch: int) -> list[float]:
    """Time of each temporal group: mean of its first and last frame (the last frame repeated to fill the group)."""
    t = [float(x) for x in times]
    while len(t) % temporal_patch:
        t.append(t[-1])
    return [(t[i] + t[i + temporal_patch - 1]) / 2 for i in range(0, len(t), temporal_patch)]


@register_backbone
class Qwen3VLAdapter(QwenVisionTokens, BackboneAdapter):
    name = "qwen3_vl"
    model_type = "qwen3_vl"
    hf_model_class = Qwen3VLForConditionalGeneration

    # ------------------------------------------------------------------ model construction
    def tiny_config(self, vocab_size: int, token_ids: dict[str, int], **overrides: Any) -> PreTrainedConfig:
        """Tiny Qwen3-VL: 2-block vision tower (width 32, patch 16, DeepStack after both blocks), 2-layer LLM
        (width 64, head_dim 16, interleaved M-RoPE).

        ``mrope_section`` sums to head_dim / 2 in Qwen3-VL's 24 : 20 : 20 ratio (``[4, 2, 2]`` at head_dim 16).
        """
        text = tiny_text_config(
            self,
            vocab_size,
            token_ids,
            head_dim=16,
            rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_interleaved": True},
        )
        text_overrides = overrides.pop("text_config", {})
        text.update(text_overrides)
        if "head_dim" not in text_overrides and "hidden_size" in text_overrides:
            text["head_dim"] = text["hidden_size"] // text["num_attention_heads"]
        rope = dict(text["rope_parameters"])
        if "mrope_section" not in rope:
            half = text["head_dim"] // 2
            hw = half * 20 // 64
            rope["mrope_section"] = [half - 2 * hw, hw, hw]
        text["rope_parameters"] = rope
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=16,
            temporal_patch_size=2,
            spatial_merge_size=2,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0, 1],
        )
        vision.update(overrides.pop("vision_config", {}))
        vision["out_hidden_size"] = text["hidden_size"]
        config = Qwen3VLConfig(text_config=text, vision_config=vision, **overrides)
        self.set_token_ids(config, token_ids)
        return config

    # ------------------------------------------------------------------ preprocessing
    def default_preprocessing(self, vlm_config: PreTrainedConfig, local_dir: Any = None) -> dict:
        """HF's ``Qwen3VLVideoProcessor`` defaults, overridden by the checkpoint's video processor file.

        A processor file whose ``patch_size`` / ``temporal_patch_size`` / ``merge_size`` disagree with the model
        config is an error naming the file and field (the token count would not match the vision tower)."""
        vc = vlm_config.vision_config
        factor = int(vc.patch_size) * int(vc.spatial_merge_size)
        options: dict[str, Any] = {
            "min_pixels": 128 * factor * factor,
            "max_pixels": 768 * factor * factor,
            "image_mean": list(IMAGENET_STANDARD_MEAN),
            "image_std": list(IMAGENET_STANDARD_STD),
            "video_fps": 2.0,
            "cap_pixels_per_frame": False,
            "max_video_tokens": 768,
        }
        path, found = self.find_processor_json(
            local_dir, ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        )
        self.check_processor_field(path, found, "patch_size", int(vc.patch_size), "vision_config.patch_size")
        self.check_processor_field(
            path, found, "temporal_patch_size", int(vc.temporal_patch_size), "vision_config.temporal_patch_size"
        )
        self.check_processor_field(
            path, found, "merge_size", int(vc.spatial_merge_size), "vision_config.spatial_merge_size"
        )
        self.read_pixel_bounds(options, found)
        read_mean_std(options, found)
        if found.get("fps") is not None:
            options["video_fps"] = float(found["fps"])
        for key in ("cap_pixels_per_frame", "max_video_tokens"):
            if found.get(key) is not None:
                options[key] = found[key]
        return options

    def tiny_preprocessing(self, vlm_config: PreTrainedConfig) -> dict:
        """Tiny frames (e.g. 112 x 112 -> 128 x 128, 16 tokens per group) are not upscaled to HF's minimum."""
        options = self.default_preprocessing(vlm_config)
        factor = vlm_config.vision_config.patch_size * vlm_config.vision_config.spatial_merge_size
        options.update(min_pixels=2 * factor * factor, max_pixels=64 * 16 * 16 * factor * factor)
        return options

    def preprocess_video(
        self, frames: np.ndarray, vlm_config: PreTrainedConfig, options: dict, where: str = "sample"
    ) -> VideoEncoding:
        vc = vlm_config.vision_config
        patch, merge, tps = int(vc.patch_size), int(vc.spatial_merge_size), int(vc.temporal_patch_size)
        num_frames = frames.shape[0]
        if num_frames < tps:
            raise SampleError(
                f"{where}: field 'frames' has {num_frames} frame(s), fewer than Qwen3-VL's temporal patch size {tps}"
            )
        min_pixels, max_pixels = int(options["min_pixels"]), int(options["max_pixels"])
        if options.get("cap_pixels_per_frame"):
            frame_cap = int(options.get("max_video_tokens", 768)) * (patch * merge) ** 2
            per_frame = max(min(frame_cap, max_pixels // num_frames), int(min_pixels * 1.05))
            max_pixels = per_frame * num_frames
        try:
            height, width = video_smart_resize(
                num_frames, frames.shape[1], frames.shape[2], tps, patch * merge, min_pixels, max_pixels
            )
        except ValueError as err:
            raise SampleError(f"{where}: field 'frames': {err}") from err
        pixels = normalize_frames(resize_frames(frames, height, width), options["image_mean"], options["image_std"])
        flat, segments, group_frames, grid = self.patchify(pixels, num_frames, patch, merge, tps)
        times = frame_times(options, num_frames, where)
        return VideoEncoding(
            pixel_values=torch.from_numpy(flat),
            segments=segments,
            group_frames=group_frames,
            num_frames=num_frames,
            frame_size=(height, width),
            grid_thw=grid,
            extra={"timestamps": group_timestamps(times, tps)},
        )

    def collate_pixels(self, encodings: list[VideoEncoding]) -> dict[str, torch.Tensor]:
        return {
            "pixel_values_videos": torch.cat([e.pixel_values for e in encodings], dim=0),
            "video_grid_thw": torch.tensor([e.grid_thw for e in encodings], dtype=torch.long),
        }

    # ------------------------------------------------------------------ prompt and positions
    def chat_template(self) -> ChatTemplate:
        """Qwen3-VL's chat format (no default system prompt); the video's per-group blocks carry their own
        vision start/end tokens."""
        return ChatTemplate(
            prefix="<|im_start|>user\n",
            video_prefix="",
            video_suffix="",
            user_suffix="<|im_end|>\n<|im_start|>assistant\n",
            answer_end="<|im_end|>",
            version="qwen3_vl/v1",
        )

    def video_block(
        self,
        encoding: VideoEncoding,
        token_ids: dict[str, int],
        camera_token_id: int | None,
        encode_text: Callable[[str], list[int]],
    ) -> tuple[list[int], list[int]]:
        video_id = token_ids[self.video_token]
        start_id, end_id = token_ids[self.vision_start_token], token_ids[self.vision_end_token]
        ids: list[int] = []
        kinds: list[int] = []
        for seg, frames_g, t in zip(
            encoding.segments, encoding.group_frames, encoding.extra["timestamps"], strict=True
        ):
            stamp = encode_text(f"<{t:.1f} seconds>")
            ids += [*stamp, start_id]
            kinds += [TokenKind.TEXT] * (len(stamp) + 1)
            if camera_token_id is not None:
                ids += [camera_token_id] * len(frames_g)
                kinds += [TokenKind.CAMERA] * len(frames_g)
            ids += [video_id] * seg.num_tokens + [end_id]
            kinds += [TokenKind.VIDEO] * seg.num_tokens + [TokenKind.TEXT]
        return ids, kinds

    def position_ids(
        self, kinds: np.ndarray, encoding: VideoEncoding, vlm_config: PreTrainedConfig, options: dict
    ) -> np.ndarray:
        kinds = np.asarray(kinds)
        length = len(kinds)
        pos = np.zeros((3, length), dtype=np.int64)
        current = 0
        i = 0
        group = 0
        while i < length:
            if kinds[i] == TokenKind.TEXT:
                pos[:, i] = current
                current += 1
                i += 1
                continue
            if group >= len(encoding.segments):
                raise ValueError(f"the sequence holds more vision groups than its encoding ({len(encoding.segments)})")
            seg = encoding.segments[group]
            start = current
            while i < length and kinds[i] == TokenKind.CAMERA:
                pos[:, i] = start
                i += 1
            i = self.grid_positions(pos, kinds, i, seg, start, start, group)
            current = start + max(seg.grid_h, seg.grid_w)
            group += 1
        if group != len(encoding.segments):
            raise ValueError(f"the sequence holds {group} vision groups, its encoding {len(encoding.segments)}")
        return pos

    # ------------------------------------------------------------------ module access
    def encode_video_features(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> VisionFeatures:
        out = vlm.model.get_video_features(pixel_inputs["pixel_values_videos"], pixel_inputs["video_grid_thw"])
        if hasattr(out, "pooler_output"):  # transformers >= 5.2x: a ModelOutput
            embeds, deepstack = out.pooler_output, out.deepstack_features
        else:  # transformers 5.17: (per-video embeddings, per-layer DeepStack features)
            embeds, deepstack = out
        if isinstance(embeds, list | tuple):
            embeds = torch.cat(list(embeds), dim=0)
        layers = [torch.cat(list(f), dim=0) if isinstance(f, list | tuple) else f for f in (deepstack or [])]
        return VisionFeatures(embeds=embeds, layer_features=layers or None)

    def encode_video(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode_video_features(vlm, pixel_inputs).embeds

    def decoder_vision_kwargs(self, features: VisionFeatures, vision_mask: torch.Tensor) -> dict[str, Any]:
        if not features.layer_features:
            return {}
        return {"visual_pos_masks": vision_mask, "deepstack_visual_embeds": features.layer_features}

    def vision_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        visual = vlm.model.visual
        return [m for name, m in visual.named_children() if name not in ("merger", "deepstack_merger_list")]

    def projector_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        visual = vlm.model.visual
        return [visual.merger, *visual.deepstack_merger_list]  # one module each: PEFT modules_to_save wraps modules
