"""VSI-SUPER (Cambrian-S): VSR spatial recall, VSC counting, and VSC streaming through ``loc3r stream``.

Three tasks, one per upstream task family (durations are a data option: ``data.options.splits``):

* ``vsisuper_recall`` — data kind ``vsisuper`` with ``mode: recall``. Prompt (Cambrian-S / lmms-eval ``vsr``)::

      {question}\\nOptions:\\n{A. ...}\\n...\\n{prompt.multiple_choice_suffix}

  (``"Answer with the option's letter from the given choices directly."``); prediction file
  ``OUT/vsisuper_recall_predictions.jsonl`` ``{id, video_path, type, question, options, answer, prediction}``,
  scored by :func:`loc3r.benchmarks.vsisuper.metric.score_vsr`, ``loc3r score vsisuper-recall``.
* ``vsisuper_count`` — ``mode: count``, one answer per video from ``num_frames`` uniform frames. Prompt (``vsc``)::

      These are frames of a video.\\n{question}\\n{prompt.numerical_suffix}

  (``"Please answer the question using a single word or phrase."``); ``OUT/vsisuper_count_predictions.jsonl``
  ``{id, video_path, split, question, answer, prediction}``, :func:`~loc3r.benchmarks.vsisuper.metric.score_vsc`,
  ``loc3r score vsisuper-count``.
* ``vsisuper_count_streaming`` — ``mode: count_streaming``: the video is **streamed** through ``loc3r stream``'s
  :class:`~loc3r.apps.stream.LiveSession` by :func:`loc3r.apps.stream_eval.stream_counts` (the evaluation layer cannot
  import
  the streaming layer; ``loc3r eval`` hands the driver to the runner as ``stream_predict``): frames are pushed at
  1 fps (the frame at second ``k`` for ``k = 0, 1, ...``, Cambrian-S's sampling) into a
  :class:`~loc3r.apps.stream.PushSource`, the session keeps its window of ``num_frames`` frames by its ``select`` rule
  (``data.options.stream_select``: ``"last"``, the default, or ``"coverage"``), and at each query time ``t`` —
  once the frame of second ``floor(t)`` is in — the window is encoded and the question (same prompt as
  ``vsisuper_count``) is answered from it. The prediction per query is the first number of the answer
  (none: ``null``, scored 0). ``OUT/vsisuper_count_streaming_predictions.jsonl``
  ``{id, video_path, split, question, query_times, answers, prediction: [count | null per query], responses:
  [text per query]}``, :func:`~loc3r.benchmarks.vsisuper.metric.score_vsc_streaming`, ``loc3r score
  vsisuper-count-streaming``.

  Deviation from Cambrian-S's own streaming inference (a model-side strategy, not the metric): Cambrian-S keeps a
  growing KV memory with surprise-based segmentation and **sums** per-segment counts; loc3r answers from its
  bounded window (the paper's fixed-T limit), so counts of objects that left the window are lost — that is what
  this benchmark measures for loc3r.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from loc3r.core.config import ConfigError
from loc3r.data.schema import ClipSample, SampleError
from loc3r.evaluate.task import JsonlTask, Task, join_prompt

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig

#: the pre-prompt of Cambrian-S's (and lmms-eval's) VSC ``doc_to_text``
PRE_PROMPT = "These are frames of a video."
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_count(text: str) -> float | None:
    """The first number of an answer (the VSC number pattern), ``None`` when there is none."""
    match = _NUMBER.search(text or "")
    return float(match.group(0)) if match else None


class _VSISuperTask(JsonlTask):
    mode: ClassVar[str]

    def check_config(self, config: EvalConfig, source: str) -> None:
        super().check_config(config, source)
        mode = (config.data.options or {}).get("mode", "recall")
        if config.data.kind != "vsisuper" or mode != self.mode:
            raise ConfigError(
                f"{source}: benchmark {self.name!r} needs data of kind 'vsisuper' with options.mode {self.mode!r}, "
                f"got kind {config.data.kind!r} mode {mode!r}"
            )

    def _base(self, sample: ClipSample) -> dict[str, Any]:
        return {"id": sample.meta["id"], "video_path": sample.meta["video_path"], "question": sample.question}


class VSIRecallTask(_VSISuperTask):
    """VSI-SUPER-Recall (see the module docstring)."""

    name = "vsisuper_recall"
    title = "VSI-SUPER Recall (VSR)"
    mode = "recall"
    predictions_file = "vsisuper_recall_predictions.jsonl"
    score_command = "vsisuper-recall"
    scorer = "loc3r.benchmarks.vsisuper.metric:score_vsr"
    metric = "Cambrian-S VSR: first space token, trailing dots removed == answer letter (any case); per duration"
    fields = ("id", "video_path", "type", "question", "options", "answer", "prediction")

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        suffix = config.prompt.multiple_choice_suffix or config.prompt.suffix
        return join_prompt(sample.question, "Options:", *(o.strip() for o in sample.options or []), suffix)

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        suffix = config.prompt.multiple_choice_suffix or config.prompt.suffix
        return {
            "prompt": "[{pseudo-situation} <Pos> <Ori>] {question}\\nOptions:\\n{options, one per line}\\n" + suffix
        }

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        return {**self._base(sample), "type": sample.meta["split"], "options": list(sample.options or []),
                "answer": sample.answer, "prediction": prediction.answer}  # fmt: skip


class VSICountTask(_VSISuperTask):
    """VSI-SUPER-Count, regular mode (see the module docstring)."""

    name = "vsisuper_count"
    title = "VSI-SUPER Count (VSC)"
    mode = "count"
    predictions_file = "vsisuper_count_predictions.jsonl"
    score_command = "vsisuper-count"
    scorer = "loc3r.benchmarks.vsisuper.metric:score_vsc"
    metric = "lmms-eval VSC: first number of the answer (none: 0); MRA over 0.50:0.95:0.05, y=0 needs 0; per duration"
    fields = ("id", "video_path", "split", "question", "answer", "prediction")

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        return join_prompt(PRE_PROMPT, sample.question, config.prompt.numerical_suffix or config.prompt.suffix)

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        suffix = config.prompt.numerical_suffix or config.prompt.suffix
        return {"prompt": f"[{{pseudo-situation}} <Pos> <Ori>] {PRE_PROMPT}\\n{{question}}\\n{suffix}"}

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        return {**self._base(sample), "split": sample.meta["split"], "answer": float(sample.answer or 0),
                "prediction": prediction.answer}  # fmt: skip


class VSICountStreamingTask(VSICountTask):
    """VSI-SUPER-Count, streaming mode, through ``loc3r stream`` (see the module docstring)."""

    name = "vsisuper_count_streaming"
    title = "VSI-SUPER Count streaming (VSC)"
    mode = "count_streaming"
    predictions_file = "vsisuper_count_streaming_predictions.jsonl"
    score_command = "vsisuper-count-streaming"
    scorer = "loc3r.benchmarks.vsisuper.metric:score_vsc_streaming"
    streaming = True
    metric = (
        "VSC streaming: per query time, float(count) vs answer, MRA 0.50:0.95:0.05 (y=0 needs 0); mra = mean over "
        "all (video, query) pairs (Cambrian-S), mra_video_mean = mean of per-video means (lmms-eval)"
    )
    fields = ("id", "video_path", "split", "question", "query_times", "answers", "prediction", "responses")

    def stream_select(self, config: EvalConfig) -> str:
        """The window rule of the streamed session (``data.options.stream_select``, default ``"last"``)."""
        select = (config.data.options or {}).get("stream_select", "last")
        if select not in ("last", "coverage"):
            raise ConfigError(f"key 'data.options.stream_select' must be 'last' or 'coverage', got {select!r}")
        return select

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        settings = super().prompt_settings(config)
        settings["streaming"] = (
            f"loc3r stream LiveSession: frames pushed at 1 fps, window {config.num_frames} "
            f"({self.stream_select(config)}), the question asked once the frame of each query second is in"
        )
        return settings

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        responses = list(prediction.answers)
        times = sample.meta["query_times"]
        if len(responses) != len(times):
            raise SampleError(f"sample {sample.sample_id!r}: {len(responses)} streamed answers for {len(times)} "
                              "query times (the video ended before the last query time?)")  # fmt: skip
        return {**self._base(sample), "split": sample.meta["split"], "query_times": times,
                "answers": sample.meta["answers"], "prediction": [parse_count(r) for r in responses],
                "responses": responses}  # fmt: skip


TASKS: dict[str, type[Task]] = {
    "vsisuper_recall": VSIRecallTask,
    "vsisuper_count": VSICountTask,
    "vsisuper_count_streaming": VSICountStreamingTask,
}
