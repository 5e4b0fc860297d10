"""VSI-Bench-debiased, ViewSpatial-Bench and VSI-SUPER scored the official way on hand-made cases.

Every expected value is computed by hand in the test from the official definitions (module docstrings of
``loc3r.benchmarks.viewspatial.metric`` / ``loc3r.benchmarks.vsisuper.metric``; VSI-Bench-debiased is VSI-Bench's
metric on the debiased records): option letters with punctuation, unparsable answers, MRA on zero and negative
numbers, the counting tolerance (10 thresholds 0.50..0.95), streaming pairs.
"""

from __future__ import annotations

import json

import pytest

from loc3r.benchmarks.viewspatial.metric import extract_option, score_viewspatial
from loc3r.benchmarks.vsibench.metric import score_vsibench
from loc3r.benchmarks.vsisuper.metric import count_mra, extract_number, score_vsc, score_vsc_streaming, score_vsr
from loc3r.data.schema import SampleError

CAM = "Camera perspective - Relative Direction"
SIM = "Person perspective - Scene Simulation Relative Direction"


# ---------------------------------------------------------------------------------------------- ViewSpatial
@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B. front", "B"),
        ("(c)", "C"),  # case-insensitive, parentheses are word boundaries
        ("Answer: D", "D"),  # "Answer" has no stand-alone letter; D does
        ("A.", "A"),
        ("front-left", None),
        ("E", None),
        ("", None),
        ("it is a B", "A"),  # the literal upstream rule: the article "a" is a stand-alone letter
        ("AB", None),  # no word boundary inside "AB"
    ],
)
def test_viewspatial_option_extraction(text: str, letter: str | None) -> None:
    assert extract_option(text) == letter


def test_viewspatial_scores_by_hand() -> None:
    records = [
        {"question_type": CAM, "answer": "A. right", "prediction": "A"},  # right
        {"question_type": CAM, "answer": "D. back", "prediction": "d) back"},  # right (case, punctuation)
        {"question_type": CAM, "answer": "B. down", "prediction": "down"},  # wrong: no letter
        {"question_type": CAM, "answer": "C. left", "prediction": "C\nthe answer is B"},  # wrong: last line is B
        {"question_type": SIM, "answer": "B. front", "prediction": "I think...\nB. front"},  # right: last line
        {"question_type": SIM, "answer": "A. left", "prediction": None},  # no answer: wrong, counted
    ]
    scores = score_viewspatial(records)
    # camera: 2 of 4; simulation: 1 of 2; overall (micro): 3 of 6
    assert scores["camera_perspective_relative_direction"] == pytest.approx(50.0)
    assert scores["person_perspective_scene_simulation_relative_direction"] == pytest.approx(50.0)
    assert scores["overall"] == pytest.approx(50.0)
    assert scores["n"] == 6 and scores["no_prediction"] == 1
    assert scores["n/camera_perspective_relative_direction"] == 4
    # overall is micro, not the mean of types: 3 camera right + 0 of 1 simulation -> 3/4 = 75, not (100+0)/2
    micro = score_viewspatial([{**r, "prediction": r["answer"][0]} for r in records[:3]] + [records[5]])
    assert micro["overall"] == pytest.approx(75.0)


def test_viewspatial_bad_records_are_named() -> None:
    with pytest.raises(SampleError, match=r"record 0.*'answer'"):
        score_viewspatial([{"question_type": CAM, "answer": "right", "prediction": "A"}])
    with pytest.raises(SampleError, match="unknown question_type 'Bird perspective'"):
        score_viewspatial([{"question_type": "Bird perspective", "answer": "A. x", "prediction": "A"}])
    with pytest.raises(SampleError, match="missing field 'prediction'"):
        score_viewspatial([{"question_type": CAM, "answer": "A. x"}])
    with pytest.raises(SampleError, match="must be a string"):
        score_viewspatial([{"question_type": CAM, "answer": "A. x", "prediction": 1}])


# ------------------------------------------------------------------------------------------------ VSI-SUPER
def test_count_mra_by_hand() -> None:
    # relative error 0.1 passes the thresholds 0.50..0.90 (1 - θ >= 0.1 for θ <= 0.9): 9 of 10
    assert count_mra(11.0, 10.0) == pytest.approx(0.9)
    # relative error 0.25 passes θ <= 0.75 -> 0.50, 0.55, 0.60, 0.65, 0.70, 0.75: 6 of 10
    assert count_mra(15.0, 20.0) == pytest.approx(0.6)
    assert count_mra(20.0, 20.0) == 1.0
    assert count_mra(10.0, 20.0) == pytest.approx(0.1)  # relative error exactly 0.5: only θ = 0.50
    assert count_mra(9.0, 20.0) == 0.0
    # zero ground truth: exactly 0 or nothing
    assert count_mra(0.0, 0.0) == 1.0 and count_mra(1.0, 0.0) == 0.0
    # a negative prediction: |-3 - 3| / 3 = 2 -> 0
    assert count_mra(-3.0, 3.0) == 0.0
    assert count_mra(None, 3.0) == 0.0 and count_mra(float("nan"), 3.0) == 0.0


@pytest.mark.parametrize(
    ("text", "number"),
    [("12", 12.0), ("There are 7 chairs", 7.0), ("-2", -2.0), ("3.5 m", 3.5), ("three", 0.0), ("", 0.0), (None, 0.0)],
)
def test_vsc_number_extraction(text: str | None, number: float) -> None:
    assert extract_number(text) == number


