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
4. computes the clip's BEV anchor frame from ``poses[0]`` and, in it: layout targets (BEV x-y of the mean 3D point
   of each vision token's footprint, with a validity mask; no points or no poses -> all masked), per-token 3D
   points for the cue-injection baseline, situation targets (agent position x-y and yaw; missing -> masked);
5. gets the per-frame camera features from the camera provider (camera prior on only). Whether a sample gets its
   camera tokens at all is ``camera_input`` (see :class:`Loc3rProcessor`): in training, camera-prior dropout (our
   addition, :func:`~loc3r.objectives.camera_prior.camera_prior_dropped`) leaves them out of a ``camera_prior_dropout``
   fraction of the samples; at inference they are left out when the sample has no poses (a plain RGB video). A sample
   without them has no ``<Cam>`` token in its prompt and ``camera_valid = False`` on all its frames, and
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
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from loc3r.core.errors import ConfigError
from loc3r.core.geometry import (
    AnchorFrame,
    GeometryError,
    VisionSegment,
    anchor_frame,
    pool_token_labels,
    pool_token_points,
    simulate_depth_error,
)
from loc3r.core.io import read_json, write_json
from loc3r.data.schema import PSEUDO_SITUATION, ClipSample, SampleError
from loc3r.model.backbones import TokenKind, get_backbone
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.model.oracle_tower import ORACLE_MAX_WORDS, pad_word_ids, token_object_names
from loc3r.model.tokenizer import CAMERA_TOKEN, ORI_TOKEN, POS_TOKEN, special_token_ids
from loc3r.objectives.camera_prior import camera_features_available, camera_prior_dropped

__all__ = ["Loc3rProcessor", "Loc3rBatch", "SampleMeta", "PROCESSOR_CONFIG_NAME"]

