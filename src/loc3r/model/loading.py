"""The two ways to a loc3r model: from a config (:func:`build_model`) and from a checkpoint (:func:`load_model`).

Every consumer builds its model through one of them: the training recipe (:mod:`loc3r.train.builders`), the memory
estimate (on the ``meta`` device), evaluation, inference, the lmms-eval plugin, the demo, the base export and
``loc3r import`` (its check). Errors name the directory or the config field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

#: ``model.dtype`` of a recipe -> torch dtype
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _is_loc3r_checkpoint(path: Any) -> bool:
    """A loc3r checkpoint directory (``config.json`` with ``model_type: loc3r``), not a Hugging Face backbone one."""
    import json

    config = Path(path) / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type") == "loc3r"
    except (OSError, ValueError):
        return False


def _check_backbone(model: Any, backbone: str, source: Any, holds: bool) -> None:
    if model.config.backbone != backbone:
        what = f"holds a {model.config.backbone!r} model" if holds else f"is a {model.config.backbone!r} config"
        raise ValueError(f"model.backbone is {backbone!r} but {source} {what}")


def build_model(
    cfg: Any, corpus: list[str] | None = None, tokenizer: Any = None, seed: int = 0, weights: bool = True
) -> Any:
    """The model of a recipe's ``model`` section (:class:`loc3r.train.config.ModelConfig`); it carries its tokenizer
    (saved with every checkpoint).

    ``init = "tiny"``: a byte-level BPE tokenizer trained with ``tokenizers`` on ``corpus`` (vocabulary
    ``tiny.vocab_size``, default 512; a given ``tokenizer`` — the one saved in the checkpoint being resumed — is used
    instead) and a randomly initialised tiny model of the backbone's real HF class (the other ``tiny`` keys go to the
    backbone's tiny config); ``init = "pretrained"``: tokenizer and weights of the local ``pretrained_dir``: a loc3r
    checkpoint such as the shipped base (:func:`load_model` with the recipe's objectives) or a Hugging Face backbone
    checkpoint; ``init = "random"``: the real architecture of ``config_file`` with random weights and a tiny tokenizer
    for the placeholders. ``weights=False`` (the memory estimate, on the ``meta`` device): a ``pretrained`` backbone
    is built from its config with random weights, and a given ``tokenizer`` supplies the placeholders.

    ``cfg.loc3r`` fields go to :class:`~loc3r.model.configuration_loc3r.Loc3rConfig`, which validates them (unknown
    keys are rejected; the error is re-raised naming ``model.loc3r``).
    """
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as Model
    from loc3r.model.tokenizer import build_tiny_tokenizer

    loc3r_kwargs, dtype = dict(cfg.loc3r), DTYPES[cfg.dtype]
    random_from = cfg.config_file if cfg.init == "random" else None
    if not weights and cfg.init == "pretrained":
        random_from = Path(cfg.pretrained_dir)
    try:
        if cfg.init == "tiny":
            tiny = dict(cfg.tiny)
            vocab_size = int(tiny.pop("vocab_size", 512))
            if tokenizer is None:
                tokenizer = build_tiny_tokenizer(corpus or [], vocab_size=vocab_size, backbone=cfg.backbone)
            model = Model.tiny(cfg.backbone, tokenizer, seed=seed, vlm_overrides=tiny, **loc3r_kwargs)
            model.to(dtype)
        elif random_from is not None:
            if tokenizer is None:
                tokenizer = build_tiny_tokenizer(corpus or [], vocab_size=512, backbone=cfg.backbone)
            attn = cfg.attn_implementation if weights else None
            overrides = cfg.config_overrides or None
            model = Model.from_backbone_config(random_from, tokenizer, overrides, dtype, attn, seed, **loc3r_kwargs)
            _check_backbone(model, cfg.backbone, random_from, holds=False)
        elif _is_loc3r_checkpoint(cfg.pretrained_dir):  # a loc3r base, e.g. the shipped loc3r-tiny
            model = load_model(cfg.pretrained_dir, objectives=loc3r_kwargs, dtype=dtype)
            _check_backbone(model, cfg.backbone, cfg.pretrained_dir, holds=True)
        else:
            model = Model.from_backbone_pretrained(
                cfg.pretrained_dir, dtype=dtype, attn_implementation=cfg.attn_implementation, **loc3r_kwargs
            )
            _check_backbone(model, cfg.backbone, cfg.pretrained_dir, holds=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"building the model from model.* (model.loc3r = {loc3r_kwargs}): {err}") from err
    if cfg.attn_implementation is not None and weights:
        # dispatch to the backbone's text and vision sub-models too: a loaded backbone can otherwise keep an
        # unset implementation (None) in its sub-configs while the wrapper's config says "sdpa"
        model.set_attn_implementation(cfg.attn_implementation)
    return model


def load_model(model_dir: str | Path, objectives: dict[str, Any] | None = None, dtype: Any = None) -> Any:
    """A saved loc3r checkpoint directory (``final/`` or any ``save_pretrained`` output).

    Without ``objectives``: for prediction (evaluation, inference, the demo): strict ``from_pretrained``, the
    tokenizer saved with it required, its preprocessing checked, eval mode. With ``objectives``
    (:class:`~loc3r.model.configuration_loc3r.Loc3rConfig` fields): the start of a fine-tuning run from a base
    such as the shipped ``loc3r-tiny`` — the base's backbone, tokenizer and preprocessing with those objectives (a
    head both configurations have with the same shape keeps its weights; the others are new). ``dtype``: cast to it.
    """
    from loc3r.core.errors import ConfigError
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.processing import PROCESSOR_CONFIG_NAME, _check_normalisation

    path = Path(model_dir)
    if objectives is not None:
        return _fine_tuning_start(path, objectives, dtype)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: checkpoint directory does not exist")
    model = Loc3rForConditionalGeneration.from_pretrained(path)
    if model.tokenizer is None:
        raise FileNotFoundError(f"{path}: no tokenizer saved with the checkpoint (tokenizer.json)")
    try:
        _check_normalisation(dict(model.preprocessing or {}))
    except ConfigError as err:  # name the checkpoint's file (the check itself does not know it)
        raise ConfigError(f"{path / PROCESSOR_CONFIG_NAME}: {err}") from None
    if dtype is not None:
        model.to(dtype)
    model.eval()
    return model


def _fine_tuning_start(base_dir: Path, objectives: dict[str, Any], dtype: Any) -> Any:
    """The base's backbone (vision tower, projector, LLM), tokenizer and preprocessing with ``objectives``; a head
    both configurations have with the same shape keeps the base's weights; the others are new, and the base's heads
    the new model does not use (its recognition head) are dropped."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as Model

    base = Model.from_pretrained(base_dir)
    config = Model._make_config(base.config.backbone, base.config.vlm_config, base.tokenizer, **objectives)
    model = Model(config, vlm=base.vlm)
    own = model.state_dict()
    kept = {k: v for k, v in base.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    model.tokenizer = base.tokenizer
    model.preprocessing = dict(base.preprocessing or {})
    if dtype is not None:
        model.to(dtype)
    return model
