"""Configuration of :class:`~loc3r.model.modeling_loc3r.Loc3rForConditionalGeneration`.

A ``Loc3rConfig`` wraps the Hugging Face config of the backbone VLM (``vlm_config``, e.g. a
``Qwen2_5_VLConfig`` or ``LlavaOnevisionConfig``) and adds the switches and weights of the loc3r
objectives (DESIGN.md §2):

``L = L_CE + bev_loss_weight * L_BEV + situation_loss_weight * (L_pos + orientation_loss_weight * L_ori)``

with the paper's defaults (0.05, 0.075, 3.5). An objective that is switched off, or whose weight is 0, is
not computed at all. The camera prior and the cue-injection baseline are OFF by default. Each objective's fields and
their defaults are declared by its module (``CONFIG`` of :mod:`loc3r.objectives.layout`, ``.situation``,
``.camera_prior``, ``.recognition``); this class takes them from there and validates them all, once, where a config
is built or loaded (heads, losses and the processor below trust it).

Unknown keys are rejected with a clear error (a typo in a YAML recipe must not silently fall back to a
default), both when the config is built in code and when a ``config.json`` is loaded.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from loc3r.objectives import camera_prior as _camera
from loc3r.objectives import layout as _layout
from loc3r.objectives import recognition as _recognition
from loc3r.objectives import situation as _situation
from loc3r.objectives.camera_prior import CAMERA_PRIOR_KINDS
from loc3r.objectives.situation import POINTER_KEYS, POINTER_POSITIONS, POINTER_QUERIES, SITUATION_HEADS

try:  # transformers >= 5.2x declares nested configs with SubConfigSpec; 5.17 (the GPU machines) with `sub_configs`
    from transformers.configuration_utils import SubConfigSpec
except ImportError:  # pragma: no cover - exercised on transformers 5.17
    SubConfigSpec = None

__all__ = ["Loc3rConfig", "CAMERA_PRIOR_KINDS"]

VISION_INPUTS = ("pixels", "oracle_objects", "oracle_layout")

# Keys that transformers itself writes into / passes through a config dict; everything else that is not a field of
# ``Loc3rConfig`` is a user error.
_HF_BOOKKEEPING_KEYS = frozenset(
    {
        "model_type",
        "name_or_path",
        "_name_or_path",
        "torch_dtype",
        "attn_implementation",
        "output_attentions",
        "experts_implementation",
        "_commit_hash",
        "num_labels",
        "per_layer_config",
        "_attn_implementation_internal",
        "_experts_implementation_internal",
    }
)


def _default_model_type(backbone: str) -> str:
    from loc3r.model.backbones import available_backbones, get_backbone

    if backbone not in available_backbones():
        raise ValueError(f"Loc3rConfig.backbone: must be one of {available_backbones()} (got {backbone!r})")
    return get_backbone(backbone).model_type


class Loc3rConfig(PreTrainedConfig):
    r"""Configuration of a loc3r model.

    Fields (each objective's are documented in its module, :mod:`loc3r.objectives`):

    * ``backbone`` (an adapter of :func:`loc3r.model.backbones.available_backbones`, e.g. ``"qwen2_5_vl"``) and
      ``vlm_config`` (its HF config: a dict with ``model_type`` or a config object);
    * layout (``layout_objective``, ``bev_loss_weight``); situation (``situation_objective``,
      ``situation_loss_weight``, ``orientation_loss_weight``, ``num_orientation_bins``, ``orientation_sigma_bins``,
      ``head_intermediate_size``, ``situation_head`` ``"mlp"`` or ``"pointer"``, ``pointer_key_dim``,
      ``pointer_query``, ``pointer_keys``, ``pointer_position``, ``anchor_loss_weight``); camera prior
      (``camera_prior`` ``None`` / ``"poses"`` / ``"file"`` / ``"sample"``, ``camera_feature_dim``,
      ``camera_prior_dropout``); recognition
      (``recognition_objective``, ``recognition_classes``, ``recognition_loss_weight``,
      ``recognition_background_weight``);
    * the geometric-cue-injection baseline (:mod:`loc3r.model.cue_injection`: ``cue_injection``,
      ``cue_num_frequencies``, ``cue_depth_error`` ``None`` = exact depth, else an error model of
      :func:`loc3r.core.geometry.simulate_depth_error` applied in training and at inference);
    * ``vision_input``: ``"pixels"`` or a DIAGNOSTIC perfect-perception input of :mod:`loc3r.model.oracle_tower`:
      ``"oracle_objects"`` (each token: what its footprint shows) or ``"oracle_layout"`` (one token per object);
    * token ids written by the model's constructors: ``pos_token_id, ori_token_id, camera_token_id``
      (``<Pos> <Ori> <Cam>``), ``eos_token_id, pad_token_id`` (used by ``predict``).
    """

    model_type = "loc3r"
    if SubConfigSpec is not None:
        sub_configs_defaults = {"vlm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_vl")}
    else:  # pragma: no cover
        sub_configs = {"vlm_config": AutoConfig}

    backbone: str = "qwen2_5_vl"
    vlm_config: dict | PreTrainedConfig | None = None
    layout_objective: bool = _layout.CONFIG["layout_objective"]
    situation_objective: bool = _situation.CONFIG["situation_objective"]
    camera_prior: str | None = _camera.CONFIG["camera_prior"]
    camera_feature_dim: int | None = _camera.CONFIG["camera_feature_dim"]
    camera_prior_dropout: float = _camera.CONFIG["camera_prior_dropout"]
    cue_injection: bool = False
    cue_num_frequencies: int = 8
    cue_depth_error: dict | None = None
    num_orientation_bins: int = _situation.CONFIG["num_orientation_bins"]
    orientation_sigma_bins: float = _situation.CONFIG["orientation_sigma_bins"]
    bev_loss_weight: float = _layout.CONFIG["bev_loss_weight"]
    situation_loss_weight: float = _situation.CONFIG["situation_loss_weight"]
    orientation_loss_weight: float = _situation.CONFIG["orientation_loss_weight"]
    head_intermediate_size: int | None = _situation.CONFIG["head_intermediate_size"]
    situation_head: str = _situation.CONFIG["situation_head"]
    pointer_key_dim: int = _situation.CONFIG["pointer_key_dim"]
    pointer_query: str = _situation.CONFIG["pointer_query"]
    pointer_keys: str = _situation.CONFIG["pointer_keys"]
    pointer_position: str = _situation.CONFIG["pointer_position"]
    anchor_loss_weight: float = _situation.CONFIG["anchor_loss_weight"]
    vision_input: str = "pixels"
    recognition_objective: bool = _recognition.CONFIG["recognition_objective"]
    recognition_classes: list[str] | None = _recognition.CONFIG["recognition_classes"]
    recognition_loss_weight: float = _recognition.CONFIG["recognition_loss_weight"]
    recognition_background_weight: float = _recognition.CONFIG["recognition_background_weight"]
    pos_token_id: int | None = None
    ori_token_id: int | None = None
    camera_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        unknown = sorted(k for k in kwargs if k not in _HF_BOOKKEEPING_KEYS)
        if unknown:
            raise ValueError(
                f"Loc3rConfig: unknown key(s) {unknown}. Known keys: {sorted(self.__annotations__)} "
                "(plus the standard transformers config keys)."
            )
        # Build the nested backbone config ourselves (same result on every transformers 5.x).
        if self.vlm_config is None or isinstance(self.vlm_config, dict):
            vlm = dict(self.vlm_config or {})
            model_type = vlm.pop("model_type", None) or _default_model_type(self.backbone)
            if model_type not in CONFIG_MAPPING:
                raise ValueError(f"Loc3rConfig.vlm_config: unknown model_type {model_type!r}")
            self.vlm_config = CONFIG_MAPPING[model_type](**vlm)
        elif not isinstance(self.vlm_config, PreTrainedConfig):
            raise ValueError(f"Loc3rConfig.vlm_config: expected a dict or config, got {type(self.vlm_config).__name__}")
        super().__post_init__(**kwargs)
        self._validate_loc3r()

    def _validate_loc3r(self) -> None:
        """Type and range checks with messages naming the field (the HF ``strict`` checks do not run on subclasses).
        The one place the objectives' fields are checked: heads, losses and the processor trust them."""

        def fail(field: str, why: str) -> None:
            raise ValueError(f"Loc3rConfig.{field}: {why} (got {getattr(self, field)!r})")

        def is_int(value: Any, low: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= low

        from loc3r.model.backbones import available_backbones

        if self.backbone not in available_backbones():
            fail("backbone", f"must be one of {available_backbones()}")
        for name in ("layout_objective", "situation_objective", "cue_injection", "recognition_objective"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be a bool")
        for name, allowed in (
            ("camera_prior", CAMERA_PRIOR_KINDS),
            ("vision_input", VISION_INPUTS),
            ("situation_head", SITUATION_HEADS),
            ("pointer_query", POINTER_QUERIES),
            ("pointer_keys", POINTER_KEYS),
            ("pointer_position", POINTER_POSITIONS),
        ):
            if getattr(self, name) not in allowed:
                fail(name, f"must be one of {allowed}")
        if self.pointer_query == "names" and self.pointer_keys != "input":
            fail(
                "pointer_query",
                "'names' compares words and vision tokens in the input space: needs pointer_keys 'input'",
            )
        if self.camera_prior == "poses" and self.camera_feature_dim is None:
            self.camera_feature_dim = 9
        if (self.camera_prior, self.camera_feature_dim) != (None, None) and not is_int(self.camera_feature_dim, 1):
            fail("camera_feature_dim", "must be a positive int (and is needed when camera_prior is on)")
        rate = self.camera_prior_dropout
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            fail("camera_prior_dropout", "must be a number in [0, 1]")
        if rate > 0 and self.camera_prior is None:
            fail("camera_prior_dropout", "drops camera-prior tokens, so it needs camera_prior on")
        for name, low in (("num_orientation_bins", 2), ("cue_num_frequencies", 1), ("pointer_key_dim", 1)):
            if not is_int(getattr(self, name), low):
                fail(name, f"must be an int >= {low}")
        for name in (
            "orientation_sigma_bins",
            "bev_loss_weight",
            "situation_loss_weight",
            "orientation_loss_weight",
            "recognition_loss_weight",
            "recognition_background_weight",
            "anchor_loss_weight",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                fail(name, "must be a finite number >= 0")
        if self.orientation_sigma_bins <= 0:
            fail("orientation_sigma_bins", "must be > 0")
        if self.cue_depth_error is not None:
            from loc3r.core.geometry import GeometryError, check_depth_error

            try:
                self.cue_depth_error = check_depth_error(self.cue_depth_error, "Loc3rConfig.cue_depth_error")
            except GeometryError as err:
                raise ValueError(str(err)) from err
        classes = self.recognition_classes
        if classes is not None and (
            not isinstance(classes, list | tuple)
            or len(classes) < 2
            or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)
        ):
            fail("recognition_classes", "must be a list of >= 2 distinct non-empty names")
        if self.recognition_objective and classes is None:
            fail("recognition_classes", "must be given when recognition_objective is on")

    # ----------------------------------------------------------------------------------------------------------
    @property
    def layout_enabled(self) -> bool:
        """The layout objective runs only when switched on AND its weight is non-zero."""
        return bool(self.layout_objective) and self.bev_loss_weight > 0

    @property
    def pointer_heads(self) -> bool:
        """The situation heads are the pointer heads (ours): they read the layout head's per-token BEV positions."""
        return self.situation_loss_enabled and self.situation_head == "pointer"

    @property
    def layout_head_enabled(self) -> bool:
        """The layout head exists when its objective is on, or when the pointer heads read it (then it learns only
        through the situation loss unless the layout objective is on too)."""
        return self.layout_enabled or self.pointer_heads

    @property
    def oracle_vision(self) -> bool:
        """Either diagnostic oracle input: the vision tower is not run, tokens are object names + points."""
        return self.vision_input in ("oracle_objects", "oracle_layout")

    @property
    def anchor_loss_enabled(self) -> bool:
        return self.pointer_heads and self.anchor_loss_weight > 0

    @property
    def situation_enabled(self) -> bool:
        """The situation tokens/heads exist when the objective is on (the loss also needs a non-zero weight)."""
        return bool(self.situation_objective)

    @property
    def situation_loss_enabled(self) -> bool:
        return self.situation_enabled and self.situation_loss_weight > 0

    @property
    def orientation_loss_enabled(self) -> bool:
        return self.situation_loss_enabled and self.orientation_loss_weight > 0

    @property
    def recognition_enabled(self) -> bool:
        """The per-token recognition objective runs only when switched on AND its weight is non-zero."""
        return bool(self.recognition_objective) and self.recognition_loss_weight > 0

    @property
    def text_hidden_size(self) -> int:
        """Width of the LLM hidden states (what the heads read)."""
        return int(self.vlm_config.get_text_config().hidden_size)

    def get_text_config(self, *args: Any, **kwargs: Any) -> PreTrainedConfig:
        """The LLM config of the backbone (used by transformers utilities such as embedding resizing)."""
        return self.vlm_config.get_text_config(*args, **kwargs)
