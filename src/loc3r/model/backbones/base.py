"""The contract between loc3r and a Hugging Face video VLM: :class:`BackboneAdapter`.

An adapter knows everything that is specific to one HF model family, so that the loc3r model, processor and
heads stay backbone-agnostic:

* which HF classes to build (real checkpoint from a local directory, or a tiny random config of the same class);
* how frames are preprocessed (resize / normalise / patchify — ours, no torchvision) so that the result matches the
  model's own processor;
* which LLM vision token covers which frame(s) and which image rectangle (:class:`~loc3r.core.geometry.VisionSegment`);
* the placeholder tokens of its chat format and the pinned prompt template;
* how the LLM positions are computed (1-D for LLaVA-OneVision, 3-D M-RoPE for Qwen2.5-VL), including the camera
  tokens loc3r inserts before each frame's vision tokens;
* where the vision tower, projector, LLM decoder, input embeddings and LM head live inside the HF model;
* what, besides the vision embeddings, the LLM decoder takes from the vision tower (:class:`VisionFeatures`, e.g.
  Qwen3-VL's DeepStack features added to the first decoder layers' hidden states at the vision positions).

Adding a backbone (e.g. Qwen3-VL, SmolVLM2) means writing ONE new module that subclasses :class:`BackboneAdapter`
and registers itself with :func:`register_backbone` (below); the processor, model, heads and recipes
need no change. Per-sample timing (the sampled frame indices and the source video's fps, for formats that write
timestamps into the prompt) reaches the adapter through the preprocessing ``options`` (:func:`frame_times`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from loc3r.core.geometry import VisionSegment
from loc3r.core.io import read_json
from loc3r.data.schema import SampleError


class TokenKind:
    """Kinds of LLM tokens in a loc3r sequence (stored per token by the processor)."""

    TEXT = 0
    VIDEO = 2  # same value as HF's ``mm_token_type_ids`` for video tokens
    CAMERA = 3  # our camera-prior token (not produced by the vision tower)


@dataclass
class VideoEncoding:
    """One clip after the adapter's preprocessing.

    Attributes:
        pixel_values: the tensor the HF vision tower expects for this clip (Qwen2.5-VL: flattened patches
            ``[n_patches, C * tps * p * p]``; LLaVA-OneVision: ``[T, 3, S, S]``).
        segments: the LLM vision tokens of the clip, in order: one :class:`VisionSegment` per temporal group.
        group_frames: for each segment, the ORIGINAL frame indices it covers (padding frames excluded); a camera
            token is inserted for each of them.
        grid_thw: Qwen-style patch grid ``(t, h, w)`` before spatial merging, or ``None``.
        num_frames: number of frames of the original clip.
        frame_size: ``(height, width)`` the frames were resized to.
    """

    pixel_values: torch.Tensor
    segments: list[VisionSegment]
    group_frames: list[tuple[int, ...]]
    num_frames: int
    frame_size: tuple[int, int]
    grid_thw: tuple[int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vision_tokens(self) -> int:
        return sum(seg.num_tokens for seg in self.segments)


@dataclass
class VisionFeatures:
    """What the vision tower gives the LLM for a batch of clips.

    Attributes:
        embeds: ``[N_total, D]`` vision embeddings in sequence order (they replace the video placeholders).
        layer_features: per-LLM-layer features added to the hidden states at the vision positions after that
            decoder layer (Qwen3-VL DeepStack: one ``[N_total, D]`` tensor per early layer); ``None`` for backbones
            without them.
    """

    embeds: torch.Tensor
    layer_features: list[torch.Tensor] | None = None


@dataclass(frozen=True)
class ChatTemplate:
    """A pinned chat template: ``prefix + <video block> + user_text + suffix`` then ``answer + answer_end``.

    ``video_prefix`` / ``video_suffix`` are text around the video block (e.g. Qwen's vision start/end tokens).
    ``answer_prefix`` is text the chat format puts between the assistant tag and the answer (SmolVLM's
    ``"Assistant: answer"``); it is supervised with the answer.
    """

    prefix: str
    video_prefix: str
    video_suffix: str
    user_suffix: str  # closes the user turn and opens the assistant turn (the eval prompt ends here)
    answer_end: str  # appended to the answer in train mode; part of the labels so the model learns to stop
    version: str
    answer_prefix: str = ""


def resize_frames(frames: np.ndarray, height: int, width: int, resample: int = Image.BICUBIC) -> np.ndarray:
    """Resize ``[T, H, W, 3] uint8`` frames with Pillow (HF's PIL backends resize uint8 images the same way)."""
    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for t in range(frames.shape[0]):
        out[t] = np.asarray(Image.fromarray(frames[t]).resize((width, height), resample=resample))
    return out


def normalize_frames(frames: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """``[T, H, W, 3] uint8 -> [T, 3, H, W] float32``: ``(x / 255 - mean) / std`` per channel."""
    x = frames.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def frame_times(options: dict, num_frames: int, where: str = "sample") -> np.ndarray:
    """Time (seconds from the start of the source video) of each of the ``num_frames`` sampled frames.

    From the sampled frame indices and the source video's frame rate when the loader knows them
    (``options["frame_indices"]`` from ``ClipSample.frame_indices``, ``options["source_fps"]`` from
    ``ClipSample.meta["fps"]``, set per sample by the processor); otherwise frames are taken as uniformly sampled
    at ``options["video_fps"]`` (``meta["sampled_fps"]`` or the preprocessing option, default 2 — the sampling rate
    of Qwen's and SmolVLM2's own video pipelines). Never HF's silent 24-fps fallback.
    """
    indices = options.get("frame_indices")
    fps = options.get("source_fps")
    if indices is not None and fps is not None:
        indices = np.asarray(indices, dtype=np.float64).reshape(-1)
        if len(indices) != num_frames:
            raise SampleError(f"{where}: field 'frame_indices' has {len(indices)} entries for {num_frames} frames")
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise SampleError(f"{where}: field meta['fps'] must be a positive number, got {fps}")
        return indices / fps
    rate = float(options.get("video_fps", 2.0))
    if not np.isfinite(rate) or rate <= 0:
        raise SampleError(f"{where}: preprocessing option 'video_fps' must be a positive number, got {rate}")
    return np.arange(num_frames, dtype=np.float64) / rate


class BackboneAdapter(ABC):
    """Everything loc3r needs to know about one HF video-VLM family (see the module docstring)."""

    #: registry name (``Loc3rConfig.backbone``)
    name: ClassVar[str]
    #: HF ``model_type`` of the backbone config
    model_type: ClassVar[str]
    #: the HF model class (``...ForConditionalGeneration``)
    hf_model_class: ClassVar[type[PreTrainedModel]]
    #: the video placeholder token of the chat format (one per LLM vision token after expansion)
    video_token: ClassVar[str]
    #: all backbone tokens that must exist as special tokens in the tokenizer
    backbone_special_tokens: ClassVar[tuple[str, ...]]
    #: end-of-turn token (generation stops on it) and padding token
    eos_token: ClassVar[str] = "<|im_end|>"
    pad_token: ClassVar[str] = "<|endoftext|>"
    #: does the LLM use 3-D (M-RoPE) positions?
    uses_mrope: ClassVar[bool] = False
    #: does the HF model want ``mm_token_type_ids`` (0 text, 1 image, 2 video)? (transformers 5.x Qwen-VL)
    emits_mm_token_type_ids: ClassVar[bool] = False

    # ------------------------------------------------------------------ model construction
    @abstractmethod
    def tiny_config(self, vocab_size: int, token_ids: dict[str, int], **overrides: Any) -> PreTrainedConfig:
        """A tiny random config of the real HF class (for tests and the CPU demo).

        ``token_ids`` maps the backbone's special tokens (``video_token`` ...) to ids of the tokenizer.
        """

    def load_pretrained(self, local_dir: str | Path, **kwargs: Any) -> PreTrainedModel:
        """Load a real checkpoint from a local directory (no download)."""
        return self.hf_model_class.from_pretrained(str(local_dir), local_files_only=True, **kwargs)

    @abstractmethod
    def set_token_ids(self, vlm_config: PreTrainedConfig, token_ids: dict[str, int]) -> None:
        """Write the tokenizer's ids of the backbone placeholders into the HF config."""

    @abstractmethod
    def video_token_id(self, vlm_config: PreTrainedConfig) -> int:
        """Id of :attr:`video_token` in the HF config."""

    # ------------------------------------------------------------------ preprocessing
    @abstractmethod
    def default_preprocessing(self, vlm_config: PreTrainedConfig, local_dir: str | Path | None = None) -> dict:
        """Preprocessing settings (image size, mean/std, ...), read from the checkpoint's processor files if any."""

    @abstractmethod
    def preprocess_video(
        self, frames: np.ndarray, vlm_config: PreTrainedConfig, options: dict, where: str = "sample"
    ) -> VideoEncoding:
        """Frames ``[T, H, W, 3] uint8`` -> :class:`VideoEncoding` (pixels + token footprints); the frames are a
        validated clip (:meth:`~loc3r.data.schema.ClipSample.validate` checked their shape and dtype)."""

    @abstractmethod
    def collate_pixels(self, encodings: list[VideoEncoding]) -> dict[str, torch.Tensor]:
        """Batch the pixels of several clips into the tensors the model's ``forward`` takes."""

    # ------------------------------------------------------------------ prompt and positions
    @abstractmethod
    def chat_template(self) -> ChatTemplate:
        """The pinned chat template of this backbone."""

    def video_block(
        self,
        encoding: VideoEncoding,
        token_ids: dict[str, int],
        camera_token_id: int | None,
        encode_text: Callable[[str], list[int]],
    ) -> tuple[list[int], list[int]]:
        """Token ids and :class:`TokenKind` of the video block (vision placeholders + camera tokens).

        ``encode_text`` tokenises text that a chat format puts inside the block (e.g. Qwen3-VL's per-group
        ``<t seconds>`` timestamps; such tokens are :attr:`TokenKind.TEXT`). The default, for formats without text
        inside the block (LLaVA-OneVision, Qwen2.5-VL): one camera token per frame of each segment, then the
        segment's vision placeholders.
        """
        video_id = token_ids[self.video_token]
        ids: list[int] = []
        kinds: list[int] = []
        for seg, frames_g in zip(encoding.segments, encoding.group_frames, strict=True):
            if camera_token_id is not None:
                ids += [camera_token_id] * len(frames_g)
                kinds += [TokenKind.CAMERA] * len(frames_g)
            ids += [video_id] * seg.num_tokens
            kinds += [TokenKind.VIDEO] * seg.num_tokens
        return ids, kinds

    def position_ids(
        self,
        kinds: np.ndarray,
        encoding: VideoEncoding,
        vlm_config: PreTrainedConfig,
        options: dict,
    ) -> np.ndarray:
        """LLM positions of one UNPADDED sequence: ``[A, L]`` (A = 3 for M-RoPE, else 1).

        ``kinds`` holds the :class:`TokenKind` of every token; the single video block of the sequence is
        described by ``encoding``. The default: 1-D positions ``0 .. L-1`` (LLaVA-OneVision, SmolVLM2).
        """
        return np.arange(len(kinds), dtype=np.int64)[None]

    # ------------------------------------------------------------------ module access (inside the HF model)
    @abstractmethod
    def encode_video(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Vision tower + projector: ``[N_total, D]`` vision embeddings in sequence order (all clips)."""

    def encode_video_features(self, vlm: PreTrainedModel, pixel_inputs: dict[str, torch.Tensor]) -> VisionFeatures:
        """Everything the LLM takes from the vision tower; override when there is more than :meth:`encode_video`
        (e.g. DeepStack layer features)."""
        return VisionFeatures(embeds=self.encode_video(vlm, pixel_inputs))

    def decoder_vision_kwargs(self, features: VisionFeatures, vision_mask: torch.Tensor) -> dict[str, Any]:
        """Extra keyword arguments of the LLM decoder's prompt forward built from ``features`` (``vision_mask
        [B, L]`` marks the vision placeholders); ``{}`` for backbones whose LLM only sees the embeddings."""
        if features.layer_features:
            raise NotImplementedError(f"{type(self).__name__}: layer features need decoder_vision_kwargs")
        return {}

    def tiny_preprocessing(self, vlm_config: PreTrainedConfig) -> dict:
        """Preprocessing of tiny test / demo models (default: :meth:`default_preprocessing`); Qwen adapters lower
        the pixel minimum so 112 px frames are not upscaled."""
        return self.default_preprocessing(vlm_config)

    def language_model(self, vlm: PreTrainedModel) -> nn.Module:
        """The LLM decoder (takes ``inputs_embeds``, ``position_ids``, ``attention_mask``, cache)."""
        return vlm.model.language_model

    def lm_head(self, vlm: PreTrainedModel) -> nn.Module:
        return vlm.lm_head

    @abstractmethod
    def vision_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        """The vision encoder (frozen in the paper's recipe)."""

    @abstractmethod
    def projector_modules(self, vlm: PreTrainedModel) -> list[nn.Module]:
        """The vision -> LLM projector (trained)."""

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def find_processor_json(local_dir: str | Path | None, names: tuple[str, ...]) -> tuple[Path | None, dict]:
        """``(path, settings)`` of the first existing JSON among ``names`` in ``local_dir`` (processor configs of a
        real checkpoint; ``(None, {})`` when there is none)."""
        if local_dir is None:
            return None, {}
        for name in names:
            path = Path(local_dir) / name
            if path.is_file():
                data = read_json(path, "processor config")
                if not isinstance(data, dict):
                    raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
                # processor_config.json nests the sub-processors
                for key in ("video_processor", "image_processor"):
                    if isinstance(data.get(key), dict):
                        return path, data[key]
                return path, data
        return None, {}

    @classmethod
    def read_processor_json(cls, local_dir: str | Path | None, names: tuple[str, ...]) -> dict:
        """First existing JSON among ``names`` in ``local_dir`` (processor configs of a real checkpoint)."""
        return cls.find_processor_json(local_dir, names)[1]

    @staticmethod
    def check_processor_field(path: Path | None, settings: dict, key: str, expected: Any, model_field: str) -> None:
        """A processor setting that must equal the model config (e.g. ``patch_size``): a disagreement means the
        processor files belong to another checkpoint, and the token count would not match the vision tower."""
        if path is None or settings.get(key) is None:
            return
        if settings[key] != expected:
            raise ValueError(
                f"{path}: field {key!r} is {settings[key]!r} but the model config has {model_field} = {expected!r} "
                "(processor files of another checkpoint?)"
            )


# ---------------------------------------------------------------------- helpers the adapters share
def tiny_text_config(adapter: BackboneAdapter, vocab_size: int, token_ids: dict[str, int], **fields: Any) -> dict:
    """The LLM of the tiny test / demo models: 2 layers, width 64, 4 heads (2 KV heads), plus ``fields``."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=token_ids.get(adapter.eos_token),
        pad_token_id=token_ids.get(adapter.pad_token),
        **fields,
    )


def read_mean_std(options: dict, found: dict) -> dict:
    """``image_mean`` / ``image_std`` of a processor file (``found``) over the defaults in ``options``."""
    for key in ("image_mean", "image_std"):
        if found.get(key) is not None:
            options[key] = [float(v) for v in found[key]]
    return options


def pooled_features(out: Any) -> torch.Tensor:
    """The vision embeddings of ``get_*_features`` (a ModelOutput in transformers >= 5.2x, else the tensor or a
    per-clip list), concatenated over clips."""
    feats = getattr(out, "pooler_output", out)
    if isinstance(feats, list | tuple):
        feats = torch.cat(list(feats), dim=0)
    return feats


class QwenVisionTokens:
    """The vision placeholders of the Qwen-VL chat formats (Qwen2.5-VL, Qwen3-VL) and the patch grid both share."""

    video_token: ClassVar[str] = "<|video_pad|>"
    image_token: ClassVar[str] = "<|image_pad|>"
    vision_start_token: ClassVar[str] = "<|vision_start|>"
    vision_end_token: ClassVar[str] = "<|vision_end|>"
    backbone_special_tokens: ClassVar[tuple[str, ...]] = (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|video_pad|>",
        "<|image_pad|>",
    )
    uses_mrope: ClassVar[bool] = True
    emits_mm_token_type_ids: ClassVar[bool] = True

    def set_token_ids(self, vlm_config: PreTrainedConfig, token_ids: dict[str, int]) -> None:
        vlm_config.video_token_id = token_ids[self.video_token]
        vlm_config.image_token_id = token_ids[self.image_token]
        vlm_config.vision_start_token_id = token_ids[self.vision_start_token]
        vlm_config.vision_end_token_id = token_ids[self.vision_end_token]

    def video_token_id(self, vlm_config: PreTrainedConfig) -> int:
        return int(vlm_config.video_token_id)

    @staticmethod
    def read_pixel_bounds(options: dict, found: dict) -> None:
        """``size.shortest_edge`` / ``size.longest_edge`` of a processor file as ``min_pixels`` / ``max_pixels``."""
        size = found.get("size") or {}
        if "shortest_edge" in size:
            options["min_pixels"] = int(size["shortest_edge"])
        if "longest_edge" in size:
            options["max_pixels"] = int(size["longest_edge"])

    @staticmethod
    def grid_positions(
        pos: np.ndarray, kinds: np.ndarray, i: int, seg: VisionSegment, t: int, start: int, group: int
    ) -> int:
        """Write the M-RoPE positions ``(t, start + row, start + col)`` of segment ``group``'s vision tokens, which
        begin at ``i`` (checked against ``kinds``); returns the index after them."""
        n = seg.grid_h * seg.grid_w
        if i + n > len(kinds) or not np.all(kinds[i : i + n] == TokenKind.VIDEO):
            raise ValueError(f"video block does not match its encoding at group {group} (expected {n} tokens)")
        rows, cols = np.divmod(np.arange(n), seg.grid_w)
        pos[0, i : i + n] = t
        pos[1, i : i + n] = start + rows
        pos[2, i : i + n] = start + cols
        return i + n

    @staticmethod
    def patchify(
        pixels: np.ndarray, num_frames: int, patch: int, merge: int, tps: int
    ) -> tuple[np.ndarray, list[VisionSegment], list[tuple[int, ...]], tuple[int, int, int]]:
        """Normalised ``[T, C, H, W]`` frames -> Qwen's flattened patches ``[n_patches, C * tps * p * p]`` (the last
        frame repeated up to a multiple of ``tps``), one segment per temporal group, the original frames of each
        group, and the grid ``(t, h, w)``."""
        pad = (-num_frames) % tps
        if pad:
            pixels = np.concatenate([pixels, np.repeat(pixels[-1:], pad, axis=0)], axis=0)
        grid_t, grid_h, grid_w = pixels.shape[0] // tps, pixels.shape[2] // patch, pixels.shape[3] // patch
        channels = pixels.shape[1]
        patches = pixels.reshape(grid_t, tps, channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch)
        patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
        flat = np.ascontiguousarray(patches).reshape(grid_t * grid_h * grid_w, channels * tps * patch * patch)
        segments, group_frames = [], []
        for g in range(grid_t):
            frames_g = tuple(f for f in range(g * tps, (g + 1) * tps) if f < num_frames)
            segments.append(VisionSegment(frame_indices=frames_g, grid_h=grid_h // merge, grid_w=grid_w // merge))
            group_frames.append(frames_g)
        return flat, segments, group_frames, (grid_t, grid_h, grid_w)


#: name -> adapter class; filled by :func:`register_backbone` (read through :mod:`loc3r.model.backbones`).
_REGISTRY: dict[str, type[BackboneAdapter]] = {}


def register_backbone(cls: type[BackboneAdapter]) -> type[BackboneAdapter]:
    """Class decorator: make an adapter available under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__}: a backbone adapter needs a non-empty class attribute 'name'")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"backbone {name!r} is registered twice ({_REGISTRY[name].__name__} and {cls.__name__})")
    _REGISTRY[name] = cls
    return cls
