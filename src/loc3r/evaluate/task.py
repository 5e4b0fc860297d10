"""The task base class: what every evaluation task (a real benchmark or a SynthRooms set) says about itself.

Like an lmms-eval task, a :class:`Task` owns everything that is specific to one benchmark, so that one runner
(:func:`loc3r.evaluate.runner.evaluate`) evaluates all of them the same way. A benchmark's tasks are in its folder's
``task.py`` (``loc3r/benchmarks/<name>/task.py``, ``TASKS``), found by the registry :mod:`loc3r.evaluate.tasks`
(kept apart from this module, which the task modules import):

* which samples: :meth:`Task.build_dataset` (from the config's ``data`` and frame count);
* how to ask: :meth:`Task.build_prompt` (the pinned prompt; only the text changes, never the training path),
  :meth:`Task.max_new_tokens`, :meth:`Task.shared_prediction_key` (samples that must get one prediction);
* what to keep: :meth:`Task.record` (the task's fields of one prediction record);
* how to score: :meth:`Task.score` (the prediction records of an evaluation) and :meth:`Task.score_files` (the same
  metric on files in the benchmark's ``loc3r score`` format, so any other model's file is scored identically);
  :attr:`Task.metric` is the metric's definition, printed with every score by ``loc3r eval`` and ``loc3r score``.

A task never re-implements a metric: it calls the functions of :mod:`loc3r.evaluate` (``localization``, ``qa``) or
of its folder's ``metric.py``. It trusts what its reader checked (:attr:`Task.data_kinds` is checked once, with the
config), so :meth:`Task.record` does not re-check the sample's fields.

Several tasks that are evaluated and scored together (SynthRooms: localization, situated QA and VSI-style questions
on one split) form a group: a task whose :meth:`Task.parts` are those tasks.

Prediction records (one JSON object per evaluated sample, written per shard) carry ``set`` (:attr:`Task.set_name`),
``split``, ``sample_id``, ``scene_id``, ``seconds``, ``subset`` plus the task's own fields from :meth:`Task.record`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from loc3r.core.config import ConfigError
from loc3r.core.errors import SampleError

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


def restrict_references(data: Any, list_key: str | None, ids: set[str], out_path: Path, source: Path) -> Path:
    """Write the reference entries whose ``question_id`` (as a string) is in ``ids`` to ``out_path`` (returned), in
    the same shape (``{list_key: [...]}`` or a list), so ``loc3r score`` can re-score a subset evaluation."""
    import json

    entries = data[list_key] if list_key is not None and isinstance(data, dict) and list_key in data else data
    if not isinstance(entries, list):
        raise SampleError(f"{source}: expected a list of records (or an object with key {list_key!r})")
    kept = [e for e in entries if isinstance(e, dict) and str(e.get("question_id")) in ids]
    restricted: Any = {**data, list_key: kept} if isinstance(data, dict) and list_key is not None else kept
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(restricted))
    return out_path


def write_json_file(path: Path, data: Any) -> Path:
    """Write a prediction / reference file in the ``loc3r score`` JSON format (indented one space)."""
    from loc3r.core.io import write_json

    return write_json(path, data, indent=1)


def join_prompt(*parts: str | None) -> str:
    """Non-empty parts joined by newlines (the LLaVA / lmms-eval way of adding a post-prompt)."""
    return "\n".join(p.strip() for p in parts if p is not None and p.strip())


class Task:
    """One evaluation task: how to build its samples, prompt them, record and score the predictions."""

    #: the registry name (``benchmark:`` of an evaluation config, see :mod:`loc3r.evaluate.tasks`)
    name: ClassVar[str]
    title: ClassVar[str]
    #: the metric definition printed with every result (``loc3r eval`` and ``loc3r score``)
    metric: ClassVar[str] = ""
    #: file name (under the output directory) of the predictions in the ``loc3r score`` format, if any
    predictions_file: ClassVar[str | None] = None
    #: the ``loc3r score`` sub-command that scores :attr:`predictions_file` with :meth:`score_files`, if any
    score_command: ClassVar[str | None] = None
    #: predict a shard's samples together instead of ``batch_size`` at a time. Small sets whose questions share a
    #: clip (SynthRooms: every question of a room is on its one scan) then encode each clip's video prefix once
    #: for all of them; real benchmarks stream (their shards do not fit in memory).
    whole_shard: ClassVar[bool] = False
    #: the dataset kinds whose samples this task reads (their reader fills the fields :meth:`record` takes, checked
    #: once here, at the config); None: any kind
    data_kinds: ClassVar[tuple[str, ...] | None] = None
    #: scores are ``{split: {metric: value}}`` (a group scored per split) instead of ``{metric: value}``
    scores_by_split: ClassVar[bool] = False
    #: samples are streamed videos answered at several times (VSI-SUPER streaming counting): the runner predicts each
    #: with the ``stream_predict`` driver its caller passes (``loc3r eval``:
    # :func:`loc3r.apps.stream_eval.stream_counts`,
    #: ``loc3r stream``'s LiveSession), not with the batched clip predictor
    streaming: ClassVar[bool] = False

    @property
    def set_name(self) -> str:
        """The ``set`` of this task's prediction records (the merge key with ``split`` and ``sample_id``)."""
        return self.name

    def parts(self) -> list[Task]:
        """The tasks the runner evaluates for this one: itself, or a group's members."""
        return [self]

    # ------------------------------------------------------------------------------------------ checks
    def check_config(self, config: EvalConfig, source: str) -> None:
        """Reject settings this task cannot honour (named by key): data of another kind, sampled decoding."""
        if self.data_kinds is not None and config.data.kind not in self.data_kinds:
            raise ConfigError(
                f"{source}: benchmark {self.name!r} needs data of kind {' or '.join(map(repr, self.data_kinds))} (key "
                f"'data.kind'), got {config.data.kind!r}"
            )
        gen = config.generation
        if gen.do_sample or gen.num_beams != 1:
            raise ConfigError(
                f"{source}: key 'generation' asks for do_sample={gen.do_sample}, num_beams={gen.num_beams}, but "
                "Loc3rForConditionalGeneration.predict decodes greedily only (set do_sample: false, num_beams: 1)"
            )

    def check_model(self, model: Any, checkpoint: str | Path) -> None:
        """Reject a model that cannot do this task (default: any model can answer text)."""

    # ------------------------------------------------------------------------------------------ samples
    def build_dataset(self, config: EvalConfig, num_frames: int, source: str) -> Any:
        """The task's samples: the dataset of ``config.data`` (its ``max_samples`` is the runner's job: an evenly
        spread subset, not the first N)."""
        from loc3r.data.registry import build_dataset

        return build_dataset(config.data.model_copy(update={"max_samples": None}), num_frames, source=source)

    # ------------------------------------------------------------------------------------------ prompts
    def max_new_tokens(self, config: EvalConfig) -> int:
        return int(config.generation.max_new_tokens)

    def shared_prediction_key(self, sample: Any) -> str | None:
        """Samples with the same (non-None) key get the same prediction, computed once. Default None: every
        sample is predicted (its answer depends on its own question)."""
        return None

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        """The pinned user question of a sample (before the processor's situation / chat template)."""
        return join_prompt(sample.question, config.prompt.suffix)

    def build_prompt(self, sample: Any, config: EvalConfig) -> Any:
        """The sample the processor sees: same clip, question text = :meth:`question_text`, options folded
        into it (so a suffix comes after them). Training samples are untouched: only evaluation does this."""
        return dataclasses.replace(sample, question=self.question_text(sample, config), options=None)

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        """The prompt template, printed next to the scores."""
        suffix = config.prompt.suffix
        return {"prompt": "{situation} [<Pos> <Ori>] {question}" + (f"\\n{suffix}" if suffix else "")}

    # ------------------------------------------------------------------------------------------ records, scores
    def record(self, sample: Any, prediction: Any) -> dict[str, Any]:
        """Task fields of one prediction (JSON-serialisable)."""
        raise NotImplementedError

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        """Write the predictions in the ``loc3r score`` format; return the path."""
        raise NotImplementedError

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Score the prediction records of an evaluation: ``(metrics, settings)``, settings naming the files
        written and the ``loc3r score`` command that re-scores them."""
        raise NotImplementedError

    def score_against(self, records: Sequence[dict[str, Any]], out_dir: Path, **files: Path) -> tuple[Any, Any]:
        """:meth:`score_files` of the written predictions against ``files``; the settings name the files and the
        ``loc3r score`` command that re-scores them."""
        pred_path = self.write_predictions(records, out_dir)
        flags = "".join(f" --{k} {v}" for k, v in files.items())
        settings = {"predictions": str(pred_path), **{k: str(v) for k, v in files.items()},
                    "rescore": f"loc3r score {self.score_command}{flags} --predictions {pred_path}",
                    "metric": self.metric}  # fmt: skip
        return self.score_files(pred_path, **files), settings

    def score_files(self, predictions: str | Path, **files: Any) -> dict[str, Any]:
        """The metric on files in the benchmark's formats (``loc3r score``: any model's predictions)."""
        raise NotImplementedError(f"task {self.name!r} has no file scorer")


class JsonlTask(Task):
    """A benchmark whose predictions are ONE JSON Lines file of records that carry their own references (VSI-Bench,
    ViewSpatial-Bench, VSI-SUPER): the record :attr:`fields` are written, and :meth:`score_records` scores them."""

    #: the fields of a prediction record written to :attr:`predictions_file` (the ``loc3r score`` input)
    fields: ClassVar[tuple[str, ...]]
    #: ``"module:function"`` of the metric, ``function(records, source=...)``, that :meth:`score_records` runs
    scorer: ClassVar[str]

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        from loc3r.core.io import write_jsonl

        path = out_dir / str(self.predictions_file)
        write_jsonl(path, [{k: r[k] for k in self.fields} for r in records])
        return path

    def score_records(self, records: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
        """The benchmark's metric (:attr:`scorer`) on prediction records (read from ``source``)."""
        import importlib

        module, function = self.scorer.split(":")
        return getattr(importlib.import_module(module), function)(records, source=source)

    def score_files(self, predictions: str | Path) -> dict[str, Any]:
        from loc3r.evaluate.records import load_records

        return self.score_records(load_records(predictions), source=str(predictions))

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.score_against(records, out_dir)


class AnswerFileTask(Task):
    """A benchmark whose predictions are ONE JSON list of ``{question_id, answer}`` scored against reference files
    (ScanQA, MSQA, Beacon3D): ``loc3r score <score_command> --<file> F ... --predictions P``."""

    def record(self, sample: Any, prediction: Any) -> dict[str, Any]:
        return {"question_id": sample.meta["question_id"], "answer": prediction.answer}

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        rows = [{"question_id": r["question_id"], "answer": r["answer"]} for r in records]
        return write_json_file(out_dir / str(self.predictions_file), rows)
