"""The registry of dataset *kinds*: a recipe's ``data.train[*].kind`` (or an evaluation config's ``data.kind``)
-> the builder that turns a :class:`~loc3r.data.spec.DatasetSpec` into a ``Dataset[ClipSample]``.

No import side effects: the built-in kinds are a table of ``"module:function"`` names (:data:`BUILTIN_KINDS`),
imported on first use, so importing this module imports no loader (and nothing above ``loc3r.data``). A kind
defined elsewhere (a benchmark script, a plug-in) registers itself with :func:`register_dataset`; it only has to
be imported before :func:`build_dataset` is called. A new built-in kind is one builder function in ``loc3r.data``
plus one line in :data:`BUILTIN_KINDS`.

A builder is ``builder(spec, num_frames=..., **options) -> Dataset``: ``spec.options`` become keyword arguments,
checked against the builder's signature here so that a typo is an error naming the option and the kind.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from loc3r.data.schema import ClipSample, SampleError

__all__ = [
    "BUILTIN_KINDS",
    "DATASET_BUILDERS",
    "SubsetDataset",
    "available_kinds",
    "build_dataset",
    "get_builder",
    "register_dataset",
]

DatasetBuilder = Callable[..., Dataset]

#: kind -> ``"module:function"`` of the built-in builders (imported lazily, on first use of the kind).
BUILTIN_KINDS: dict[str, str] = {
    "sqa3d": "loc3r.data.builders:build_sqa3d",
    "scanqa": "loc3r.data.builders:build_scanqa",
    "msqa": "loc3r.data.builders:build_msqa",
    "vsibench": "loc3r.data.builders:build_vsibench",
    "viewspatial": "loc3r.data.viewspatial:build_viewspatial",
    "vsisuper": "loc3r.data.vsisuper:build_vsisuper",
    "synth": "loc3r.data.builders:build_synth",
    "synth_pretrain": "loc3r.data.builders:build_synth_pretrain",
    "synth_loc_text": "loc3r.data.text_localization:build_synth_loc_text",
}

#: kind -> builder, for kinds registered with :func:`register_dataset` and built-in kinds already resolved.
DATASET_BUILDERS: dict[str, DatasetBuilder] = {}


def register_dataset(kind: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering ``builder(spec, num_frames=..., **options) -> Dataset[ClipSample]`` as ``kind``."""

    def wrap(fn: DatasetBuilder) -> DatasetBuilder:
        DATASET_BUILDERS[kind] = fn
        return fn

    return wrap


def available_kinds() -> list[str]:
    """Every kind :func:`build_dataset` knows (built-in and registered)."""
    return sorted(set(BUILTIN_KINDS) | set(DATASET_BUILDERS))


def get_builder(kind: str, source: str = "config") -> DatasetBuilder:
    """The builder of ``kind`` (a built-in one is imported now); an unknown kind is a :class:`SampleError`."""
    builder = DATASET_BUILDERS.get(kind)
    if builder is None and kind in BUILTIN_KINDS:
        module_name, name = BUILTIN_KINDS[kind].split(":")
        builder = DATASET_BUILDERS[kind] = getattr(importlib.import_module(module_name), name)
    if builder is None:
        raise SampleError(f"{source}: unknown dataset kind {kind!r}; known kinds: {available_kinds()}")
    return builder


def build_dataset(spec: Any, num_frames: int, source: str = "config") -> Dataset:
    """Build the dataset of one :class:`~loc3r.data.spec.DatasetSpec` (kind, root, split, options)."""
    builder = get_builder(spec.kind, source)
    params = inspect.signature(builder).parameters
    unknown = sorted(k for k in spec.options if k not in params or k in ("spec", "num_frames"))
    if unknown:
        known = sorted(k for k in params if k not in ("spec", "num_frames"))
        raise SampleError(f"{source}: unknown option(s) {unknown} for dataset kind {spec.kind!r}; known: {known}")
    dataset = builder(spec, num_frames=num_frames, **spec.options)
    if spec.max_samples is not None and len(dataset) > spec.max_samples:
        dataset = SubsetDataset(dataset, spec.max_samples)
    if len(dataset) == 0:
        raise SampleError(f"{source}: dataset {spec.kind!r} at {spec.root} (split {spec.split!r}) is empty")
    return dataset


class SubsetDataset(Dataset):
    """``n`` samples spread evenly over a dataset (``max_samples``): index ``floor(k · len / n)``.

    Deterministic (no RNG) yet representative of every part of a concatenated dataset, unlike a prefix.
    """

    def __init__(self, base: Dataset, n: int) -> None:
        self.base = base
        self.indices = [(k * len(base)) // n for k in range(n)]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> ClipSample:
        return self.base[self.indices[index]]
