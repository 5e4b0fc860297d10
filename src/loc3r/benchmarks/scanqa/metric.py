"""ScanQA's metric: EM@1 (+ EM-R) and the caption metrics BLEU-1..4, METEOR, ROUGE-L, CIDEr of the first answer
against all reference answers, x100 (the definitions and their sources: :mod:`loc3r.evaluate.qa`). MSQA and
Beacon3D's ScanQA-format files are scored by the same function."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loc3r.evaluate.qa import caption_metrics, prediction_answer, qa_exact_match, reference_answers
from loc3r.evaluate.records import SampleError, index_by_id, match_predictions, record_where


def score_scanqa(
    references: Any,
    predictions: Sequence[Mapping[str, Any]],
    *,
    strict: bool = False,
    meteor: bool = True,
    references_source: str = "references",
    predictions_source: str = "predictions",
    types_field: str | None = None,
) -> dict[str, Any]:
    """ScanQA EM@1 (+ EM-R) and BLEU-1..4, METEOR, ROUGE-L, CIDEr (percent).

    Args:
        references: the ScanQA file content with answers (``ScanQA_v1.0_val.json``: a list of
            ``{"question_id", "answers": [...]}``); each entry is scored once.
        predictions: ``[{"question_id", "answer"}]`` (or ``"answer": [...]`` / ``"answer_top10": [...]``
            candidates, of which the first is scored). A missing prediction scores as the empty answer.
        types_field: a reference field giving each question's type (MSQA's ``type``; ``?`` when empty): EM@1 / EM-R
            per type are then added (``em@1/<type>``, ``em-r/<type>``, ``n/<type>``).
    """
    ref_index = index_by_id(references, references_source)
    pred_index = index_by_id(predictions, predictions_source)
    _, _, report = match_predictions(ref_index, pred_index, prediction_source=predictions_source, strict=strict)
    preds: list[str | None] = []
    refs: list[list[str]] = []
    types: list[str] = []
    for qid, (i, rec) in ref_index.items():
        where = record_where(references_source, i, rec)
        if isinstance(rec, Mapping) and "answers" not in rec:
            raise SampleError(f"{where}: missing field 'answers' (a ScanQA test file has no answers to score against)")
        refs.append(reference_answers(rec, where))
        types.append(str(rec.get(types_field) or "?") if types_field else "")
        if qid in pred_index:
            j, prec = pred_index[qid]
            preds.append(prediction_answer(prec, record_where(predictions_source, j, prec)))
        else:
            preds.append(None)
    em = qa_exact_match(preds, refs, types if types_field else None)
    captions = caption_metrics(preds, refs, meteor=meteor)
    unavailable = captions.pop("meteor_unavailable", None)
    out: dict[str, Any] = {"em@1": em["em@1"], **captions, "em-r": em["em-r"], "n": em["n"], **report}
    if unavailable:
        out["meteor_unavailable"] = unavailable
    out.update({k: v for k, v in em.items() if "/" in k})  # per type
    return out
