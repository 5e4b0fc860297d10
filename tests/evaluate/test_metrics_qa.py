"""SQA3D / ScanQA answer metrics against hand-computed cases and the real SQA3D test records."""

from __future__ import annotations

import json

import pytest

from conftest import SQA3D_FIXTURES
from loc3r.benchmarks.scanqa.metric import score_scanqa
from loc3r.benchmarks.sqa3d.metric import score_sqa3d_qa, sqa3d_question_type
from loc3r.data.schema import SampleError
from loc3r.evaluate import qa
from loc3r.evaluate.qa import answer_match, caption_metrics, clean_answer, qa_exact_match

FIXTURES = SQA3D_FIXTURES
ANNOTATIONS = FIXTURES / "v1_balanced_sqa_annotations_test_scannetv2.json"
QUESTIONS = FIXTURES / "v1_balanced_questions_test_scannetv2.json"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("The Chair.", "chair"),
        ("chair", "chair"),
        ("An apple!", "apple"),
        ("a TV", "TV"),  # LEO upper-cases tv (both sides get it)
        ("3", "three"),
        ("None", "zero"),
        ("0 chairs", "zero chairs"),
        ("23", "twenty-three"),
        ("21", "21"),  # only 0-20 and 23 are spelled out
        ("  two   chairs ", "two chairs"),
        ("mat2", "mat"),
        ("Backwards", "backward"),
        ("left, right", "left, right"),  # commas, hyphens, apostrophes and colons survive
        ("o' clock", "o'clock"),
        ("rigth", "right"),
        ("the the chair", "the chair"),  # one left-to-right pass
        ("The chair .", "chair "),  # spaces are stripped before punctuation is deleted (LEO's order)
        ('"Yes"', "yes"),
    ],
)
def test_clean_answer(raw: str, clean: str) -> None:
    assert clean_answer(raw) == clean


def test_answer_match_em_and_refined() -> None:
    assert answer_match("chair", ["chair"]) == (True, True)
    assert answer_match("office chair", ["chair"]) == (False, True)  # reference inside prediction
    assert answer_match("chair", ["office chair"]) == (False, True)  # prediction inside reference
    assert answer_match("officechair", ["office chair"]) == (False, True)  # whitespace ignored
    assert answer_match("table", ["chair"]) == (False, False)
    assert answer_match("", ["chair"]) == (False, False)  # empty answer never "contained"
    assert answer_match("chair", ["office chair", "chair"]) == (True, True)  # EM against any reference


@pytest.mark.parametrize(
    ("question", "qtype"),
    [
        ("What is on my left?", "what"),
        ("what's behind me?", "what"),
        ("  Is the door open?", "is"),
        ("Isn't it dark?", "is"),  # prefix match, as LEO
        ("How many chairs?", "how"),
        ("Can I sit?", "can"),
        ("Which way should I go?", "which"),
        ("Where is the sink?", "others"),
        ("If I turn around, what do I see?", "others"),
        ("Are there windows?", "others"),
    ],
)
def test_sqa3d_question_type(question: str, qtype: str) -> None:
    assert sqa3d_question_type(question) == qtype


def test_qa_exact_match_hand_computed_with_types() -> None:
    preds = ["The chair.", "office chair", "3", None, "left"]
    refs = [["chair"], ["chair"], ["three"], ["two"], ["right"]]
    types = ["what", "what", "how", "how", "which"]
    out = qa_exact_match(preds, refs, types)
    assert out["em@1"] == pytest.approx(100 * 2 / 5)
    assert out["em-r"] == pytest.approx(100 * 3 / 5)
    assert out["n"] == 5
    assert (out["em@1/what"], out["em-r/what"], out["n/what"]) == (50.0, 100.0, 2)
    assert (out["em@1/how"], out["em-r/how"], out["n/how"]) == (50.0, 50.0, 2)
    assert (out["em@1/which"], out["n/which"]) == (0.0, 1)
    assert "em@1/is" not in out


def _annotations() -> dict:
    return json.loads(ANNOTATIONS.read_text())


def _questions() -> dict:
    return json.loads(QUESTIONS.read_text())


def test_sqa3d_qa_real_records_perfect_and_per_type_counts() -> None:
    anns = _annotations()
    preds = [{"question_id": a["question_id"], "answer": a["answers"][0]["answer"]} for a in anns["annotations"]]
    out = score_sqa3d_qa(anns, preds, _questions())
    assert out["em@1"] == 100.0 and out["em-r"] == 100.0 and out["n"] == 124
    # Counted by hand from the question prefixes of the two fixture scenes.
    assert {t: out[f"n/{t}"] for t in ("what", "is", "how", "can", "which", "others")} == {
        "what": 41,
        "is": 16,
        "how": 32,
        "can": 3,
        "which": 8,
        "others": 24,
    }


