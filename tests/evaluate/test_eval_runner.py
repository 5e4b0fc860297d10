"""Evaluation tasks and runner: pose-text round trip, shards, merge, scoring of hand-made records, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loc3r.benchmarks.synthrooms.task import score_synth
from loc3r.data.schema import SampleError
from loc3r.data.text_localization import format_pose_text, parse_pose_text
from loc3r.evaluate.runner import merge_shards, parse_shard, read_jsonl, shard_indices, write_jsonl


@settings(max_examples=100, deadline=None)
@given(
    x=st.floats(-20, 20, allow_nan=False),
    y=st.floats(-20, 20, allow_nan=False),
    yaw=st.floats(-math.pi, math.pi, allow_nan=False),
)
def test_pose_text_round_trip(x: float, y: float, yaw: float) -> None:
    text = format_pose_text([x, y], yaw)
    xy, yaw2 = parse_pose_text(text)
    assert np.all(np.abs(xy - [x, y]) <= 0.05 + 1e-9)
    err = abs((np.degrees(yaw2 - yaw) + 180) % 360 - 180)
    assert err <= 0.5 + 1e-6


def test_pose_text_parse_variants_and_garbage() -> None:
    xy, yaw = parse_pose_text("I think x=1.5 y=-2 yaw=90 roughly")
    assert xy.tolist() == [1.5, -2.0] and yaw == pytest.approx(math.pi / 2)
    assert parse_pose_text("x 1.0 y") is None
    assert parse_pose_text("") is None and parse_pose_text(None) is None


def test_shards_are_disjoint_and_cover() -> None:
    parts = [shard_indices(17, i, 4) for i in range(4)]
    flat = sorted(i for p in parts for i in p)
    assert flat == list(range(17))
    assert parse_shard("1/3") == (1, 3)
    with pytest.raises(ValueError, match="0 <= i < n"):
        parse_shard("3/3")
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("two")


def _loc(sample_id: str, gt: list[float], gt_yaw: float, pred: list[float] | None, yaw: float | None) -> dict:
    return {
        "set": "loc",
        "split": "test",
        "sample_id": sample_id,
        "scene_id": "s0" if sample_id < "c" else "s1",
        "answer": None,
        "references": [],
        "seconds": 0.1,
        "gt_xy_bev": gt,
        "gt_yaw_bev": gt_yaw,
        "position_bev": pred,
        "yaw_bev": yaw,
    }


def test_score_synth_hand_computed() -> None:
    records = [
        _loc("a", [0, 0], 0.0, [0.3, 0.0], math.radians(10)),  # 0.3 m, 10 deg: all hit
        _loc("b", [1, 1], 0.0, [1.0, 1.7], math.radians(20)),  # 0.7 m, 20 deg: 1.0 m and 30 deg hit
        _loc("c", [2, 2], 1.0, None, None),  # unparsed -> wrong
        {"set": "qa", "split": "test", "sample_id": "q1", "scene_id": "s0", "answer": "The Sofa",
         "references": ["sofa"], "seconds": 0.2},
        {"set": "qa", "split": "test", "sample_id": "q2", "scene_id": "s0", "answer": "bed",
         "references": ["sofa"], "seconds": 0.2},
        {"set": "vsi", "split": "test", "sample_id": "v1", "scene_id": "s0", "answer": "B", "references": ["B"],
         "seconds": 0.1, "id": "v1", "question_type": "route_planning", "ground_truth": "B", "prediction": "B."},
    ]  # fmt: skip
    scores = score_synth(records, bins={"s0": "easy", "s1": "hard"})
    t = scores["test"]
    assert t["acc@0.5m"] == pytest.approx(100 / 3) and t["acc@1.0m"] == pytest.approx(200 / 3)
    assert t["acc@15deg"] == pytest.approx(100 / 3) and t["acc@30deg"] == pytest.approx(200 / 3)
    assert t["unparsed_loc"] == 1 and t["em"] == 50.0 and t["route_planning"] == 100.0
    assert scores["test/hard"]["acc@1.0m"] == 0.0 and scores["test/easy"]["acc@1.0m"] == 100.0


def test_jsonl_merge_and_errors(tmp_path: Path) -> None:
    a = [_loc("a", [0, 0], 0.0, [0, 0], 0.0)]
    b = [_loc("b", [0, 0], 0.0, [0, 0], 0.0)]
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    assert [r["sample_id"] for r in merge_shards([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])] == ["a", "b"]
    with pytest.raises(SampleError, match="overlapping shards"):
        merge_shards([tmp_path / "a.jsonl", tmp_path / "a.jsonl"])
    (tmp_path / "bad.jsonl").write_text(json.dumps(a[0]) + "\n{not json\n")
    with pytest.raises(SampleError, match="bad.jsonl line 2"):
        read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl")
