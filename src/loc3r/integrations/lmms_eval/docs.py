"""lmms-eval documents of the loc3r tasks, built from a loc3r evaluation config by loc3r's own loaders.

A task (``loc3r_sqa3d``, ...) is a view of ``$LOC3R_EVAL_CONFIGS/<benchmark>.yaml``: :func:`build_docs` builds
the config's dataset exactly as :func:`loc3r.evaluate.runner.evaluate_benchmark` does (same ``data``,
``num_frames``, evenly spread ``max_samples`` subset) and returns one JSON-able document per question, read from
the loader's records (no frame is decoded here). The loc3r model (:mod:`.model`) turns a document back into the
very :class:`~loc3r.data.schema.ClipSample` of ``loc3r eval`` with :func:`load_benchmark` (cached per config)
and ``loc3r_index``.

Document fields: ``loc3r_benchmark``, ``loc3r_config`` (absolute path), ``loc3r_index`` (dataset index),
``loc3r_total`` (samples of the dataset; fewer scored = a subset, restricted references, as ``loc3r eval`` does),
``question_id`` (JSON text of the loader's id: SQA3D integers stay integers in the prediction files),
``scene_id``, ``question`` (as in the file), ``prompt`` (the pinned user text: question + the config's suffix),
``situation``, ``answers``, ``question_type``, ``query_type``, ``video`` (the scene's frame folder, or the record's
video file, when known), ``loc3r_fields`` (VSI-Bench-debiased, ViewSpatial-Bench, VSI-SUPER: JSON text of the
prediction record's reference fields, so that the response is scored by the loc3r task as ``loc3r eval`` does).

The tasks are the benchmark folders' declarations (:func:`lmms_tasks`, :class:`~.spec.LmmsTask`): which loc3r
task, which record fields come from the response, which reference fields a document keeps.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loc3r.core.errors import ConfigError, SampleError
from loc3r.integrations.lmms_eval.spec import LmmsTask

#: environment variable naming the folder of the loc3r evaluation configs (``<benchmark>.yaml``)
CONFIGS_ENV = "LOC3R_EVAL_CONFIGS"
DEFAULT_CONFIGS = "configs/paper/eval"


@cache
def lmms_tasks() -> dict[str, LmmsTask]:
    """``{lmms-eval task name: LmmsTask}`` of every benchmark folder's ``lmms_eval.py`` (``LMMS_TASKS``)."""
    from loc3r.benchmarks import benchmark_modules

    found: dict[str, LmmsTask] = {}
    for module_name in benchmark_modules("lmms_eval"):
        found.update(importlib.import_module(module_name).LMMS_TASKS)
    return found


def lmms_task(task: str) -> LmmsTask:
    """The declaration of an lmms-eval task name; an unknown name is a :class:`ConfigError` naming it."""
    if task not in lmms_tasks():
        raise ConfigError(f"unknown loc3r lmms-eval task {task!r}; known: {sorted(lmms_tasks())}")
    return lmms_tasks()[task]


def task_of_benchmark(benchmark: str) -> LmmsTask:
    """The lmms-eval task that runs a loc3r benchmark (a document's ``loc3r_benchmark``)."""
    for spec in lmms_tasks().values():
        if spec.benchmark == benchmark:
            return spec
    raise ValueError(f"document of unknown loc3r benchmark {benchmark!r}")


def config_path(task: str) -> Path:
    """``$LOC3R_EVAL_CONFIGS/<benchmark>.yaml`` of a task (absolute); missing -> ``FileNotFoundError`` naming it."""
    benchmark = lmms_task(task).benchmark
    folder = Path(os.environ.get(CONFIGS_ENV) or DEFAULT_CONFIGS)
    path = (folder / f"{benchmark}.yaml").resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"lmms-eval task {task!r}: loc3r evaluation config {path} does not exist; set {CONFIGS_ENV} to the "
            f"folder holding {benchmark}.yaml (default {DEFAULT_CONFIGS!r}, relative to the working directory)"
        )
    return path


@dataclass
class Benchmark:
    """A loaded evaluation config with its dataset, the evaluated indices and its loc3r task."""

    path: Path
    config: Any  # EvalConfig
    dataset: Any
    indices: list[int]  # dataset indices evaluated (the config's evenly spread subset, or all)
    task: Any  # BenchmarkTask


