"""``Loc3rProcessor``: the collator from ``list[ClipSample]`` to the inputs of ``Loc3rForConditionalGeneration``.

Per sample it

1. validates the sample (shapes, dtypes, rigid finite poses — errors name the sample and the field);
2. preprocesses the frames with the backbone adapter (ours, no torchvision) and gets the token footprints
   (:class:`~loc3r.core.geometry.VisionSegment`);
3. builds the pinned prompt of the backbone's chat format::

       <prefix> <video block> <user text> <user suffix> [answer <answer end>]

   where the user text is ``"{situation} <Pos> <Ori> {question}"`` when the situation objective is on (the
   pseudo-situation :data:`~loc3r.data.schema.PSEUDO_SITUATION` when the sample has none) and
   ``"{situation} {question}"`` (or just the question for a sample without situation) otherwise;
   multiple-choice options, when present, follow the question one per line. The video block holds one
   placeholder per LLM vision token and, with the camera prior on, one ``<Cam>`` token before each frame's vision
   tokens. In ``train`` mode the answer and the end-of-turn token are appended and are the only supervised labels
   (all other labels are -100); in ``eval`` mode the prompt ends where the assistant turn starts.
4. builds, for every enabled objective, its targets with that objective's module (:mod:`loc3r.objectives`: the
   clip's BEV anchor frame from ``poses[0]``, then layout targets per vision token, situation targets, recognition
   and anchor targets; the cue-injection and oracle inputs with their model modules) — missing geometry is masked;
5. gets the per-frame camera features from the camera provider (camera prior on only) for the samples that get
   their camera tokens (``camera_input`` of :class:`Loc3rProcessor`: camera-prior dropout in training, poses present
   at inference); a sample without them has no ``<Cam>`` token and ``camera_valid = False`` on all its frames, and
   ``SampleMeta.camera_prior_used`` says which way it went;
6. computes the LLM positions (M-RoPE 3-D for Qwen2.5-VL, including camera tokens). The temporal M-RoPE scale uses
   the clip's real sampling rate when the loader records it as ``sample.meta["sampled_fps"]`` (frames per second of
   the sampled frames, as HF's Qwen processor does), else the ``video_fps`` preprocessing option (default 2).
   Formats that write frame times into the prompt (Qwen3-VL ``<t seconds>``, SmolVLM2 ``Frame from mm:ss``) get
   the sampled ``frame_indices`` and the source ``meta["fps"]`` when the loader records both
   (:func:`loc3r.model.backbones.base.frame_times`).

Batch keys (all tensors, batch first except Qwen's flattened ``pixel_values_videos``; see
:mod:`loc3r.model.modeling_loc3r` for shapes): ``input_ids, attention_mask, position_ids, labels`` (train),
``pixel_values_videos`` (+ ``video_grid_thw, second_per_grid_ts, mm_token_type_ids`` for Qwen2.5-VL),
``layout_targets, layout_valid`` (layout on), ``cue_points, cue_valid`` (cue injection on),
``camera_features, camera_valid`` (camera prior on), ``situation_position, situation_yaw, situation_valid``
(situation on), ``recognition_targets [B, L, C], recognition_valid`` (recognition on: each vision token's class
histogram from the sample's ``pixel_labels``, mapped onto ``config.recognition_classes`` by name).

Non-tensor metadata (sample ids, anchor frames, token footprints, references) travels as the ATTRIBUTE
``batch.metadata`` (a list of :class:`SampleMeta`), not as a key, so ``model(**batch)`` and the HF Trainer never see
it. ``batch.to(device)`` keeps it; code that rebuilds the mapping (HF Trainer / accelerate device placement) drops
it, which is fine for training — evaluation code keeps a reference to ``batch.metadata`` before moving the batch.

Padding: right in ``train`` mode, left in ``eval`` mode (so the last prompt token of every row is at the end, which
greedy decoding needs). Padded positions have ``attention_mask = 0``, label -100 and every mask False.
"""

from __future__ import annotations

