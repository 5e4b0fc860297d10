"""Issue 22: ``loc3r score msqa`` — MSQA is a supported benchmark, so its predictions are scored from files like the
others: against the released MSQA file (the loader's ids) or the references ``loc3r eval`` wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loc3r.cli import main

LISTED = [
    {"scan_id": "scene0001_00", "question": "Where is the bed?", "answers": ["behind you"], "index": 17,
     "situation": "I sit on the sofa.", "location": [0, 0, 0], "orientation": [1, 0, 0], "type": "spatial"},
    {"scan_id": "scene0001_00", "question": "What colour is the chair?", "answers": ["gray"], "index": 18,
     "situation": "I sit on the sofa.", "location": [0, 0, 0], "orientation": [1, 0, 0], "type": "attribute"},
]  # fmt: skip


def test_score_msqa_on_the_released_file_and_on_eval_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = tmp_path / "msqa_scannet_test.json"
    refs.write_text(json.dumps(LISTED))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps([{"question_id": "msqa-scene0001_00-17", "answer": "behind you"},
                                 {"question_id": "msqa-scene0001_00-18", "answer": "red"}]))  # fmt: skip
    assert main(["score", "msqa", "--references", str(refs), "--predictions", str(preds), "--no-meteor", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["em@1"] == pytest.approx(50.0) and scores["n"] == 2
    assert scores["em@1/spatial"] == pytest.approx(100.0) and scores["em@1/attribute"] == pytest.approx(0.0)
    written = tmp_path / "msqa_references.json"  # what loc3r eval writes
    written.write_text(
        json.dumps([{"question_id": "msqa-scene0001_00-17", "answers": ["behind you"], "type": "spatial"}])
    )
    assert main(["score", "msqa", "--references", str(written), "--predictions", str(preds), "--no-meteor",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["em@1"] == pytest.approx(100.0)
    assert main(["score", "msqa", "--references", str(tmp_path / "none.json"), "--predictions", str(preds)]) == 2
    assert "none.json" in capsys.readouterr().err
