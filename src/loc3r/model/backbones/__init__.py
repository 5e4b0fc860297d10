"""Registry of backbone adapters.

``get_backbone("qwen2_5_vl")`` returns the adapter of a HF video-VLM family. The built-in adapters live in
this package, one module each; a new backbone is ONE new module that subclasses
:class:`~loc3r.model.backbones.base.BackboneAdapter` and decorates it with :func:`register_backbone` (modules of
this package are imported on first use, so dropping the file here is enough; an adapter defined elsewhere only
has to be imported before use). The registry and :func:`register_backbone` are in
:mod:`~loc3r.model.backbones.base`, which the adapters import (never this package: it imports them).
"""

from __future__ import annotations

import importlib
import pkgutil

from loc3r.model.backbones.base import (
    _REGISTRY,
    BackboneAdapter,
    ChatTemplate,
    TokenKind,
    VideoEncoding,
    VisionFeatures,
    register_backbone,
)

__all__ = ["BackboneAdapter", "ChatTemplate", "TokenKind", "VideoEncoding", "VisionFeatures",
           "register_backbone", "get_backbone", "available_backbones"]  # fmt: skip

_DISCOVERED = False


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


def available_backbones() -> list[str]:
    """Names of all registered backbones."""
    _discover()
    return sorted(_REGISTRY)


def get_backbone(name: str) -> BackboneAdapter:
    """A fresh adapter instance for ``name``; unknown names give an error listing the known ones."""
    _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown backbone {name!r}; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()
