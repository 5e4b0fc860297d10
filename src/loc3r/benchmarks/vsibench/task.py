"""VSI-Bench on the real records: multiple-choice accuracy, numerical MRA, the 8 tasks and ``overall``.

* Data: an evaluation config's ``data`` of kind ``vsibench`` (:func:`loc3r.benchmarks.vsibench.reader.build_vsibench`:
  the records file, videos ``<video_root>/<dataset>/<scene_name>.mp4`` or a ``loc3r prepare`` cache); no
  poses, so the layout / situation heads have no anchor and only the answer is used.
* Prompt (pinned, as the thinking-in-space / lmms-eval VSI-Bench task): the question, then for
  multiple-choice types the options one per line (``"A. ..."``), then the post-prompt of the answer type:
  ``prompt.multiple_choice_suffix`` for :data:`~loc3r.benchmarks.vsibench.metric.MCA_QUESTION_TYPES`,
  ``prompt.numerical_suffix`` for :data:`~loc3r.benchmarks.vsibench.metric.NA_QUESTION_TYPES` (``prompt.suffix``
  when the specific one is not set)::

      {question}\\n{A. ...}\\n{B. ...}\\n...\\n{multiple_choice_suffix}      (multiple choice)
      {question}\\n{numerical_suffix}                                     (numerical)

  The options are folded into the question text here (the processor would otherwise put them after the
  suffix); the processor adds the (pseudo-)situation tokens and the chat template. Greedy decoding.
* Prediction record (the ``loc3r score vsibench`` input): ``OUT/vsibench_predictions.jsonl``, one line per
  question: the VSI-Bench record ``{id, dataset, scene_name, question_type, question, options,
  ground_truth}`` (the original question, without the suffix) plus ``"prediction"`` (the raw model text).
* Score: :func:`loc3r.benchmarks.vsibench.metric.score_vsibench` on that file.

VSI-Bench-debiased (``vsibench_debiased``): VSI-Bench with the questions answerable without the video removed or
rewritten (the ``debiased`` configuration of the HF dataset ``nyu-visionx/VSI-Bench``; Brown et al., "Benchmark
designers should train on the test set to expose exploitable non-visual shortcuts"; the lmms-eval task
``vsibench_debiased``, which includes the VSI-Bench template: same documents, prompts and scoring, only
``dataset_name: debiased``). Same record format (extra fields such as ``pruned`` are ignored) and videos, so its
config's ``data`` is of kind ``vsibench`` on the debiased records file; prompt, record and score are
:class:`VSIBenchTask`'s. Predictions: ``OUT/vsibench_debiased_predictions.jsonl``, re-scored by
``loc3r score vsibench-debiased`` (or ``loc3r score vsibench``: the same function).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loc3r.data.schema import ClipSample, SampleError
from loc3r.evaluate.task import JsonlTask, Task, join_prompt

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


class VSIBenchTask(JsonlTask):
    """VSI-Bench (see the module docstring)."""

    name = "vsibench"
    data_kinds = ("vsibench",)
    title = "VSI-Bench"
    predictions_file = "vsibench_predictions.jsonl"
    score_command = "vsibench"
    scorer = "loc3r.benchmarks.vsibench.metric:score_vsibench"
    metric = (
        "thinking-in-space lmms-eval: first token MC match; MRA over 0.50:0.95:0.05; rel_direction = mean "
        "of easy/medium/hard; overall = mean of 8 tasks"
    )

    @staticmethod
    def is_multiple_choice(sample: ClipSample) -> bool:
        """By question type as the official task does; a record of an unknown type falls back to having options."""
        from loc3r.benchmarks.vsibench.metric import MCA_QUESTION_TYPES, NA_QUESTION_TYPES

        qtype = sample.meta.get("question_type")
        if qtype in MCA_QUESTION_TYPES:
            return True
        if qtype in NA_QUESTION_TYPES:
            return False
        return bool(sample.options)

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        prompt = config.prompt
        if self.is_multiple_choice(sample):
            if not sample.options:
                raise SampleError(
                    f"sample {sample.sample_id!r}: field 'options' is empty for multiple-choice type "
                    f"{sample.meta.get('question_type')!r}"
                )
            suffix = prompt.multiple_choice_suffix if prompt.multiple_choice_suffix is not None else prompt.suffix
            return join_prompt(sample.question, *(o.strip() for o in sample.options), suffix)
        suffix = prompt.numerical_suffix if prompt.numerical_suffix is not None else prompt.suffix
        return join_prompt(sample.question, suffix)

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        p = config.prompt
        mc = p.multiple_choice_suffix if p.multiple_choice_suffix is not None else p.suffix
        na = p.numerical_suffix if p.numerical_suffix is not None else p.suffix
        return {
            "prompt_multiple_choice": "[{pseudo-situation} <Pos> <Ori>] {question}\\n{options, one per line}\\n" + mc,
            "prompt_numerical": "[{pseudo-situation} <Pos> <Ori>] {question}\\n" + na,
        }

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        meta = sample.meta
        return {
            "id": meta["id"],
            "dataset": meta["dataset"],
            "scene_name": sample.scene_id,
            "question_type": meta["question_type"],
            "question": sample.question,
            "options": None if sample.options is None else list(sample.options),
            "ground_truth": sample.answer,
            "prediction": prediction.answer,
        }

    fields = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth", "prediction")


class VSIBenchDebiasedTask(VSIBenchTask):
    """VSI-Bench-debiased (see the module docstring)."""

    name = "vsibench_debiased"
    title = "VSI-Bench-debiased"
    predictions_file = "vsibench_debiased_predictions.jsonl"
    score_command = "vsibench-debiased"


TASKS: dict[str, type[Task]] = {"vsibench": VSIBenchTask, "vsibench_debiased": VSIBenchDebiasedTask}
