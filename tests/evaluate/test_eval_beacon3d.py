"""Beacon3D QA metric on files in the benchmark's own format (metadata + ScanQA-format ids), hand-computed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loc3r.benchmarks.beacon3d.metric import score_beacon3d
from loc3r.benchmarks.beacon3d.reader import beacon3d_records
from loc3r.cli import main
from loc3r.data.schema import SampleError


def qa(question: str, answer: str, tag: str, extra: int = 0) -> dict:
    return {"question": question, "answer": answer, "tag": tag, "extra_knowledge": extra}


# The released layout of data/scannet/metadata_scannet_qa.json: scene -> class -> object id -> grounding + 3 QA.
METADATA = {
    "scene0025_00": {
        "box": {
            "27": {"grounding_text": ["White box on the desk", "The largest box", "The box near the window"],
                   "qa": [qa("What color is the largest box?", "White", "appearance"),
                          qa("Is the largest box close to the door?", "No", "spatial", 1),
                          qa("Is the box larger or smaller than the other box?", "Larger", "geometry")]},
        },
        "cabinet": {
            "17": {"grounding_text": ["File cabinet under the desk", "The cabinet by the trash can", "The cabinet"],
                   "qa": [qa("Is the cabinet black?", "No", "appearance", 1),
                          qa("What is beside the cabinet?", "Trash can", "class"),
                          qa("Is there a piano next to the cabinet?", "Piano", "existence")]},
        },
    }
}  # fmt: skip
IDS = [
    "scene0025_00_27_0_appearance_0", "scene0025_00_27_1_spatial_1", "scene0025_00_27_2_geometry_0",
    "scene0025_00_17_0_appearance_1", "scene0025_00_17_1_class_0", "scene0025_00_17_2_existence_0",
]  # fmt: skip


def test_ids_follow_qa_to_scanqa_format() -> None:
    items, records = beacon3d_records(METADATA, object_classes={"scene0025_00": {"27": "box", "17": "cabinet"}})
    assert [r["question_id"] for r in records] == IDS and [i.question_id for i in items] == IDS
    assert records[0]["object_ids"] == [27] and records[0]["answers"] == ["White"]
    assert records[3]["object_names"] == ["cabinet"]


def test_scores_hand_computed() -> None:
    preds = [
        {"question_id": IDS[0], "answer": "white."},  # EM -> 5
        {"question_id": IDS[1], "answer": "no it is not"},  # binary + containment -> 5
        {"question_id": IDS[2], "answer": "smaller"},  # no match, no judge score -> 1
        {"question_id": IDS[3], "answer": "black", "score": 2},  # judge score 2
        {"question_id": IDS[4], "answer": "a trash can"},  # EM after clean_answer drops the article -> 5
        # "piano" contains "no": the official binary test is a substring test, so containment gives 5
        {"question_id": IDS[5], "answer": "piano keys"},
    ]
    out = score_beacon3d(METADATA, preds)
    assert out["appearance"] == pytest.approx(((5 + 2) / 2 - 1) / 4 * 100)
    assert out["spatial"] == 100.0 and out["geometry"] == 0.0 and out["class"] == 100.0 and out["existence"] == 100.0
    assert out["overall_case"] == pytest.approx(((5 + 5 + 1 + 2 + 5 + 5) / 6 - 1) / 4 * 100)
    assert out["overall_object"] == 0.0  # each object has one question below 4
    assert out["em"] == pytest.approx(100 * 2 / 6) and out["em-r"] == pytest.approx(100 * 4 / 6)
    assert out["n"] == 6 and out["n_objects"] == 2 and out["judged"] == 1 and out["unjudged"] == 1
    preds[2]["score"], preds[3]["score"] = 4, 5
    assert score_beacon3d(METADATA, preds)["overall_object"] == 100.0
    preds[2]["score"] = 7
    with pytest.raises(SampleError, match=r"record 2 .*'score' must be the judge's score 1\.\.5"):
        score_beacon3d(METADATA, preds, predictions_source="P.json")


def test_bad_records_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    classes = {"scene0025_00": {"27": "box"}}  # object 17 is unknown
    problems: list[str] = []
    items, _ = beacon3d_records(METADATA, source="M.json", object_classes=classes, problems=problems)
    assert {i.object_id for i in items} == {"27"} and len(problems) == 1
    assert "M.json: scene 'scene0025_00', class 'cabinet', object '17'" in problems[0]
    assert "field 'object_id': unknown object id '17'" in problems[0]
    with pytest.raises(SampleError, match="unknown object id"):
        beacon3d_records(METADATA, object_classes=classes, strict=True)
    bad = json.loads(json.dumps(METADATA))
    del bad["scene0025_00"]["box"]["27"]["qa"][1]["answer"]
    meta = tmp_path / "metadata_scannet_qa.json"
    meta.write_text(json.dumps(bad))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps([{"question_id": IDS[0], "answer": "white"}]))
    assert main(["score", "beacon3d", "--metadata", str(meta), "--predictions", str(preds)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loc3r score beacon3d: error: ") and str(meta) in err
    assert "object '27', qa[1]: field 'answer'" in err


def test_cli_table_json_and_lower_bound_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "metadata_scannet_qa.json"
    meta.write_text(json.dumps(METADATA))
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps([{"question_id": i, "answer": "wrong"} for i in IDS[:5]]))
    assert main(["score", "beacon3d", "--metadata", str(meta), "--predictions", str(preds), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["overall_case"] == 0.0 and result["missing"] == 1 and result["unjudged"] == 5
    assert "lower bound" in captured.err and "1 reference entries have no prediction" in captured.err
    assert main(["score", "beacon3d", "--metadata", str(meta), "--predictions", str(preds)]) == 0
    out = capsys.readouterr().out
    for key in ("class", "appearance", "geometry", "spatial", "existence", "overall_case", "overall_object"):
        assert f"| {key} " in out
