"""The typed description of one dataset of a recipe's mixture or of an evaluation config (``data:`` entries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from loc3r.core.config import StrictConfig


class DatasetSpec(StrictConfig):
    """One dataset of a (weighted) mixture.

    ``kind`` names a builder of :mod:`loc3r.data.registry` (``synth``, ``sqa3d``, ...);
    ``root`` is its on-disk root, ``split`` the split; ``weight`` is the relative sampling weight in the
    mixture; ``options`` are passed to that builder (e.g. ``tasks`` for SynthRooms, ``scannet_root``
    for SQA3D) and checked by it.
    """

    kind: str
    root: Path
    split: str = "train"
    weight: float = Field(1.0, gt=0.0)
    max_samples: int | None = Field(None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