import collections
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from loc3r.core.errors import ConfigError
from loc3r.core.geometry import AnchorFrame, VisionSegment, anchor_frame
from loc3r.core.io import read_json, write_json
from loc3r.data.schema import PSEUDO_SITUATION, ClipSample, SampleError
from loc3r.model.backbones import TokenKind, get_backbone
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.model.cue_injection import batch_cues, cue_token_points
from loc3r.model.oracle_tower import batch_oracle, layout_tokens, oracle_targets
from loc3r.model.tokenizer import CAMERA_TOKEN, ORI_TOKEN, POS_TOKEN, special_token_ids
from loc3r.objectives import camera_prior, layout, pointer, recognition, situation
from loc3r.objectives.camera_prior import camera_features_available, camera_prior_dropped
from loc3r.objectives.common import ClipTargets

PROCESSOR_CONFIG_NAME = "loc3r_processor_config.json"
IGNORE_INDEX = -100
#: values of ``Loc3rProcessor(camera_input=...)``
CAMERA_INPUTS = ("auto", "given", "none")
Mode = Literal["train", "eval"]


@dataclass
class SampleMeta:
    """Per-sample facts that are not model inputs (kept in ``batch.metadata``)."""

    sample_id: str
    scene_id: str
    task: str
    question: str
    answer: str | None
    answers: list[str]
    situation_text: str | None
    anchor: AnchorFrame | None
    segments: list[VisionSegment]
    num_frames: int
    frame_size: tuple[int, int]
    num_vision_tokens: int
    prompt_length: int  # unpadded length of the model input (prompt [+ answer in train mode])
    agent_position_bev: np.ndarray | None = None  # (2,) ground truth in the anchor frame, when known
    agent_yaw_bev: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: tokens before the situation / question text (chat prefix + video block): the same for every question on
    #: this clip, the part ``Loc3rForConditionalGeneration.encode_prefix`` runs once
    prefix_length: int | None = None
    #: ``[N_vision, 2]`` BEV x-y each vision token sees (NaN where unknown), when the model has a layout head and
    #: the sample has depth: what the layout head's held-out error is measured against
    token_points_bev: np.ndarray | None = None

    #: whether the prompt holds the camera-prior tokens (None: the model has no camera prior)
    camera_prior_used: bool | None = None


def _token_xy(token_points: tuple | None) -> np.ndarray | None:
    """The BEV x-y of each vision token's footprint (NaN where invalid) from ``(slots, points, valid)``."""
    if token_points is None:
        return None
    _, points, valid = token_points
    return np.where(valid[:, None], points[:, :2], np.nan).astype(np.float32)


def read_processor_config(path: Path, backbone: str) -> dict[str, Any]:
    """The saved ``loc3r_processor_config.json`` at ``path``, checked once for every reader (the model's
    ``from_pretrained`` and :meth:`Loc3rProcessor.from_pretrained`): a JSON object of ``backbone``'s prompt format
    as this code writes it, ``num_frames`` a positive int or null. Errors name the file and the field."""
    saved = read_json(path, "processor config")
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if saved.get("backbone") != backbone:
        raise ValueError(
            f"{path}: field 'backbone' is {saved.get('backbone')!r} but the model config says {backbone!r}"
        )
    version = get_backbone(backbone).chat_template().version
    if saved.get("template_version") != version:
        raise ValueError(
            f"{path}: field 'template_version' {saved.get('template_version')!r} differs from this code's "
            f"{version!r}; the prompt format changed since the checkpoint was saved"
        )
    frames = saved.get("num_frames")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ValueError(f"{path}: field 'num_frames' must be a positive int or null, got {frames!r}")
    return saved


