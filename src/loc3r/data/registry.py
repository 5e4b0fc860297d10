"""The registry of dataset *kinds*: a recipe's ``data.train[*].kind`` (or an evaluation config's ``data.kind``)
-> the builder that turns a :class:`~loc3r.data.spec.DatasetSpec` into a ``Dataset[ClipSample]``.

There is no list of kinds here: every benchmark folder's ``reader.py`` exports ``DATASET_KINDS: {kind: builder}``
(:func:`loc3r.benchmarks.benchmark_modules`), imported on first use, so importing this module imports no loader (and
nothing above ``loc3r.data``). A kind defined elsewhere (a benchmark script, a plug-in) registers itself with
:func:`register_dataset`; it only has to be imported before :func:`build_dataset` is called. A new built-in kind
is one builder in its benchmark folder's ``reader.py`` and one entry of its ``DATASET_KINDS``.

A builder is ``builder(spec, num_frames=..., **options) -> Dataset``: ``spec.options`` become keyword arguments,
checked against the builder's signature here so that a typo is an error naming the option and the kind.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

from torch.utils.data import Dataset

from loc3r.data.schema import ClipSample, SampleError

DatasetBuilder = Callable[..., Dataset]

#: kind -> builder, for kinds registered with :func:`register_dataset` (they win over a benchmark folder's kind)
#: and built-in kinds already resolved
DATASET_BUILDERS: dict[str, DatasetBuilder] = {}


@cache
def builtin_kinds() -> dict[str, DatasetBuilder]:
    """``{kind: builder}`` of every benchmark folder's ``reader.py`` (``DATASET_KINDS``; imported now, once)."""
    from loc3r.benchmarks import benchmark_modules

    kinds: dict[str, DatasetBuilder] = {}
    for module_name in benchmark_modules("reader"):
        for kind, builder in getattr(importlib.import_module(module_name), "DATASET_KINDS", {}).items():
            if kind in kinds:  # two folders claim one kind: a packaging bug, not a user error
                raise RuntimeError(
                    f"dataset kind {kind!r} of {module_name} is also defined by {kinds[kind].__module__}"
                )
            kinds[kind] = builder
    return kinds


def register_dataset(kind: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering ``builder(spec, num_frames=..., **options) -> Dataset[ClipSample]`` as ``kind``."""

    def wrap(fn: DatasetBuilder) -> DatasetBuilder:
        DATASET_BUILDERS[kind] = fn
        return fn

    return wrap


def available_kinds() -> list[str]:
    """Every kind :func:`build_dataset` knows (built-in and registered)."""
    return sorted(set(builtin_kinds()) | set(DATASET_BUILDERS))


def get_builder(kind: str, source: str = "config") -> DatasetBuilder:
    """The builder of ``kind`` (the readers are imported now); an unknown kind is a :class:`SampleError`."""
    builder = DATASET_BUILDERS.get(kind)
    if builder is None and kind in builtin_kinds():
        builder = DATASET_BUILDERS[kind] = builtin_kinds()[kind]
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
