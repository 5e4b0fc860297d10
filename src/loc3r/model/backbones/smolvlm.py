"""SmolVLM2 adapter (``SmolVLMForConditionalGeneration``: SmolVLM2-256M / 500M / 2.2B-Video-Instruct).

Preprocessing (the algorithm of transformers' ``SmolVLMVideoProcessor``; ours, Pillow instead of torchvision):
every frame is resized (Lanczos) with its longest edge to ``video_longest_edge`` keeping the aspect ratio, then to
the vision tower's square input ``S x S`` (``max_image_size``: 512 for 256M/500M, 384 for 2.2B), ``x / 255``,
normalised with mean = std = 0.5, channels first -> ``pixel_values_videos [B, T, 3, S, S]`` (the HF model's
``pixel_values``; no frame is split into tiles for video). Values differ from torchvision's by interpolation
rounding only. A frame whose pixels are ALL exactly 0 after normalisation is dropped by HF as padding.

Token layout: SigLIP ``S / p`` patches per side -> pixel shuffle by ``scale_factor`` -> ``(S / p / s)^2`` tokens
per frame (64 for 512 / 16 / 4, 81 for 384 / 14 / 3), row-major over a regular grid: one :class:`VisionSegment`
per frame.

Prompt (SmolVLM2's video chat format, ``SmolVLMProcessor.replace_video_token``)::

    <|im_start|>User: You are provided the following series of {eight} frames from a {0:00:07} [H:MM:SS] video.
    (for each frame) \\nFrame from {mm:ss}:<fake_token_around_image><global-img> <image> x n <fake_token_around_image>
    \\n\\n{user text}<end_of_utterance>\\nAssistant: {answer}<end_of_utterance>

Frame times come from the sampled frame indices and the source fps when the loader records them, else from the
assumed sampling rate (:func:`~loc3r.model.backbones.base.frame_times`; never HF's silent 24 fps); the duration is
the last frame's time (HF's rule when the source length is unknown). Positions are 1-D (Llama LLM). loc3r's camera
token of a frame sits right after its ``<global-img>``, before its vision tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import torch
from num2words import num2words
from PIL import Image
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, SmolVLMConfig, SmolVLMForConditionalGeneration

from loc3r.core.geometry import VisionSegment
from loc3r.model.backbones.base import (
    BackboneAdapter,
    ChatTemplate,
    TokenKind,
    VideoEncoding,
    frame_times,
    normalize_frames,
    pooled_features,
    read_mean_std,
    register_backbone,
    resize_frames,
    tiny_text_config,
)

SMOLVLM_MEAN = [0.5, 0.5, 0.5]
SMOLVLM_STD = [0.5, 0.5, 0.5]


def longest_edge_size(height: int, width: int, longest_edge: int) -> tuple[int, int]:
    """HF SmolVLM video ``get_resize_output_image_size``: longest side to ``longest_edge``, the other even."""
    aspect = width / height
    if width >= height:
        width = longest_edge
        height = int(width / aspect)
        height += height % 2
    else:
        height = longest_edge
        width = int(height * aspect)
        width += width % 2
    return max(height, 1), max(width, 1)


@register_backbone
class SmolVLMAdapter(BackboneAdapter):
    name = "smolvlm"
    model_type = "smolvlm"
    hf_model_class = SmolVLMForConditionalGeneration
    video_token = "<image>"  # SmolVLM puts video frames in image placeholders
    fake_image_token = "<fake_token_around_image>"
    global_image_token = "<global-img>"
    backbone_special_tokens = (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<end_of_utterance>",
        "<fake_token_around_image>",
        "<global-img>",
        "<image>",
    )
    eos_token = "<end_of_utterance>"
    pad_token = "<|im_end|>"
    uses_mrope = False

    # ------------------------------------------------------------------ model construction
    def tiny_config(self, vocab_size: int, token_ids: dict[str, int], **overrides: Any) -> PreTrainedConfig:
        """Tiny SmolVLM: 2-layer SigLIP (width 32, 112 px / 14 -> 8 x 8 patches -> shuffle 2 -> 16 tokens per frame),
        2-layer Llama LLM (width 64)."""
        text = tiny_text_config(self, vocab_size, token_ids, model_type="llama", rms_norm_eps=1e-5)
        text.update(overrides.pop("text_config", {}))
        vision = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=112,
            patch_size=14,
        )
        vision.update(overrides.pop("vision_config", {}))
        overrides.setdefault("scale_factor", 2)
        config = SmolVLMConfig(text_config=text, vision_config=vision, **overrides)
        self.set_token_ids(config, token_ids)
        return config

    def set_token_ids(self, vlm_config: PreTrainedConfig, token_ids: dict[str, int]) -> None:
        vlm_config.image_token_id = token_ids[self.video_token]

    def video_token_id(self, vlm_config: PreTrainedConfig) -> int:
        return int(vlm_config.image_token_id)

    # ------------------------------------------------------------------ preprocessing
    def default_preprocessing(self, vlm_config: PreTrainedConfig, local_dir: Any = None) -> dict:
        """Frames to the tower's ``image_size``; SmolVLM2's video sampling rate (1 fps) as the assumed rate.

        A processor file whose ``max_image_size`` differs from the vision tower's ``image_size`` is an error naming
        the file and field (the tower would see another resolution and emit another token count)."""
        size = int(vlm_config.vision_config.image_size)
        options: dict[str, Any] = {
            "image_size": size,
            "video_longest_edge": size,
            "image_mean": list(SMOLVLM_MEAN),
            "image_std": list(SMOLVLM_STD),
            "video_fps": 1.0,
        }
        path, found = self.find_processor_json(
            local_dir, ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        )
        max_size = (found.get("max_image_size") or {}).get("longest_edge")
        max_image = {"max_image_size": max_size}
        self.check_processor_field(path, max_image, "max_image_size", size, "vision_config.image_size")
        sampling = found.get("video_sampling") or {}
        video_size = (found.get("size") or sampling.get("video_size") or {}).get("longest_edge")
        if video_size is not None:
            options["video_longest_edge"] = int(video_size)
        if sampling.get("fps") is not None:
            options["video_fps"] = float(sampling["fps"])
        elif found.get("fps") is not None:
            options["video_fps"] = float(found["fps"])
        return read_mean_std(options, found)

    def preprocess_video(
        self, frames: np.ndarray, vlm_config: PreTrainedConfig, options: dict, where: str = "sample"
    ) -> VideoEncoding:
        num_frames = frames.shape[0]
        size = int(options["image_size"])
        height, width = longest_edge_size(frames.shape[1], frames.shape[2], int(options["video_longest_edge"]))
        resized = resize_frames(frames, height, width, resample=Image.LANCZOS)
        resized = resize_frames(resized, size, size, resample=Image.LANCZOS)
        pixels = normalize_frames(resized, options["image_mean"], options["image_std"])
        vc = vlm_config.vision_config
        side = int(vc.image_size) // int(vc.patch_size) // int(vlm_config.scale_factor)
        segments = [VisionSegment(frame_indices=(f,), grid_h=side, grid_w=side) for f in range(num_frames)]
        return VideoEncoding(
            pixel_values=torch.from_numpy(pixels),
            segments=segments,
            group_frames=[(f,) for f in range(num_frames)],
            num_frames=num_frames,
            frame_size=(size, size),
            extra={"times": [float(t) for t in frame_times(options, num_frames, where)]},
        )

    def collate_pixels(self, encodings: list[VideoEncoding]) -> dict[str, torch.Tensor]:
        return {"pixel_values_videos": torch.stack([e.pixel_values for e in encodings], dim=0)}

    # ------------------------------------------------------------------ prompt and positions
    def chat_template(self) -> ChatTemplate:
        """SmolVLM2's chat format (``User:`` / ``Assistant:`` turns closed by ``<end_of_utterance>``)."""
        return ChatTemplate(
            prefix="<|im_start|>User:",
            video_prefix="",
            video_suffix="\n\n",
            user_suffix="<end_of_utterance>\nAssistant:",
            answer_end="<end_of_utterance>",
            version="smolvlm/v1",
            answer_prefix=" ",
        )

    @staticmethod
    def video_intro(times: list[float]) -> str:
        """The text before the first frame (HF's ``DEFAULT_VIDEO_INTRO``), with its leading space after ``User:``."""
        duration = str(timedelta(seconds=int(times[-1])))
        return (
            f" You are provided the following series of {num2words(len(times))} frames from a {duration} "
            "[H:MM:SS] video.\n"
        )

    def video_block(
        self,
        encoding: VideoEncoding,
        token_ids: dict[str, int],
        camera_token_id: int | None,
        encode_text: Callable[[str], list[int]],
    ) -> tuple[list[int], list[int]]:
        image_id = token_ids[self.video_token]
        fake_id, global_id = token_ids[self.fake_image_token], token_ids[self.global_image_token]
        times = encoding.extra["times"]
        ids: list[int] = []
        kinds: list[int] = []
        for f, (seg, second) in enumerate(zip(encoding.segments, times, strict=True)):
            text = f"\nFrame from {int(second // 60):02d}:{int(second % 60):02d}:"
            if f == 0:  # the intro and the first frame's line are one text run (tokenised together, as HF does)
                text = self.video_intro(times) + text
            stamp = encode_text(text)
            ids += [*stamp, fake_id, global_id]
            kinds += [TokenKind.TEXT] * (len(stamp) + 2)
            if camera_token_id is not None:
                ids.append(camera_token_id)
                kinds.append(TokenKind.CAMERA)
            ids += [image_id] * seg.num_tokens + [fake_id]
            kinds += [TokenKind.VIDEO] * seg.num_tokens + [TokenKind.TEXT]
        return ids, kinds

    # ------------------------------------------------------------------ module access
    def encode_video(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = vlm.model.get_image_features(pixel_inputs["pixel_values_videos"])
        feats = pooled_features(out)  # a per-frame list is already [N, D]
        return feats.reshape(-1, feats.shape[-1])

    def language_model(self, vlm: PreTrainedModel) -> nn.Module:
        return vlm.model.text_model

    def vision_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        return [vlm.model.vision_model]

    def projector_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        return [vlm.model.connector]