def _check_normalisation(options: dict[str, Any]) -> None:
    """``image_mean`` / ``image_std`` of the preprocessing options (a checkpoint's ``loc3r_processor_config.json`` or
    a backbone's ``preprocessor_config.json``) must be finite per-channel numbers, the std positive: a std of 0 turns
    every pixel into NaN/inf and the model then answers from garbage without any error."""
    for key in ("image_mean", "image_std"):
        if key not in options:
            continue
        values = options[key]
        values = [values] if isinstance(values, int | float) and not isinstance(values, bool) else values
        ok = isinstance(values, list | tuple) and len(values) in (1, 3)
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        if ok and key == "image_std":
            ok = all(v > 0 for v in values)
        if not ok:
            need = "positive" if key == "image_std" else "finite"
            raise ConfigError(
                f"{PROCESSOR_CONFIG_NAME} / preprocessor config: field 'preprocessing.{key}' must be 1 or 3 {need} "
                f"finite numbers (one per RGB channel), got {values!r}"
            )


class Loc3rBatch(BatchFeature):
    """A ``BatchFeature`` (dict of tensors) with the per-sample :class:`SampleMeta` as the attribute ``metadata``."""

    def __init__(self, data: dict[str, Any] | None = None, metadata: list[SampleMeta] | None = None, **kwargs: Any):
        super().__init__(data, **kwargs)
        self.metadata: list[SampleMeta] = metadata if metadata is not None else []
        #: each sample's preprocessed video (:class:`~loc3r.model.backbones.VideoEncoding`), for re-use
        self.encodings: list[Any] = []

    # BatchFeature pickles only ``data``: a batch made in a DataLoader worker process would arrive without its
    # metadata (no frame report, no --strict, no sample ids), so the attributes travel too
    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data, "metadata": self.metadata, "encodings": self.encodings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.data = state.get("data", {})
        self.metadata = state.get("metadata", [])
        self.encodings = state.get("encodings", [])


class ClipCache:
    """Least-recently-used store of per-clip processing results, bounded by the bytes of their arrays.

    Several samples often show one clip (SynthRooms asks ~16 situations and ~30 questions per rendered room); their
    frame preprocessing, token footprints and targets are the same, so they are computed once. The key is a digest
    of everything those results depend on: the frames, poses, points, pixel labels and label names, and the
    preprocessing options. Entries are dicts the processor fills lazily; callers must not modify the arrays.
    """

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max(0.0, float(max_mb)) * 2**20)
        self._entries: collections.OrderedDict[bytes, dict[str, Any]] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @staticmethod
    def key(sample: ClipSample, frames: np.ndarray, options: dict[str, Any]) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for name, value in (("frames", frames), ("poses", sample.poses), ("points", sample.points),
                            ("pixel_labels", sample.pixel_labels)):  # fmt: skip
            digest.update(name.encode())
            if value is not None:
                arr = np.ascontiguousarray(value)
                digest.update(f"{arr.dtype.str}{arr.shape}".encode())
                digest.update(memoryview(arr).cast("B"))
        digest.update(repr((sample.label_names, sorted(options.items(), key=lambda kv: kv[0]))).encode())
        return digest.digest()

    @staticmethod
    def _size(entry: dict[str, Any]) -> int:
        total = 0
        for value in entry.values():
            parts = value if isinstance(value, tuple) else (value,)
            for part in parts:
                if isinstance(part, np.ndarray):
                    total += part.nbytes
                elif isinstance(part, torch.Tensor):
                    total += part.numel() * part.element_size()
                elif hasattr(part, "pixel_values"):
                    total += part.pixel_values.numel() * part.pixel_values.element_size()
        return total

    def get(self, key: bytes | None) -> dict[str, Any] | None:
        if key is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes | None, entry: dict[str, Any]) -> None:
        if key is None:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        # sizes are taken at eviction time: entries grow as the processor fills them
        while len(self._entries) > 1 and sum(self._size(e) for e in self._entries.values()) > self.max_bytes:
            self._entries.popitem(last=False)


