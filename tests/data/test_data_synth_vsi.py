"""SynthRooms' VSI-Bench-style records go through the VSI-Bench loader inside the ``synth`` dataset builder:
same validation as real VSI-Bench, malformed records named (strict) or skipped and reported (default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loc3r.data.registry import build_dataset
from loc3r.data.schema import SampleError
from loc3r.data.spec import DatasetSpec
from loc3r.synthrooms.writer import INDEX_NAME, SynthSettings, generate_dataset

FRAMES = 3


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_vsi")
    settings = SynthSettings(
        num_scenes=2,
        frames=FRAMES,
        width=32,
        height=32,
        seed=7,
        val_fraction=0.0,
        test_fraction=0.0,
        novel_view=False,
        situations_per_scene=1,
        vsi_questions_per_type=1,
        write_video=False,
    )
    assert not generate_dataset(root, settings, workers=1, progress=False).failed
    return root


def _vsi(root: Path, split: str = "train", **options) -> object:
    spec = DatasetSpec(kind="synth", root=root, split=split, options={"tasks": ["vsi"], **options})
    return build_dataset(spec, FRAMES)


def test_synth_vsi_samples_and_malformed_record(synth: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (synth / "vsibench" / "train.jsonl").read_text().splitlines()]
    assert rows and {r["dataset"] for r in rows} == {"synthrooms"}
    dataset = _vsi(synth)
    assert len(dataset) == len(rows)
    sample = dataset[0]
    assert sample.task == "synth_vsi" and sample.sample_id == f"synth_vsi-{rows[0]['id']}"
    assert sample.poses is not None and sample.frames.shape[0] == FRAMES

    broken = tmp_path / "synth"
    broken.mkdir()
    for name in ("scans", "sqa3d", "meta_info", INDEX_NAME):  # the same set with its own vsibench/ folder
        (broken / name).symlink_to(synth / name)
    (broken / "vsibench").mkdir()
    bad = [dict(rows[0])] + rows[1:]
    del bad[0]["question"]
    (broken / "vsibench" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in bad) + "\n")
    with pytest.raises(SampleError, match=r"train\.jsonl.*field 'question'"):
        _vsi(broken, strict=True)
    kept = _vsi(broken)  # default: the bad record is skipped (and logged), the others load
    assert len(kept) == len(rows) - 1
