"""LLaVA-OneVision adapter (``LlavaOnevisionForConditionalGeneration``, the HF class of LLaVA-Video-7B-Qwen2).

Preprocessing (the documented algorithm of HF's ``LlavaOnevisionVideoProcessor``): every frame is resized to the
vision tower's square input ``S x S`` (384 for SigLIP; bicubic — Pillow here, torchvision in HF, so values differ
by interpolation rounding only), ``x / 255``, normalised with the checkpoint's mean/std (SigLIP: 0.5 / 0.5),
channels first -> ``pixel_values_videos [B, T, 3, S, S]``.

Token layout: SigLIP ``S / p`` patches per side (27 for 384/14) -> projector -> 2x2 bilinear pooling to
``ceil(S / p / 2)`` per side (14) -> ``14 x 14 = 196`` tokens per frame, row-major, then ONE ``image_newline``
token per video. Hence one :class:`VisionSegment` per frame, the last carrying the newline as an extra token. The
bilinear pooling blends neighbouring patches, so a token's footprint is the cell of a regular ``14 x 14`` grid
(approximately; exact for even patch counts).

Positions are 1-D (``arange`` over the unpadded sequence). loc3r's camera token of frame ``f`` is inserted right
before that frame's 196 vision tokens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    PreTrainedConfig,
    PreTrainedModel,
)

from loc3r.core.geometry import VisionSegment
from loc3r.data.schema import SampleError
from loc3r.model.backbones.base import (
    BackboneAdapter,
    ChatTemplate,
    VideoEncoding,
    normalize_frames,
    read_mean_std,
    register_backbone,
    resize_frames,
    tiny_text_config,
)

SIGLIP_MEAN = [0.5, 0.5, 0.5]
SIGLIP_STD = [0.5, 0.5, 0.5]


@register_backbone
class LlavaOnevisionAdapter(BackboneAdapter):
    name = "llava_onevision"
    model_type = "llava_onevision"
    hf_model_class = LlavaOnevisionForConditionalGeneration
    video_token = "<video>"
    image_token = "<image>"
    backbone_special_tokens = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<video>", "<image>")
    uses_mrope = False

    # ------------------------------------------------------------------ model construction
    def tiny_config(self, vocab_size: int, token_ids: dict[str, int], **overrides: Any) -> PreTrainedConfig:
        """Tiny LLaVA-OneVision: 2-layer SigLIP (width 32, 112 px / 14 -> 8x8 -> 4x4 = 16 tokens per frame),
        2-layer Qwen2 LLM (width 64)."""
        text = tiny_text_config(self, vocab_size, token_ids, model_type="qwen2")
        text.update(overrides.pop("text_config", {}))
        vision = dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=112,
            patch_size=14,
            vision_use_head=False,
        )
        vision.update(overrides.pop("vision_config", {}))
        overrides.setdefault("vision_feature_select_strategy", "full")
        overrides.setdefault("vision_feature_layer", -1)
        config = LlavaOnevisionConfig(text_config=text, vision_config=vision, **overrides)
        self.set_token_ids(config, token_ids)
        return config

    def set_token_ids(self, vlm_config: PreTrainedConfig, token_ids: dict[str, int]) -> None:
        vlm_config.video_token_index = token_ids[self.video_token]
        vlm_config.image_token_index = token_ids[self.image_token]

    def video_token_id(self, vlm_config: PreTrainedConfig) -> int:
        return int(vlm_config.video_token_index)

    # ------------------------------------------------------------------ preprocessing
    def default_preprocessing(self, vlm_config: PreTrainedConfig, local_dir: Any = None) -> dict:
        options = {"image_mean": list(SIGLIP_MEAN), "image_std": list(SIGLIP_STD)}
        found = self.read_processor_json(
            local_dir, ("video_preprocessor_config.json", "preprocessor_config.json", "processor_config.json")
        )
        return read_mean_std(options, found)

    @staticmethod
    def tokens_per_side(vlm_config: PreTrainedConfig) -> int:
        """Pooled tokens per side: ``ceil((S / p) / 2)`` (27 -> 14)."""
        vc = vlm_config.vision_config
        return math.ceil((vc.image_size // vc.patch_size) / 2)

    def preprocess_video(
        self, frames: np.ndarray, vlm_config: PreTrainedConfig, options: dict, where: str = "sample"
    ) -> VideoEncoding:
        size = int(vlm_config.vision_config.image_size)
        pixels = normalize_frames(resize_frames(frames, size, size), options["image_mean"], options["image_std"])
        side = self.tokens_per_side(vlm_config)
        num_frames = frames.shape[0]
        segments = [
            VisionSegment(frame_indices=(f,), grid_h=side, grid_w=side, extra_tokens=int(f == num_frames - 1))
            for f in range(num_frames)
        ]
        return VideoEncoding(
            pixel_values=torch.from_numpy(pixels),
            segments=segments,
            group_frames=[(f,) for f in range(num_frames)],
            num_frames=num_frames,
            frame_size=(size, size),
        )

    def collate_pixels(self, encodings: list[VideoEncoding]) -> dict[str, torch.Tensor]:
        counts = {e.num_frames for e in encodings}
        if len(counts) != 1:
            raise SampleError(
                f"LLaVA-OneVision batches need the same frame count in every sample (field 'frames'), got {counts}"
            )
        return {"pixel_values_videos": torch.stack([e.pixel_values for e in encodings], dim=0)}

    # ------------------------------------------------------------------ prompt and positions
    def chat_template(self) -> ChatTemplate:
        """The llava-hf LLaVA-OneVision / LLaVA-Video chat format: ``<|im_start|>user <video>\\n{text}<|im_end|>``."""
        return ChatTemplate(
            prefix="<|im_start|>user ",
            video_prefix="",
            video_suffix="\n",
            user_suffix="<|im_end|><|im_start|>assistant\n",
            answer_end="<|im_end|>",
            version="llava_onevision/v1",
        )

    # ------------------------------------------------------------------ module access
    def encode_video(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        pixels = pixel_inputs["pixel_values_videos"]
        out = vlm.model.get_video_features(pixels.to(vlm.dtype))  # positional: the name differs across 5.x
        feats = getattr(out, "pooler_output", out)  # [B, T * P (+ 1), D]
        batch, frames = pixels.shape[:2]
        per_frame = self.tokens_per_side(vlm.config) ** 2
        if feats.shape[1] == frames * per_frame:  # transformers <= 5.1x appends the newline in forward(), not here
            newline = vlm.model.image_newline[None, None, :].expand(batch, 1, -1).to(feats.dtype)
            feats = torch.cat([feats, newline], dim=1)
        elif feats.shape[1] != frames * per_frame + 1:
            raise ValueError(
                f"LLaVA-OneVision vision tower returned {feats.shape[1]} tokens for {frames} frames "
                f"(expected {frames} x {per_frame} + 1 newline)"
            )
        return feats.flatten(0, 1)

    def vision_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        return [vlm.model.vision_tower]

    def projector_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        return [vlm.model.multi_modal_projector]
