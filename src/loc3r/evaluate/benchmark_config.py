"""Typed evaluation configs (``configs/paper/eval/*.yaml``, ``configs/synth/eval/*.yaml``): one file per
benchmark (or SynthRooms split), pinned prompts.

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

* SynthRooms (``benchmark: synthrooms``): the prompts are the ones the model was trained with (no suffix), and
  ``num_frames: null`` takes the checkpoint's frame count (recorded by training).

Each benchmark's task (prompt, prediction record, scoring) is a :class:`~loc3r.evaluate.task.Task` in its folder
``loc3r/benchmarks/<name>/task.py`` (lmms-eval style); ``benchmark`` must be one of the names of the task registry
(:func:`loc3r.evaluate.tasks.task_names`), checked where the file is read
(:func:`loc3r.evaluate.tasks.load_eval_config`; this module cannot import the registry: the tasks import its types).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from loc3r.core.config import StrictConfig
from loc3r.data.spec import DatasetSpec


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

    benchmark: str  # a task of the registry (checked where the file is read: loc3r.evaluate.tasks.load_eval_config)
    checkpoint: Path
    output_dir: Path
    data: DatasetSpec
    # frames per clip; null: the checkpoint's (what it was trained with; 8 when it records none)
    num_frames: int | None = Field(32, gt=0)
    camera_root: Path | None = None
    # camera-prior tokens (a model with the prior only): "auto" = every sample that has poses (the others run
    # without), "given" = every sample (one without poses is skipped, named), "none" = no sample: the model
    # evaluated as on pose-less video (camera-prior dropout, our addition; the ground truth still uses the poses)
    camera_prior_input: Literal["auto", "given", "none"] = "auto"
    batch_size: int = Field(1, gt=0)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    # an evenly spread subset: N samples of every task, or {task name: N} for the tasks of a group
    max_samples: int | dict[str, int] | None = Field(None)
    localization_candidates: int = Field(1, ge=1, le=3)  # SQA3D localization: up to 3 counted (DESIGN.md §5)
    # SQA3D localization unit: each (scene, situation) once (the paper's 719 test situations) or every question
    localization_unit: Literal["situation", "question"] = "situation"
    # position sigma scale fitted on validation (benchmarks/calibrate_poses.py); used by the extra candidates
    position_sigma_temperature: float = Field(1.0, gt=0)
    # extra position candidates at mean +- spread * calibrated sigma along its larger axis (fitted on validation)
    candidate_spread: float = Field(1.0, ge=0)

    @field_validator("max_samples")
    @classmethod
    def _positive_max_samples(cls, value: int | dict[str, int] | None) -> int | dict[str, int] | None:
        for n in [] if value is None else value.values() if isinstance(value, dict) else [value]:
            if n < 1:
                raise ValueError(f"max_samples must be >= 1, got {n}")
        return value
