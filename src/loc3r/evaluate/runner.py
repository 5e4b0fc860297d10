"""Checkpoint + evaluation config → prediction records (per shard) → scores: the one evaluation path.

``loc3r eval --config X.yaml`` (every benchmark and every SynthRooms split) and ``loc3r demo`` run the same
functions, lmms-eval style — what differs between benchmarks lives in their task (:mod:`loc3r.evaluate.tasks`):

1. :func:`~loc3r.model.loading.load_model` — a ``final/`` (or any ``save_pretrained``) directory, strict loading.
2. :func:`evaluate` — one shard of an :class:`~loc3r.evaluate.benchmark_config.EvalConfig`: for each task of
   ``config.benchmark`` (one, or a group's members) the task builds its samples, the shard ``i/n`` takes samples
   ``i, i+n, i+2n, ...`` of an evenly spread subset (contiguous-free striding keeps shards balanced across
   scenes), the task's pinned prompts go through the eval-mode processor and
   :meth:`Loc3rForConditionalGeneration.predict` (:func:`predict_samples`: one cached video prefix per clip), and
   the task turns each prediction into a record. Samples that cannot be loaded are listed (``skipped``), frames
   the loaders skipped go to the frame report.
3. :func:`merge_checked` — concatenates the shard files, refuses duplicates / gaps / mismatched settings, and
4. :func:`score_evaluation` — the task scores the records with the metric functions of :mod:`loc3r.evaluate`
   (never re-implemented), writing the benchmark's ``loc3r score`` prediction file.

Prediction records (one JSON object per line) carry ``set`` (the task's record set: the benchmark name, or
``loc`` / ``qa`` / ``vsi`` for SynthRooms), ``split``, ``sample_id``, ``scene_id``, ``seconds``, ``subset`` and the
task's own fields (SynthRooms localization: ``position_bev``, ``yaw_bev``, ``position_sigma``, ``yaw_confidence``,
``gt_xy_bev``, ``gt_yaw_bev`` in the clip's BEV anchor frame; see each task's module).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loc3r.core.io import write_jsonl as write_jsonl  # re-exported for the eval command and scripts
from loc3r.data.schema import ClipSample, SampleError
from loc3r.model.loading import load_model as load_model  # re-exported


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` → ``(i, n)`` with ``0 <= i < n``; None → ``(0, 1)``. Falls back to torch.distributed's
    ``RANK``/``WORLD_SIZE`` environment (torchrun) when no shard is given."""
    if text is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as err:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from err
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def shard_indices(total: int, shard: int, num_shards: int) -> list[int]:
    """Indices of shard ``shard`` of ``num_shards``: ``shard, shard + n, ...`` (disjoint, covering)."""
    return list(range(shard, total, num_shards))


