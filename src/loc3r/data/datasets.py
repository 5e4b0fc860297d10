"""Transitional: the names that lived here before the split of this module by concern (issue 10).

New code imports from :mod:`loc3r.data.registry` (dataset kinds), :mod:`loc3r.data.builders` (the on-disk
formats), :mod:`loc3r.data.mixture` (mixture and samplers) and :mod:`loc3r.data.spec` (``DatasetSpec``). This
module only re-exports them (no import side effects) until the last callers (the demo scripts being edited for
issue 9) move; then it goes.
"""

from loc3r.data.builders import (
    SYNTH_TASKS,
    SynthVSIDataset,
    build_msqa,
    build_scanqa,
    build_sqa3d,
    build_synth,
    build_synth_pretrain,
    build_vsibench,
)
from loc3r.data.mixture import EvalShardSampler, MixtureDataset, MixtureSampler, ShardedBatchSampler, dataset_records
from loc3r.data.registry import DATASET_BUILDERS, SubsetDataset, build_dataset, register_dataset

__all__ = [
    "DATASET_BUILDERS",
    "SYNTH_TASKS",
    "EvalShardSampler",
    "MixtureDataset",
    "MixtureSampler",
    "ShardedBatchSampler",
    "SubsetDataset",
    "SynthVSIDataset",
    "build_dataset",
    "build_msqa",
    "build_scanqa",
    "build_sqa3d",
    "build_synth",
    "build_synth_pretrain",
    "build_vsibench",
    "dataset_records",
    "register_dataset",
]
