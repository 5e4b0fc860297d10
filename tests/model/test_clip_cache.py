"""The processor's per-clip cache: many questions on one clip give the same batches with it as without it, a clip
that differs in anything the clip work depends on (frames, poses, points) is not served from it, and the memory
budget is kept."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import make_clip, tiny_model
from loc3r.core.geometry import MONOCULAR_DEPTH_ERROR


def _questions_on_two_clips() -> list:
    samples = []
    for start_yaw in (0.3, 1.1):
        for k, (question, answer) in enumerate(
            [("What is on my left?", "The red wall."), ("How far is the door?", "2 meters."), ("Color?", "Red.")]
        ):
            samples.append(
                make_clip(
                    num_frames=4,
                    size=56,
                    sample_id=f"y{start_yaw}-q{k}",
                    question=question,
                    answer=answer,
                    agent_position=(0.2 * k, -0.5, 0.0),
                    agent_yaw=0.5 * k,
                    start_yaw=start_yaw,
                )  # fmt: skip
            )
    return samples


@pytest.mark.parametrize(
    "flags",
    [
        {"layout_objective": True, "situation_objective": True},
        {"situation_objective": True, "cue_injection": True, "cue_depth_error": dict(MONOCULAR_DEPTH_ERROR)},
    ],
    ids=["loc3r", "cue_injection_est"],
)
def test_cached_batches_equal_uncached(tiny_tokenizer, flags) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", **flags)
    cached = model.build_processor(mode="train")
    uncached = model.build_processor(mode="train", clip_cache_mb=0)
    samples = _questions_on_two_clips()
    for order in (range(6), [5, 0, 3, 1, 4, 2]):
        batch = [samples[i] for i in order]
        for lo in range(0, 6, 2):
            a, b = cached(batch[lo : lo + 2]), uncached(batch[lo : lo + 2])
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key
    assert cached.clip_cache.misses == 2 and cached.clip_cache.hits == 10  # 2 clips, 12 samples
    assert uncached.clip_cache.hits == uncached.clip_cache.misses == 0


def test_a_clip_with_other_poses_or_points_is_not_served_from_the_cache(tiny_tokenizer) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", layout_objective=True, situation_objective=True)
    processor = model.build_processor(mode="train")
    sample = make_clip(num_frames=4, size=56)
    moved = dataclasses.replace(sample, poses=sample.poses.copy())
    moved.poses[:, 0, 3] += 0.5  # the same frames, the camera path shifted: other layout targets
    no_points = dataclasses.replace(sample, points=None)
    first, second, third = processor([sample]), processor([moved]), processor([no_points])
    assert processor.clip_cache.hits == 0 and processor.clip_cache.misses == 3
    valid = first["layout_valid"]
    assert not torch.equal(first["layout_targets"][valid], second["layout_targets"][valid])
    assert not third["layout_valid"].any()


def test_the_memory_budget_is_kept(tiny_tokenizer) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", layout_objective=True, situation_objective=True)
    processor = model.build_processor(mode="train", clip_cache_mb=0.05)  # about one 4-frame 56 px clip
    for start_yaw in np.linspace(0.0, 1.0, 4):
        processor([make_clip(num_frames=4, size=56, start_yaw=float(start_yaw))])
    assert len(processor.clip_cache._entries) == 1  # the newest one, whatever its size