class Loc3rProcessor:
    """Collator / processor of loc3r (see the module docstring).

    Args:
        tokenizer: a fast tokenizer holding the backbone's and loc3r's special tokens.
        config: the model's :class:`Loc3rConfig` (backbone, objective switches, HF backbone config).
        preprocessing: adapter preprocessing options (defaults: :meth:`BackboneAdapter.default_preprocessing`).
        mode: default mode, ``"train"`` (answer appended, labels) or ``"eval"`` (prompt only, left padding).
        num_frames: if set, every clip must have exactly this many frames (a wrong count is an error).
        max_length: if set, a longer sequence is an error (truncation would cut vision tokens or the answer).
        camera_provider: per-frame camera feature provider; default built from ``config.camera_prior``
            (``camera_root`` / ``camera_key`` for the ``"file"`` provider; an eval-mode processor of a ``"file"``
            model without ``camera_root`` has none and runs without the prior).
        camera_input: which samples get the camera-prior tokens (prior on only). ``"auto"``: in ``train`` mode all
            but the camera-prior dropout (rate ``config.camera_prior_dropout``, seeded by ``camera_dropout_seed``),
            and a sample without the inputs of the prior is an error, as always in training; in ``eval`` mode every
            sample whose inputs the provider has (poses for ``"poses"``) and the others run without.
            ``"given"``: every sample, a missing input is an error. ``"none"``: no sample (a model evaluated as on
            pose-less video; the ground truth still comes from the poses).
        camera_dropout_seed: the training seed that makes the camera-prior dropout deterministic.
        clip_cache_mb: memory (MiB) of the :class:`ClipCache` (per-clip work re-used by the samples of one clip);
            0 turns it off.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: Loc3rConfig,
        preprocessing: dict | None = None,
        mode: Mode = "train",
        num_frames: int | None = None,
        max_length: int | None = None,
        camera_provider: Any = None,
        camera_root: str | None = None,
        camera_key: str = "camera_tokens",
        clip_cache_mb: float = 256.0,
        camera_input: str = "auto",
        camera_dropout_seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.adapter = get_backbone(config.backbone)
        self.vlm_config = config.vlm_config
        self.preprocessing = dict(preprocessing or self.adapter.default_preprocessing(self.vlm_config))
        _check_normalisation(self.preprocessing)
        self.mode: Mode = self._check_mode(mode)
        self.num_frames = num_frames
        self.max_length = max_length
        self.camera_root = camera_root
        self.camera_key = camera_key
        self.token_ids = special_token_ids(tokenizer, config.backbone)
        self.template = self.adapter.chat_template()
        video_id = self.adapter.video_token_id(self.vlm_config)
        if video_id != self.token_ids[self.adapter.video_token]:
            raise ValueError(
                f"tokenizer and model disagree on the video token {self.adapter.video_token!r}: tokenizer id "
                f"{self.token_ids[self.adapter.video_token]}, model config id {video_id}"
            )
        self.pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        if camera_input not in CAMERA_INPUTS:
            raise ValueError(f"Loc3rProcessor: camera_input must be one of {CAMERA_INPUTS}, got {camera_input!r}")
        self.camera_input = camera_input
        self.camera_dropout_seed = int(camera_dropout_seed)
        self.camera_provider = camera_provider
        pose_free_file = config.camera_prior == "file" and not camera_root and self.mode == "eval"
        if config.camera_prior is not None and camera_provider is None and not pose_free_file:
            self.camera_provider = camera_prior.build_camera_provider(
                config.camera_prior, camera_root, key=camera_key, feature_dim=config.camera_feature_dim
            )
        self._text_cache: dict[str, list[int]] = {}
        self.clip_cache = ClipCache(clip_cache_mb)
        #: prompts built with / without the camera-prior tokens (keys "used", "not used"; prior on only)
        self.camera_counts: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------------------------------------------ helpers
    @staticmethod
    def _check_mode(mode: str) -> Mode:
        if mode not in ("train", "eval"):
            raise ValueError(f"Loc3rProcessor: mode must be 'train' or 'eval', got {mode!r}")
        return mode  # type: ignore[return-value]

    def _encode_text(self, text: str, cache: bool = True) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS added); the fixed template pieces are cached."""
        if not text:
            return []
        cached = self._text_cache.get(text)
        if cached is None:
            cached = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if cache:
                self._text_cache[text] = cached
        return list(cached)

    def user_text(self, sample: ClipSample) -> str:
        """The user turn's text (after the video).

        Situation objective on: ``"{situation} <Pos> <Ori> {question}"`` (pseudo-situation if the sample has none).
        Off: ``"{situation} {question}"`` when the sample has a situation (a plain fine-tuned model must still read
        it to answer situated questions), else just the question.
        """
        question = sample.question.strip()
        if sample.options:
            question = question + "\n" + "\n".join(o.strip() for o in sample.options)
        situation = (sample.situation_text or "").strip()
        if self.config.situation_enabled:
            return f"{situation or PSEUDO_SITUATION} {POS_TOKEN} {ORI_TOKEN} {question}"
        return f"{situation} {question}" if situation else question

    def _check_text_fields(self, sample: ClipSample, where: str) -> None:
        """Text must not smuggle special tokens in: a stray ``<|video_pad|>`` or ``<Pos>`` would break the layout."""
        fields = {"question": sample.question, "situation_text": sample.situation_text, "answer": sample.answer}
        fields.update({f"options[{i}]": o for i, o in enumerate(sample.options or [])})
        for name, text in fields.items():
            if text is None:
                continue
            if not isinstance(text, str):
                raise SampleError(f"{where}: field {name!r} must be a string, got {type(text).__name__}")
            for token in self.token_ids:
                if token in text:
                    raise SampleError(f"{where}: field {name!r} contains the special token {token!r}")

    def camera_used(self, sample: ClipSample, mode: Mode) -> bool:
        """Whether ``sample`` gets its camera-prior tokens (see ``camera_input``); False when the prior is off."""
        if self.config.camera_prior is None or self.camera_input == "none":
            return False
        if self.camera_input == "given":
            return True
        if mode == "train":
            rate = float(self.config.camera_prior_dropout)
            return not camera_prior_dropped(rate, self.camera_dropout_seed, sample)
        return camera_features_available(self.camera_provider, sample)

    # ------------------------------------------------------------------------------------------------ per sample
    def _frame_options(self, sample: ClipSample, where: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Validate ``sample`` (errors name it and the field); its frames and the preprocessing options of its clip
        (the real frame rate and frame times when the loader records them)."""
        sample.validate()
        frames = np.asarray(sample.frames)
        if self.num_frames is not None and frames.shape[0] != self.num_frames:
            raise SampleError(f"{where}: field 'frames' has {frames.shape[0]} frames, expected {self.num_frames}")
        self._check_text_fields(sample, where)
        options = self.preprocessing
        if sample.meta.get("sampled_fps") is not None:  # real frame rate of the sampled clip (M-RoPE time scale)
            fps = float(sample.meta["sampled_fps"])
            if not np.isfinite(fps) or fps <= 0:
                raise SampleError(f"{where}: field meta['sampled_fps'] must be a positive number, got {fps}")
            options = {**options, "video_fps": fps}
        if sample.frame_indices is not None and sample.meta.get("fps") is not None:
            # source frame indices + source fps: the real frame times (Qwen3-VL / SmolVLM2 write them in the prompt)
            options = {
                **options,
                "frame_indices": [int(i) for i in np.asarray(sample.frame_indices).reshape(-1)],
                "source_fps": sample.meta["fps"],
            }
        return frames, options

    def _clip(
        self, sample: ClipSample, frames: np.ndarray, options: dict[str, Any], encoding: Any, where: str
    ) -> tuple[dict[str, Any], Any]:
        """The clip's cache entry and its preprocessed frames (a caller asking many questions on one clip may pass
        the clip's ``encoding`` back in)."""
        clip_key = self.clip_cache.key(sample, frames, options) if self.clip_cache.enabled else None
        clip = self.clip_cache.get(clip_key)
        if encoding is None:
            encoding = clip.get("encoding") if clip else None
        if encoding is None:
            encoding = self.adapter.preprocess_video(frames, self.vlm_config, options, where)
        if clip is None:
            clip = {"encoding": encoding}
            self.clip_cache.put(clip_key, clip)
        return clip, encoding

    def _prompt(
        self, sample: ClipSample, mode: Mode, encoding: Any, options: dict, use_camera: bool, where: str
    ) -> tuple[dict[str, Any], int]:
        """Token ids, kinds, labels and positions of the sample's prompt (+ answer in train mode); and the prefix
        length (chat prefix + video block)."""
        tmpl = self.template
        camera_id = self.token_ids[CAMERA_TOKEN] if use_camera else None
        video_ids, video_kinds = self.adapter.video_block(encoding, self.token_ids, camera_id, self._encode_text)
        head = self._encode_text(tmpl.prefix + tmpl.video_prefix)
        tail = self._encode_text(tmpl.video_suffix + self.user_text(sample) + tmpl.user_suffix, cache=False)
        ids = head + video_ids + tail
        kinds = [TokenKind.TEXT] * len(head) + video_kinds + [TokenKind.TEXT] * len(tail)
        labels = [IGNORE_INDEX] * len(ids)
        if mode == "train":
            if sample.answer is None:
                raise SampleError(f"{where}: field 'answer' is None but the processor is in train mode")
            answer = self._encode_text(tmpl.answer_prefix + sample.answer.strip(), cache=False)
            answer += self._encode_text(tmpl.answer_end)
            ids, kinds, labels = ids + answer, kinds + [TokenKind.TEXT] * len(answer), labels + answer
        if self.max_length is not None and len(ids) > self.max_length:
            raise SampleError(
                f"{where}: sequence of {len(ids)} tokens exceeds max_length={self.max_length} "
                f"({encoding.num_vision_tokens} vision tokens); use fewer/smaller frames or raise max_length"
            )
        ids_arr, kinds_arr = np.asarray(ids, dtype=np.int64), np.asarray(kinds, dtype=np.int64)
        # exactly one <Pos> / <Ori> (situation on): user_text writes them once and _check_text_fields refused any
        # special token inside the sample's texts
        positions = self.adapter.position_ids(kinds_arr, encoding, self.vlm_config, options)
        out = {"input_ids": ids_arr, "kinds": kinds_arr, "labels": np.asarray(labels, dtype=np.int64)}
        return {**out, "position_ids": positions, "encoding": encoding}, len(head) + len(video_ids)

    def _targets(self, ctx: ClipTargets, num_frames: int, use_camera: bool) -> dict[str, Any]:
        """The targets and geometric inputs of every enabled objective for one sample (each built by its module)."""
        cfg, sample, out = self.config, ctx.sample, {}
        if cfg.vision_input == "oracle_layout":  # the tokens show the clip's objects, one each: every target reads them
            layout_tokens(ctx)
        if cfg.layout_head_enabled or cfg.cue_injection or cfg.oracle_vision:  # BEV point of every vision token
            out["token_points"] = layout.token_points(ctx)
            if cfg.cue_injection and cfg.cue_depth_error is not None and sample.points is not None:
                out["cue_token_points"] = cue_token_points(ctx, cfg.cue_depth_error)
        if cfg.recognition_enabled:
            out["token_labels"] = recognition.token_labels(ctx, list(cfg.recognition_classes))
        if cfg.oracle_vision:
            out["oracle"] = oracle_targets(ctx, self._encode_text, "token_points" in out)
        if cfg.anchor_loss_enabled and (referents := pointer.referent_tokens(ctx)) is not None:
            out["referent_tokens"] = referents
        if cfg.situation_enabled:
            out["situation"] = situation.situation_targets(sample, ctx.anchor)
        if cfg.camera_prior is not None:
            expected = (num_frames, int(cfg.camera_feature_dim))
            out["camera_features"] = camera_prior.camera_targets(
                self.camera_provider, sample, ctx.anchor, expected, use_camera, cfg.camera_prior, ctx.where
            )
        return out

    def _process_one(self, sample: ClipSample, mode: Mode, encoding: Any = None) -> dict[str, Any]:
        where = f"sample {sample.sample_id!r} (scene {sample.scene_id!r})"
        frames, options = self._frame_options(sample, where)
        clip, encoding = self._clip(sample, frames, options, encoding, where)
        anchor = anchor_frame(sample.poses[0]) if sample.poses is not None else None  # rigid: validated
        use_camera = self.camera_used(sample, mode)
        if self.config.camera_prior is not None:
            self.camera_counts["used" if use_camera else "not used"] += 1
        out, prefix_length = self._prompt(sample, mode, encoding, options, use_camera, where)
        video_slots = np.flatnonzero(out["kinds"] == TokenKind.VIDEO)
        out.update(
            self._targets(ClipTargets(sample, anchor, encoding, video_slots, clip, where), len(frames), use_camera)
        )
        agent_pos_bev, agent_yaw_bev = situation.situation_targets(sample, anchor)
        out["meta"] = SampleMeta(
            sample_id=sample.sample_id,
            scene_id=sample.scene_id,
            task=sample.task,
            question=sample.question,
            answer=sample.answer,
            answers=list(sample.answers),
            situation_text=sample.situation_text,
            anchor=anchor,
            segments=list(encoding.segments),
            num_frames=encoding.num_frames,
            frame_size=encoding.frame_size,
            num_vision_tokens=encoding.num_vision_tokens,
            prompt_length=len(out["input_ids"]),
            prefix_length=prefix_length,
            agent_position_bev=agent_pos_bev,
            agent_yaw_bev=agent_yaw_bev,
            token_points_bev=_token_xy(out.get("token_points")),
            meta=dict(sample.meta),
            camera_prior_used=use_camera if self.config.camera_prior is not None else None,
        )
        return out

    # ------------------------------------------------------------------------------------------------ batch
    def __call__(
        self, samples: list[ClipSample], mode: Mode | None = None, video_encoding: Any = None, with_pixels: bool = True
    ) -> Loc3rBatch:
        """Collate ``samples`` into a :class:`Loc3rBatch` (see the module docstring for keys and padding).

        ``video_encoding``: when every sample shows the same clip (questions for a cached video prefix), its
        preprocessed frames (``batch.encodings[0]`` of an earlier call) are re-used instead of preprocessing the
        frames again; ``with_pixels=False`` leaves ``pixel_values_videos`` out (a prefix-cached predict never reads
        them).
        """
        mode = self._check_mode(mode or self.mode)
        if not samples:
            raise ValueError("Loc3rProcessor: empty list of samples")
        items = [self._process_one(s, mode, video_encoding) for s in samples]
        data, kinds, offsets = self._pad(items, left=mode == "eval")
        if mode != "train":
            del data["labels"]
        if with_pixels:
            data.update(self.adapter.collate_pixels([it["encoding"] for it in items]))
        if self.adapter.emits_mm_token_type_ids:
            data["mm_token_type_ids"] = torch.where(kinds == TokenKind.VIDEO, 2, 0).to(torch.long)
        data.update(self._batch_targets(items, offsets, kinds.shape[1]))
        batch = Loc3rBatch(data, metadata=[it["meta"] for it in items])
        batch.encodings = [it["encoding"] for it in items]
        return batch

    def _pad(self, items: list[dict[str, Any]], left: bool) -> tuple[dict[str, Any], torch.Tensor, list[int]]:
        """``input_ids, attention_mask, position_ids, labels`` padded (left in eval mode), the token kinds, and each
        row's offset."""
        batch_size, max_len = len(items), max(len(it["input_ids"]) for it in items)
        axes = items[0]["position_ids"].shape[0]
        input_ids = torch.full((batch_size, max_len), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((batch_size, max_len), dtype=torch.long)
        labels = torch.full((batch_size, max_len), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((batch_size, axes, max_len), dtype=torch.long)
        kinds = torch.zeros((batch_size, max_len), dtype=torch.long)
        offsets = []
        for b, it in enumerate(items):
            n = len(it["input_ids"])
            off = max_len - n if left else 0
            offsets.append(off)
            sl = slice(off, off + n)
            input_ids[b, sl] = torch.from_numpy(it["input_ids"])
            attention[b, sl] = 1
            labels[b, sl] = torch.from_numpy(it["labels"])
            positions[b, :, sl] = torch.from_numpy(it["position_ids"])
            kinds[b, sl] = torch.from_numpy(it["kinds"])
        data = {"input_ids": input_ids, "attention_mask": attention, "position_ids": positions, "labels": labels}
        return data, kinds, offsets

    def _batch_targets(self, items: list[dict[str, Any]], offsets: list[int], length: int) -> dict[str, Any]:
        """The batch tensors of every enabled objective (each collated by its module)."""
        cfg, data = self.config, {}
        if "token_points" in items[0]:
            pts, valid = layout.batch_token_points(items, offsets, length)
            if cfg.layout_enabled:
                data["layout_targets"] = torch.nan_to_num(pts[..., :2], nan=0.0)
                data["layout_valid"] = valid.clone()
            if cfg.cue_injection:
                data.update(batch_cues(items, offsets, length, pts, valid, cfg.cue_depth_error is not None))
        if "token_labels" in items[0]:
            data.update(recognition.batch_token_labels(items, offsets, length))
        if cfg.situation_enabled:
            data.update(situation.batch_situation([it["situation"] for it in items]))
        if cfg.oracle_vision:
            data.update(batch_oracle(items, offsets, length, pts, valid))
        if cfg.anchor_loss_enabled:
            data.update(pointer.batch_referent_tokens(items, offsets, length, cfg.pointer_position == "solve"))
        if cfg.camera_prior is not None:
            targets = [it["camera_features"] for it in items]
            data.update(camera_prior.batch_camera(targets, int(cfg.camera_feature_dim)))
        return data

    # ------------------------------------------------------------------------------------------------ decode
    def decode(self, token_ids: torch.Tensor | list[int]) -> str:
        """Answer text of generated ids (special tokens, e.g. the end-of-turn token, removed)."""
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.tolist()
        return self.tokenizer.decode(token_ids, skip_special_tokens=True).strip()

    # ------------------------------------------------------------------------------------------------ save / load
    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": self.config.backbone,
            "template_version": self.template.version,
            "preprocessing": self.preprocessing,
            "num_frames": self.num_frames,
            "max_length": self.max_length,
            "camera_key": self.camera_key,
            "camera_root": self.camera_root,
        }

    def save_pretrained(self, save_directory: str | Path) -> None:
        """Write the tokenizer files and ``loc3r_processor_config.json`` (atomically) into ``save_directory``.

        The model's ``config.json`` (saved by the model in the same directory) holds the backbone config and
        objective switches the processor needs to be rebuilt (:meth:`from_pretrained`).
        """
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(save_directory))
        write_json(save_directory / PROCESSOR_CONFIG_NAME, self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, config: Loc3rConfig | None = None, mode: Mode = "train", **overrides: Any
    ) -> Loc3rProcessor:
        """Rebuild the processor saved in ``directory`` (tokenizer + processor config + the model's config.json)."""
        directory = Path(directory)
        path = directory / PROCESSOR_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no loc3r processor config (was the processor saved here?)")
        if config is None:
            config = Loc3rConfig.from_pretrained(str(directory))
        saved = read_processor_config(path, config.backbone)
        kwargs: dict[str, Any] = {key: saved.get(key) for key in ("preprocessing", "num_frames", "max_length")}
        kwargs.update(camera_root=saved.get("camera_root"), camera_key=saved.get("camera_key", "camera_tokens"))
        kwargs.update(overrides)
        return cls(AutoTokenizer.from_pretrained(str(directory)), config, mode=mode, **kwargs)
