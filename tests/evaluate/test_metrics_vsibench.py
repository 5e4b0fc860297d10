"""VSI-Bench scoring against hand-computed cases."""

from __future__ import annotations

import pytest

from loc3r.benchmarks.vsibench.metric import (
    MRA_THRESHOLDS,
    TASKS,
    exact_match,
    fuzzy_matching,
    mean_relative_accuracy,
    score_vsibench,
    score_vsibench_record,
    to_float,
)
from loc3r.data.schema import SampleError


def test_thresholds_are_the_ten_official_values() -> None:
    assert MRA_THRESHOLDS.tolist() == pytest.approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


@pytest.mark.parametrize(
    ("prediction", "token"),
    [
        ("B", "B"),
        ("B.", "B"),
        ("b. the sofa", "b"),
        ("3 meters", "3"),
        ("2.5", "2.5"),
        ("The answer is B", "The"),  # only the first space-separated token counts
        (" B", ""),  # leading space: empty first token (official split(' '))
        ("A...", "A"),
    ],
)
def test_fuzzy_matching(prediction: str, token: str) -> None:
    assert fuzzy_matching(prediction) == token


def test_exact_match_case_insensitive() -> None:
    assert exact_match("b", "B") == 1.0
    assert exact_match("C", "B") == 0.0


@pytest.mark.parametrize(
    ("prediction", "target", "mra"),
    [
        (4.0, 4.0, 1.0),
        (1.08, 1.0, 0.9),  # rel. err 0.08 <= 1 - θ for θ <= 0.92: 9 of 10
        (0.92, 1.0, 0.9),
        (1.28, 1.0, 0.5),  # 0.28: θ in {.5, .55, .6, .65, .7}
        (0.55, 1.0, 0.2),  # 0.45: θ in {.5, .55}
        (2.7, 2.0, 0.3),  # 0.35: θ in {.5, .55, .6}
        (3.0, 1.0, 0.0),
        (0.0, 1.0, 0.0),  # rel. err 1.0
        # Exact ties are decided by IEEE-double arithmetic, identically to the official expression:
        (12.0, 10.0, 0.6),  # 0.2 <= 1 - 0.8 (= 0.19999999999999996) is False
        (13.0, 10.0, 0.5),  # 0.3 <= 1 - 0.7 (= 0.30000000000000004) is True
        (None, 3.0, 0.0),  # unparsable
        (float("nan"), 3.0, 0.0),
        (float("inf"), 3.0, 0.0),
    ],
)
def test_mean_relative_accuracy_known_values(prediction: float | None, target: float, mra: float) -> None:
    assert mean_relative_accuracy(prediction, target) == pytest.approx(mra)


def test_mra_rejects_non_positive_target() -> None:
    with pytest.raises(ValueError, match="positive"):
        mean_relative_accuracy(1.0, 0.0)


@pytest.mark.parametrize(
    ("prediction", "score"),
    [("4", 1.0), ("4.", 1.0), ("4 chairs", 1.0), ("four", 0.0), ("", 0.0), ("1,000", 0.0), ("4m", 0.0), (4, 1.0)],
)
def test_numeric_parsing(prediction: str | int, score: float) -> None:
    record = {"question_type": "object_counting", "ground_truth": "4", "prediction": prediction}
    assert score_vsibench_record(record) == score
    assert to_float("nan") != to_float("nan")  # parses, then fails every threshold


def _rec(qtype: str, gt: str, pred: str | None) -> dict:
    return {"question_type": qtype, "ground_truth": gt, "prediction": pred}


def all_task_records() -> list[dict]:
    return [
        _rec("object_counting", "4", "4"),  # 1.0
        _rec("object_counting", "10", "13.2"),  # 0.32 -> θ {.5, .55, .6, .65}: 0.4  => task 70
        _rec("object_abs_distance", "2.0", "2.25 meters"),  # 0.125 -> θ <= 0.875: 8 of 10 => 80
        _rec("object_size_estimation", "100", "150"),  # 0.5 -> θ = .5 only: 0.1  => 10
        _rec("room_size_estimation", "20", "twenty"),  # unparsable => 0
        _rec("object_rel_distance", "A", "A. the chair"),  # 1
        _rec("object_rel_distance", "B", "C"),  # 0 => 50
        _rec("object_rel_direction_easy", "A", "a"),  # easy 100
        _rec("object_rel_direction_medium", "B", "A"),
        _rec("object_rel_direction_medium", "B", "A"),  # medium 0
        _rec("object_rel_direction_hard", "C", "C."),
        _rec("object_rel_direction_hard", "C", "D"),  # hard 50 => task (100 + 0 + 50) / 3 = 50
        _rec("route_planning", "D", None),  # no answer => 0
        _rec("obj_appearance_order", "B", "B"),  # 100
    ]


def test_score_vsibench_all_tasks_hand_computed() -> None:
    out = score_vsibench(all_task_records())
    expected = {
        "object_counting": 70.0,
        "object_abs_distance": 80.0,
        "object_size_estimation": 10.0,
        "room_size_estimation": 0.0,
        "object_rel_distance": 50.0,
        "object_rel_direction": 50.0,  # NOT the record-weighted 2/5 = 40
        "route_planning": 0.0,
        "obj_appearance_order": 100.0,
    }
    for task, value in expected.items():
        assert out[task] == pytest.approx(value), task
    assert out["overall"] == pytest.approx(sum(expected.values()) / 8)
    assert out["object_rel_direction_easy"] == 100.0
    assert out["object_rel_direction_medium"] == 0.0
    assert out["object_rel_direction_hard"] == 50.0
    assert out["n/object_rel_direction_medium"] == 2 and out["n"] == 14 and out["no_prediction"] == 1
    assert "tasks_missing" not in out
    assert list(out)[:9] == [*TASKS, "overall"]


def test_missing_tasks_and_partial_rel_direction() -> None:
    out = score_vsibench([_rec("object_rel_direction_easy", "A", "A"), _rec("object_counting", "3", "6")])
    assert out["object_rel_direction"] == 100.0  # only the present difficulty
    assert out["object_counting"] == 0.0
    assert out["overall"] == 50.0
    assert len(out["tasks_missing"]) == 6


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_rec("object_height", "1", "1"), "unknown question_type 'object_height'"),
        (_rec("object_counting", "many", "3"), "'ground_truth' must be a positive number"),
        (_rec("object_counting", "0", "0"), "'ground_truth' must be a positive number"),
        (_rec("route_planning", "", "A"), "'ground_truth' must be the option letter"),
        ({"question_type": "route_planning", "ground_truth": "A"}, "missing field 'prediction'"),
        (_rec("route_planning", "A", ["A"]), "'prediction' must be a string"),  # type: ignore[arg-type]
    ],
)
def test_malformed_records_name_record_and_field(record: dict, message: str) -> None:
    with pytest.raises(SampleError, match=message) as info:
        score_vsibench([_rec("route_planning", "A", "A"), {"id": 17, **record}], source="P.jsonl")
    assert "P.jsonl: record 1 (id 17)" in str(info.value)


def test_duplicate_ids_and_empty_input() -> None:
    with pytest.raises(SampleError, match="duplicate id"):
        score_vsibench([{"id": 1, **_rec("route_planning", "A", "A")}, {"id": 1, **_rec("route_planning", "A", "A")}])
    with pytest.raises(SampleError, match="no records"):
        score_vsibench([])
