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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loc3r.train.config import ConfigError, DatasetSpec

__all__ = ["BENCHMARKS", "PromptConfig", "GenerationConfig", "EvalConfig", "load_eval_config"]

BENCHMARKS = ("sqa3d", "sqa3d_localization", "scanqa", "vsibench", "msqa")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class PromptConfig(_Strict):
    """Pinned text around the question (the processor's chat template adds the backbone's own parts)."""

    suffix: str = ""  # open / short answers
    multiple_choice_suffix: str | None = None  # samples with options
    numerical_suffix: str | None = None  # VSI-Bench numerical question types


class GenerationConfig(_Strict):
    """Greedy decoding by default (deterministic, what the papers report)."""

    max_new_tokens: int = Field(16, gt=0)
    do_sample: bool = False
    num_beams: int = Field(1, gt=0)


class EvalConfig(_Strict):
    """One benchmark evaluation: checkpoint, data, pinned prompt, decoding and metric."""

    benchmark: Literal["sqa3d", "sqa3d_localization", "scanqa", "vsibench", "msqa"]
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


def load_eval_config(path: str | Path) -> EvalConfig:
    """Read and validate an evaluation YAML (unknown keys -> :class:`ConfigError` naming key and file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: evaluation config not found")
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level of an evaluation config must be a mapping")
    try:
        return EvalConfig.model_validate(raw)
    except ValidationError as err:
        lines = [f"{path}: invalid evaluation config"]
        for item in err.errors():
            key = ".".join(str(p) for p in item["loc"]) or "<root>"
            if item["type"] == "extra_forbidden":
                lines.append(f"  unknown key '{key}' (not a field of the evaluation schema; check the spelling)")
            else:
                lines.append(f"  key '{key}': {item['msg']} (got {item.get('input')!r})")
        raise ConfigError("\n".join(lines)) from None
