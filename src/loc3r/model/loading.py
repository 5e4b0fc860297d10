"""Load a saved loc3r checkpoint directory for prediction (evaluation, inference, the demo).

One function so that every consumer loads the same way: strict ``from_pretrained`` of the directory, the
tokenizer saved with it required, eval mode. Errors name the directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["load_model"]


def load_model(model_dir: str | Path) -> Any:
    """Load a loc3r checkpoint directory (``final/`` or any ``save_pretrained`` output) in eval mode."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: checkpoint directory does not exist")
    model = Loc3rForConditionalGeneration.from_pretrained(path)
    if model.tokenizer is None:
        raise FileNotFoundError(f"{path}: no tokenizer saved with the checkpoint (tokenizer.json)")
    from loc3r.core.errors import ConfigError
    from loc3r.model.processing import PROCESSOR_CONFIG_NAME, _check_normalisation

    try:
        _check_normalisation(dict(model.preprocessing or {}))
    except ConfigError as err:  # name the checkpoint's file (the check itself does not know it)
        raise ConfigError(f"{path / PROCESSOR_CONFIG_NAME}: {err}") from None
    model.eval()
    return model
