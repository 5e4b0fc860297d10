"""The weighted mixture of datasets and the deterministic, shardable, resumable sampling order of the trainer.

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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from loc3r.data.registry import SubsetDataset
from loc3r.data.schema import ClipSample


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
        weights = [1.0] * len(datasets) if weights is None else list(weights)  # one per dataset
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


def dataset_records(dataset: Dataset) -> list[Any] | None:
    """The loader records behind a dataset, in index order, when every part exposes ``records`` (used to
    read texts without decoding frames); None otherwise."""
    from torch.utils.data import ConcatDataset

    if isinstance(dataset, MixtureDataset | ConcatDataset):
        parts = [dataset_records(d) for d in dataset.datasets]
        return None if any(p is None for p in parts) else [r for p in parts for r in p]  # type: ignore[union-attr]
    if isinstance(dataset, SubsetDataset):
        base = dataset_records(dataset.base)
        return None if base is None else [base[i] for i in dataset.indices]
    records = getattr(dataset, "records", None)
    return list(records) if records is not None else None