def test_sqa3d_qa_real_records_missing_wrong_and_unknown() -> None:
    anns = _annotations()
    records = anns["annotations"]
    preds = [{"question_id": a["question_id"], "answer": a["answers"][0]["answer"]} for a in records[4:]]
    preds[0]["answer"] = "definitely not an answer"  # wrong
    preds.append({"question_id": 123, "answer": "x"})  # unknown
    out = score_sqa3d_qa(anns, preds)
    assert out["em@1"] == pytest.approx(100 * 119 / 124)
    assert out["missing"] == 4 and out["unknown"] == 1
    assert out["missing_examples"] == [str(a["question_id"]) for a in records[:4]]
    assert "types" in out and "em@1/what" not in out  # no question texts -> no breakdown
    with pytest.raises(SampleError, match="not in the references"):
        score_sqa3d_qa(anns, preds, strict=True)


def test_sqa3d_qa_malformed_answer_names_record() -> None:
    with pytest.raises(SampleError, match=r"P\.json: record 0 \(question_id 7\): field 'answer' must be a string"):
        score_sqa3d_qa(
            {"annotations": [{"question_id": 7, "answers": [{"answer": "two"}]}]},
            [{"question_id": 7, "answer": 2}],
            predictions_source="P.json",
        )
    with pytest.raises(SampleError, match="missing field 'answers'"):
        score_sqa3d_qa([{"question_id": 7}], [])


def test_caption_metrics_hand_computed_without_meteor() -> None:
    # Two samples, each prediction identical to its only reference; every n-gram occurs in one reference
    # document, so idf = log 2 everywhere and CIDEr-D = 10 · mean over n = 1..4 of cos-sim (0 if no n-grams).
    out = caption_metrics(
        ["red chair on the left", "blue table"], [["red chair on the left"], ["blue table"]], meteor=False
    )
    # Sample 1 has 4 tokens after cleaning ("the" dropped): n = 1..4 all match -> 10; sample 2: n = 1, 2 -> 5.
    assert out["cider"] == pytest.approx(100 * (10 + 5) / 2)
    assert out["rouge-l"] == pytest.approx(100.0)
    assert out["bleu-1"] == pytest.approx(100.0, abs=1e-6)
    assert out["bleu-4"] == pytest.approx(100.0, abs=1e-6)
    assert out["meteor"] is None and "skipped" in out["meteor_unavailable"]


def test_caption_metrics_bleu_brevity_penalty() -> None:
    # Hypothesis lengths 1 + 0 (missing), closest reference lengths 1 + 1: BLEU-1 = BP · p1 = e^(1 − 2/1) · 1.
    out = caption_metrics(["chair", None], [["chair"], ["table"]], meteor=False)
    assert out["bleu-1"] == pytest.approx(100 * 0.36787944, rel=1e-6)


def test_meteor_runs_with_java() -> None:
    """METEOR 1.5 (one JVM start, ~5 s). Its corpus score pools the statistics of all segments (weighted
    content / function words, fragmentation penalty), so the value is pinned to what meteor-1.5.jar
    returns for this input rather than derived by hand."""
    if not qa.java_available()[0]:
        pytest.skip("no Java on this machine")
    out = caption_metrics(["brown wooden table", "seven"], [["brown wooden table"], ["two"]])
    assert "meteor_unavailable" not in out
    assert out["meteor"] == pytest.approx(87.3786, abs=1e-3)


def test_meteor_unavailable_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.shutil, "which", lambda name: None)
    out = caption_metrics(["chair"], [["chair"]])
    assert out["meteor"] is None and "Java" in out["meteor_unavailable"]
    assert out["cider"] == 0.0  # one document: idf = log(1/1) = 0 (COCO CIDEr-D on a single sample)


def test_score_scanqa_first_candidate_missing_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [
        {"question_id": "val-scene0011-0", "answers": ["brown wooden table", "table"]},
        {"question_id": "val-scene0011-1", "answers": ["two"]},
        {"question_id": "val-scene0011-2", "answers": ["on left"]},
    ]
    preds = [
        {"question_id": "val-scene0011-0", "answer": ["Table", "chair"]},  # first candidate counts
        {"question_id": "val-scene0011-1", "answer_top10": ["3", "2"]},  # first is wrong
    ]
    out = score_scanqa(refs, preds, meteor=False)
    assert out["em@1"] == pytest.approx(100 / 3)
    assert out["em-r"] == pytest.approx(100 / 3)
    assert out["missing"] == 1 and out["missing_examples"] == ["val-scene0011-2"]
    assert list(out)[:8] == ["em@1", "bleu-1", "bleu-2", "bleu-3", "bleu-4", "meteor", "rouge-l", "cider"]
    with pytest.raises(SampleError, match="no answers to score against"):
        score_scanqa([{"question_id": "test-1", "question": "?"}], preds)
    with pytest.raises(SampleError, match="empty list"):
        score_scanqa(refs, [{"question_id": "val-scene0011-0", "answer": []}], meteor=False)