@lru_cache(maxsize=8)
def load_benchmark(path: str) -> Benchmark:
    """Config + dataset + task of an evaluation config file, built as ``loc3r eval --config`` builds them."""
    from loc3r.evaluate.runner import _evenly_spread
    from loc3r.evaluate.tasks import get_task, load_eval_config

    config = load_eval_config(path)
    task = get_task(config.benchmark, path)
    task.check_config(config, path)
    dataset = task.build_dataset(config, config.num_frames, source=path)
    limit = config.max_samples if config.max_samples is not None else config.data.max_samples
    return Benchmark(Path(path), config, dataset, _evenly_spread(len(dataset), limit), task)


def _video_of(config: Any, scene_id: str) -> str:
    root = (config.data.options or {}).get("scannet_root")
    return "" if root is None else str(Path(root) / scene_id)


def _visual_of(bench: Benchmark, record: Any) -> str:
    """The video file of a VSI-Bench / VSI-SUPER record ("" for image records: ViewSpatial-Bench)."""
    if hasattr(bench.dataset, "video"):
        return str(bench.dataset.video(record))
    if hasattr(record, "video_path") and hasattr(bench.dataset, "video_root"):
        return str(record.video_path(bench.dataset.video_root))
    return ""


def _fields(spec: LmmsTask, record: Any, bench: Benchmark) -> str:
    """``loc3r_fields`` of a document (:attr:`LmmsTask.reference_fields`); ``""`` for the other benchmarks."""
    if spec.reference_fields is None:
        return ""
    fields = {key: getattr(record, attr) for key, attr in spec.reference_fields.items()}
    if "video_path" in fields:  # the task records the video file itself
        fields["video_path"] = _visual_of(bench, record)
    return json.dumps(fields)


def build_docs(task: str) -> list[dict[str, Any]]:
    """The documents of an lmms-eval task (see the module docstring)."""
    from loc3r.data.mixture import dataset_records

    path = config_path(task)
    bench = load_benchmark(str(path))
    spec = lmms_task(task)
    benchmark = spec.benchmark
    if bench.config.benchmark != benchmark:
        raise ConfigError(
            f"{path}: key 'benchmark' is {bench.config.benchmark!r}, but lmms-eval task {task!r} needs {benchmark!r}"
        )
    records = dataset_records(bench.dataset)
    if records is None:
        raise ConfigError(f"{path}: dataset kind {bench.config.data.kind!r} exposes no records for lmms-eval")
    docs = []
    for index in bench.indices:
        r = records[index]
        qid = next((v for v in (getattr(r, a, None) for a in spec.id_attrs) if v is not None), None)
        if qid is None:
            raise SampleError(f"{path}: record {index} of {bench.config.data.kind!r} has no question id")
        question = str(getattr(r, "question", ""))
        meta = {"question_type": getattr(r, "question_type", None), "choices": getattr(r, "choices", None)}
        carries_references = spec.reference_fields is not None
        options = getattr(r, "options", None) if carries_references else None
        view = SimpleNamespace(question=question, options=options, meta=meta, sample_id=str(qid))
        prompt = bench.task.question_text(view, bench.config)
        scene = getattr(r, "scene_id", None) or getattr(r, "scene_name", None) or Path(str(r.video_path)).stem
        answer = getattr(r, "ground_truth", getattr(r, "answer", None))
        answers = [answer] if carries_references else list(getattr(r, "answers", None) or [])
        docs.append(
            {
                "loc3r_benchmark": benchmark,
                "loc3r_config": str(path),
                "loc3r_index": int(index),
                "loc3r_total": len(bench.dataset),
                "question_id": json.dumps(qid),
                "scene_id": str(scene),
                "question": question,
                "prompt": prompt,
                "situation": str(getattr(r, "situation", "") or ""),
                "answers": [str(a) for a in answers],
                "question_type": str(getattr(r, "question_type", getattr(r, "type", "")) or ""),
                "query_type": str(getattr(r, "query_type", "") or ""),
                "video": _visual_of(bench, r) or _video_of(bench.config, str(scene)),
                "loc3r_fields": _fields(spec, r, bench),
            }
        )
    if not docs:
        raise SampleError(f"{path}: the dataset of lmms-eval task {task!r} is empty")
    return docs