def test_vsc_regular_by_hand() -> None:
    records = [
        {"answer": 10.0, "split": "10mins", "prediction": "11"},  # 0.9
        {"answer": 20.0, "split": "10mins", "prediction": "about 15 sockets"},  # first number 15 -> 0.6
        {"answer": 4.0, "split": "30mins", "prediction": "four"},  # no number -> 0 -> relative error 1 -> 0
        {"answer": 0.0, "split": "30mins", "prediction": "none"},  # no number reads 0 == 0 -> 1 (upstream)
    ]
    scores = score_vsc(records)
    assert scores["mra/10mins"] == pytest.approx(100 * (0.9 + 0.6) / 2)
    assert scores["mra/30mins"] == pytest.approx(100 * (0.0 + 1.0) / 2)
    assert scores["mra"] == pytest.approx(100 * (0.9 + 0.6 + 0.0 + 1.0) / 4)
    assert scores["n"] == 4 and scores["n/10mins"] == 2
    with pytest.raises(SampleError, match=r"record 0.*'answer'.*>= 0"):
        score_vsc([{"answer": -1, "prediction": "1"}])


def test_vsc_streaming_by_hand() -> None:
    records = [
        # 3 queries answered: 1.0, 0.9 (11 vs 10), 0.0 ("x" is not a number)
        {"split": "10mins_streaming", "query_times": [60, 120, 180], "answers": [5, 10, 12],
         "prediction": [5, "11", "x"]},
        # the upstream wrapper's JSON string; only 1 of 2 queries answered: zip leaves the second unscored
        {"split": "10mins_streaming", "query_times": [30, 90], "answers": [20, 30], "prediction": json.dumps([15])},
        # not a JSON list at all: nothing scored, the video counts 0 in the per-video mean
        {"split": "30mins_streaming", "query_times": [10], "answers": [0], "prediction": "zero"},
    ]  # fmt: skip
    scores = score_vsc_streaming(records)
    pairs = [1.0, 0.9, 0.0, 0.6]  # 15 vs 20 -> 0.6
    assert scores["mra"] == pytest.approx(100 * sum(pairs) / 4)
    videos = [(1.0 + 0.9 + 0.0) / 3, 0.6, 0.0]
    assert scores["mra_video_mean"] == pytest.approx(100 * sum(videos) / 3)
    assert scores["mra/10mins_streaming"] == pytest.approx(100 * sum(pairs) / 4)
    assert scores["mra/30mins_streaming"] == 0.0
    assert scores["n"] == 3 and scores["n_queries"] == 4 and scores["queries_unanswered"] == 2
    # a zero count answered 0 scores 1
    assert score_vsc_streaming([{"answers": [0, 2], "prediction": [0, 2]}])["mra"] == 100.0
    with pytest.raises(SampleError, match="'query_times' must list one time per answer"):
        score_vsc_streaming([{"answers": [1, 2], "query_times": [5], "prediction": [1, 2]}])
    with pytest.raises(SampleError, match="must be a list of counts"):
        score_vsc_streaming([{"answers": [1], "prediction": {"a": 1}}])


def test_vsr_by_hand() -> None:
    records = [
        {"type": "10mins", "answer": "B", "prediction": "B"},  # right
        {"type": "10mins", "answer": "C", "prediction": "c. the kitchen"},  # right: first token "c." -> "c"
        {"type": "10mins", "answer": "A", "prediction": "The answer is A"},  # wrong: first token "The"
        {"type": "60mins", "answer": "D", "prediction": " D"},  # wrong: a leading space gives an empty token
        {"type": "60mins", "answer": "A", "prediction": "A,"},  # wrong: only dots are stripped
        {"type": "60mins", "answer": "B", "prediction": None},
    ]
    scores = score_vsr(records)
    assert scores["accuracy/10mins"] == pytest.approx(100 * 2 / 3)
    assert scores["accuracy/60mins"] == 0.0
    assert scores["accuracy"] == pytest.approx(100 * 2 / 6)
    assert scores["n"] == 6 and scores["no_prediction"] == 1
    with pytest.raises(SampleError, match="'answer' must be the option letter"):
        score_vsr([{"answer": "B. the sofa", "prediction": "B"}])


# ------------------------------------------------------------------------------------------ VSI-Bench-debiased
def test_vsibench_debiased_uses_the_vsibench_metric_by_hand() -> None:
    """The debiased release keeps VSI-Bench's records and scoring: a hand-made debiased file (with its extra
    ``pruned`` field) scores as VSI-Bench."""
    records = [
        {"id": 1, "question_type": "object_counting", "ground_truth": "4", "prediction": "4", "pruned": False},
        {"id": 2, "question_type": "object_counting", "ground_truth": "10", "prediction": "11.", "pruned": False},
        {"id": 3, "question_type": "room_size_estimation", "ground_truth": "20", "prediction": "-5", "pruned": False},
        {
            "id": 4,
            "question_type": "object_rel_distance",
            "ground_truth": "A",
            "prediction": "a. chair",
            "pruned": True,
        },
        {"id": 5, "question_type": "route_planning", "ground_truth": "B", "prediction": "Answer: B", "pruned": False},
    ]
    scores = score_vsibench(records)
    assert scores["object_counting"] == pytest.approx(100 * (1.0 + 0.9) / 2)
    assert scores["room_size_estimation"] == 0.0  # negative: relative error 1.25
    assert scores["object_rel_distance"] == 100.0 and scores["route_planning"] == 0.0
    assert scores["overall"] == pytest.approx((95.0 + 0.0 + 100.0 + 0.0) / 4)
