"""Typed evaluation configs (``configs/paper/eval/*.yaml``): one file per benchmark, pinned prompts.

Peer projects' users asked again and again for numbers that reproduce (DESIGN.md §6): one prompt suffix
moved ScanQA CIDEr by ~4 points in a peer project. So an evaluation config pins everything that changes
a score — the data (split, frames, prepared cache), the prompt suffixes per answer type, greedy decoding
and the metric — and the evaluation prints them next to the result. Like the training recipes, files are
read with ``yaml.safe_load`` and unknown keys are errors naming the key and the file.

Prompt suffixes (appended to the user text by the evaluation, one per answer type):

* SQA3D / ScanQA: ``"Answer the question using a single word or phrase."`` (the LLaVA-style short-answer
  suffix used by the 3D-LLM peers for these exact-match / caption-metric benchmarks);
* VSI-Bench: ``"Answer with the option's letter from the given choices directly."`` for multiple choice
  and ``"Please answer the question using a single word or phrase."`` for numerical answers (the
  thinking-in-space / lmms-eval task's post-prompts);
* MSQA: a short-sentence suffix (open answers).

Each benchmark's task (prompt, prediction record, scoring) is a :class:`BenchmarkTask` in
:mod:`loc3r.evaluate.tasks` (one module per benchmark, lmms-eval style); :func:`get_task` finds it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from loc3r.config_base import ConfigError, StrictConfig, apply_overrides, read_yaml_mapping, validate_config
from loc3r.data.spec import DatasetSpec

__all__ = [
    "BENCHMARKS",
    "PromptConfig",
    "GenerationConfig",
    "EvalConfig",
    "load_eval_config",
    "BenchmarkTask",
    "TASK_MODULES",
    "get_task",
    "join_prompt",
]

BENCHMARKS = ("sqa3d", "sqa3d_localization", "scanqa", "vsibench", "msqa", "beacon3d")


class PromptConfig(StrictConfig):
    """Pinned text around the question (the processor's chat template adds the backbone's own parts)."""

    suffix: str = ""  # open / short answers
    multiple_choice_suffix: str | None = None  # samples with options
    numerical_suffix: str | None = None  # VSI-Bench numerical question types


class GenerationConfig(StrictConfig):
    """Greedy decoding by default (deterministic, what the papers report)."""

    max_new_tokens: int = Field(16, gt=0)
    do_sample: bool = False
    num_beams: int = Field(1, gt=0)


class EvalConfig(StrictConfig):
    """One benchmark evaluation: checkpoint, data, pinned prompt, decoding and metric."""

    benchmark: Literal["sqa3d", "sqa3d_localization", "scanqa", "vsibench", "msqa", "beacon3d"]
    checkpoint: Path
    output_dir: Path
    data: DatasetSpec
    num_frames: int = Field(32, gt=0)
    camera_root: Path | None = None
    batch_size: int = Field(1, gt=0)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    max_samples: int | None = Field(None, gt=0)
    localization_candidates: int = Field(1, ge=1, le=3)  # SQA3D localization: up to 3 counted (DESIGN.md §5)
    # SQA3D localization unit: each (scene, situation) once (the paper's 719 test situations) or every question
    localization_unit: Literal["situation", "question"] = "situation"
    # position sigma scale fitted on validation (benchmarks/calibrate_poses.py); used by the extra candidates
    position_sigma_temperature: float = Field(1.0, gt=0)
    # extra position candidates at mean +- spread * calibrated sigma along its larger axis (fitted on validation)
    candidate_spread: float = Field(1.0, ge=0)


def load_eval_config(path: str | Path, overrides: list[str] | None = None) -> EvalConfig:
    """Read and validate an evaluation YAML (unknown keys -> :class:`ConfigError` naming key and file);
    ``overrides`` are ``--set key.path=value`` items applied before validation (same errors as the file)."""
    path = Path(path)
    raw: Any = read_yaml_mapping(path, "evaluation config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level of an evaluation config must be a mapping")
    if overrides:
        raw = apply_overrides(raw, overrides, source=f"{path} (--set)")
    return validate_config(
        EvalConfig, raw, str(path), what="evaluation config", schema="evaluation", top="an evaluation config"
    )


# ---------------------------------------------------------------------------------------- benchmark tasks

#: benchmark name -> module of its task (imported lazily: the tasks import the heavy loaders).
TASK_MODULES: dict[str, str] = {
    "sqa3d": "loc3r.evaluate.tasks.sqa3d",
    "sqa3d_localization": "loc3r.evaluate.tasks.sqa3d",
    "scanqa": "loc3r.evaluate.tasks.scanqa",
    "vsibench": "loc3r.evaluate.tasks.vsibench",
    "msqa": "loc3r.evaluate.tasks.msqa",
    "beacon3d": "loc3r.evaluate.tasks.beacon3d",
}


def join_prompt(*parts: str | None) -> str:
    """Non-empty parts joined by newlines (the LLaVA / lmms-eval way of adding a post-prompt)."""
    return "\n".join(p.strip() for p in parts if p is not None and p.strip())


class BenchmarkTask:
    """One real benchmark, in the style of an lmms-eval task: how to prompt, how to record, how to score.

    A task never re-implements a metric: :meth:`score` calls the functions of :mod:`loc3r.evaluate`
    (the same ones ``loc3r score`` runs), on the prediction file that :meth:`write_predictions` wrote in
    the ``loc3r score`` input format, so any other model's file in that format is scored identically.

    Shard records (one JSON object per evaluated sample, see :func:`loc3r.evaluate.runner.evaluate_benchmark`)
    carry ``set`` (the benchmark), ``split``, ``sample_id``, ``scene_id``, ``seconds``, ``subset`` plus the
    task's own fields from :meth:`record`.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    #: file name (under the output directory) of the predictions in the ``loc3r score`` format
    predictions_file: ClassVar[str]
    #: the metric definition printed with every result
    metric: ClassVar[str]

    def check_config(self, config: EvalConfig, source: str) -> None:
        """Reject settings this task cannot honour (named by key); default: decoding must be greedy."""
        gen = config.generation
        if gen.do_sample or gen.num_beams != 1:
            raise ConfigError(
                f"{source}: key 'generation' asks for do_sample={gen.do_sample}, num_beams={gen.num_beams}, but "
                "Loc3rForConditionalGeneration.predict decodes greedily only (set do_sample: false, num_beams: 1)"
            )

    def check_model(self, model: Any, checkpoint: str | Path) -> None:
        """Reject a model that cannot do this task (default: any model can answer text)."""

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

    def record(self, sample: Any, prediction: Any) -> dict[str, Any]:
        """Task fields of one prediction (JSON-serialisable)."""
        raise NotImplementedError

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        """Write the predictions in the ``loc3r score`` format; return the path."""
        raise NotImplementedError

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the prediction file (and a restricted reference file for a subset), score it; return
        ``(metrics, settings)`` where settings name the files and the ``loc3r score`` command to re-score."""
        raise NotImplementedError


def get_task(benchmark: str, source: str = "config") -> BenchmarkTask:
    """The task of a benchmark name (``sqa3d``, ``sqa3d_localization``, ``scanqa``, ``vsibench``, ``msqa``)."""
    module_name = TASK_MODULES.get(benchmark)
    if module_name is None:
        raise ConfigError(f"{source}: unknown benchmark {benchmark!r} (key 'benchmark'); known: {sorted(TASK_MODULES)}")
    module = importlib.import_module(module_name)
    return module.TASKS[benchmark]()
