"""Question-answering metrics: EM@1 / EM-R (per type when given), the caption metrics, and the prediction / reference
record helpers; the benchmarks' file scorers use them (SQA3D: :mod:`loc3r.benchmarks.sqa3d.metric`, ScanQA / MSQA:
:mod:`loc3r.benchmarks.scanqa.metric`, Beacon3D).

Official behaviour followed (read, not copied):

* **Answer normalisation** = LEO's ``clean_answer`` (embodied-generalist ``data/data_utils.py``; the same
  function SQA3D's ``LLM/eval_sqa3d_llm.py`` applies and Video-3D-LLM / LL3DA reuse): lower case; strip
  leading / trailing spaces; collapse runs of spaces; delete every character outside
  ``[a-zA-Z0-9,'\\s\\-:]`` (so ``.?!"()`` go, commas / apostrophes / hyphens / colons stay); fix a fixed list
  of annotator typos; ``tv`` -> ``TV``; numbers ``0``–``20`` and ``23`` -> words (``none`` -> ``zero``);
  drop a digit glued to a word (``mat2`` -> ``mat``); drop the articles ``a`` / ``an`` / ``the`` before a word
  (one left-to-right pass); ``backwards`` -> ``backward``. The steps run in LEO's order, which matters
  (e.g. trailing spaces are stripped *before* punctuation is deleted, so ``"chair ."`` keeps a trailing
  space: no EM, but EM-R). It is applied to the prediction and to every reference answer.
* **EM@1** = the cleaned prediction equals one of the cleaned references. **EM-R** (LEO's "refined" EM)
  also accepts containment either way after deleting all whitespace (``"office chair"`` vs ``"chair"``).
  Two deliberate differences from LEO's ``answer_match`` loop, both only reachable with unusual input:
  LEO returns at the *first* reference that matches even only by containment, so a later exact match
  is not counted as EM (we count EM against any reference; identical for SQA3D, which has one answer
  per question); and LEO's containment test accepts an *empty* prediction (``"" in gt`` is true), which
  would credit a model for answering nothing — we never credit an empty string by containment.
* **SQA3D question types** = LEO's ``get_sqa_question_type``: the question (without the situation),
  left-stripped, starts (case-insensitively, as a prefix, not a whole word) with ``what`` / ``is`` /
  ``how`` / ``can`` / ``which``, else ``others``. Per-type EM is over the questions of that type.
* **ScanQA caption metrics** = BLEU-1..4, METEOR, ROUGE-L, CIDEr(-D) from the maintained
  ``pycocoevalcap`` (the COCO caption definitions; ScanQA's ``scripts/score.py`` uses the same scorers),
  on the first answer candidate, against all reference answers, reported x100 as ScanQA does.
  Tokenisation: ScanQA's script runs the Stanford PTB tokenizer (Java); we follow LEO instead and score
  the ``clean_answer`` outputs split on whitespace (they are already lower-cased and punctuation-free),
  so that only METEOR needs Java. Whitespace runs are collapsed to one space first (a newline inside an
  answer would otherwise break METEOR's line protocol).
* **ScanQA EM@1**: ScanQA's script compares raw strings (its models emit vocabulary answers); generative
  models are scored with the cleaned EM above (the LEO / 3D-LLM practice), and EM-R is reported too.

METEOR runs ``java -jar meteor-1.5.jar``; without Java it is reported as unavailable (``None`` plus a
``meteor_unavailable`` reason) instead of failing the whole evaluation.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loc3r.evaluate.records import (
    SampleError,
    require_field,
)

#: SQA3D's question types, in the order the per-type breakdown lists them (known types first)
SQA3D_QUESTION_TYPES: tuple[str, ...] = ("what", "is", "how", "can", "which", "others")

_NUMBER_WORDS = str.split(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty"
)

# LEO's clean_answer, step by step and in its order: (pattern, replacement).
_CLEAN_STEPS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in [
        (r"[ ]+$", ""),
        (r"^[ ]+", ""),
        (r" {2,}", " "),
        (r"\.[ ]{2,}", ". "),
        (r"[^a-zA-Z0-9,'\s\-:]+", ""),
        # (LEO then maps "ç" -> "c" and "’" -> "'", which the previous step has already deleted.)
        (r"\bletf\b", "left"),
        (r"\blet\b", "left"),
        (r"\btehre\b", "there"),
        (r"\brigth\b", "right"),
        (r"\brght\b", "right"),
        (r"\bbehine\b", "behind"),
        (r"\btv\b", "TV"),
        (r"\bchai\b", "chair"),
        (r"\bwasing\b", "washing"),
        (r"\bwaslked\b", "walked"),
        (r"\boclock\b", "o'clock"),
        (r"\bo'[ ]+clock\b", "o'clock"),
        (r"\b0\b", "zero"),
        (r"\bnone\b", "zero"),
        *((rf"\b{n}\b", word) for n, word in enumerate(_NUMBER_WORDS, start=1)),
        (r"\b23\b", "twenty-three"),
        (r"\b([a-zA-Z]+)([0-9])\b", r"\g<1>"),
        (r"\ba\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\ban\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\bthe\b ([a-zA-Z]+)", r"\g<1>"),
        (r"\bbackwards\b", "backward"),
    ]
)


def clean_answer(text: str) -> str:
    """LEO's answer normalisation (see the module docstring for every step)."""
    text = text.lower()
    for pattern, repl in _CLEAN_STEPS:
        text = pattern.sub(repl, text)
    return text


