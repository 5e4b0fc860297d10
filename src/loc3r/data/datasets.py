"""Map-style torch Datasets of :class:`~loc3r.data.schema.ClipSample`, their weighted mixture, and the
deterministic, shardable, resumable sampling order used by the trainer.

Design (why it looks like this):

* **Deterministic per index.** ``dataset[i]`` is a pure function of ``i`` (and the dataset's fixed
  settings: root, split, ``num_frames``): the loaders sample T frames *uniformly* over a scene's valid
  frames (:func:`loc3r.data.video.uniform_indices`), with no random augmentation. Any worker, any
  process, any resumed run sees the same sample for the same index.
* **The order lives in the sampler, not the dataset.** :class:`MixtureSampler` turns ``(seed, epoch)``
  into the list of ``(dataset, index)`` pairs of one mixture epoch with exact proportions
  ``n_k = round(N · w_k / Σw)`` (largest-remainder rounding), drawing without replacement inside a
  dataset until it is exhausted (then a fresh permutation), and shuffling the result.
* **Sharding and resume in batches.** :class:`ShardedBatchSampler` cuts an epoch into *global* batches of
  ``batch_size · num_replicas`` samples (the incomplete tail is dropped so every process runs the same
  number of steps, which DDP/FSDP collectives need) and gives process ``r`` the slice ``r`` of each; it can
  start at any micro-batch ``start_batch``, so a resumed run skips exactly the consumed batches *without
  loading them*.

Dataset builders are registered per ``kind`` (the ``data.train[*].kind`` of a recipe) with
:func:`register_dataset`; :func:`build_dataset` builds one from a :class:`~loc3r.train.config.DatasetSpec`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from loc3r.data.schema import ClipSample, SampleError

__all__ = [
    "DATASET_BUILDERS",
    "register_dataset",
    "build_dataset",
    "MixtureDataset",
    "MixtureSampler",
    "ShardedBatchSampler",
    "EvalShardSampler",
    "dataset_records",
    "SynthVSIDataset",
    "SYNTH_TASKS",
    "build_synth",
    "build_sqa3d",
    "build_scanqa",
    "build_msqa",
    "build_vsibench",
]


# ---------------------------------------------------------------- registry of on-disk dataset kinds

DatasetBuilder = Callable[..., Dataset]
DATASET_BUILDERS: dict[str, DatasetBuilder] = {}


def register_dataset(kind: str) -> Callable[[DatasetBuilder], DatasetBuilder]:
    """Decorator registering ``builder(spec, num_frames=..., **options) -> Dataset[ClipSample]``."""

    def wrap(fn: DatasetBuilder) -> DatasetBuilder:
        DATASET_BUILDERS[kind] = fn
        return fn

    return wrap


def build_dataset(spec: Any, num_frames: int, source: str = "config") -> Dataset:
    """Build the dataset of one :class:`~loc3r.train.config.DatasetSpec` (kind, root, split, options)."""
    if spec.kind not in DATASET_BUILDERS:
        # Evaluation tasks register their own training kinds (e.g. ``synth_loc_text``); importing them here
        # (lazily: they import this module) lets any recipe name them without a special import.
        import loc3r.evaluate.tasks  # noqa: F401
    builder = DATASET_BUILDERS.get(spec.kind)
    if builder is None:
        raise SampleError(f"{source}: unknown dataset kind {spec.kind!r}; known kinds: {sorted(DATASET_BUILDERS)}")
    import inspect

    params = inspect.signature(builder).parameters
    unknown = sorted(k for k in spec.options if k not in params or k in ("spec", "num_frames"))
    if unknown:
        known = sorted(k for k in params if k not in ("spec", "num_frames"))
        raise SampleError(f"{source}: unknown option(s) {unknown} for dataset kind {spec.kind!r}; known: {known}")
    dataset = builder(spec, num_frames=num_frames, **spec.options)
    if spec.max_samples is not None and len(dataset) > spec.max_samples:
        dataset = _Subset(dataset, spec.max_samples)
    if len(dataset) == 0:
        raise SampleError(f"{source}: dataset {spec.kind!r} at {spec.root} (split {spec.split!r}) is empty")
    return dataset


class _Subset(Dataset):
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


def dataset_records(dataset: Dataset) -> list[Any] | None:
    """The loader records behind a dataset, in index order, when every part exposes ``records`` (used to
    read texts without decoding frames); None otherwise."""
    from torch.utils.data import ConcatDataset

    if isinstance(dataset, MixtureDataset | ConcatDataset):
        parts = [dataset_records(d) for d in dataset.datasets]
        return None if any(p is None for p in parts) else [r for p in parts for r in p]  # type: ignore[union-attr]
    if isinstance(dataset, _Subset):
        base = dataset_records(dataset.base)
        return None if base is None else [base[i] for i in dataset.indices]
    records = getattr(dataset, "records", None)
    return list(records) if records is not None else None


# ---------------------------------------------------------------- mixture


class MixtureDataset(Dataset):
    """Several datasets behind one flat index space (like ``ConcatDataset``) plus their sampling weights.

    Flat index ``offsets[k] + i`` is sample ``i`` of dataset ``k``. The weights are used by
    :class:`MixtureSampler`; indexing itself is uniform and deterministic.
    """

    def __init__(
        self, datasets: Sequence[Dataset], weights: Sequence[float] | None = None, names: Sequence[str] | None = None
    ) -> None:
        if not datasets:
            raise ValueError("MixtureDataset needs at least one dataset")
        weights = [1.0] * len(datasets) if weights is None else list(weights)
        if len(weights) != len(datasets):
            raise ValueError(f"{len(weights)} weights for {len(datasets)} datasets")
        if any(not np.isfinite(w) or w <= 0 for w in weights):
            raise ValueError(f"mixture weights must be positive and finite, got {weights}")
        self.datasets = list(datasets)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.names = list(names) if names is not None else [f"dataset{k}" for k in range(len(datasets))]
        self.lengths = np.asarray([len(d) for d in self.datasets], dtype=np.int64)
        if (self.lengths == 0).any():
            empty = [self.names[k] for k in np.flatnonzero(self.lengths == 0)]
            raise ValueError(f"mixture datasets {empty} are empty")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def locate(self, index: int) -> tuple[int, int]:
        """Flat index -> ``(dataset k, index within k)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"mixture index {index} out of range [0, {len(self)})")
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return k, int(index - self.offsets[k])

    def __getitem__(self, index: int) -> ClipSample:
        k, i = self.locate(int(index))
        return self.datasets[k][i]


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers ``n_k >= 0`` summing to ``total`` closest to ``total · w_k / Σw`` (ties -> lower k)."""
    quota = total * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        order = np.argsort(-(quota - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


class MixtureSampler(Sampler[int]):
    """The flat-index order of one mixture epoch, a pure function of ``(seed, epoch)``.

    Dataset ``k`` contributes exactly ``n_k = round(N · w_k / Σw)`` samples (largest remainder), taken
    from successive random permutations of its indices (so without replacement until exhausted); the
    concatenation is shuffled. Call :meth:`set_epoch` before iterating (like ``DistributedSampler``).
    """

    def __init__(
        self, mixture: MixtureDataset, samples_per_epoch: int | None = None, seed: int = 0, shuffle: bool = True
    ) -> None:
        self.mixture = mixture
        self.num_samples = int(samples_per_epoch or len(mixture))
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0
        self.counts = _largest_remainder(self.num_samples, mixture.weights)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def indices(self, epoch: int | None = None) -> np.ndarray:
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.Generator(np.random.PCG64([self.seed, epoch]))
        parts = []
        for k, (count, length) in enumerate(zip(self.counts, self.mixture.lengths, strict=True)):
            if count == 0:
                continue
            reps = -(-int(count) // int(length))
            if self.shuffle:
                local = np.concatenate([rng.permutation(length) for _ in range(reps)])[:count]
            else:
                local = np.tile(np.arange(length), reps)[:count]
            parts.append(local + self.mixture.offsets[k])
        order = np.concatenate(parts)
        return rng.permutation(order) if self.shuffle else order

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


class ShardedBatchSampler(Sampler[list[int]]):
    """Micro-batches of one process for one epoch, optionally starting at micro-batch ``start_batch``.

    Global batch ``g`` = ``order[g·B·R : (g+1)·B·R]`` with ``B = batch_size``, ``R = num_replicas``;
    process ``rank`` gets ``order[g·B·R + rank·B : g·B·R + (rank+1)·B]``. The incomplete tail is dropped.
    """

    def __init__(
        self,
        sampler: MixtureSampler,
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        epoch: int = 0,
        start_batch: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.sampler, self.batch_size = sampler, int(batch_size)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.sampler) // (self.batch_size * self.num_replicas)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.sampler.indices(self.epoch)
        step = self.batch_size * self.num_replicas
        for g in range(self.start_batch, self.batches_per_epoch):
            lo = g * step + self.rank * self.batch_size
            yield order[lo : lo + self.batch_size].tolist()


class EvalShardSampler(Sampler[list[int]]):
    """Evaluation batches of one process over ``range(n)``: indices ``rank, rank + R, ...`` in batches of
    ``batch_size``, followed by *padding* batches (``[0]``) so that every process runs the same number of
    forward passes (FSDP / ZeRO-3 gather parameters inside forward, so a process that stops early would
    hang the others). The caller discards the results of batches ``>= num_real_batches``."""

    def __init__(self, n: int, batch_size: int, num_replicas: int = 1, rank: int = 0) -> None:
        if n <= 0:
            raise ValueError("EvalShardSampler needs a non-empty dataset")
        self.n, self.batch_size = int(n), int(batch_size)
        self.num_replicas, self.rank = int(num_replicas), int(rank)

    def _mine(self) -> list[int]:
        return list(range(self.rank, self.n, self.num_replicas))

    @property
    def num_real_batches(self) -> int:
        return -(-len(self._mine()) // self.batch_size)

    def __len__(self) -> int:
        per_process = -(-self.n // self.num_replicas)
        return -(-per_process // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        mine = self._mine()
        for lo in range(0, len(mine), self.batch_size):
            yield mine[lo : lo + self.batch_size]
        for _ in range(len(self) - self.num_real_batches):
            yield [0]


# ---------------------------------------------------------------- builders of the on-disk formats
#
# Each builder takes the recipe's DatasetSpec (kind, root, split) plus ``num_frames`` and the spec's
# ``options`` as keyword arguments; an unknown option is a TypeError that build_dataset turns into an error
# naming the option. Loader reports (skipped / malformed records) are logged, never silently dropped.

_log = logging.getLogger("loc3r.data")


def _size(value: Any, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return (int(value[0]), int(value[1]))
    raise SampleError(f"option {name!r} must be an int or [height, width], got {value!r}")


def _frame_source(
    root: Path,
    num_frames: int,
    image_size: Any,
    points_size: Any,
    scene_meta: str | None,
    scans_root: str | None,
    strict: bool,
) -> Any:
    from loc3r.data.scannet import ScanNetFrameSource, SceneMetaTable

    table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root) if scene_meta else None
    return ScanNetFrameSource(
        root,
        num_frames=num_frames,
        image_size=_size(image_size, "image_size"),
        points_size=_size(points_size, "points_size"),
        scene_meta=table,
        scans_root=scans_root,
        strict=strict,
    )


def _cached_or_frame_source(
    cache: str | None,
    scannet_root: str | None,
    kind: str,
    spec: Any,
    num_frames: int,
    image_size: Any,
    points_size: Any,
    scene_meta: str | None,
    scans_root: str | None,
    strict: bool,
) -> Any:
    """Frames from a ``loc3r prepare`` cache (option ``cache``) when given, else read from ``scannet_root``."""
    if cache is not None:
        from loc3r.data.cache import CachedFrameSource

        return CachedFrameSource(cache, num_frames, strict=strict)
    if scannet_root is None:
        raise SampleError(
            f"dataset {kind} at {spec.root}: option 'scannet_root' (the ScanNet frames) or 'cache' "
            "(a `loc3r prepare` output) is required"
        )
    return _frame_source(Path(scannet_root), num_frames, image_size, points_size, scene_meta, scans_root, strict)


def _log_report(report: Any, where: str) -> None:
    if report.errors or report.skips:
        _log.warning("%s: loaded with problems\n%s", where, report.summary())
    else:
        _log.info("%s: %s", where, dict(report.counts))


@register_dataset("sqa3d")
def build_sqa3d(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    convention: str = "sqa3d",
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    situation_choice: str | int = "main",
    task: str = "sqa3d",
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """SQA3D QA (question + annotation files in ``root``) on ScanNet frames in ``scannet_root``.

    ``convention = "loc3r_world"`` reads SynthRooms' SQA3D-format files (poses already in our world frame).
    """
    from loc3r.data.sqa3d import SQA3DDataset, load_sqa3d

    table = None
    if scene_meta:
        from loc3r.data.scannet import SceneMetaTable

        table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root)
    records, report = load_sqa3d(
        spec.root, spec.split, convention=convention, scene_meta=table, scans_root=scans_root, strict=strict
    )
    _log_report(report, f"sqa3d {spec.split} ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "sqa3d", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return SQA3DDataset(records, frames, situation_choice=situation_choice, task=task)


@register_dataset("scanqa")
def build_scanqa(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """ScanQA (``ScanQA_v1.0_{split}.json`` in ``root``) on ScanNet frames in ``scannet_root``."""
    from loc3r.data.scanqa import ScanQADataset, load_scanqa

    records, report = load_scanqa(spec.root, spec.split, strict=strict)
    _log_report(report, f"scanqa {spec.split} ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "scanqa", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return ScanQADataset(records, frames)


@register_dataset("msqa")
def build_msqa(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """MSQA (ScanNet part; ``root`` is the MSQA JSON file) on ScanNet frames in ``scannet_root``."""
    from loc3r.data.msqa import MSQADataset, load_msqa

    table = None
    if scene_meta:
        from loc3r.data.scannet import SceneMetaTable

        table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root)
    records, report = load_msqa(spec.root, scene_meta=table, strict=strict)
    _log_report(report, f"msqa ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "msqa", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return MSQADataset(records, frames)


@register_dataset("vsibench")
def build_vsibench(
    spec: Any,
    num_frames: int,
    video_root: str | None = None,
    question_types: list[str] | None = None,
    image_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """VSI-Bench records (``root``: a JSON/parquet file or folder) with videos under ``video_root``
    (``<dataset>/<scene_name>.mp4``); no poses, so no layout / situation targets."""
    from loc3r.data.vsibench import VSIBenchDataset, load_vsibench

    records, report = load_vsibench(spec.root, question_types=question_types, strict=strict)
    _log_report(report, f"vsibench ({spec.root})")
    if cache is not None:
        from loc3r.data.cache import CachedVSIBenchDataset
        from loc3r.data.video import LoadReport

        return CachedVSIBenchDataset(
            records, Path(cache), num_frames=num_frames, report=LoadReport("vsibench prepared clips", strict=strict)
        )
    root = Path(video_root) if video_root is not None else Path(spec.root)
    if root.is_file():
        root = root.parent
    return VSIBenchDataset(records, root, num_frames=num_frames, image_size=_size(image_size, "image_size"))


class SynthVSIDataset(Dataset):
    """SynthRooms' VSI-Bench-style records on the scan's posed frames (task ``"synth_vsi"``).

    Unlike real VSI-Bench (video only), a SynthRooms scan has exact poses and depth, so these samples
    carry the layout targets too; the question / options / answer are the records' own.
    """

    def __init__(self, records: Sequence[Any], frames: Any, task: str = "synth_vsi") -> None:
        self.records, self.frames, self.task = list(records), frames, task

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        record = self.records[index]
        clip = self.frames.clip(record.scene_name)
        return ClipSample(
            sample_id=f"{self.task}-{record.id}",
            scene_id=record.scene_name,
            task=self.task,
            frames=clip.frames,
            question=record.question,
            answer=record.ground_truth,
            answers=[record.ground_truth],
            options=None if record.options is None else list(record.options),
            poses=clip.poses,
            points=clip.points,
            frame_indices=clip.frame_ids,
            meta={"id": record.id, "dataset": record.dataset, "question_type": record.question_type},
        ).validate()


SYNTH_TASKS = ("situated", "vsi")


def _synth_vsi_records(path: Path, strict: bool = True) -> list[Any]:
    """SynthRooms' VSI-Bench-style JSONL records (``dataset: "synthrooms"``), read by the VSI-Bench loader
    (:func:`loc3r.data.vsibench.load_vsibench`), so both sources get the same validation. A malformed
    record raises a :class:`SampleError` naming file, record and field when ``strict``, else it is
    skipped and the loader report is logged."""
    from loc3r.data.vsibench import load_vsibench

    records, report = load_vsibench(path, strict=strict)
    _log_report(report, f"synth vsi ({path})")
    return records


@register_dataset("synth")
def build_synth(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = SYNTH_TASKS,
    image_size: Any = None,
    points_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """A SynthRooms directory (``loc3r synth --out DIR``; layout in :mod:`loc3r.data.synth.writer`).

    ``tasks``: ``situated`` = the SQA3D-format situations + questions of the split (poses in our world
    frame, read with ``convention="loc3r_world"``, task ``synth_situated``), ``vsi`` = the VSI-Bench-style
    records of the split on the scan's posed frames (task ``synth_vsi``). Splits: ``train``, ``val``,
    ``test``, ``test_novel_view``. ``points_size`` defaults to the rendered resolution.
    """
    from torch.utils.data import ConcatDataset

    from loc3r.data.sqa3d import SQA3DDataset, load_sqa3d
    from loc3r.data.synth.writer import read_index

    root = Path(spec.root)
    unknown = sorted(set(tasks) - set(SYNTH_TASKS))
    if unknown or not tasks:
        raise SampleError(f"dataset synth at {root}: option 'tasks' must be a non-empty subset of {SYNTH_TASKS}")
    try:
        index = read_index(root)
    except (OSError, ValueError, RuntimeError) as err:
        raise SampleError(f"dataset synth at {root}: not a SynthRooms directory ({err})") from err
    if spec.split not in index.get("splits", {}):
        raise SampleError(f"dataset synth at {root}: no split {spec.split!r} (has {sorted(index['splits'])})")
    scenes = index["splits"][spec.split]
    if points_size is None and scenes:
        first = index["scenes"][scenes[0]]
        points_size = (int(first["height"]), int(first["width"]))
    frames = _cached_or_frame_source(
        cache, str(root / "scans"), "synth", spec, num_frames, image_size, points_size, None, None, strict
    )
    parts: list[Dataset] = []
    if "situated" in tasks:
        records, report = load_sqa3d(root / "sqa3d", spec.split, convention="loc3r_world", strict=strict)
        _log_report(report, f"synth situated {spec.split} ({root})")
        if records:
            parts.append(SQA3DDataset(records, frames, task="synth_situated"))
    if "vsi" in tasks:
        records = _synth_vsi_records(root / "vsibench" / f"{spec.split}.jsonl", strict=strict)
        if records:
            parts.append(SynthVSIDataset(records, frames))
    if not parts:
        raise SampleError(f"dataset synth at {root}: split {spec.split!r} has no samples for tasks {list(tasks)}")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


@register_dataset("synth_pretrain")
def build_synth_pretrain(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = ("objects", "presence", "count", "color", "caption"),
    recognition_labels: bool = True,
) -> Dataset:
    """SynthRooms recognition pretraining tasks with no spatial supervision (:mod:`loc3r.data.synth.pretraining`):
    object listing in order of appearance, presence, counting, colour, captions, and per-pixel category labels for
    the recognition objective."""
    from loc3r.data.synth.pretraining import SynthPretrainDataset

    return SynthPretrainDataset(spec.root, spec.split, num_frames, tuple(tasks), recognition_labels)
