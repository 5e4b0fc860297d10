"""The loc3r model: the HF-style config and model, backbone adapters, the processor, cue injection (the objectives'
targets, heads and losses are in :mod:`loc3r.objectives`).

Two ways to a model: ``loc3r.model.build_model(recipe model section)`` and ``loc3r.model.load_model(checkpoint)``
(:mod:`loc3r.model.loading`; imported on first use, so ``import loc3r.model`` stays light).
"""

from typing import Any

__all__ = ["build_model", "load_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from loc3r.model import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'loc3r.model' has no attribute {name!r}")