def _squash(text: str) -> str:
    return "".join(text.split())


def answer_match(prediction: str, references: Sequence[str]) -> tuple[bool, bool]:
    """``(EM, EM-R)`` of an already-cleaned prediction against cleaned references.

    EM: equal to a reference. EM-R: EM, or one contains the other once all whitespace is removed
    (empty strings never count as contained).
    """
    if any(prediction == ref for ref in references):
        return True, True
    pred = _squash(prediction)
    if not pred:
        return False, False
    for ref in references:
        ref_sq = _squash(ref)
        if ref_sq and (pred in ref_sq or ref_sq in pred):
            return False, True
    return False, False


def qa_exact_match(
    predictions: Sequence[str | None],
    references: Sequence[Sequence[str]],
    types: Sequence[str] | None = None,
) -> dict[str, Any]:
    """EM@1 and EM-R (percent) of raw predictions against raw reference lists, optionally per type.

    ``None`` predictions (missing) are wrong. Returns ``em@1``, ``em-r``, ``n`` and, with ``types``,
    ``em@1/<type>``, ``em-r/<type>``, ``n/<type>`` for each type present (SQA3D order first).
    """
    if not references:  # (predictions are zipped with them strictly below)
        raise ValueError("no samples to score")
    em = np.zeros(len(references))
    em_r = np.zeros(len(references))
    for i, (pred, refs) in enumerate(zip(predictions, references, strict=True)):
        if pred is None:
            continue
        hit, hit_r = answer_match(clean_answer(pred), [clean_answer(r) for r in refs])
        em[i], em_r[i] = hit, hit_r
    result: dict[str, Any] = {
        "em@1": 100.0 * float(em.mean()),
        "em-r": 100.0 * float(em_r.mean()),
        "n": len(references),
    }
    if types is not None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, t in enumerate(types):
            groups[t].append(i)
        ordered = [t for t in SQA3D_QUESTION_TYPES if t in groups] + sorted(set(groups) - set(SQA3D_QUESTION_TYPES))
        for t in ordered:
            idx = groups[t]
            result[f"em@1/{t}"] = 100.0 * float(em[idx].mean())
            result[f"em-r/{t}"] = 100.0 * float(em_r[idx].mean())
            result[f"n/{t}"] = len(idx)
    return result


def java_available() -> tuple[bool, str]:
    """Whether a ``java`` executable is on PATH (METEOR needs it), with a reason when not."""
    if shutil.which("java") is None:
        return False, "METEOR needs Java (java not found on PATH); install a JRE to get METEOR"
    return True, ""