PROCESSOR_CONFIG_NAME = "loc3r_processor_config.json"
#: a vision token "shows" a named object when at least this share of its footprint's pixels are that object's
ANCHOR_TOKEN_MIN_SHARE = 0.25
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
        clip_cache_mb: memory (MiB) for re-using the per-clip work (frame preprocessing, token footprints and
            layout targets, recognition targets) when several samples show the same clip, as SynthRooms' many
            situations and questions per room do; keyed by a digest of the clip's frames, poses, points, pixel
            labels and the preprocessing options, evicted least-recently-used. 0 turns it off.
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
            from loc3r.objectives.camera_prior import build_camera_provider

            self.camera_provider = build_camera_provider(
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
    def _process_one(self, sample: ClipSample, mode: Mode, encoding: Any = None) -> dict[str, Any]:
        where = f"sample {sample.sample_id!r} (scene {sample.scene_id!r})"
        try:
            sample.validate()
        except GeometryError as err:
            raise SampleError(f"{where}: {err}") from err
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
        clip_key = self.clip_cache.key(sample, frames, options) if self.clip_cache.enabled else None
        clip = self.clip_cache.get(clip_key)
        if encoding is None:  # a caller asking many questions on one clip passes the clip's encoding back in
            encoding = clip.get("encoding") if clip else None
        if encoding is None:
            encoding = self.adapter.preprocess_video(frames, self.vlm_config, options, where)
        if clip is None:
            clip = {"encoding": encoding}
            self.clip_cache.put(clip_key, clip)
        anchor = None
        if sample.poses is not None:
            try:
                anchor = anchor_frame(sample.poses[0], f"{where}: field 'poses'[0]")
            except GeometryError as err:
                raise SampleError(str(err)) from err

        # ---- token ids, kinds, labels
        tmpl = self.template
        use_camera = self.camera_used(sample, mode)
        if self.config.camera_prior is not None:
            self.camera_counts["used" if use_camera else "not used"] += 1
        camera_id = self.token_ids[CAMERA_TOKEN] if use_camera else None
        video_ids, video_kinds = self.adapter.video_block(encoding, self.token_ids, camera_id, self._encode_text)
        head = self._encode_text(tmpl.prefix + tmpl.video_prefix)
        tail_text = tmpl.video_suffix + self.user_text(sample) + tmpl.user_suffix
        tail = self._encode_text(tail_text, cache=False)
        ids = head + video_ids + tail
        kinds = [TokenKind.TEXT] * len(head) + video_kinds + [TokenKind.TEXT] * len(tail)
        labels = [IGNORE_INDEX] * len(ids)
        if mode == "train":
            if sample.answer is None:
                raise SampleError(f"{where}: field 'answer' is None but the processor is in train mode")
            answer = self._encode_text(tmpl.answer_prefix + sample.answer.strip(), cache=False) + self._encode_text(
                tmpl.answer_end
            )
            ids += answer
            kinds += [TokenKind.TEXT] * len(answer)
            labels += answer
        if self.max_length is not None and len(ids) > self.max_length:
            raise SampleError(
                f"{where}: sequence of {len(ids)} tokens exceeds max_length={self.max_length} "
                f"({encoding.num_vision_tokens} vision tokens); use fewer/smaller frames or raise max_length"
            )
        ids_arr = np.asarray(ids, dtype=np.int64)
        kinds_arr = np.asarray(kinds, dtype=np.int64)
        if self.config.situation_enabled:
            for token in (POS_TOKEN, ORI_TOKEN):
                if int((ids_arr == self.token_ids[token]).sum()) != 1:
                    raise SampleError(
                        f"{where}: the prompt must contain exactly one {token} token (found "
                        f"{int((ids_arr == self.token_ids[token]).sum())}); do not write it in 'question' or "
                        "'situation_text'"
                    )
        positions = self.adapter.position_ids(kinds_arr, encoding, self.vlm_config, options)
        out: dict[str, Any] = {
            "input_ids": ids_arr,
            "kinds": kinds_arr,
            "labels": np.asarray(labels, dtype=np.int64),
            "position_ids": positions,
            "encoding": encoding,
        }

        # ---- layout targets / cue points (BEV of the anchor frame)
        video_slots = np.flatnonzero(kinds_arr == TokenKind.VIDEO)
        if self.config.layout_head_enabled or self.config.cue_injection or self.config.oracle_vision:
            if "token_points" not in clip:  # per clip: the footprints depend on the frames, poses and points only
                token_points = np.full((encoding.num_vision_tokens, 3), np.nan)
                token_valid = np.zeros(encoding.num_vision_tokens, dtype=bool)
                if sample.points is not None and anchor is not None:
                    points = np.asarray(sample.points, dtype=np.float64)
                    with np.errstate(invalid="ignore"):
                        bev = anchor.points_to_bev(points)
                    token_points, token_valid = pool_token_points(bev, encoding.segments)
                clip["token_points"] = (token_points.astype(np.float32), token_valid)
            token_points, token_valid = clip["token_points"]
            if len(token_points) != len(video_slots):
                raise AssertionError(
                    f"{where}: {len(token_points)} token footprints for {len(video_slots)} vision tokens"
                )
            out["token_points"] = (video_slots, token_points, token_valid)
            if self.config.cue_injection and self.config.cue_depth_error is not None and sample.points is not None:
                # the cues see estimated depth; the layout targets (if any) stay the exact ones
                cue_points, cue_valid = np.full_like(token_points, np.nan), np.zeros_like(token_valid)
                if anchor is not None and sample.poses is not None:
                    seed = zlib.crc32(sample.sample_id.encode("utf-8"))
                    noisy = simulate_depth_error(sample.points, sample.poses, self.config.cue_depth_error, seed)
                    with np.errstate(invalid="ignore"):
                        cue_points, cue_valid = pool_token_points(anchor.points_to_bev(noisy), encoding.segments)
                out["cue_token_points"] = (video_slots, cue_points.astype(np.float32), cue_valid)

        # ---- recognition targets (base pretraining): class histogram of each token's footprint
        if self.config.recognition_enabled:
            if "token_labels" not in clip:
                classes = list(self.config.recognition_classes)
                token_dist = np.zeros((encoding.num_vision_tokens, len(classes)), dtype=np.float32)
                token_labelled = np.zeros(encoding.num_vision_tokens, dtype=bool)
                if sample.pixel_labels is not None:
                    by_name = {name: k for k, name in enumerate(classes)}
                    lut = np.array([by_name.get(name, -1) for name in sample.label_names or []], dtype=np.int64)
                    pixels = np.asarray(sample.pixel_labels, dtype=np.int64)
                    labels = np.where(pixels >= 0, lut[np.clip(pixels, 0, None)], -1)
                    token_dist, token_labelled = pool_token_labels(labels, encoding.segments, len(classes))
                clip["token_labels"] = (token_dist.astype(np.float32), token_labelled)
            token_dist, token_labelled = clip["token_labels"]
            out["token_labels"] = (video_slots, token_dist, token_labelled)

        # ---- per-token object shares: anchor supervision (pointer heads) and the oracle-objects input
        wants_anchor = self.config.anchor_loss_enabled and bool(sample.referents)
        needs_shares = wants_anchor or self.config.oracle_vision
        if needs_shares and sample.pixel_instances is not None and "token_instances" not in clip:
            inst = np.asarray(sample.pixel_instances, dtype=np.int64)  # per clip: each token's share of every id
            clip["token_instances"] = pool_token_labels(inst, encoding.segments, int(inst.max(initial=0)) + 1)[0]
        if self.config.oracle_vision:
            if sample.pixel_instances is None or sample.instance_names is None or "token_points" not in out:
                raise SampleError(
                    f"{where}: vision_input 'oracle_objects' needs fields 'pixel_instances', 'instance_names' and "
                    "'points' (SynthRooms scans have them)"
                )
            names = token_object_names(clip["token_instances"], sample.instance_names)
            word_ids = pad_word_ids([self._encode_text(name) for name in names])
            out["oracle"] = (video_slots, word_ids)
        if wants_anchor and sample.pixel_instances is not None:
            shares = clip["token_instances"]
            out["referent_tokens"] = (
                video_slots,
                {
                    role: shares[:, [i for i in ids if 0 < i < shares.shape[1]]].sum(axis=1) >= ANCHOR_TOKEN_MIN_SHARE
                    for role, ids in sample.referents.items()
                },
            )

        # ---- situation targets
        agent_pos_bev, agent_yaw_bev = None, None
        if sample.agent_position is not None and sample.agent_yaw is not None and anchor is not None:
            agent_pos_bev = anchor.points_to_bev(np.asarray(sample.agent_position, dtype=np.float64))[:2]
            agent_yaw_bev = float(anchor.yaw_to_bev(float(sample.agent_yaw)))
        if self.config.situation_enabled:
            out["situation"] = (
                np.zeros(2, dtype=np.float32) if agent_pos_bev is None else agent_pos_bev.astype(np.float32),
                0.0 if agent_yaw_bev is None else agent_yaw_bev,
                agent_pos_bev is not None,
            )

        # ---- camera features
        if self.config.camera_prior is not None:
            expected = (frames.shape[0], int(self.config.camera_feature_dim))
            if not use_camera:  # dropped / no poses: no <Cam> token in the prompt, camera_valid False
                out["camera_features"] = (np.zeros(expected, dtype=np.float32), False)
            else:
                if self.camera_provider is None:
                    raise SampleError(
                        f"{where}: the camera prior {self.config.camera_prior!r} has no feature source "
                        "(give camera_root)"
                    )
                feats = np.asarray(self.camera_provider(sample, anchor), dtype=np.float32)
                if feats.shape != expected:
                    raise SampleError(f"{where}: camera features must be {list(expected)}, got {list(feats.shape)}")
                if not np.isfinite(feats).all():
                    raise SampleError(f"{where}: camera features have non-finite values")
                out["camera_features"] = (feats, True)

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
            prompt_length=len(ids),
            prefix_length=len(head) + len(video_ids),
            agent_position_bev=agent_pos_bev,
            agent_yaw_bev=agent_yaw_bev,
            token_points_bev=_token_xy(out.get("token_points")),
            meta=dict(sample.meta),
            camera_prior_used=use_camera if self.config.camera_prior is not None else None,
        )
        return out

    # ------------------------------------------------------------------------------------------------ batch
    def __call__(
        self,
        samples: list[ClipSample],
        mode: Mode | None = None,
        video_encoding: Any = None,
        with_pixels: bool = True,
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
        batch_size = len(items)
        max_len = max(len(it["input_ids"]) for it in items)
        left = mode == "eval"
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

        data: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention, "position_ids": positions}
        if mode == "train":
            data["labels"] = labels
        if with_pixels:
            data.update(self.adapter.collate_pixels([it["encoding"] for it in items]))
        if self.adapter.emits_mm_token_type_ids:
            data["mm_token_type_ids"] = torch.where(kinds == TokenKind.VIDEO, 2, 0).to(torch.long)

        if "token_points" in items[0]:
            pts = torch.full((batch_size, max_len, 3), float("nan"), dtype=torch.float32)
            valid = torch.zeros((batch_size, max_len), dtype=torch.bool)
            for b, it in enumerate(items):
                slots, tok_pts, tok_valid = it["token_points"]
                slots_t = torch.from_numpy(slots + offsets[b])
                pts[b, slots_t] = torch.from_numpy(tok_pts)
                valid[b, slots_t] = torch.from_numpy(tok_valid)
            if self.config.layout_enabled:
                data["layout_targets"] = torch.nan_to_num(pts[..., :2], nan=0.0)
                data["layout_valid"] = valid.clone()
            if self.config.cue_injection:
                data["cue_points"] = torch.nan_to_num(pts, nan=0.0)
                data["cue_valid"] = valid.clone()
                if self.config.cue_depth_error is not None:  # estimated depth: the cues of "cue_token_points"
                    data["cue_points"].zero_()
                    data["cue_valid"].zero_()
                    for b, it in enumerate(items):
                        if "cue_token_points" not in it:  # no depth at all: no cue
                            continue
                        slots, cue_pts, cue_ok = it["cue_token_points"]
                        slots_t = torch.from_numpy(slots + offsets[b])
                        data["cue_points"][b, slots_t] = torch.nan_to_num(torch.from_numpy(cue_pts), nan=0.0)
                        data["cue_valid"][b, slots_t] = torch.from_numpy(cue_ok)

        if "token_labels" in items[0]:
            num_classes = items[0]["token_labels"][1].shape[1]
            rec_targets = torch.zeros((batch_size, max_len, num_classes), dtype=torch.float32)
            rec_valid = torch.zeros((batch_size, max_len), dtype=torch.bool)
            for b, it in enumerate(items):
                slots, dist, labelled = it["token_labels"]
                slots_t = torch.from_numpy(slots + offsets[b])
                rec_targets[b, slots_t] = torch.from_numpy(dist)
                rec_valid[b, slots_t] = torch.from_numpy(labelled)
            data["recognition_targets"] = rec_targets
            data["recognition_valid"] = rec_valid

        if self.config.situation_enabled:
            data["situation_position"] = torch.from_numpy(np.stack([it["situation"][0] for it in items]))
            data["situation_yaw"] = torch.tensor([it["situation"][1] for it in items], dtype=torch.float32)
            data["situation_valid"] = torch.tensor([it["situation"][2] for it in items], dtype=torch.bool)

        if self.config.oracle_vision:
            word_ids = torch.full((batch_size, max_len, ORACLE_MAX_WORDS), -1, dtype=torch.long)
            for b, it in enumerate(items):
                slots, ids = it["oracle"]
                word_ids[b, torch.from_numpy(slots + offsets[b])] = torch.from_numpy(ids)
            data["oracle_word_ids"] = word_ids
            data["oracle_points"] = torch.nan_to_num(pts, nan=0.0)
            data["oracle_valid"] = valid.clone()

        if self.config.anchor_loss_enabled:
            for role in ("anchor", "faced"):
                mask = torch.zeros((batch_size, max_len), dtype=torch.bool)
                for b, it in enumerate(items):
                    if "referent_tokens" in it and role in it["referent_tokens"][1]:
                        slots, by_role = it["referent_tokens"]
                        mask[b, torch.from_numpy(slots + offsets[b])] = torch.from_numpy(by_role[role])
                data[f"{role}_tokens"] = mask

        if self.config.camera_prior is not None:
            max_t = max(it["camera_features"][0].shape[0] for it in items)
            feats = torch.zeros((batch_size, max_t, int(self.config.camera_feature_dim)), dtype=torch.float32)
            cam_valid = torch.zeros((batch_size, max_t), dtype=torch.bool)
            for b, it in enumerate(items):
                sample_feats, used = it["camera_features"]
                t = sample_feats.shape[0]
                feats[b, :t] = torch.from_numpy(sample_feats)
                cam_valid[b, :t] = used
            data["camera_features"] = feats
            data["camera_valid"] = cam_valid

        batch = Loc3rBatch(data, metadata=[it["meta"] for it in items])
        batch.encodings = [it["encoding"] for it in items]
        return batch

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
        objective switches the processor needs to be rebuilt.
        """
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(save_directory))
        write_json(save_directory / PROCESSOR_CONFIG_NAME, self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        config: Loc3rConfig | None = None,
        mode: Mode = "train",
        **overrides: Any,
    ) -> Loc3rProcessor:
        """Rebuild the processor saved in ``directory`` (tokenizer + processor config + the model's config.json)."""
        directory = Path(directory)
        path = directory / PROCESSOR_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no loc3r processor config (was the processor saved here?)")
        saved = read_json(path, "loc3r processor config")
        if config is None:
            config = Loc3rConfig.from_pretrained(str(directory))
        if saved.get("backbone") != config.backbone:
            raise ValueError(
                f"{path}: field 'backbone' is {saved.get('backbone')!r} but the model config says {config.backbone!r}"
            )
        adapter = get_backbone(config.backbone)
        if saved.get("template_version") != adapter.chat_template().version:
            raise ValueError(
                f"{path}: field 'template_version' {saved.get('template_version')!r} differs from this code's "
                f"{adapter.chat_template().version!r}; the prompt format changed since the checkpoint was saved"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        kwargs: dict[str, Any] = {
            "preprocessing": saved.get("preprocessing"),
            "num_frames": saved.get("num_frames"),
            "max_length": saved.get("max_length"),
            "camera_root": saved.get("camera_root"),
            "camera_key": saved.get("camera_key", "camera_tokens"),
        }
        kwargs.update(overrides)
        return cls(tokenizer, config, mode=mode, **kwargs)
