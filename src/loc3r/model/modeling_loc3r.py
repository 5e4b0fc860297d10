"""loc3r model: a Hugging Face video VLM + camera prior + layout head + situation heads + joint loss.

Public API
----------
Build a model with :func:`loc3r.model.loading.build_model` (from a recipe's ``model`` section) or
:func:`loc3r.model.loading.load_model` (from a checkpoint); they call the constructors below: ``__init__(config,
vlm=None)``, :meth:`~Loc3rForConditionalGeneration.tiny` (tests, CPU demo), ``from_backbone_pretrained`` (a real HF
checkpoint), ``from_backbone_config`` (a real architecture, random weights) and ``from_pretrained`` (strict: safetensors
only, every weight matched). ``save_pretrained`` writes safetensors + ``config.json`` + tokenizer + processor config.

``model(**batch) -> Loc3rOutput``
    ``loss`` (joint objective), ``losses`` (``loss_ce, loss_bev, loss_pos, loss_ori, loss_sit, loss``, detached),
    ``layout_mean / layout_log_var [N_vision, 2]`` (all vision tokens of the batch in sequence order),
    ``position_mean / position_log_var [B, 2]``, ``orientation_logits [B, num_bins]``.
``model.predict(batch, max_new_tokens=32, tokenizer=None, prefix=None) -> list[Loc3rPrediction]``
    greedy answer (own loop on the HF KV cache, M-RoPE positions continued correctly), BEV position + sigma,
    yaw + confidence (circular soft-argmax), per-vision-token layout; world-frame pose when the anchor is known.
``model.encode_prefix(batch) -> VideoPrefix``
    encode once, ask many (:class:`VideoPrefix`): same outputs as the uncached path.
``model.build_processor(mode)``, ``model.freeze_vision_tower()``, ``model.gradient_checkpointing_enable()``.

Batch keys (from :class:`~loc3r.model.processing.Loc3rProcessor`; B = batch, L = padded length, A = 3 position axes
for M-RoPE backbones else 1, T = frames, F = camera feature size)
------------------------------------------------------------------------------------------------------------------
* ``input_ids [B, L]``, ``attention_mask [B, L]``, ``position_ids [B, A, L]`` (batch first; converted to HF's
  ``[3, B, L]`` / ``[B, L]`` inside), ``labels [B, L]`` (-100 except the answer; train mode only).
* ``pixel_values_videos``: Qwen2.5-VL ``[sum_patches, C*2*14*14]`` + ``video_grid_thw [B, 3]`` +
  ``second_per_grid_ts [B]`` + ``mm_token_type_ids [B, L]`` (0 text, 2 video; informative — positions are explicit);
  LLaVA-OneVision ``[B, T, 3, S, S]``.
* ``layout_targets [B, L, 2]`` + ``layout_valid [B, L]`` (BEV x-y per vision token; False elsewhere).
* ``cue_points [B, L, 3]`` + ``cue_valid [B, L]`` (cue-injection baseline).
* ``camera_features [B, T, F]`` + ``camera_valid [B, T]`` (camera prior; one ``<Cam>`` token per valid frame).
* ``situation_position [B, 2]``, ``situation_yaw [B]``, ``situation_valid [B]``.

How the forward works
---------------------
1. Text embeddings of ``input_ids``; the backbone's own vision tower + projector encode the frames (adapter), the
   vision embeddings are scattered into the video placeholder positions (+ cue injection when on); the camera
   prior ``f_cam(z_t)`` fills the ``<Cam>`` positions placed before each frame's vision tokens.
2. The HF LLM decoder runs on ``inputs_embeds`` with the explicit positions; we keep the final hidden states.
3. The LM head runs ONLY on supervised positions (memory: no ``[B, L, V]`` logits), CE averaged over answer tokens.
4. The objectives' heads (:mod:`loc3r.objectives`, built in ``__init__`` by each module's ``build_head``): the
   layout head on every vision token's final hidden state (``L_BEV``), the situation heads on the ``<Pos>`` /
   ``<Ori>`` hidden states (``L_pos``, ``L_ori``; MLP or pointer heads, + ``L_anchor``), the recognition head on the
   tower's output (``L_rec``).
5. ``L = L_CE + λ_bev L_BEV + λ_sit (L_pos + λ_ori L_ori) [+ λ_rec L_rec] [+ λ_anc L_anchor]``
   (:func:`loc3r.objectives.combine.combine_losses`). An objective that is off or has λ = 0 has no head and is not
   computed.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from loc3r.core.io import read_json
from loc3r.data.schema import SIDE_ROLES
from loc3r.model.backbones import BackboneAdapter, available_backbones, get_backbone
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.model.cue_injection import CueInjector
from loc3r.model.oracle_tower import FixedPositionFeatures, oracle_embeddings
from loc3r.model.tokenizer import CAMERA_TOKEN, ORI_TOKEN, POS_TOKEN, add_loc3r_special_tokens, special_token_ids
from loc3r.objectives import camera_prior, layout, pointer, recognition, situation
from loc3r.objectives.camera_prior import CameraPriorProjector
from loc3r.objectives.combine import LossWeights, combine_losses
from loc3r.objectives.common import gaussian_nll
from loc3r.objectives.layout import LayoutHead, layout_loss
from loc3r.objectives.pointer import PointerSituationHeads, TextInputs, anchor_loss, pad_rows, situation_text_mask
from loc3r.objectives.qa import lm_loss, supervised_mask
from loc3r.objectives.recognition import RecognitionHead, token_category_loss
from loc3r.objectives.situation import OrientationHead, PositionHead, decode_orientation, orientation_kl

logger = logging.getLogger(__name__)

AutoConfig.register("loc3r", Loc3rConfig, exist_ok=True)

_HEAD_TYPES = (
    LayoutHead,
    PositionHead,
    OrientationHead,
    PointerSituationHeads,
    RecognitionHead,
    CameraPriorProjector,
    CueInjector,
)


def _hf_kwargs(dtype: Any, attn_implementation: str | None) -> dict[str, Any]:
    """The ``dtype`` / ``attn_implementation`` arguments of HF model construction that are given."""
    return {k: v for k, v in (("dtype", dtype), ("attn_implementation", attn_implementation)) if v is not None}


def _inference(method: Any) -> Any:
    """``method`` run in eval mode without gradients; the module's training flag is restored afterwards."""

    @functools.wraps(method)
    def run(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            self.train(was_training)

    return run


# ======================================================================================================= outputs
@dataclass
class Loc3rOutput(ModelOutput):
    """Output of :meth:`Loc3rForConditionalGeneration.forward` (``None`` for what was not computed)."""

    loss: Tensor | None = None
    losses: dict[str, Tensor] | None = None
    layout_mean: Tensor | None = None
    layout_log_var: Tensor | None = None
    position_mean: Tensor | None = None
    position_log_var: Tensor | None = None
    orientation_logits: Tensor | None = None
    #: pointer heads only: ``[B, N_vision]`` attention of ``<Pos>`` / ``<Ori>`` over each row's vision tokens
    position_attention: Tensor | None = None
    orientation_attention: Tensor | None = None
    #: pointer heads with ``pointer_position = "solve"``: ``[B, 3, N_vision]`` attention of the side slots (left, right,
    #: behind) and ``[B, 3]`` their gates' logits
    side_attention: Tensor | None = None
    side_gate_logits: Tensor | None = None
    last_hidden_state: Tensor | None = None


@dataclass
class Loc3rPrediction:
    """What :meth:`Loc3rForConditionalGeneration.predict` returns for one sample (numpy / python types).

    Poses are in the clip's BEV anchor frame (metres, radians); the ``*_world`` fields map them back to the
    dataset's world frame with the anchor (first frame's pose) when it is known.
    """

    sample_id: str
    answer: str | None
    answer_token_ids: list[int]
    position_bev: np.ndarray | None = None  # (2,)
    position_sigma: np.ndarray | None = None  # (2,) standard deviations
    yaw_bev: float | None = None
    yaw_confidence: float | None = None
    #: (B,) softmax of the orientation bins (bin b centred at -pi + (b + 0.5) 2pi/B): its modes give extra candidates
    yaw_probabilities: np.ndarray | None = None
    position_world: np.ndarray | None = None  # (3,) with z = 0
    yaw_world: float | None = None
    layout_mean: np.ndarray | None = None  # [N_vision, 2] BEV x-y per vision token
    layout_sigma: np.ndarray | None = None  # [N_vision, 2]
    #: [N_vision] index of the first source frame of each vision token (Qwen2.5-VL merges 2 frames per token),
    #: from the processor's token segments — what the BEV picture colours the layout points by.
    layout_frame: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class VideoPrefix:
    """The question-independent start of a clip's prompt, run once by ``model.encode_prefix``.

    Every eval prompt is ``<chat prefix> <video block> <situation <Pos> <Ori> question> <assistant start>`` and the
    decoder is causal, so the hidden states and keys/values of the first ``length`` tokens (chat prefix + video block,
    i.e. every vision and ``<Cam>`` token) do not depend on the situation or the question: they are computed once and
    every question re-uses them. ``cache`` is the HF KV cache of those tokens (batch 1); :meth:`predict` copies it
    per call, so a prefix can answer any number of batches.
    """

    input_ids: Tensor  # [1, P]
    position_ids: Tensor  # [1, A, P]
    hidden: Tensor  # [1, P, D] final hidden states of the prefix (the layout head reads its vision tokens)
    cache: Any
    embeds: Tensor | None = None  # [1, P, D] its input embeddings (pointer heads with pointer_keys "input" read them)

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])