def _meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float | None, str]:
    ok, reason = java_available()
    if not ok:
        return None, reason
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = None
    try:
        scorer = Meteor()
        score, _ = scorer.compute_score(gts, res)
        return float(score), ""
    except (OSError, ValueError) as err:  # JVM failed to start / died: its stdout closes, float('') fails
        return None, f"METEOR failed to run ({type(err).__name__}: {err})"
    finally:
        if scorer is not None:
            # pycocoevalcap leaves its lock held when compute_score raises, and its __del__ would then
            # block forever; give it a fresh lock so the subprocess is always cleaned up.
            scorer.lock = threading.Lock()
            del scorer


def caption_metrics(
    predictions: Sequence[str | None],
    references: Sequence[Sequence[str]],
    *,
    meteor: bool = True,
) -> dict[str, Any]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr (x100) with pycocoevalcap on ``clean_answer``-ed text.

    ``None`` predictions (missing) are scored as the empty answer. ``meteor=False`` skips the Java
    scorer (``meteor`` is then ``None`` with a reason).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not references:
        raise ValueError("no samples to score")
    res: dict[str, list[str]] = {}
    gts: dict[str, list[str]] = {}
    for i, (pred, refs) in enumerate(zip(predictions, references, strict=True)):
        if not refs:
            raise ValueError(f"sample {i} has no reference answer")
        res[str(i)] = [" ".join(clean_answer(pred or "").split())]
        gts[str(i)] = [" ".join(clean_answer(r).split()) for r in refs]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    result: dict[str, Any] = {f"bleu-{k + 1}": 100.0 * float(bleu[k]) for k in range(4)}
    if meteor:
        meteor_value, reason = _meteor_score(gts, res)
    else:
        meteor_value, reason = None, "METEOR skipped (disabled by the caller)"
    result["meteor"] = None if meteor_value is None else 100.0 * meteor_value
    result["rouge-l"] = 100.0 * float(rouge)
    result["cider"] = 100.0 * float(cider)
    if meteor_value is None:
        result["meteor_unavailable"] = reason
    return result


def prediction_answer(record: Any, where: str) -> str | None:
    """The (first) answer of a prediction record.

    Accepted: ``"answer": "text"``, ``"answer": ["first", ...]`` or ``"answer_top10": [...]`` (ScanQA's
    test-server format); the first candidate is the EM@1 answer. ``null`` means no answer (wrong).
    """
    if not isinstance(record, Mapping):
        raise SampleError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "answer" in record:
        field, value = "answer", record["answer"]
    elif "answer_top10" in record:
        field, value = "answer_top10", record["answer_top10"]
    else:
        raise SampleError(f"{where}: missing field 'answer' (or 'answer_top10')")
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            raise SampleError(f"{where}: field {field!r} is an empty list")
        value = value[0]
    if not isinstance(value, str):
        raise SampleError(f"{where}: field {field!r} must be a string or a list of strings, got {value!r}")
    return value


def reference_answers(record: Any, where: str) -> list[str]:
    """The reference answers of a record: ``answers`` as strings (SQA3D: ``{"answer": ...}`` objects)."""
    answers = require_field(record, "answers", where)
    if not isinstance(answers, list) or not answers:
        raise SampleError(f"{where}: field 'answers' must be a non-empty list, got {answers!r}")
    out = []
    for j, ans in enumerate(answers):
        if isinstance(ans, Mapping):  # SQA3D: {"answer", "answer_confidence", "answer_id"}
            ans = require_field(ans, "answer", f"{where}: answers[{j}]")
        if not isinstance(ans, str):
            raise SampleError(f"{where}: field 'answers[{j}]' must be a string, got {ans!r}")
        out.append(ans)
    return out


def as_record_list(data: Any, source: str, key: str | None = None) -> list[Any]:
    """``data`` (or ``data[key]``: an official file ``{key: [...]}``) when it is a list of records, else a
    :class:`SampleError` naming ``source`` and the expected shape."""
    if key is not None and isinstance(data, Mapping) and key in data:
        data = data[key]
    if not isinstance(data, list):
        expected = f"{{'{key}': [...]}} or a list of records" if key else "a list of records"
        raise SampleError(f"{source}: expected {expected}, got {type(data).__name__}")
    return data
