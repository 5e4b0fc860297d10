"""MSQA's lmms-eval task ``loc3r_msqa`` (EM@1 / EM-R + caption metrics; the paper's GPT-judged score is not
computed). The record carries its references (answers, question, types), as ``loc3r eval`` writes it."""

from __future__ import annotations

from typing import Any

from loc3r.integrations.lmms_eval.spec import LmmsTask


def _record(doc: dict[str, Any], response: str) -> dict[str, Any]:
    return {"answer": response, "answers": list(doc["answers"]), "question": doc["question"],
            "type": doc["question_type"], "query_type": doc["query_type"]}  # fmt: skip


LMMS_TASKS = {
    "loc3r_msqa": LmmsTask(
        "msqa",
        ("em@1", "em-r", "bleu-1", "bleu-4", "meteor", "rouge-l", "cider"),
        response=_record,
        id_attrs=("sample_id", "id"),
    ),  # fmt: skip
}