def clip_key(sample: ClipSample) -> str:
    """Digest of everything of ``sample`` that enters the video prefix of its prompt (scene, frames, poses, points,
    frame indices, camera features, sampling rate): equal keys = one cached prefix can answer both samples."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(str(sample.scene_id).encode())
    for value in (sample.frames, sample.poses, sample.points, sample.frame_indices, sample.camera_features):
        if value is None:
            h.update(b"-")
        else:
            arr = np.ascontiguousarray(value)
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
    h.update(repr(sample.meta.get("sampled_fps")).encode())
    return h.hexdigest()


def predict_samples(
    model: Any,
    samples: Sequence[ClipSample],
    max_new_tokens: int = 16,
    batch_size: int = 8,
    processor: Any = None,
    share_video: bool = True,
) -> list[tuple[Any, float]]:
    """Predictions for ``samples`` (order kept) and per-sample seconds (processor + model, batch time / size).

    The processor time includes everything inference needs besides reading files: frame preprocessing, the
    anchor frame, and — for ``cue_injection`` — pooling the depth-derived 3D points per vision token.

    ``share_video`` (encode once, ask many): samples on the same clip (:func:`clip_key`) are answered from one
    cached video prefix (:meth:`~loc3r.model.modeling_loc3r.Loc3rForConditionalGeneration.encode_prefix`), their
    questions ``batch_size`` at a time; the prefix time is shared equally by the clip's samples. Clips with a single
    sample are batched together on the uncached path. Same predictions either way (tested).
    """
    processor = processor or model.build_processor(mode="eval")
    out: list[tuple[Any, float] | None] = [None] * len(samples)
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(clip_key(sample) if share_video else str(i), []).append(i)
    singles = [g[0] for g in groups.values() if len(g) == 1]
    with torch.inference_mode():
        for start in range(0, len(singles), batch_size):
            idx = singles[start : start + batch_size]
            t0 = time.perf_counter()
            batch = processor([samples[i] for i in idx], mode="eval")
            preds = model.predict(batch, max_new_tokens=max_new_tokens)
            dt = (time.perf_counter() - t0) / len(idx)
            for i, p in zip(idx, preds, strict=True):
                out[i] = (p, dt)
        for group in groups.values():
            if len(group) == 1:
                continue
            t0 = time.perf_counter()
            first = processor([samples[group[0]]], mode="eval")
            prefix = model.encode_prefix(first)
            encoding = first.encodings[0]
            preds_of: list[Any] = []
            for start in range(0, len(group), batch_size):
                chunk = [samples[i] for i in group[start : start + batch_size]]
                batch = processor(chunk, mode="eval", video_encoding=encoding, with_pixels=False)
                preds_of.extend(model.predict(batch, max_new_tokens=max_new_tokens, prefix=prefix))
            dt = (time.perf_counter() - t0) / len(group)
            for i, p in zip(group, preds_of, strict=True):
                out[i] = (p, dt)
    return [o for o in out if o is not None]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Prediction records of a shard's JSONL file (:func:`loc3r.core.io.read_jsonl`: a malformed line is an error
    naming file and line); a record without ``sample_id`` and ``set`` is an error naming file and record."""
    from loc3r.core.io import read_jsonl as read_lines

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: predictions file does not exist")
    records = read_lines(path, "predictions file")
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict) or "sample_id" not in rec or "set" not in rec:
            raise SampleError(f"{path} record {i}: record must be an object with 'sample_id' and 'set'")
    return records


def merge_shards(paths: Sequence[str | Path], counts: list[int] | None = None) -> list[dict[str, Any]]:
    """Concatenate shard prediction files; a sample predicted twice is an error naming both files. ``counts``
    (when given) receives the number of records of each file."""
    seen: dict[tuple[str, str, str], Path] = {}
    merged: list[dict[str, Any]] = []
    for p in paths:
        records = read_jsonl(p)
        if counts is not None:
            counts.append(len(records))
        for rec in records:
            key = (rec["split"], rec["set"], rec["sample_id"])
            if key in seen:
                raise SampleError(f"{p}: sample {key} also predicted in {seen[key]} (overlapping shards)")
            seen[key] = Path(p)
            merged.append(rec)
    return merged


def merge_checked(
    paths: Sequence[str | Path], allow_partial: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str], dict[str, Any]]:
    """:func:`merge_shards` after :func:`loc3r.evaluate.shards.check_shards`: ``(records, skipped, warnings,
    settings)``. Incomplete, overlapping or mismatched shards are an error unless ``allow_partial``."""
    from loc3r.evaluate.shards import check_shards

    counts: list[int] = []
    records = merge_shards(paths, counts)
    return records, *check_shards(paths, counts, allow_partial=allow_partial)


# ------------------------------------------------------------------------------------------- the runner

_log = logging.getLogger("loc3r.evaluate")


def _evenly_spread(total: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(total)`` (``floor(k * total / limit)``), or all of them."""
    if limit is None or total <= limit:
        return list(range(total))
    return [(k * total) // limit for k in range(limit)]


def resolve_num_frames(config: Any, model: Any) -> Any:
    """``config`` with ``num_frames: null`` replaced by the checkpoint's frame count (recorded by training; 8 when
    the checkpoint records none)."""
    if config.num_frames is not None:
        return config
    return config.model_copy(update={"num_frames": int(model.num_frames or 8)})


def _limits(config: Any, tasks: Sequence[Any], source: str) -> dict[str, int | None]:
    """Samples to evaluate per task: ``config.max_samples`` (one N for all, or per task name), else the data
    spec's ``max_samples``."""
    from loc3r.core.config import ConfigError

    limit = config.max_samples if config.max_samples is not None else config.data.max_samples
    if not isinstance(limit, dict):
        return {t.name: limit for t in tasks}
    unknown = sorted(set(limit) - {t.name for t in tasks})
    if unknown:
        raise ConfigError(
            f"{source}: key 'max_samples' names {unknown}, not tasks of {config.benchmark!r} "
            f"({[t.name for t in tasks]})"
        )
    return {t.name: limit.get(t.name) for t in tasks}


