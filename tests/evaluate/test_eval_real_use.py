"""Issue 22 (evaluation under real use): a scan whose frames are all unreadable is skipped, counted and named like
any other bad record instead of aborting the evaluation; a bare Python ``ValueError`` from a builtin or a library is
a bug (traceback), not passed off as a user error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO
from loc3r.cli import is_user_error, main
from loc3r.synthrooms.writer import SynthSettings, generate_dataset

TINY = REPO / "src" / "loc3r" / "assets" / "loc3r-tiny"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    settings = SynthSettings(
        num_scenes=4, frames=8, width=64, height=64, val_fraction=0.0, test_fraction=0.5, novel_view=False,
        situations_per_scene=2, questions_per_situation=1, vsi_questions_per_type=1, write_video=False,
    )  # fmt: skip
    generate_dataset(root, settings, progress=False)
    return root


def test_scan_with_every_frame_unreadable_is_skipped_and_named(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = json.loads((synth / "synthrooms.json").read_text())
    broken = index["splits"]["test"][0]
    for jpg in (synth / "scans" / broken / "color").glob("*.jpg"):
        jpg.write_bytes(jpg.read_bytes()[:40])
    out = tmp_path / "eval"
    code = main(["eval", "--config", str(REPO / "configs/synth/eval/test.yaml"), "--set", f"checkpoint={TINY}",
                 "--set", f"data.root={synth}", "--set", "max_samples=12", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert code == 0, err
    assert "samples skipped" in err and f"scene '{broken}' has no usable frame" in err
    assert (out / "scores.json").is_file()


def test_bare_library_value_error_is_a_bug_not_a_user_error() -> None:
    from loc3r.core.errors import SampleError

    try:
        min([])
    except ValueError as err:
        assert not is_user_error(err)
    try:
        b"\xff".decode()
    except ValueError as err:
        assert not is_user_error(err)
    assert is_user_error(SampleError("a.json: record 3: field 'x' is missing"))
    from loc3r.data.mixture import MixtureDataset

    with pytest.raises(ValueError) as info:  # loc3r's own ``raise ValueError(...)``: still a one-line error
        MixtureDataset([], [])
    assert is_user_error(info.value)


def test_merge_refuses_shards_of_another_checkpoint(
    synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    other = tmp_path / "other"
    shutil.copytree(TINY, other)
    weights = load_file(str(other / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] + 0.01
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "eval"
    base = ["eval", "--config", str(REPO / "configs/synth/eval/test.yaml"), "--set", f"data.root={synth}",
            "--set", "max_samples=4", "--out", str(out)]  # fmt: skip
    for shard in ("0/2", "1/2"):
        assert main([*base, "--set", f"checkpoint={TINY}", "--shard", shard]) == 0
    shards = sorted(str(p) for p in out.glob("predictions-shard*.jsonl"))
    capsys.readouterr()
    assert main([*base, "--set", f"checkpoint={other}", "--merge", *shards]) == 2
    assert "made with another checkpoint" in capsys.readouterr().err
    assert main([*base, "--set", f"checkpoint={TINY}", "--merge", *shards]) == 0


def test_split_without_situations_scores_the_other_tasks(
    synth: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A still-image split whose images ground no situation: localization and situated QA have no sample; the
    VSI-style questions are still evaluated and scored (the evaluation used to abort)."""
    import logging
    import shutil

    root = tmp_path / "synth"
    shutil.copytree(synth, root)
    for kind, key in (("questions", "questions"), ("sqa_annotations", "annotations")):
        path = root / "sqa3d" / f"v1_balanced_{kind}_test_scannetv2.json"
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, key: []}))
    out = tmp_path / "eval"
    with caplog.at_level(logging.WARNING, logger="loc3r.evaluate"):
        code = main(["eval", "--config", str(REPO / "configs/synth/eval/test.yaml"), "--set", f"checkpoint={TINY}",
                     "--set", f"data.root={root}", "--set", "max_samples=4", "--out", str(out)])  # fmt: skip
    assert code == 0
    scores = json.loads((out / "scores.json").read_text())["test"]
    assert scores["n_vsi"] > 0 and "n_loc" not in scores and "n_qa" not in scores
    assert any("synth_localization" in r.getMessage() and "not scored" in r.getMessage() for r in caplog.records)
