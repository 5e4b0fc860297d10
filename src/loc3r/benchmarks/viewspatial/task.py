"""ViewSpatial-Bench: direction questions from the camera's view and from a person's (perspective taking).

* Data: an evaluation config's ``data`` of kind ``viewspatial``
  (:func:`loc3r.benchmarks.viewspatial.reader.build_viewspatial`:
  the released ``ViewSpatial-Bench.json``, images under ``image_root``); one sample per question, no poses.
  *Person perspective - Scene Simulation Relative Direction* ("standing at X facing Y, where is Z?") is the
  situation question of SQA3D in another form: the situation is in the question text, the frames are the scan's.
* Prompt (pinned, the lmms-eval ``viewspatial`` task's, "prompt format from the ViewSpatial-Bench paper")::

      Question: {question}\\nChoices: {A. ...\\nB. ...\\nC. ...\\nD. ...}\\n{prompt.suffix}

  with ``prompt.suffix`` = ``"Reply only to the corresponding option.\\nAnswer:"``. (The benchmark's own
  ``evaluate.py`` appends the same suffix to the question without the choices; we follow lmms-eval, whose prompt
  shows them.) Greedy decoding.
* Prediction record (the ``loc3r score viewspatial`` input): ``OUT/viewspatial_predictions.jsonl``, one line per
  question: ``{id, question_type, image_path, question, choices, answer, prediction}`` (the raw model text).
* Score: :func:`loc3r.benchmarks.viewspatial.metric.score_viewspatial` (the official rule: last line, first stand-alone
  letter A-D; overall = micro accuracy, and per question type).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loc3r.data.schema import ClipSample
from loc3r.evaluate.task import JsonlTask, Task, join_prompt

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


class ViewSpatialTask(JsonlTask):
    """ViewSpatial-Bench (see the module docstring)."""

    name = "viewspatial"
    data_kinds = ("viewspatial",)
    title = "ViewSpatial-Bench"
    predictions_file = "viewspatial_predictions.jsonl"
    score_command = "viewspatial"
    scorer = "loc3r.benchmarks.viewspatial.metric:score_viewspatial"
    metric = (
        "ViewSpatial-Bench evaluate.py / lmms-eval viewspatial: last line of the answer, first \\b[A-D]\\b "
        "(any case) == the answer's letter; overall = micro accuracy, + per question type"
    )

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        # never empty: the reader checks it
        choices = (sample.meta or {}).get("choices") or "\n".join(sample.options or [])
        return join_prompt(f"Question: {sample.question}", f"Choices: {choices}", config.prompt.suffix)

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        suffix = config.prompt.suffix.replace("\n", "\\n")
        return {"prompt": "[{pseudo-situation} <Pos> <Ori>] Question: {question}\\nChoices: {choices}\\n" + suffix}

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        meta = sample.meta
        return {
            "id": meta["id"],
            "question_type": meta["question_type"],
            "question": sample.question,
            "choices": meta.get("choices") or "\n".join(sample.options or []),
            "answer": sample.answer,
            "prediction": prediction.answer,
        }

    fields = ("id", "question_type", "question", "choices", "answer", "prediction")


TASKS: dict[str, type[Task]] = {"viewspatial": ViewSpatialTask}