def evaluate(
    model: Any,
    config: Any,
    shard: tuple[int, int] = (0, 1),
    batch_size: int | None = None,
    progress: bool = True,
    source: str = "config",
    frame_log: Any = None,
    skipped: list[dict[str, Any]] | None = None,
    sizes: dict[str, int] | None = None,
    progress_position: int | None = None,
    stream_predict: Any = None,
) -> list[dict[str, Any]]:
    """Prediction records of one shard of an evaluation (``config``: an ``EvalConfig``; step 2 of the module
    docstring). A task with ``whole_shard`` loads the shard at once, others ``batch_size`` samples at a time; samples
    with one ``task.shared_prediction_key`` are predicted once. A sample that cannot be loaded or recorded is logged
    and appended to ``skipped`` (``{"index", "sample_id", "reason"}``); frames the loaders skipped go to
    ``frame_log``; ``sizes`` receives ``total`` (samples of the whole evaluation) and ``assigned`` (of this shard);
    ``progress_position``: the terminal line of the bar. ``stream_predict(model, sample, config, max_new_tokens)``
    drives a ``task.streaming`` task (``loc3r eval`` passes :func:`loc3r.apps.stream_eval.stream_counts`).
    """
    from tqdm.auto import tqdm

    from loc3r.evaluate.tasks import get_task

    config = resolve_num_frames(config, model)
    tasks = get_task(config.benchmark, source).parts()
    limits = _limits(config, tasks, source)
    plans = []
    total = 0
    for task in tasks:
        task.check_config(config, source)
        if task.streaming and stream_predict is None:
            from loc3r.core.config import ConfigError

            raise ConfigError(
                f"{source}: benchmark {task.name!r} streams its videos through loc3r stream: run it with "
                "`loc3r eval --config` (or pass stream_predict=loc3r.apps.stream_eval.stream_counts)"
            )
        task.check_model(model, config.checkpoint)
        dataset = task.build_dataset(config, config.num_frames, source)
        wanted = _evenly_spread(len(dataset), limits[task.name])
        mine = [wanted[i] for i in shard_indices(len(wanted), *shard)]
        plans.append((task, dataset, mine, len(wanted) < len(dataset)))
        total += len(wanted)
    if sizes is not None:  # the denominators: samples of the whole evaluation and of this shard
        sizes.update(total=total, assigned=sum(len(m) for _, _, m, _ in plans))
    kwargs: dict[str, Any] = {"mode": "eval", "camera_input": config.camera_prior_input}
    if config.camera_root is not None:
        kwargs["camera_root"] = str(config.camera_root)
    processor = model.build_processor(**kwargs)
    size = int(batch_size or config.batch_size)
    skipped = skipped if skipped is not None else []
    records: list[dict[str, Any]] = []
    bar = tqdm(
        total=sum(len(m) for _, _, m, _ in plans),
        desc=f"eval {config.benchmark} shard {shard[0]}/{shard[1]}",
        disable=not progress,
        position=progress_position,
    )
    with torch.inference_mode():
        for task, dataset, mine, subset in plans:
            before = len(skipped)
            records.extend(
                _evaluate_task(
                    task, model, processor, config, dataset, mine, subset, size, frame_log, skipped, bar, stream_predict
                )
            )
            if len(skipped) > before:
                _log.warning(
                    "%s: %d of %d samples of this shard were skipped", task.name, len(skipped) - before, len(mine)
                )
    bar.close()
    if processor.camera_counts["not used"] and config.camera_prior_input == "auto":
        _log.warning(
            "camera prior: %d prompts ran without camera-prior tokens (no poses) and %d with them",
            processor.camera_counts["not used"],
            processor.camera_counts["used"],
        )
    return records


