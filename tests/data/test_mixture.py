"""Mixture sampling, sharding, evaluation shards and max_samples subsets (loc3r.data.mixture / registry)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from torch.utils.data import Dataset

from loc3r.data.mixture import EvalShardSampler, MixtureDataset, MixtureSampler, ShardedBatchSampler


class _Range(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def test_mixture_proportions_and_determinism() -> None:
    mix = MixtureDataset([_Range(10), _Range(50)], weights=[3.0, 1.0])
    sampler = MixtureSampler(mix, samples_per_epoch=40, seed=5)
    order = sampler.indices(0)
    which = Counter(mix.locate(int(i))[0] for i in order)
    assert which == {0: 30, 1: 10}  # exact proportions
    # dataset 0 (10 samples, 30 draws) is cycled through full permutations: every sample 3 times
    assert Counter(int(i) for i in order if i < 10) == dict.fromkeys(range(10), 3)
    assert np.array_equal(order, MixtureSampler(mix, 40, seed=5).indices(0))
    assert not np.array_equal(order, sampler.indices(1))
    assert mix[12] == 2 and mix[3] == 3


def test_sharded_batches_disjoint_and_resume() -> None:
    mix = MixtureDataset([_Range(23)])
    sampler = MixtureSampler(mix, seed=0)
    shards = [list(ShardedBatchSampler(sampler, 2, num_replicas=2, rank=r, epoch=1)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5  # 23 // 4 global batches, tail dropped
    flat = [i for s in shards for b in s for i in b]
    assert len(flat) == len(set(flat)) == 20
    resumed = list(ShardedBatchSampler(sampler, 2, num_replicas=2, rank=1, epoch=1, start_batch=3))
    assert resumed == shards[1][3:]


def test_eval_shard_sampler_pads_equal_counts() -> None:
    samplers = [EvalShardSampler(5, 2, num_replicas=2, rank=r) for r in range(2)]
    batches = [list(s) for s in samplers]
    assert [len(b) for b in batches] == [2, 2]
    assert samplers[0].num_real_batches == 2 and samplers[1].num_real_batches == 1
    real = [i for s, b in zip(samplers, batches, strict=True) for batch in b[: s.num_real_batches] for i in batch]
    assert sorted(real) == [0, 1, 2, 3, 4]


def test_max_samples_subset_is_spread_and_records_follow() -> None:
    from torch.utils.data import ConcatDataset

    from loc3r.data.mixture import dataset_records
    from loc3r.data.registry import SubsetDataset as _Subset

    class WithRecords(_Range):
        def __init__(self, n: int, tag: str) -> None:
            super().__init__(n)
            self.records = [f"{tag}{i}" for i in range(n)]

    both = ConcatDataset([WithRecords(6, "a"), WithRecords(4, "b")])
    sub = _Subset(both, 5)
    assert [sub[i] for i in range(5)] == [0, 2, 4, 0, 2]  # indices 0 2 4 6 8: both parts represented
    assert dataset_records(sub) == ["a0", "a2", "a4", "b0", "b2"]
    assert dataset_records(MixtureDataset([_Range(3)])) is None  # no records -> caller reads samples
