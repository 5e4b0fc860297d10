"""``loc3r score`` end to end on temporary files (tables, --json keys, missing / unknown ids, bad input)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SQA3D_FIXTURES
from loc3r.cli import main

FIXTURES = SQA3D_FIXTURES
ANNOTATIONS = FIXTURES / "v1_balanced_sqa_annotations_test_scannetv2.json"
QUESTIONS = FIXTURES / "v1_balanced_questions_test_scannetv2.json"
LOC_KEYS = ["acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["score", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def annotations() -> list[dict]:
    return json.loads(ANNOTATIONS.read_text())["annotations"]


def shifted(anns: list[dict]) -> list[dict]:
    """Even records: +0.45 m in x and +25° yaw; odd records: +1.2 m in y and −5° yaw, quaternion sign flipped.

    Yaw offsets are applied as q ⊗ (0, 0, sin(δ/2), cos(δ/2)), written out for yaw-only q = (0, 0, z, w).
    """
    preds = []
    for i, a in enumerate(anns):
        dx, dy, turn, sign = (0.45, 0.0, 25.0, 1.0) if i % 2 == 0 else (0.0, 1.2, -5.0, -1.0)
        s, c = math.sin(math.radians(turn) / 2), math.cos(math.radians(turn) / 2)
        z, w = a["rotation"]["_z"], a["rotation"]["_w"]
        rotation = {"_x": 0.0, "_y": 0.0, "_z": sign * (z * c + w * s), "_w": sign * (w * c - z * s)}
        p = a["position"]
        position = {"x": p["x"] + dx, "y": p["y"] + dy, "z": p["z"]}
        preds.append({"question_id": a["question_id"], "position": position, "rotation": rotation})
    return preds


def test_sqa3d_loc_table_and_json_on_real_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anns = annotations()
    own = write(tmp_path / "own.json", [{k: a[k] for k in ("question_id", "position", "rotation")} for a in anns])
    code, out, err = run(capsys, "sqa3d-loc", "--annotations", str(ANNOTATIONS), "--predictions", str(own))
    assert code == 0 and err == ""
    for key in LOC_KEYS:
        assert f"| {key} " in out
    assert "100.00" in out and "SQA3D localization" in out

    perturbed = write(tmp_path / "perturbed.json", shifted(anns))
    code, out, _ = run(
        capsys,
        "sqa3d-loc",
        "--annotations",
        str(ANNOTATIONS),
        "--predictions",
        str(perturbed),
        "--json",
        "--unit",
        "question",
    )
    result = json.loads(out)  # exactly one JSON object on stdout
    assert code == 0 and list(result)[:4] == LOC_KEYS
    # 62 even records: 0.45 m and 25° off; 62 odd records: 1.2 m and 5° off.
    assert [result[k] for k in LOC_KEYS] == pytest.approx([50.0, 50.0, 50.0, 100.0])
    assert result["n"] == 124


def test_sqa3d_loc_candidates_missing_and_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anns = annotations()
    preds = [
        {"question_id": a["question_id"], "candidates": [{"position": a["position"], "rotation": a["rotation"]}]}
        for a in anns[2:]
    ]
    preds.append(
        {"question_id": 1, "position": {"x": 0, "y": 0, "z": 0}, "rotation": {"_x": 0, "_y": 0, "_z": 0, "_w": 1}}
    )
    path = write(tmp_path / "p.json", preds)
    code, out, err = run(
        capsys,
        "sqa3d-loc",
        "--annotations",
        str(ANNOTATIONS),
        "--predictions",
        str(path),
        "--json",
        "--unit",
        "question",
    )
    result = json.loads(out)
    assert code == 0
    assert result["acc@0.5m"] == pytest.approx(100 * 122 / 124)
    assert result["missing"] == 2 and result["missing_examples"] == [str(a["question_id"]) for a in anns[:2]]
    assert result["unknown"] == 1 and result["unknown_examples"] == ["1"]
    assert "2 questions have no prediction" in err and "1 predictions have ids not in the references" in err

    code, out, err = run(capsys, "sqa3d-loc", "--annotations", str(ANNOTATIONS), "--predictions", str(path), "--strict")
    assert code == 2 and out == "" and "not in the references" in err


def test_sqa3d_loc_counts_each_situation_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The 124 fixture questions are 25 situations; a prediction right only for the largest situation scores
    1/25 per situation (the paper's unit) but its share of questions per question."""
    anns = annotations()
    questions = json.loads(QUESTIONS.read_text())["questions"]
    by_situation: dict[tuple[str, str], list[int]] = {}
    for q in questions:
        by_situation.setdefault((q["scene_id"], q["situation"]), []).append(q["question_id"])
    largest = set(max(by_situation.values(), key=len))
    assert len(by_situation) == 25 and 1 < len(largest) < 124
    far = {"x": 100.0, "y": 100.0, "z": 0.0}
    preds = [
        {"question_id": a["question_id"], "position": a["position"] if a["question_id"] in largest else far,
         "rotation": a["rotation"]}
        for a in anns
    ]  # fmt: skip
    path = write(tmp_path / "p.json", preds)
    base = ("sqa3d-loc", "--annotations", str(ANNOTATIONS), "--predictions", str(path))
    code, out, err = run(capsys, *base)
    assert code == 0 and err == ""
    assert "unit: situation, n = 25 situations of 124 questions" in out
    by_pose = json.loads(run(capsys, *base, "--json")[1])
    by_text = json.loads(run(capsys, *base, "--json", "--questions", str(QUESTIONS))[1])
    per_question = json.loads(run(capsys, *base, "--json", "--unit", "question")[1])
    assert by_pose["acc@1.0m"] == pytest.approx(100 / 25) and by_text == by_pose
    assert by_pose["n"] == 25 and by_pose["n_scenes"] == 2 and by_pose["unit"] == "situation"
    assert per_question["acc@1.0m"] == pytest.approx(100 * len(largest) / 124) and per_question["n"] == 124

    # Different predictions for the questions of one situation: the first is scored, and it is reported.
    preds[next(i for i, a in enumerate(anns) if a["question_id"] in largest)]["position"] = far
    write(tmp_path / "p.json", preds)
    code, out, err = run(capsys, *base, "--json")
    result = json.loads(out)
    assert result["inconsistent_situations"] == 1 and result["acc@1.0m"] == 0.0
    assert "1 situations got different predictions" in err