def _evaluate_task(
    task: Any,
    model: Any,
    processor: Any,
    config: Any,
    dataset: Any,
    mine: list[int],
    subset: bool,
    size: int,
    frame_log: Any,
    skipped: list[dict[str, Any]],
    bar: Any,
    stream_predict: Any = None,
) -> list[dict[str, Any]]:
    """The records of one task's samples ``mine`` (see :func:`evaluate`)."""
    from loc3r.data.mixture import dataset_records

    new_tokens = task.max_new_tokens(config)
    chunk = max(1, len(mine)) if task.whole_shard else size
    records: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}  # task.shared_prediction_key -> prediction (e.g. one per SQA3D situation)
    records_of = dataset_records(dataset)
    for start in range(0, len(mine), chunk):
        originals: list[ClipSample] = []
        for index in mine[start : start + chunk]:
            try:
                sample = dataset[index]
            except SampleError as err:
                skipped.append({"index": index, "sample_id": _record_name(records_of, index), "reason": str(err)})
                _log.warning("%s: sample %d skipped: %s", task.name, index, err)
                continue
            if frame_log is not None:
                frame_log.add(sample.meta, sample.sample_id)
            originals.append(sample)
        if originals:
            t0 = time.perf_counter()
            keys = [task.shared_prediction_key(s) for s in originals]
            todo = [k for k, key in enumerate(keys) if key is None or key not in shared]
            todo = [k for n, k in enumerate(todo) if keys[k] is None or keys[k] not in [keys[j] for j in todo[:n]]]
            preds_of: dict[int, Any] = {}
            if todo:
                prompts = [task.build_prompt(originals[k], config) for k in todo]
                if task.streaming:  # each sample is a streamed video answered at its query times
                    done = [(stream_predict(model, p, config, new_tokens), 0.0) for p in prompts]
                else:
                    done = predict_samples(model, prompts, new_tokens, size, processor)  # one video prefix per clip
                for k, (pred, _) in zip(todo, done, strict=True):
                    preds_of[k] = pred
                    if keys[k] is not None:
                        shared[keys[k]] = pred
            preds = [preds_of[k] if k in preds_of else shared[keys[k]] for k in range(len(originals))]
            seconds = (time.perf_counter() - t0) / len(originals)
            for sample, pred in zip(originals, preds, strict=True):
                try:
                    fields = task.record(sample, pred)
                except SampleError as err:
                    skipped.append({"index": None, "sample_id": sample.sample_id, "reason": str(err)})
                    _log.warning("%s: %s (skipped)", task.name, err)
                    continue
                records.append(
                    {
                        "set": task.set_name,
                        "split": config.data.split,
                        "sample_id": sample.sample_id,
                        "scene_id": sample.scene_id,
                        "seconds": seconds,
                        "subset": subset,
                        **fields,
                    }
                )
        bar.update(len(mine[start : start + chunk]))
    return records


def _record_name(records: list[Any] | None, index: int) -> str:
    """A readable id of dataset record ``index`` for the skipped list (its question / sample id when known)."""
    if records is None or not 0 <= index < len(records):
        return f"index {index}"
    record = records[index]
    for attr in ("question_id", "sample_id", "id", "situation_id"):
        value = getattr(record, attr, None)
        if value is not None:
            return f"{type(record).__name__} {attr}={value}"
    return f"index {index}"


