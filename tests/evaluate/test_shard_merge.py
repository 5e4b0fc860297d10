"""``loc3r eval --merge`` refuses incomplete, overlapping or mismatched shards and keeps the skipped samples
(issue 11 part 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loc3r.data.schema import SampleError


def _shard(out: Path, i: int, n: int, ids: list[str], settings: dict, skipped: list | None = None) -> Path:
    from loc3r.evaluate.runner import write_jsonl
    from loc3r.evaluate.shards import write_shard_info

    path = out / f"predictions-shard{i}of{n}.jsonl"
    write_jsonl(path, [{"set": "vsibench", "split": "test", "sample_id": s} for s in ids])
    skipped = skipped or []
    write_shard_info(path, shard=(i, n), total=10, assigned=len(ids) + len(skipped), predicted=len(ids),
                     skipped=skipped, settings=settings)  # fmt: skip
    return path


def test_merge_refuses_incomplete_overlapping_or_mismatched_shards(tmp_path: Path) -> None:
    from loc3r.evaluate.runner import merge_checked

    same = {"model": "abc", "frames": "8 uniformly sampled"}
    gone = [{"index": 9, "sample_id": "q9", "reason": "video is missing"}]
    a = _shard(tmp_path / "a", 0, 2, ["q0", "q2", "q4", "q6", "q8"], same)
    b = _shard(tmp_path / "a", 1, 2, ["q1", "q3", "q5", "q7"], same, gone)
    records, skipped, warnings, _ = merge_checked([a, b])
    assert len(records) == 9 and skipped == gone and warnings == []
    with pytest.raises(SampleError, match=r"shards \[1\] of 2 are missing"):
        merge_checked([a])
    other_model = _shard(tmp_path / "b", 1, 2, ["q1", "q3", "q5", "q7"], {**same, "model": "xyz"}, gone)
    with pytest.raises(SampleError, match="setting 'model'"):
        merge_checked([a, other_model])
    other_frames = _shard(tmp_path / "c", 1, 2, ["q1", "q3", "q5", "q7"], {**same, "frames": "16 uniformly sampled"})
    with pytest.raises(SampleError, match="setting 'frames'"):
        merge_checked([a, other_frames])
    twice = _shard(tmp_path / "d", 0, 2, ["q10"], same)
    with pytest.raises(SampleError, match="also given"):
        merge_checked([a, twice])
    (tmp_path / "e").mkdir()
    bare = tmp_path / "e" / "p.jsonl"
    bare.write_text(json.dumps({"set": "vsibench", "split": "test", "sample_id": "q1"}) + "\n")
    with pytest.raises(SampleError, match="p.shard.json"):
        merge_checked([a, bare])
    records, _, warnings, _ = merge_checked([a], allow_partial=True)
    assert len(records) == 5 and any("missing" in w for w in warnings)