def test_sqa3d_loc_malformed_record_names_file_record_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anns = annotations()
    preds = [{k: a[k] for k in ("question_id", "position", "rotation")} for a in anns]
    del preds[5]["rotation"]["_w"]
    path = write(tmp_path / "bad.json", preds)
    code, out, err = run(capsys, "sqa3d-loc", "--annotations", str(ANNOTATIONS), "--predictions", str(path))
    assert code == 2 and out == ""
    assert str(path) in err and "record 5" in err and str(anns[5]["question_id"]) in err and "'_w'" in err

    broken = tmp_path / "broken.json"
    broken.write_text('[{"question_id": 1,')
    code, _, err = run(capsys, "sqa3d-loc", "--annotations", str(ANNOTATIONS), "--predictions", str(broken))
    assert code == 2 and "not valid JSON" in err and str(broken) in err

    code, _, err = run(capsys, "sqa3d-loc", "--annotations", str(tmp_path / "nope.json"), "--predictions", str(path))
    assert code == 2 and "file not found" in err


def test_sqa3d_qa_jsonl_with_questions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anns = annotations()
    lines = [
        json.dumps({"question_id": a["question_id"], "answer": a["answers"][0]["answer"].upper() + "."}) for a in anns
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run(
        capsys, "sqa3d-qa", "--annotations", str(ANNOTATIONS), "--predictions", str(path), "--questions", str(QUESTIONS)
    )
    assert code == 0
    for key in ("em@1", "em-r", "em@1/what", "em-r/others", "n/how"):
        assert f"| {key} " in out
    code, out, _ = run(
        capsys,
        "sqa3d-qa",
        "--annotations",
        str(ANNOTATIONS),
        "--predictions",
        str(path),
        "--questions",
        str(QUESTIONS),
        "--json",
    )
    result = json.loads(out)
    assert result["em@1"] == 100.0 and result["em-r"] == 100.0  # upper case and "." are normalised away
    assert result["n/what"] == 41 and result["em@1/which"] == 100.0


def test_scanqa_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refs = write(
        tmp_path / "ScanQA_v1.0_val.json",
        [
            {"question_id": "val-scene0011-0", "scene_id": "scene0011_00", "question": "?", "answers": ["brown table"]},
            {"question_id": "val-scene0011-1", "scene_id": "scene0011_00", "question": "?", "answers": ["two", "2"]},
        ],
    )
    preds = write(tmp_path / "pred.json", [{"question_id": "val-scene0011-0", "answer": "Brown table."}])
    code, out, err = run(
        capsys, "scanqa", "--references", str(refs), "--predictions", str(preds), "--no-meteor", "--json"
    )
    result = json.loads(out)
    assert code == 0
    for key in ("em@1", "bleu-1", "bleu-2", "bleu-3", "bleu-4", "meteor", "rouge-l", "cider"):
        assert key in result
    assert result["em@1"] == 50.0 and result["meteor"] is None and result["missing"] == 1
    assert "METEOR skipped" in err
    code, out, _ = run(capsys, "scanqa", "--references", str(refs), "--predictions", str(preds), "--no-meteor")
    assert code == 0 and "| cider " in out and "| meteor " in out and "n/a" in out


def test_vsibench_jsonl_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [
        {"id": 0, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_counting",
         "question": "How many chairs?", "options": None, "ground_truth": "4", "prediction": "4"},
        {"id": 1, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_direction_easy",
         "question": "?", "options": ["A. left", "B. right"], "ground_truth": "A", "prediction": "B."},
    ]  # fmt: skip
    path = tmp_path / "vsi.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    code, out, _ = run(capsys, "vsibench", "--predictions", str(path), "--json")
    result = json.loads(out)
    assert code == 0 and result["object_counting"] == 100.0 and result["object_rel_direction"] == 0.0
    assert result["overall"] == 50.0
    code, out, _ = run(capsys, "vsibench", "--predictions", str(path))
    assert code == 0 and "| overall " in out and "| object_counting " in out

    path.write_text(json.dumps(records[0]) + "\n{oops\n")
    code, _, err = run(capsys, "vsibench", "--predictions", str(path))
    assert code == 2 and "line 2 is not valid JSON" in err


def test_score_needs_a_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["score"])
    assert info.value.code == 2


def test_console_entry_point() -> None:
    exe = shutil.which("loc3r") or str(Path(sys.executable).with_name("loc3r"))
    if not Path(exe).exists():
        pytest.skip("the loc3r console script is not installed")
    out = subprocess.run([exe, "score", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("sqa3d-loc", "sqa3d-qa", "scanqa", "vsibench"):
        assert name in out