def score_evaluation(
    records: Sequence[dict[str, Any]], config: Any, out_dir: str | Path, source: str = "config"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Score the records of an evaluation with the task of ``config.benchmark``, writing its ``loc3r score``
    prediction file under ``out_dir``: ``(scores, settings)`` (settings: files, the ``loc3r score`` re-score
    command, the metric definition). Scores are ``{metric: value}`` (+ ``sec_per_query``), or ``{split: {metric:
    value}}`` for a group scored per split. Records of another benchmark are an error (e.g. merging the wrong
    shard files)."""
    from loc3r.evaluate.tasks import get_task

    task = get_task(config.benchmark, source)
    if not records:
        raise SampleError(f"{config.benchmark}: no predictions to score (every sample was skipped?)")
    sets = {t.set_name for t in task.parts()}
    other = sorted({str(r.get("set")) for r in records} - sets)
    if other:
        raise SampleError(f"{source}: benchmark is {config.benchmark!r} but the predictions are of {other}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, settings = task.score(records, config, out_dir)
    scores = dict(scores)
    if not task.scores_by_split:
        scores["sec_per_query"] = float(np.mean([r["seconds"] for r in records]))
    return scores, settings


#: how every loader samples a clip's frames (:func:`loc3r.data.video.uniform_indices`)
FRAME_SAMPLING = "uniform over the whole video: round(linspace(0, n - 1, T)), first and last frame included"


def metric_version(task: Any) -> str:
    """A version of a task's metric that changes whenever its definition (:attr:`Task.metric`, of every part of a
    group) or loc3r's version does: ``<task>@loc3r-<version>+<digest of the definition>``."""
    import hashlib

    import loc3r

    definition = " | ".join(str(t.metric) for t in task.parts())
    return f"{task.name}@loc3r-{loc3r.__version__}+{hashlib.sha256(definition.encode()).hexdigest()[:10]}"


def protocol_settings(model: Any) -> dict[str, Any]:
    """What the checkpoint fixes about the protocol: frame resolution, preprocessing and the chat template."""
    template = model.adapter.chat_template()
    vision = getattr(model.config.vlm_config, "vision_config", None)
    preprocessing = dict(model.preprocessing or {})
    if model.config.backbone == "llava_onevision" and vision is not None:
        size = int(vision.image_size)
        resolution = f"{size}x{size} (every frame resized, bicubic)"
    elif "min_pixels" in preprocessing and "max_pixels" in preprocessing:
        resolution = (
            f"aspect kept, area in [{preprocessing['min_pixels']}, {preprocessing['max_pixels']}] pixels "
            "(rounded to the patch grid)"
        )
    else:
        resolution = "the backbone's default (see preprocessing)"
    return {
        "backbone": model.config.backbone,
        "resolution": resolution,
        "preprocessing": json.dumps(preprocessing, sort_keys=True),
        "chat_template": f"{template.version}: {template.prefix!r} <video block> {{prompt}} {template.user_suffix!r}",
    }


def eval_settings(
    config: Any, config_path: str | Path | None, batch_size: int | None = None, model: Any = None
) -> dict[str, Any]:
    """Everything that changes a score, printed with it (DESIGN.md §6): config, checkpoint, data, frames and their
    sampling, prompt suffixes, decoding, the metric and its version; with ``model``, also the frame resolution,
    preprocessing and chat template (:func:`protocol_settings`)."""
    from loc3r.evaluate.tasks import get_task

    task = get_task(config.benchmark)
    gen = config.generation
    prompt = config.prompt
    frames = "from the checkpoint" if config.num_frames is None else config.num_frames
    settings: dict[str, Any] = {
        "benchmark": config.benchmark,
        "config": None if config_path is None else str(config_path),
        "checkpoint": str(config.checkpoint),
        "data": f"{config.data.kind} {config.data.root} split={config.data.split} options={config.data.options}",
        "frames": f"{frames} uniformly sampled",
        "sampling": FRAME_SAMPLING,
        "camera_root": None if config.camera_root is None else str(config.camera_root),
        "camera_prior_input": config.camera_prior_input,
        "prompt_suffix": repr(prompt.suffix),
        "multiple_choice_suffix": None
        if prompt.multiple_choice_suffix is None
        else repr(prompt.multiple_choice_suffix),
        "numerical_suffix": None if prompt.numerical_suffix is None else repr(prompt.numerical_suffix),
        **task.prompt_settings(config),
        "decoding": f"greedy (do_sample={gen.do_sample}, num_beams={gen.num_beams}), "
        f"max_new_tokens={task.max_new_tokens(config)}",
        "batch_size": int(batch_size or config.batch_size),
        "max_samples": config.max_samples,
        "metric": " | ".join(dict.fromkeys(str(t.metric) for t in task.parts())),
        "metric_version": metric_version(task),
    }
    if model is not None:
        settings.update(protocol_settings(model))
    return settings
