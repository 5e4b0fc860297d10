"""Checkpoint + dataset split → prediction files (in the ``loc3r score`` formats) + scores; sharded.

Flow (``loc3r eval`` and ``loc3r demo`` use the same functions):

1. :func:`~loc3r.model.loading.load_model` — a ``final/`` (or any ``save_pretrained``) directory, strict loading.
2. :func:`predict_samples` — eval-mode processor + :meth:`Loc3rForConditionalGeneration.predict` on
   batches; each shard ``i/n`` takes samples ``i, i+n, i+2n, ...`` (contiguous-free striding keeps shards
   balanced across scenes) and writes its own predictions JSONL.
3. :func:`merge_shards` — concatenates the shard files, refuses duplicates / gaps, and
4. :func:`score_synth` — scores them with the metric functions of :mod:`loc3r.evaluate` (never re-implemented).

Prediction records (one JSON object per line): ``{"sample_id", "task", "scene_id", "answer", "references",
"position_bev", "yaw_bev", "position_sigma", "yaw_confidence", "gt_xy_bev", "gt_yaw_bev", "question_type",
"ground_truth", "seconds"}`` — the SynthRooms predictions use the ``loc3r_world``/BEV frame; the VSI records
are also written as a ``loc3r score vsibench`` JSONL and the localization as a ``loc3r score sqa3d-loc``
prediction list (world frame, SynthRooms' ``loc3r_world`` convention: quaternion about +z, agent faces +x).

Real benchmarks (``loc3r eval --config configs/paper/eval/<benchmark>.yaml``) use the same shards and merge:
:func:`evaluate_benchmark` runs one shard of an :class:`~loc3r.evaluate.benchmark_config.EvalConfig` with its
benchmark task (:mod:`loc3r.evaluate.tasks`: pinned prompt, prediction record) and :func:`score_benchmark`
writes the ``loc3r score`` prediction file and scores it with the task. Their shard records carry ``set`` =
the benchmark name, ``split``, ``sample_id``, ``scene_id``, ``seconds``, ``subset`` and the task's fields, so
:func:`merge_shards` merges them unchanged.
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

from loc3r.data.schema import ClipSample, SampleError
from loc3r.model.loading import load_model

__all__ = [
    "load_model",
    "parse_shard",
    "shard_indices",
    "clip_key",
    "predict_samples",
    "synth_eval_sets",
    "evaluate_synth",
    "score_synth",
    "write_jsonl",
    "read_jsonl",
    "merge_shards",
    "merge_checked",
    "evaluate_benchmark",
    "score_benchmark",
    "benchmark_settings",
]


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


def synth_eval_sets(root: str | Path, split: str, num_frames: int) -> dict[str, Any]:
    """The three SynthRooms evaluation datasets of a split: ``loc`` (one per situation), ``qa``, ``vsi``."""
    from loc3r.data.builders import build_synth
    from loc3r.data.spec import DatasetSpec
    from loc3r.data.text_localization import TextLocalizationDataset

    spec = DatasetSpec(kind="synth", root=Path(root), split=split)
    situated = build_synth(spec, num_frames=num_frames, tasks=("situated",))
    vsi = build_synth(spec, num_frames=num_frames, tasks=("vsi",))
    return {"loc": TextLocalizationDataset(situated), "qa": situated, "vsi": vsi}


def _as_list(x: Any) -> list[float] | None:
    return None if x is None else [float(v) for v in np.asarray(x).reshape(-1)]


def evaluate_synth(
    model: Any,
    root: str | Path,
    split: str,
    num_frames: int,
    batch_size: int = 8,
    shard: tuple[int, int] = (0, 1),
    max_samples: dict[str, int] | None = None,
    localization: str = "auto",
    frame_log: Any = None,
) -> list[dict[str, Any]]:
    """Prediction records of one shard of a SynthRooms split (see the module docstring for the fields).

    ``localization``: ``"heads"`` (situation heads), ``"text"`` (parse the answer), or ``"auto"`` (heads when
    the model has the situation objective, else text). ``max_samples`` per set (``loc``/``qa``/``vsi``) takes
    an evenly spread subset (deterministic).
    """
    from loc3r.data.text_localization import bev_ground_truth, parse_pose_text

    if localization == "auto":
        localization = "heads" if model.config.situation_enabled else "text"
    sets = synth_eval_sets(root, split, num_frames)
    processor = model.build_processor(mode="eval")
    records: list[dict[str, Any]] = []
    for name, dataset in sets.items():
        n = len(dataset)
        wanted = list(range(n))
        limit = (max_samples or {}).get(name)
        if limit is not None and n > limit:
            wanted = [(k * n) // limit for k in range(limit)]
        mine = [wanted[i] for i in shard_indices(len(wanted), *shard)]
        samples = [dataset[i] for i in mine]
        for sample in samples if frame_log is not None else []:
            frame_log.add(sample.meta, sample.sample_id)
        # text coordinates "x -1.2 y 3.4 yaw -135" are ~20 tokens with a tiny BPE; short answers need fewer
        new_tokens = (0 if localization == "heads" else 32) if name == "loc" else 16
        for sample, (pred, seconds) in zip(
            samples, predict_samples(model, samples, new_tokens, batch_size, processor), strict=True
        ):
            rec: dict[str, Any] = {
                "set": name,
                "split": split,
                "sample_id": sample.sample_id,
                "scene_id": sample.scene_id,
                "task": sample.task,
                "answer": pred.answer,
                "references": list(sample.answers),
                "seconds": seconds,
                # joins a situated question to its situation's localization (QA accuracy when localized)
                "situation": sample.situation_text,
            }
            if name == "loc":
                gt_xy, gt_yaw = bev_ground_truth(sample)
                rec.update(gt_xy_bev=gt_xy.tolist(), gt_yaw_bev=gt_yaw, localization=localization)
                if localization == "heads":
                    rec.update(
                        position_bev=_as_list(pred.position_bev),
                        yaw_bev=pred.yaw_bev,
                        position_sigma=_as_list(pred.position_sigma),
                        yaw_confidence=pred.yaw_confidence,
                        yaw_probabilities=_as_list(pred.yaw_probabilities),
                    )
                else:
                    parsed = parse_pose_text(pred.answer)
                    rec.update(
                        position_bev=None if parsed is None else parsed[0].tolist(),
                        yaw_bev=None if parsed is None else parsed[1],
                    )
                rec["layout_bev"] = None if pred.layout_mean is None else pred.layout_mean.tolist()
                rec["layout_frame"] = None if pred.layout_frame is None else pred.layout_frame.tolist()
            elif name == "vsi":
                rec.update(
                    id=sample.sample_id,
                    question_type=sample.meta.get("question_type"),
                    ground_truth=sample.answer,
                    prediction=pred.answer,
                )
            records.append(rec)
    return records


def score_synth(records: Sequence[dict[str, Any]], bins: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Scores of prediction records: ``{split_name: {metric: value}}`` with ``acc@0.5m``, ``acc@1.0m``,
    ``acc@15deg``, ``acc@30deg`` (+ medians), ``em`` (situated QA EM@1), the VSI task names + ``overall``,
    ``sec_per_query``. ``bins`` maps scene id → bin name; each bin adds a ``<split>/<bin>`` entry."""
    from loc3r.evaluate.localization import localization_metrics
    from loc3r.evaluate.qa import qa_exact_match
    from loc3r.evaluate.vsibench import score_vsibench

    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(rec["split"], []).append(rec)
        if bins is not None and rec["scene_id"] in bins:
            groups.setdefault(f"{rec['split']}/{bins[rec['scene_id']]}", []).append(rec)
    out: dict[str, dict[str, Any]] = {}
    for name, recs in groups.items():
        scores: dict[str, Any] = {}
        loc = [r for r in recs if r["set"] == "loc"]
        if loc:
            nan2 = [float("nan")] * 2
            pred_xy = np.array([r["position_bev"] if r["position_bev"] is not None else nan2 for r in loc])
            pred_yaw = np.array([r["yaw_bev"] if r["yaw_bev"] is not None else float("nan") for r in loc])
            m = localization_metrics(
                np.array([r["gt_xy_bev"] for r in loc]), np.array([r["gt_yaw_bev"] for r in loc]), pred_xy, pred_yaw
            )
            scores.update({k: m[k] for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")})
            scores.update(
                median_pos_err_m=m["median_pos_err_m"],
                median_ori_err_deg=m["median_ori_err_deg"],
                n_loc=m["n"],
                unparsed_loc=int(np.isnan(pred_yaw).sum()),
            )
        qa = [r for r in recs if r["set"] == "qa"]
        if qa:
            m = qa_exact_match([r["answer"] for r in qa], [r["references"] for r in qa])
            scores.update(em=m["em@1"], n_qa=m["n"])
        vsi = [r for r in recs if r["set"] == "vsi"]
        if vsi:
            fields = ("id", "question_type", "ground_truth", "prediction")
            m = score_vsibench([{k: r[k] for k in fields} for r in vsi], source=f"{name} vsi predictions")
            scores.update({k: v for k, v in m.items() if not k.startswith("n/") and k not in ("n", "no_prediction")})
            scores["n_vsi"] = m["n"]
        scores["sec_per_query"] = float(np.mean([r["seconds"] for r in recs]))
        out[name] = scores
    return out


def write_jsonl(path: str | Path, records: Sequence[dict[str, Any]]) -> None:
    """Write records atomically (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a malformed line is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: predictions file does not exist")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise SampleError(f"{path} line {i}: not valid JSON ({err.msg})") from err
        if not isinstance(rec, dict) or "sample_id" not in rec or "set" not in rec:
            raise SampleError(f"{path} line {i}: record must be an object with 'sample_id' and 'set'")
        out.append(rec)
    return out


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
    skipped, warnings, settings = check_shards(paths, counts, allow_partial=allow_partial)
    return records, skipped, warnings, settings


# ------------------------------------------------------------------------------------------- real benchmarks

_log = logging.getLogger("loc3r.evaluate")


def _evenly_spread(total: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(total)`` (``floor(k * total / limit)``), or all of them."""
    if limit is None or total <= limit:
        return list(range(total))
    return [(k * total) // limit for k in range(limit)]


def evaluate_benchmark(
    model: Any,
    config: Any,
    shard: tuple[int, int] = (0, 1),
    batch_size: int | None = None,
    progress: bool = True,
    source: str = "config",
    frame_log: Any = None,
    skipped: list[dict[str, Any]] | None = None,
    sizes: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Prediction records of one shard of a real-benchmark evaluation (``config``: an ``EvalConfig``).

    Steps: the task of ``config.benchmark`` checks the config (greedy decoding only, ...) and the model
    (e.g. localization needs the situation heads); the dataset is built from ``config.data`` with
    ``config.num_frames``; ``config.max_samples`` (else ``config.data.max_samples``) keeps an evenly spread subset
    (deterministic); the shard takes
    samples ``i, i + n, ...`` of those; each sample's question gets the task's pinned prompt
    (``task.build_prompt``: only the text changes, never the training path); batches go through the eval-mode
    processor (with ``config.camera_root`` for a file camera prior) and ``model.predict`` with the task's
    ``max_new_tokens``, under a tqdm bar. Samples with the same ``task.shared_prediction_key`` (SQA3D
    localization: same scene and situation, whose heads cannot see the question) are predicted once. A
    sample that cannot be loaded or recorded (missing scene, no mesh centre for the SQA3D frame, ...) is
    logged and appended to ``skipped`` (``{"index", "sample_id", "reason"}``), so that the scores can say over
    how many of the input's samples they are; frames the loaders skipped go to ``frame_log``.
    """
    from tqdm.auto import tqdm

    from loc3r.data.mixture import dataset_records
    from loc3r.data.registry import build_dataset
    from loc3r.evaluate.benchmark_config import get_task

    task = get_task(config.benchmark, source)
    task.check_config(config, source)
    task.check_model(model, config.checkpoint)
    dataset = build_dataset(config.data.model_copy(update={"max_samples": None}), config.num_frames, source=source)
    limit = config.max_samples if config.max_samples is not None else config.data.max_samples
    wanted = _evenly_spread(len(dataset), limit)
    subset = len(wanted) < len(dataset)
    mine = [wanted[i] for i in shard_indices(len(wanted), *shard)]
    if sizes is not None:  # the denominators: samples of the whole evaluation and of this shard
        sizes.update(total=len(wanted), assigned=len(mine))
    kwargs: dict[str, Any] = {"mode": "eval"}
    if config.camera_root is not None:
        kwargs["camera_root"] = str(config.camera_root)
    processor = model.build_processor(**kwargs)
    new_tokens = task.max_new_tokens(config)
    size = int(batch_size or config.batch_size)
    records: list[dict[str, Any]] = []
    shared: dict[str, Any] = {}  # task.shared_prediction_key -> prediction (e.g. one per SQA3D situation)
    skipped = skipped if skipped is not None else []
    records_of = dataset_records(dataset)
    bar = tqdm(total=len(mine), desc=f"eval {config.benchmark} shard {shard[0]}/{shard[1]}", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(mine), size):
            originals: list[ClipSample] = []
            for index in mine[start : start + size]:
                try:
                    sample = dataset[index]
                except SampleError as err:
                    skipped.append({"index": index, "sample_id": _record_name(records_of, index), "reason": str(err)})
                    _log.warning("%s: sample %d skipped: %s", config.benchmark, index, err)
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
                        _log.warning("%s: %s (skipped)", config.benchmark, err)
                        continue
                    records.append(
                        {
                            "set": config.benchmark,
                            "split": config.data.split,
                            "sample_id": sample.sample_id,
                            "scene_id": sample.scene_id,
                            "seconds": seconds,
                            "subset": subset,
                            **fields,
                        }
                    )
            bar.update(len(mine[start : start + size]))
    bar.close()
    if skipped:
        _log.warning("%s: %d of %d samples of this shard were skipped", config.benchmark, len(skipped), len(mine))
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


def score_benchmark(
    records: Sequence[dict[str, Any]], config: Any, out_dir: str | Path, source: str = "config"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the ``loc3r score`` prediction file of ``records`` under ``out_dir`` and score it with the task of
    ``config.benchmark``: ``(metrics, settings)`` (settings: files, the ``loc3r score`` re-score command, the
    metric definition). Records of another benchmark are an error (e.g. merging the wrong shard files)."""
    from loc3r.evaluate.benchmark_config import get_task

    if not records:
        raise SampleError(f"{config.benchmark}: no predictions to score (every sample was skipped?)")
    other = sorted({str(r.get("set")) for r in records} - {config.benchmark})
    if other:
        raise SampleError(f"{source}: benchmark is {config.benchmark!r} but the predictions are of {other}")
    task = get_task(config.benchmark, source)
    metrics, settings = task.score(records, config, Path(out_dir))
    metrics = dict(metrics)
    metrics["sec_per_query"] = float(np.mean([r["seconds"] for r in records]))
    return metrics, settings


def benchmark_settings(config: Any, config_path: str | Path | None, batch_size: int | None = None) -> dict[str, Any]:
    """Everything that changes a score, printed with it (DESIGN.md §6): config, checkpoint, data, frames,
    prompt suffixes, decoding."""
    from loc3r.evaluate.benchmark_config import get_task

    task = get_task(config.benchmark)
    gen = config.generation
    prompt = config.prompt
    settings: dict[str, Any] = {
        "benchmark": config.benchmark,
        "config": None if config_path is None else str(config_path),
        "checkpoint": str(config.checkpoint),
        "data": f"{config.data.kind} {config.data.root} split={config.data.split} options={config.data.options}",
        "frames": f"{config.num_frames} uniformly sampled",
        "camera_root": None if config.camera_root is None else str(config.camera_root),
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
    }
    return settings