# ======================================================================================================= model
class Loc3rPreTrainedModel(PreTrainedModel):
    config_class = Loc3rConfig
    config: Loc3rConfig
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        """Our heads keep their own initialisation (e.g. the cue injector's zero last layer); the HF backbone
        initialises itself. Guarded by transformers' ``_is_hf_initialized`` flags, so loaded weights stay."""
        if isinstance(module, _HEAD_TYPES):
            module.reset_parameters()


class Loc3rForConditionalGeneration(Loc3rPreTrainedModel):
    """A HF video VLM with loc3r's camera prior, layout head and situation heads (see the module docstring)."""

    def __init__(self, config: Loc3rConfig, vlm: PreTrainedModel | None = None) -> None:
        if vlm is not None:
            config.vlm_config = vlm.config
        super().__init__(config)
        self.adapter: BackboneAdapter = get_backbone(config.backbone)
        if vlm is None:
            vlm = self.adapter.hf_model_class._from_config(config.vlm_config)
        self.vlm = vlm
        hidden = config.text_hidden_size
        # each objective builds its head(s) from the config (None when off), in this order (the random init order)
        self.layout_head = layout.build_head(config, hidden)
        self.position_head, self.orientation_head = situation.build_mlp_heads(config, hidden)
        self.pointer_head = pointer.build_head(config, hidden)
        self.camera_projector = camera_prior.build_projector(config, hidden)
        self.cue_injector = CueInjector(hidden, config.cue_num_frequencies) if config.cue_injection else None
        # diagnostic perfect-perception input (loc3r.model.oracle_tower): the position part of an oracle token
        oracle = config.oracle_vision
        self.oracle_position = FixedPositionFeatures(hidden, config.cue_num_frequencies) if oracle else None
        self.recognition_head = recognition.build_head(config, hidden)
        self.loss_weights = LossWeights(
            bev=config.bev_loss_weight,
            situation=config.situation_loss_weight,
            orientation=config.orientation_loss_weight,
            recognition=config.recognition_loss_weight if config.recognition_enabled else 0.0,
            anchor=config.anchor_loss_weight if config.anchor_loss_enabled else 0.0,
        )
        self.tokenizer: PreTrainedTokenizerBase | None = None  # attached by the constructors, saved with the model
        self.preprocessing: dict | None = None
        # frames per clip the model was trained with; saved in the processor config so that a copied checkpoint
        # is run with the same count (inference defaults to it)
        self.num_frames: int | None = None
        self.post_init()
        self._log_attention()

    # --------------------------------------------------------------------------------------------- plumbing
    def attention_implementations(self) -> dict[str, str | None]:
        """The attention implementation of every part: this wrapper's config and each (nested) sub-config of
        the backbone (``vlm_config``, ``vlm_config.text_config``, ``vlm_config.vision_config``, ...).

        ``None`` means transformers falls back to eager attention in that part (slower, O(L^2) memory), which is
        why it is logged (DESIGN.md §6)."""
        out: dict[str, str | None] = {}
        seen: set[int] = set()

        def visit(name: str, conf: Any) -> None:
            if conf is None or id(conf) in seen:
                return
            seen.add(id(conf))
            out[name] = getattr(conf, "_attn_implementation", None)
            for key in getattr(conf, "sub_configs", {}) or {}:
                visit(f"{name}.{key}", getattr(conf, key, None))

        visit("loc3r", self.config)
        return out

    def _log_attention(self) -> None:
        vlm_cfg = self.config.vlm_config
        text_impl = getattr(vlm_cfg.get_text_config(), "_attn_implementation", None)
        vision_impl = getattr(getattr(vlm_cfg, "vision_config", None), "_attn_implementation", None)
        logger.info(
            "loc3r backbone %s (%s): LLM attention implementation %r, vision attention implementation %r "
            "(every part: %s)",
            self.config.backbone,
            type(self.vlm).__name__,
            text_impl,
            vision_impl,
            self.attention_implementations(),
        )

    @property
    def video_token_id(self) -> int:
        return self.adapter.video_token_id(self.config.vlm_config)

    def get_input_embeddings(self) -> nn.Module:
        return self.vlm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.vlm.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.adapter.lm_head(self.vlm)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, **kwargs: Any) -> nn.Embedding:
        """Resize the backbone's input embeddings and LM head (new rows: HF's mean initialisation)."""
        out = self.vlm.resize_token_embeddings(new_num_tokens, **kwargs)
        self.config.vlm_config = self.vlm.config
        return out

    def freeze_vision_tower(self) -> int:
        """Freeze the vision encoder (the paper's recipe; the projector stays trainable). Returns #frozen params."""
        count = 0
        for module in self.adapter.vision_modules(self.vlm):
            for p in module.parameters():
                p.requires_grad_(False)
                count += p.numel()
        return count

    # --------------------------------------------------------------------------------------------- forward parts
    def embed_inputs(
        self,
        input_ids: Tensor,
        pixel_inputs: dict[str, Tensor],
        cue_points: Tensor | None = None,
        cue_valid: Tensor | None = None,
        camera_features: Tensor | None = None,
        camera_valid: Tensor | None = None,
        return_decoder_kwargs: bool = False,
        oracle: dict[str, Tensor | None] | None = None,
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, dict[str, Any]]:
        """Build ``inputs_embeds [B, L, D]``: text embeddings, vision embeddings (+ cue) and camera tokens.

        Returns ``(inputs_embeds, vision_mask [B, L])``, plus the LLM decoder's extra vision arguments for the
        prompt forward (``decode(..., **decoder_kwargs)``; Qwen3-VL's DeepStack features) when
        ``return_decoder_kwargs``. A backbone with such features refuses ``return_decoder_kwargs=False``, so they
        cannot be dropped silently.

        ``oracle`` (``vision_input: oracle_objects`` only): ``word_ids / points / valid`` of the oracle tokens
        (:mod:`loc3r.model.oracle_tower`); the vision tower is not run.
        """
        embeds = self.get_input_embeddings()(input_ids)
        vision_mask = input_ids == self.video_token_id
        decoder_kwargs: dict[str, Any] = {}
        has_vision = bool(vision_mask.any())
        if has_vision and self.oracle_position is not None:
            words, points, valid = (oracle[k][vision_mask] for k in ("word_ids", "points", "valid"))
            vision = oracle_embeddings(self.get_input_embeddings(), words, points, valid, self.oracle_position)
            embeds = embeds.masked_scatter(vision_mask.unsqueeze(-1), vision.to(embeds.dtype))
        elif has_vision:
            features = self.adapter.encode_video_features(self.vlm, pixel_inputs)
            if features.layer_features and not return_decoder_kwargs:
                raise ValueError(
                    f"backbone {self.config.backbone!r} feeds vision features into the LLM layers (DeepStack): call "
                    "embed_inputs(..., return_decoder_kwargs=True) and pass them to decode()"
                )
            vision = features.embeds
            if self.cue_injector is not None:
                vision = vision + self.cue_injector(cue_points[vision_mask], cue_valid[vision_mask]).to(vision.dtype)
            embeds = embeds.masked_scatter(vision_mask.unsqueeze(-1), vision.to(embeds.dtype))
            decoder_kwargs = self.adapter.decoder_vision_kwargs(features, vision_mask)
        if self.camera_projector is not None:
            camera_mask = input_ids == self.config.camera_token_id
            camera = self.camera_projector(camera_features[camera_valid])
            embeds = embeds.masked_scatter(camera_mask.unsqueeze(-1), camera.to(embeds.dtype))
        if return_decoder_kwargs:
            return embeds, vision_mask, decoder_kwargs
        return embeds, vision_mask

    def _embed_batch(
        self, input_ids: Tensor, inputs: dict[str, Any], cut: int | None = None
    ) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """:meth:`embed_inputs` on a batch mapping (keys as the processor names them); ``cut``: only the first ``cut``
        positions of the per-token inputs (a prompt prefix)."""

        def token(key: str) -> Tensor | None:
            value = inputs.get(key)
            return value[:, :cut] if value is not None and cut is not None else value

        pixels = {k: inputs.get(k) for k in ("pixel_values_videos", "video_grid_thw")}
        camera = (inputs.get("camera_features"), inputs.get("camera_valid"))
        oracle = {k: token(f"oracle_{k}") for k in ("word_ids", "points", "valid")}
        return self.embed_inputs(input_ids, pixels, token("cue_points"), token("cue_valid"), *camera, True, oracle)

    def decode(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None,
        position_ids: Tensor,
        cache: Any = None,
        use_cache: bool = False,
        **decoder_kwargs: Any,
    ) -> tuple[Tensor, Any]:
        """Run the HF LLM decoder; returns ``(last_hidden_state [B, L, D], cache)``. ``position_ids [B, A, L]`` go to HF
        as ``[3, B, L]`` (M-RoPE) or ``[B, L]``; ``decoder_kwargs``: the backbone's extra vision arguments of the
        prompt forward (from ``embed_inputs``). The KV cache is ``cache`` in transformers >= 5.2x (``past_key_values``
        before, a deprecated alias there)."""
        lm = self.adapter.language_model(self.vlm)
        positions = position_ids.permute(1, 0, 2) if self.adapter.uses_mrope else position_ids[:, 0]
        kwargs = dict(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=positions, **decoder_kwargs
        )
        if cache is not None:
            kwargs["cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"] = cache
        out = lm(use_cache=use_cache, **kwargs)
        new_cache = (out["cache"] if "cache" in out else out.get("past_key_values")) if use_cache else None
        return out.last_hidden_state, new_cache

    @staticmethod
    def _gather_rows(hidden: Tensor, masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{name: hidden[mask]}`` for several ``[B, L]`` masks with a single ``index_select`` (row-major order)."""
        if not masks:
            return {}
        flat = hidden.flatten(0, 1)
        indices = {name: torch.nonzero(mask.flatten()).flatten() for name, mask in masks.items()}
        gathered = flat.index_select(0, torch.cat(list(indices.values())))
        return dict(zip(indices, torch.split(gathered, [len(i) for i in indices.values()]), strict=True))

    def _token_rows(self, input_ids: Tensor, token_id: int, token: str) -> Tensor:
        """Boolean mask of ``token`` in ``input_ids``; every row must contain it exactly once."""
        mask = input_ids == token_id
        counts = mask.sum(dim=1)
        bad = torch.nonzero(counts != 1).flatten().tolist()
        if bad:
            raise ValueError(
                f"the situation objective is on but batch row(s) {bad} contain {counts[bad].tolist()} {token} "
                f"tokens instead of exactly 1 (build prompts with Loc3rProcessor, which names the sample)"
            )
        return mask

    def objective_heads(self) -> list[nn.Module]:
        """loc3r's own modules on top of the backbone (heads, camera prior, cue injector) that exist."""
        names = "layout_head position_head orientation_head pointer_head recognition_head camera_projector cue_injector"
        mods = [getattr(self, name) for name in (*names.split(), "oracle_position")]
        return [m for m in mods if m is not None]

    def run_heads(
        self,
        hidden: Tensor,
        input_ids: Tensor,
        vision_mask: Tensor,
        layout: bool,
        extra_rows: dict[str, Tensor] | None = None,
        true_situation: tuple[Tensor, Tensor] | None = None,
        embeds: Tensor | None = None,
    ) -> tuple[Loc3rOutput, dict[str, Tensor]]:
        """The objective heads on the final hidden states — ONE function for :meth:`forward` and :meth:`predict`.

        ``true_situation`` (training only): ``(position [B, 2], valid [B])``, the pointer heads' bearing origin.
        ``embeds``: the input embeddings (the pointer heads' keys when ``config.pointer_keys == "input"``).

        ``layout``: run the layout head on every vision token (the pointer heads always need it); the ``<Pos>`` /
        ``<Ori>`` heads run whenever the model has them (each row must hold its token exactly once). Returns the
        head outputs (in a :class:`Loc3rOutput`: ``layout_mean/log_var``, ``position_mean/log_var``,
        ``orientation_logits`` and, for the pointer heads, their attention) and the gathered rows, including those
        of ``extra_rows`` (``forward`` adds the supervised LM positions). All rows are gathered with ONE
        ``index_select``: its backward writes a single ``[B*L, D]`` gradient buffer instead of one per boolean-mask
        indexing (which measurably raised peak memory of the objectives).
        """
        pointer = self.pointer_head is not None
        wanted: dict[str, Tensor] = dict(extra_rows or {})
        if (layout or pointer) and self.layout_head is not None:
            wanted["layout"] = vision_mask
        if self.position_head is not None or pointer:
            wanted["pos"] = self._token_rows(input_ids, self.config.pos_token_id, POS_TOKEN)
        if self.orientation_head is not None or pointer:
            wanted["ori"] = self._token_rows(input_ids, self.config.ori_token_id, ORI_TOKEN)
        rows = self._gather_rows(hidden, wanted)
        heads = Loc3rOutput()
        if "layout" in rows:
            heads.layout_mean, heads.layout_log_var = self.layout_head(rows["layout"])
        if pointer:
            counts = vision_mask.sum(dim=1).tolist()
            # the pointer READS the scene: no gradient into the vision tokens' states or their BEV positions (the
            # layout objective alone trains those; letting the situation losses rewrite them broke the LM in the
            # demo: QA EM 13.5, VSI 2.7, see benchmarks/RESULTS.md)
            if self.config.pointer_keys == "input":
                if embeds is None:
                    raise ValueError("pointer_keys 'input' needs the input embeddings (run_heads(..., embeds=...))")
                tokens, token_mask = pad_rows(embeds[vision_mask].detach(), counts)
            else:
                tokens, token_mask = pad_rows(rows["layout"].detach(), counts)
            token_xy, _ = pad_rows(heads.layout_mean.detach(), counts)
            text = None
            if self.pointer_head.reads_text:  # the situation text: after the video, before <Pos>
                where = situation_text_mask(input_ids, vision_mask, wanted["pos"], self.config.pad_token_id)
                text_counts = where.sum(1).tolist()
                text = TextInputs(*pad_rows(self._gather_rows(hidden, {"text": where})["text"], text_counts))
                # the words' input embeddings, read like the keys (no gradient); 'names' implies keys 'input' (config),
                # so embeds was checked above
                if self.pointer_head.matches_names:
                    text.embeds = pad_rows(embeds[where].detach(), text_counts)[0]
            truth = true_situation or (None, None)
            out = self.pointer_head(rows["pos"], rows["ori"], tokens, token_xy, token_mask, *truth, text)
            for name, value in out.items():  # position_mean/log_var, orientation_logits and both attention maps
                setattr(heads, name, value)
            return heads, rows
        if "pos" in rows:
            heads.position_mean, heads.position_log_var = self.position_head(rows["pos"])
        if "ori" in rows:
            heads.orientation_logits = self.orientation_head(rows["ori"])
        return heads, rows

    # --------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        pixel_values_videos: Tensor | None = None,
        video_grid_thw: Tensor | None = None,
        second_per_grid_ts: Tensor | None = None,
        mm_token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        layout_targets: Tensor | None = None,
        layout_valid: Tensor | None = None,
        cue_points: Tensor | None = None,
        cue_valid: Tensor | None = None,
        camera_features: Tensor | None = None,
        camera_valid: Tensor | None = None,
        situation_position: Tensor | None = None,
        situation_yaw: Tensor | None = None,
        situation_valid: Tensor | None = None,
        recognition_targets: Tensor | None = None,
        recognition_valid: Tensor | None = None,
        oracle_word_ids: Tensor | None = None,
        oracle_points: Tensor | None = None,
        oracle_valid: Tensor | None = None,
        anchor_tokens: Tensor | None = None,
        faced_tokens: Tensor | None = None,
        left_tokens: Tensor | None = None,
        right_tokens: Tensor | None = None,
        behind_tokens: Tensor | None = None,
        side_labelled: Tensor | None = None,
        return_hidden_states: bool = False,
    ) -> Loc3rOutput:
        """Joint forward (see the module docstring). ``second_per_grid_ts`` and ``mm_token_type_ids`` are accepted
        for HF compatibility; the processor already folded them into ``position_ids``."""
        pixel_inputs = {"pixel_values_videos": pixel_values_videos, "video_grid_thw": video_grid_thw}
        oracle = {"word_ids": oracle_word_ids, "points": oracle_points, "valid": oracle_valid}
        embeds, vision_mask, decoder_kwargs = self.embed_inputs(
            input_ids, pixel_inputs, cue_points, cue_valid, camera_features, camera_valid, True, oracle
        )
        hidden, _ = self.decode(embeds, attention_mask, position_ids, **decoder_kwargs)
        terms: dict[str, Tensor | None] = dict.fromkeys(("ce", "bev", "pos", "ori", "rec", "anchor"))
        # recognition (base pretraining only): every vision token as the tower feeds it to the LLM
        if self.recognition_head is not None and recognition_targets is not None:
            logits = self.recognition_head(embeds[vision_mask])
            terms["rec"] = token_category_loss(
                logits, recognition_targets[vision_mask], recognition_valid[vision_mask],
                self.config.recognition_background_weight,
            )  # fmt: skip
        ce_mask = supervised_mask(labels) if labels is not None else None
        train_situation = self.training and situation_position is not None and situation_valid is not None
        extra_rows = None if ce_mask is None else {"ce": ce_mask}
        truth = (situation_position, situation_valid) if train_situation else None
        out, rows = self.run_heads(
            hidden, input_ids, vision_mask, layout_targets is not None, extra_rows, truth, embeds
        )
        if labels is not None:  # language modelling, LM head on supervised positions only
            terms["ce"] = lm_loss(self.get_output_embeddings(), rows["ce"], labels, ce_mask, hidden)
        if out.layout_mean is not None and layout_targets is not None:  # every vision token
            targets = layout_targets[vision_mask]
            terms["bev"] = layout_loss(out.layout_mean, out.layout_log_var, targets, layout_valid[vision_mask])
        if out.position_mean is not None and situation_position is not None:
            terms["pos"] = gaussian_nll(out.position_mean, out.position_log_var, situation_position, situation_valid)
        if out.orientation_logits is not None and situation_yaw is not None:
            sigma = self.config.orientation_sigma_bins
            terms["ori"] = orientation_kl(out.orientation_logits, situation_yaw, situation_valid, sigma)
        # anchor supervision (ours, pointer heads): attention mass on the tokens showing the named objects
        if self.config.anchor_loss_enabled and out.position_attention is not None and anchor_tokens is not None:
            attention = {"anchor": out.position_attention, "faced": out.orientation_attention}
            targets = {"anchor": anchor_tokens, "faced": faced_tokens}
            if out.side_attention is not None and left_tokens is not None:
                attention.update(zip(SIDE_ROLES, out.side_attention.unbind(1), strict=True))
                targets.update(left=left_tokens, right=right_tokens, behind=behind_tokens)
            gates = (out.side_gate_logits, side_labelled) if left_tokens is not None else (None, None)
            terms["anchor"] = anchor_loss(attention, vision_mask, targets, *gates)
        if any(t is not None for t in terms.values()):
            out.loss, out.losses = combine_losses(weights=self.loss_weights, **terms)
        if return_hidden_states:
            out.last_hidden_state = hidden
        return out

    # --------------------------------------------------------------------------------------------- inference
    def _inputs(self, batch: Any) -> dict[str, Any]:
        device = self.get_input_embeddings().weight.device
        return {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in dict(batch).items()}

    @_inference
    def encode_prefix(self, batch: Any) -> VideoPrefix:
        """Run the question-independent prompt start of a ONE-sample eval batch once (see :class:`VideoPrefix`).

        The prefix ends after the last vision / ``<Cam>`` token (the processor records it as
        ``SampleMeta.prefix_length``); the sample's own question is not run. Use with ``predict(..., prefix=...)``.
        """
        inputs = self._inputs(batch)
        input_ids = inputs["input_ids"]
        if input_ids.shape[0] != 1:
            raise ValueError(f"encode_prefix needs a batch of one clip, got {input_ids.shape[0]} rows")
        metadata = list(getattr(batch, "metadata", None) or [])
        length = getattr(metadata[0], "prefix_length", None) if metadata else None
        if length is None:
            raise ValueError("encode_prefix needs batch.metadata[0].prefix_length (build it with Loc3rProcessor)")
        ids = input_ids[:, :length]
        embeds, _, decoder_kwargs = self._embed_batch(ids, inputs, cut=length)
        positions = inputs["position_ids"][:, :, :length]
        hidden, cache = self.decode(embeds, torch.ones_like(ids), positions, use_cache=True, **decoder_kwargs)
        return VideoPrefix(input_ids=ids, position_ids=positions, hidden=hidden, cache=cache, embeds=embeds)

    def _decode_after_prefix(
        self, prefix: VideoPrefix, input_ids: Tensor, attention: Tensor, positions: Tensor, use_cache: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Any, Tensor | None]:
        """Decode only the text after ``prefix`` for each row of a left-padded eval batch.

        Row ``b`` (unpadded) must start with exactly ``prefix.input_ids``; its remaining tokens (text only) are
        re-packed right-aligned after the prefix, with the padding moved between prefix and text
        (``attention_mask`` 0 there), so the last column is every row's last prompt token as greedy decoding needs.
        Returns the full-length ``(input_ids, attention_mask, position_ids, hidden, cache)`` as if the whole prompt
        had been run, so the heads and decoding below read them unchanged.
        """
        batch_size = input_ids.shape[0]
        p_len = prefix.length
        p_ids = prefix.input_ids.to(input_ids.device)
        rows = []
        for b in range(batch_size):
            keep = attention[b].bool()
            ids_b, pos_b = input_ids[b, keep], positions[b][:, keep]
            if ids_b.shape[0] <= p_len or not torch.equal(ids_b[:p_len], p_ids[0]):
                raise ValueError(
                    f"predict(prefix=...): batch row {b} does not start with the prefix's {p_len} tokens "
                    "(another clip, other frames or another processor?)"
                )
            rows.append((ids_b[p_len:], pos_b[:, p_len:]))
        s_len = max(r[0].shape[0] for r in rows)
        pad = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        s_ids = torch.full((batch_size, s_len), pad, dtype=input_ids.dtype, device=input_ids.device)
        s_att = torch.zeros((batch_size, s_len), dtype=attention.dtype, device=attention.device)
        s_pos = torch.zeros((batch_size, positions.shape[1], s_len), dtype=positions.dtype, device=positions.device)
        for b, (ids_b, pos_b) in enumerate(rows):
            n = ids_b.shape[0]
            s_ids[b, s_len - n :], s_att[b, s_len - n :], s_pos[b, :, s_len - n :] = ids_b, 1, pos_b
        # a copy per call: decoding appends the question's keys/values to the cache, the prefix must stay as it is
        cache = copy.deepcopy(prefix.cache)
        if batch_size > 1:
            cache.batch_repeat_interleave(batch_size)
        ones = torch.ones((batch_size, p_len), dtype=attention.dtype, device=attention.device)
        full_att = torch.cat([ones, s_att], 1)
        embeds = self.get_input_embeddings()(s_ids)
        s_hidden, cache = self.decode(embeds, full_att, s_pos, cache=cache, use_cache=use_cache)
        full_ids = torch.cat([p_ids.expand(batch_size, -1), s_ids], dim=1)
        full_pos = torch.cat([prefix.position_ids.to(positions.device).expand(batch_size, -1, -1), s_pos], dim=2)
        hidden = torch.cat([prefix.hidden.expand(batch_size, -1, -1), s_hidden], dim=1)
        full_embeds = (
            None if prefix.embeds is None else torch.cat([prefix.embeds.expand(batch_size, -1, -1), embeds], 1)
        )
        return full_ids, full_att, full_pos, hidden, cache, full_embeds

    @_inference
    def predict(
        self,
        batch: Any,
        max_new_tokens: int = 32,
        tokenizer: PreTrainedTokenizerBase | None = None,
        prefix: VideoPrefix | None = None,
    ) -> list[Loc3rPrediction]:
        """Greedy answers + situation pose + layout for an ``eval``-mode batch (left padded).

        The answer is decoded with our own greedy loop on the HF KV cache: the prompt is run once, then one token
        at a time with position ``max(prompt positions) + 1 + step`` on every axis (what HF's rope deltas give for
        Qwen2.5-VL; ``len(prompt) + step`` for 1-D backbones). Generation stops at ``config.eos_token_id``.

        ``prefix`` (from :meth:`encode_prefix` on the same clip): every row's video part is taken from it and only
        the text after it is run (:class:`VideoPrefix`); the batch's ``pixel_values_videos`` are then not used.
        """
        tokenizer = tokenizer or self.tokenizer
        metadata = list(getattr(batch, "metadata", None) or [])
        inputs = self._inputs(batch)
        if "labels" in inputs:
            raise ValueError("predict needs an eval-mode batch (prompt only); got one with 'labels' (train mode)")
        input_ids, attention = inputs["input_ids"], inputs["attention_mask"]
        if not bool(attention[:, -1].all()):
            raise ValueError("predict needs left-padded prompts (Loc3rProcessor in mode='eval')")
        positions = inputs["position_ids"]
        if prefix is not None:
            input_ids, attention, positions, hidden, cache, embeds = self._decode_after_prefix(
                prefix, input_ids, attention, positions, use_cache=max_new_tokens > 0
            )
            vision_mask = input_ids == self.video_token_id
        else:
            embeds, vision_mask, decoder_kwargs = self._embed_batch(input_ids, inputs)
            hidden, cache = self.decode(embeds, attention, positions, use_cache=max_new_tokens > 0, **decoder_kwargs)
        # heads on the prompt (the same function as forward's), then greedy decoding on the KV cache
        heads, _ = self.run_heads(hidden, input_ids, vision_mask, layout=self.layout_head is not None, embeds=embeds)
        decoded = self._decode_heads(heads, vision_mask)
        gen = self._greedy(hidden, cache, attention, positions, max_new_tokens)
        results = []
        for b in range(input_ids.shape[0]):
            meta = metadata[b] if b < len(metadata) else None
            results.append(self._prediction(b, gen[b].tolist(), meta, tokenizer, decoded))
        return results

    @staticmethod
    def _decode_heads(heads: Loc3rOutput, vision_mask: Tensor) -> dict[str, Any]:
        """The :class:`Loc3rPrediction` fields of the heads that exist, indexed by row: layout means / sigmas,
        position mean / sigma, yaw + confidence + bin probabilities."""
        out: dict[str, Any] = {}
        if heads.layout_mean is not None:
            counts = vision_mask.sum(dim=1).tolist()
            for name, values in (("mean", heads.layout_mean), ("sigma", torch.exp(0.5 * heads.layout_log_var))):
                out[f"layout_{name}"] = [t.float().cpu().numpy() for t in torch.split(values, counts)]
        if heads.position_mean is not None:
            out["position_bev"] = heads.position_mean.float().cpu().numpy()
            out["position_sigma"] = torch.exp(0.5 * heads.position_log_var).float().cpu().numpy()
        if heads.orientation_logits is not None:
            yaw, confidence = decode_orientation(heads.orientation_logits)
            out["yaw_bev"], out["yaw_confidence"] = yaw.tolist(), confidence.tolist()
            out["yaw_probabilities"] = torch.softmax(heads.orientation_logits.float(), dim=-1).cpu().numpy()
        return out

    def _greedy(self, hidden: Tensor, cache: Any, attention: Tensor, positions: Tensor, max_new_tokens: int) -> Tensor:
        """``[B, T]`` greedy tokens after the prompt (padding after a row's end token), decoded on the KV cache."""
        batch_size = hidden.shape[0]
        generated: list[Tensor] = []
        if max_new_tokens > 0:
            eos = self.config.eos_token_id
            pad = self.config.pad_token_id if self.config.pad_token_id is not None else (eos or 0)
            masked_pos = positions.masked_fill(attention.unsqueeze(1) == 0, -1)
            next_pos = masked_pos.amax(dim=(1, 2)) + 1  # [B]
            lm_head = self.get_output_embeddings()
            embed = self.get_input_embeddings()
            logits_next = lm_head(hidden[:, -1])
            finished = torch.zeros(batch_size, dtype=torch.bool, device=hidden.device)
            axes = positions.shape[1]
            for step in range(max_new_tokens):
                token = logits_next.argmax(dim=-1)
                token = torch.where(finished, torch.full_like(token, pad), token)
                generated.append(token)
                if eos is not None:
                    finished = finished | (token == eos)
                if bool(finished.all()) or step == max_new_tokens - 1:
                    break
                attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
                step_pos = (next_pos + step).view(batch_size, 1, 1).expand(batch_size, axes, 1)
                h_step, cache = self.decode(embed(token[:, None]), attention, step_pos, cache=cache, use_cache=True)
                logits_next = lm_head(h_step[:, -1])
        return torch.stack(generated, dim=1) if generated else torch.zeros((batch_size, 0), dtype=torch.long)

    def _prediction(
        self, b: int, ids: list[int], meta: Any, tokenizer: PreTrainedTokenizerBase | None, heads: dict[str, Any]
    ) -> Loc3rPrediction:
        """Row ``b``'s :class:`Loc3rPrediction`: its answer (up to the end token) and its heads' outputs (world-frame
        pose when the anchor is known; the layout's error against ``meta.token_points_bev`` when known)."""
        eos = self.config.eos_token_id
        if eos is not None and eos in ids:
            ids = ids[: ids.index(eos)]
        pred = Loc3rPrediction(
            sample_id=meta.sample_id if meta is not None else str(b),
            answer=tokenizer.decode(ids, skip_special_tokens=True).strip() if tokenizer is not None else None,
            answer_token_ids=ids,
        )
        for name, rows in heads.items():
            setattr(pred, name, rows[b])
        anchor = getattr(meta, "anchor", None)
        if anchor is not None:
            if pred.position_bev is not None:
                pred.position_world = anchor.points_to_world(pred.position_bev.astype(np.float64))
            if pred.yaw_bev is not None:
                pred.yaw_world = float(anchor.yaw_to_world(pred.yaw_bev))
        if pred.layout_mean is not None:
            truth = getattr(meta, "token_points_bev", None)
            if truth is not None and len(truth) == len(pred.layout_mean) and np.isfinite(truth).any():
                errors = np.linalg.norm(pred.layout_mean - truth, axis=1)
                pred.extras["layout_median_err_m"] = float(np.nanmedian(errors))
            segments = getattr(meta, "segments", None)
            if segments:
                # one entry per vision token, extra (newline) tokens included, as in the vision mask
                pred.layout_frame = np.concatenate(
                    [np.full(seg.num_tokens, min(seg.frame_indices), dtype=np.int64) for seg in segments]
                )
        return pred

    # --------------------------------------------------------------------------------------------- constructors
    @classmethod
    def tiny(
        cls,
        backbone: str,
        tokenizer: PreTrainedTokenizerBase,
        seed: int = 0,
        vlm_overrides: dict | None = None,
        **config_kwargs: Any,
    ) -> Loc3rForConditionalGeneration:
        """A tiny random model of the real HF class of ``backbone`` (Qwen2.5-VL / LLaVA-OneVision), for tests and
        the CPU demo. ``config_kwargs`` are :class:`Loc3rConfig` fields (objective switches, weights, ...).

        Frames of 112 x 112 give 16 LLM vision tokens per temporal group on both backbones.
        """
        adapter = get_backbone(backbone)
        ids = special_token_ids(tokenizer, backbone)
        vlm_config = adapter.tiny_config(len(tokenizer), ids, **(vlm_overrides or {}))
        config = cls._make_config(backbone, vlm_config, tokenizer, **config_kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(config)
        model.tokenizer = tokenizer
        model.preprocessing = adapter.tiny_preprocessing(vlm_config)
        return model

    @staticmethod
    def _make_config(
        backbone: str, vlm_config: Any, tokenizer: PreTrainedTokenizerBase, **config_kwargs: Any
    ) -> Loc3rConfig:
        ids = special_token_ids(tokenizer, backbone)
        adapter = get_backbone(backbone)
        return Loc3rConfig(
            backbone=backbone,
            vlm_config=vlm_config,
            pos_token_id=ids[POS_TOKEN],
            ori_token_id=ids[ORI_TOKEN],
            camera_token_id=ids[CAMERA_TOKEN],
            eos_token_id=ids[adapter.eos_token],
            pad_token_id=int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else ids[adapter.pad_token],
            **config_kwargs,
        )

    @classmethod
    def from_backbone_pretrained(
        cls,
        local_dir: str | Path,
        dtype: torch.dtype | str | None = None,
        attn_implementation: str | None = None,
        tokenizer_dir: str | Path | None = None,
        **config_kwargs: Any,
    ) -> Loc3rForConditionalGeneration:
        """Start loc3r training from a REAL HF checkpoint directory (no download).

        The backbone is detected from ``config.json``'s ``model_type`` (``qwen2_5_vl``, ``qwen3_vl``,
        ``llava_onevision``, ``smolvlm``; another architecture is an error naming the file and field). The
        tokenizer (from ``tokenizer_dir`` or ``local_dir``) gets ``<Pos> <Ori> <Cam>``; the embeddings are resized
        (new rows: mean of the old ones); the heads are new. Preprocessing settings (mean/std, pixel limits) are
        read from the checkpoint's processor files.
        """
        local_dir = Path(local_dir)
        config_path = local_dir / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path}: not found (expected a Hugging Face checkpoint directory)")
        model_type = json.loads(config_path.read_text()).get("model_type")
        backbone = cls.backbone_for_model_type(model_type, str(config_path))
        adapter = get_backbone(backbone)
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or local_dir))
        add_loc3r_special_tokens(tokenizer, backbone)
        vlm = adapter.load_pretrained(local_dir, **_hf_kwargs(dtype, attn_implementation))
        if len(tokenizer) > vlm.get_input_embeddings().weight.shape[0]:
            vlm.resize_token_embeddings(len(tokenizer))
        ids = special_token_ids(tokenizer, backbone)
        if adapter.video_token_id(vlm.config) != ids[adapter.video_token]:
            raise ValueError(
                f"{config_path}: video token id {adapter.video_token_id(vlm.config)} differs from the tokenizer's id "
                f"{ids[adapter.video_token]} of {adapter.video_token!r}"
            )
        # the implementation HF resolved when loading (the one asked for, or its default): wrapping the backbone
        # re-initialises the nested configs and leaves text/vision sub-configs unset (eager fall back), so it
        # is dispatched again to every sub-config and sub-model below
        implementation = attn_implementation or getattr(vlm.config, "_attn_implementation", None)
        config = cls._make_config(backbone, vlm.config, tokenizer, **config_kwargs)
        model = cls(config, vlm=vlm)
        if implementation is not None:
            model.set_attn_implementation(implementation)
            model._log_attention()
        param_dtype = vlm.get_input_embeddings().weight.dtype
        for module in model.objective_heads():
            module.to(param_dtype)
        model.tokenizer = tokenizer
        model.preprocessing = adapter.default_preprocessing(vlm.config, local_dir)
        return model

    @staticmethod
    def backbone_for_model_type(model_type: Any, where: str) -> str:
        """The registered backbone of a HF ``model_type``; an unsupported one is an error naming ``where``."""
        matches = [n for n in available_backbones() if get_backbone(n).model_type == model_type]
        if not matches:
            raise ValueError(
                f"{where}: field 'model_type' is {model_type!r}, which has no loc3r backbone adapter "
                f"(supported: {sorted(get_backbone(n).model_type for n in available_backbones())})"
            )
        return matches[0]

    @classmethod
    def load_backbone_config(cls, config_file: str | Path, overrides: dict | None = None) -> tuple[str, Any]:
        """``(backbone, HF config)`` from a checkpoint's ``config.json`` or a directory holding it (e.g.
        ``configs/backbones/NAME``, the public configs of real checkpoints). ``overrides`` update top-level keys
        and the ``text_config`` / ``vision_config`` dicts (e.g. ``{"text_config": {"num_hidden_layers": 2}}``:
        full width, fewer blocks). Keys starting with ``_`` (provenance notes) are ignored."""
        from transformers import CONFIG_MAPPING

        path = Path(config_file)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: backbone config not found")
        data = read_json(path, "backbone config")
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        data = {k: v for k, v in data.items() if not k.startswith("_") and k != "architectures"}
        backbone = cls.backbone_for_model_type(data.get("model_type"), str(path))
        for key, value in (overrides or {}).items():
            data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
        model_type = data.pop("model_type")
        try:
            config = CONFIG_MAPPING[model_type](**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: invalid {model_type} config ({err})") from err
        return backbone, config

    @classmethod
    def from_backbone_config(
        cls,
        config_file: str | Path,
        tokenizer: PreTrainedTokenizerBase,
        overrides: dict | None = None,
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
        seed: int = 0,
        **config_kwargs: Any,
    ) -> Loc3rForConditionalGeneration:
        """A model of a REAL backbone configuration with random weights (scale checks, GPU benchmarks, memory
        estimates — build it under ``torch.device("meta")`` to count without allocating).

        The placeholder ids of ``tokenizer`` (which must hold the backbone's and loc3r's special tokens, e.g. a
        tiny tokenizer) are written into the config; the vocabulary keeps the checkpoint's size (the embedding and
        LM head cost of the real model). Preprocessing: the adapter's defaults for that config, updated by the
        processor files next to ``config.json`` (the checkpoint's frame-size limits).
        """
        backbone, vlm_config = cls.load_backbone_config(config_file, overrides)
        adapter = get_backbone(backbone)
        ids = special_token_ids(tokenizer, backbone)
        vocab = vlm_config.get_text_config().vocab_size
        if len(tokenizer) > vocab:
            raise ValueError(f"{config_file}: tokenizer has {len(tokenizer)} tokens, more than vocab_size {vocab}")
        adapter.set_token_ids(vlm_config, ids)
        text_config = vlm_config.get_text_config()
        text_config.eos_token_id = ids[adapter.eos_token]
        text_config.pad_token_id = ids[adapter.pad_token]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vlm = adapter.hf_model_class._from_config(vlm_config, **_hf_kwargs(dtype, attn_implementation))
            config = cls._make_config(backbone, vlm.config, tokenizer, **config_kwargs)
            model = cls(config, vlm=vlm)
        if dtype is not None:
            model.to(dtype)
        if attn_implementation is not None:
            model.set_attn_implementation(attn_implementation)
        model.tokenizer = tokenizer
        local_dir = Path(config_file) if Path(config_file).is_dir() else Path(config_file).parent
        model.preprocessing = adapter.default_preprocessing(vlm.config, local_dir)
        return model

    def build_processor(self, mode: str = "train", **kwargs: Any):
        """The :class:`~loc3r.model.processing.Loc3rProcessor` for this model (its tokenizer and preprocessing)."""
        from loc3r.model.processing import Loc3rProcessor

        if self.tokenizer is None:
            raise ValueError("this model carries no tokenizer; build Loc3rProcessor(tokenizer, model.config) yourself")
        kwargs.setdefault("preprocessing", self.preprocessing)
        return Loc3rProcessor(self.tokenizer, self.config, mode=mode, **kwargs)

    # --------------------------------------------------------------------------------------------- save / load
    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """safetensors weights + ``config.json`` (+ tokenizer and processor settings when the model holds them; the
        processor config records :attr:`num_frames`, the frames per clip of training)."""
        super().save_pretrained(str(save_directory), *args, **kwargs)
        if self.tokenizer is not None:
            self.build_processor(num_frames=self.num_frames).save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any):
        """Load a loc3r checkpoint directory strictly: safetensors only, and any missing / unexpected / mismatched
        weight is an error naming the tensors (a config that does not match the weights cannot load silently).

        The directory must be self-contained (:meth:`_check_checkpoint`): tokenizer and
        ``loc3r_processor_config.json`` come together (neither may be missing alone: without the processor
        config, preprocessing would silently fall back to defaults), every weight is finite, and the special
        token ids of ``config.json`` match the tokenizer. Each error names the file and field.
        """
        path = Path(pretrained_model_name_or_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (not a loc3r checkpoint directory)")
        if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").is_file():
            raise FileNotFoundError(f"{path}: no *.safetensors weights (loc3r never loads pickled .bin/.pt weights)")
        from loc3r.model.processing import PROCESSOR_CONFIG_NAME, read_processor_config

        has_tokenizer = (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()
        processor_cfg = path / PROCESSOR_CONFIG_NAME
        if has_tokenizer != processor_cfg.is_file():
            missing = processor_cfg.name if has_tokenizer else "tokenizer.json / tokenizer_config.json"
            raise FileNotFoundError(
                f"{path}: {missing} is missing; a checkpoint holds its tokenizer and {PROCESSOR_CONFIG_NAME} together "
                "(every setting inference needs), so it cannot be run without guessing"
            )
        want_info = kwargs.pop("output_loading_info", False)
        kwargs["use_safetensors"] = True
        kwargs.setdefault("local_files_only", True)
        try:
            model, info = super().from_pretrained(str(path), *args, output_loading_info=True, **kwargs)
        except Exception as err:  # safetensors raises SafetensorError (an OSError or a plain Exception)
            if not isinstance(err, OSError | RuntimeError | EOFError) and type(err).__name__ != "SafetensorError":
                raise
            raise ValueError(f"{path}: cannot read the weights (truncated or damaged *.safetensors?): {err}") from err
        problems = {k: sorted(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        problems = {k: v for k, v in problems.items() if v}
        if problems:
            details = "; ".join(f"{k}: {v[:8]}{' ...' if len(v) > 8 else ''}" for k, v in problems.items())
            raise ValueError(f"{path}: the weights do not match config.json ({details})")
        if has_tokenizer:
            model.tokenizer = AutoTokenizer.from_pretrained(str(path))
            saved = read_processor_config(processor_cfg, model.config.backbone)
            model.preprocessing, model.num_frames = saved.get("preprocessing"), saved.get("num_frames")
        if model.preprocessing is None:
            model.preprocessing = model.adapter.default_preprocessing(model.config.vlm_config)
        model._check_checkpoint(path)
        return (model, info) if want_info else model

    def _check_checkpoint(self, path: Path) -> None:
        """Non-finite weights and special-token ids that disagree with the tokenizer are errors naming the field."""
        bad = [n for n, t in self.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise ValueError(
                f"{path}: weights with NaN/inf values in {bad[:8]}{' ...' if len(bad) > 8 else ''} "
                f"({len(bad)} tensors); the checkpoint is damaged or training diverged"
            )
        if self.tokenizer is None:
            return
        vocab = self.tokenizer.get_vocab()
        adapter = get_backbone(self.config.backbone)
        expected = {
            "pos_token_id": (POS_TOKEN, self.config.situation_enabled),
            "ori_token_id": (ORI_TOKEN, self.config.situation_enabled),
            "camera_token_id": (CAMERA_TOKEN, self.config.camera_prior is not None),
        }
        for field_name, (token, needed) in expected.items():
            value = getattr(self.config, field_name)
            if (needed or value is not None) and vocab.get(token) != value:
                raise ValueError(
                    f"{path / 'config.json'}: field {field_name!r} is {value} but the saved tokenizer maps {token!r} "
                    f"to {vocab.get(token)}; config.json and the tokenizer are of different checkpoints"
                )
        video_id = adapter.video_token_id(self.config.vlm_config)
        if vocab.get(adapter.video_token) != video_id:
            raise ValueError(
                f"{path / 'config.json'}: the video token id is {video_id} but the saved tokenizer maps "
                f"{adapter.video_token!r} to {vocab.get(adapter.video_token)}"
            )
        rows = self.get_input_embeddings().weight.shape[0]
        if len(self.tokenizer) > rows:
            raise ValueError(
                f"{path}: the tokenizer has {len(self.tokenizer)} tokens but the embedding has only {rows} rows"
            )
