"""SQA3D's lmms-eval tasks: ``loc3r_sqa3d`` (EM@1 / EM-R, per question type) and ``loc3r_sqa3d_localization``
(Acc@0.5m / 1.0m / 15° / 30°; the model's response is the loc3r task's pose record as JSON)."""

from __future__ import annotations

import json
from typing import Any

from loc3r.evaluate.qa import SQA3D_QUESTION_TYPES
from loc3r.integrations.lmms_eval.spec import LmmsTask


def _qa(doc: dict[str, Any], response: str) -> dict[str, Any]:
    return {"question": doc["question"], "answer": response}


def _pose(doc: dict[str, Any], response: str) -> dict[str, Any] | None:
    """The pose record of a localization response; ``None`` unless it is an object with ``position`` and
    ``rotation`` (or ``candidates``)."""
    try:
        parsed = json.loads(response)
    except (TypeError, json.JSONDecodeError):
        return None
    if not isinstance(parsed, dict) or not (
        parsed.get("candidates") or ("position" in parsed and "rotation" in parsed)
    ):
        return None
    return {k: v for k, v in parsed.items() if k != "question_id"}


LMMS_TASKS = {
    "loc3r_sqa3d": LmmsTask("sqa3d", ("em@1", "em-r", *(f"em@1/{t}" for t in SQA3D_QUESTION_TYPES)), response=_qa),
    "loc3r_sqa3d_localization": LmmsTask(
        "sqa3d_localization",
        ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "median_pos_err_m", "median_ori_err_deg"),
        response=_pose,
        pose_response=True,
    ),
}
