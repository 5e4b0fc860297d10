"""Builders of the on-disk dataset formats, one per dataset *kind* (see :mod:`loc3r.data.registry`).

Each builder takes the recipe's :class:`~loc3r.data.spec.DatasetSpec` (kind, root, split) plus ``num_frames``
and the spec's ``options`` as keyword arguments (:func:`loc3r.data.registry.build_dataset` checks the options
against the signature). Loader reports (skipped / malformed records) are logged, never silently dropped.
The loaders themselves (one per dataset, each converting into loc3r's one coordinate convention) live in
``loc3r.data.<dataset>`` and are imported inside the builders (they are heavy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import frame_problems_meta

__all__ = [
    "EmptySplitError",
    "SYNTH_TASKS",
    "SynthVSIDataset",
    "build_msqa",
    "build_scanqa",
    "build_sqa3d",
    "build_synth",
    "build_synth_pretrain",
    "build_vsibench",
    "synth_vsi_records",
]

_log = logging.getLogger("loc3r.data")


class EmptySplitError(SampleError):
    """A split holds no sample of the tasks asked for (e.g. still images that ground no situation): an evaluation
    of several tasks scores the others; training on it is an error."""


def _size(value: Any, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return (int(value[0]), int(value[1]))
    raise SampleError(f"option {name!r} must be an int or [height, width], got {value!r}")


def _frame_source(
    root: Path,
    num_frames: int,
    image_size: Any,
    points_size: Any,
    scene_meta: str | None,
    scans_root: str | None,
    strict: bool,
    cache_size: int = 4,
) -> Any:
    from loc3r.data.captures import CaptureFrameSource
    from loc3r.data.scannet import SceneMetaTable

    table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root) if scene_meta else None
    return CaptureFrameSource(  # SensReader export, .sens, ScanNet++ or ARKitScenes scans
        root,
        num_frames=num_frames,
        image_size=_size(image_size, "image_size"),
        points_size=_size(points_size, "points_size"),
        scene_meta=table,
        scans_root=scans_root,
        strict=strict,
        cache_size=cache_size,
    )


def _cached_or_frame_source(
    cache: str | None,
    scannet_root: str | None,
    kind: str,
    spec: Any,
    num_frames: int,
    image_size: Any,
    points_size: Any,
    scene_meta: str | None,
    scans_root: str | None,
    strict: bool,
    cache_size: int = 4,
) -> Any:
    """Frames from a ``loc3r prepare`` cache (option ``cache``) when given, else read from ``scannet_root``
    (keeping the last ``cache_size`` decoded clips in memory)."""
    if cache is not None:
        from loc3r.data.cache import CachedFrameSource

        return CachedFrameSource(cache, num_frames, strict=strict)
    if scannet_root is None:
        raise SampleError(
            f"dataset {kind} at {spec.root}: option 'scannet_root' (the ScanNet frames) or 'cache' "
            "(a `loc3r prepare` output) is required"
        )
    return _frame_source(
        Path(scannet_root), num_frames, image_size, points_size, scene_meta, scans_root, strict, cache_size
    )


def _log_report(report: Any, where: str) -> None:
    if report.errors or report.skips:
        _log.warning("%s: loaded with problems\n%s", where, report.summary())
    else:
        _log.info("%s: %s", where, dict(report.counts))


def build_sqa3d(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    convention: str = "sqa3d",
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    situation_choice: str | int = "main",
    task: str = "sqa3d",
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """SQA3D QA (question + annotation files in ``root``) on ScanNet frames in ``scannet_root``.

    ``convention = "loc3r_world"`` reads SynthRooms' SQA3D-format files (poses already in our world frame).
    """
    from loc3r.data.sqa3d import SQA3DDataset, load_sqa3d

    table = None
    if scene_meta:
        from loc3r.data.scannet import SceneMetaTable

        table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root)
    records, report = load_sqa3d(
        spec.root, spec.split, convention=convention, scene_meta=table, scans_root=scans_root, strict=strict
    )
    _log_report(report, f"sqa3d {spec.split} ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "sqa3d", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return SQA3DDataset(records, frames, situation_choice=situation_choice, task=task)


def build_scanqa(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """ScanQA (``ScanQA_v1.0_{split}.json`` in ``root``) on ScanNet frames in ``scannet_root``."""
    from loc3r.data.scanqa import ScanQADataset, load_scanqa

    records, report = load_scanqa(spec.root, spec.split, strict=strict)
    _log_report(report, f"scanqa {spec.split} ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "scanqa", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return ScanQADataset(records, frames)


def build_msqa(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """MSQA (ScanNet part; ``root`` is the MSQA JSON file) on ScanNet frames in ``scannet_root``."""
    from loc3r.data.msqa import MSQADataset, load_msqa

    table = None
    if scene_meta:
        from loc3r.data.scannet import SceneMetaTable

        table = SceneMetaTable.from_json(scene_meta, scans_root=scans_root)
    records, report = load_msqa(spec.root, scene_meta=table, strict=strict)
    _log_report(report, f"msqa ({spec.root})")
    frames = _cached_or_frame_source(
        cache, scannet_root, "msqa", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return MSQADataset(records, frames)


def build_vsibench(
    spec: Any,
    num_frames: int,
    video_root: str | None = None,
    question_types: list[str] | None = None,
    image_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
    scan_roots: dict[str, str] | None = None,
    points_size: Any = (96, 128),
) -> Dataset:
    """VSI-Bench records (``root``: a JSON/parquet file or folder) with videos under ``video_root``
    (``<dataset>/<scene_name>.mp4``); the videos have no poses. ``scan_roots`` ``{dataset: DIR}``: records whose
    scene has a posed scan ``DIR/<scene_name>/`` take their frames from it (layout targets; see
    :mod:`loc3r.data.vsibench`); a prepared cache holds those scan clips already (``loc3r prepare --scan-root``)."""
    from loc3r.data.vsibench import VSIBenchDataset, load_vsibench

    records, report = load_vsibench(spec.root, question_types=question_types, strict=strict)
    _log_report(report, f"vsibench ({spec.root})")
    if cache is not None:
        from loc3r.data.cache import CachedVSIBenchDataset
        from loc3r.data.video import LoadReport

        return CachedVSIBenchDataset(
            records, Path(cache), num_frames=num_frames, report=LoadReport("vsibench prepared clips", strict=strict)
        )
    root = Path(video_root) if video_root is not None else Path(spec.root)
    if root.is_file():
        root = root.parent
    scans = None
    if scan_roots:
        from loc3r.data.captures import CaptureFrameSource

        scans = {
            name: CaptureFrameSource(
                folder,
                num_frames=num_frames,
                image_size=_size(image_size, "image_size"),
                points_size=_size(points_size, "points_size"),
                strict=strict,
            )
            for name, folder in scan_roots.items()
        }
    return VSIBenchDataset(
        records, root, num_frames=num_frames, image_size=_size(image_size, "image_size"), scans=scans
    )


class SynthVSIDataset(Dataset):
    """SynthRooms' VSI-Bench-style records on the scan's posed frames (task ``"synth_vsi"``).

    Unlike real VSI-Bench (video only), a SynthRooms scan has exact poses and depth, so these samples
    carry the layout targets too; the question / options / answer are the records' own.
    """

    def __init__(self, records: Sequence[Any], frames: Any, task: str = "synth_vsi") -> None:
        self.records, self.frames, self.task = list(records), frames, task

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        from loc3r.data.vsibench import vsi_clip_sample

        record = self.records[index]
        clip = self.frames.clip(record.scene_name)
        sample = vsi_clip_sample(
            record, f"{self.task}-{record.id}", self.task, clip.frames, clip.frame_ids,
            poses=clip.poses, points=clip.points, meta=frame_problems_meta(clip.meta),
        )  # fmt: skip
        if hasattr(self.frames, "instance_masks"):  # SynthRooms scans: for the oracle-objects diagnostic input
            sample.pixel_instances = self.frames.instance_masks(record.scene_name, clip)
            if sample.pixel_instances is not None:
                sample.instance_names = self.frames.instance_names(record.scene_name)
        return sample


SYNTH_TASKS = ("situated", "vsi")


def synth_vsi_records(path: Path, strict: bool = True) -> list[Any]:
    """SynthRooms' VSI-Bench-style JSONL records (``dataset: "synthrooms"``), read by the VSI-Bench loader
    (:func:`loc3r.data.vsibench.load_vsibench`), so both sources get the same validation. A malformed
    record raises a :class:`SampleError` naming file, record and field when ``strict``, else it is
    skipped and the loader report is logged."""
    from loc3r.data.vsibench import load_vsibench

    records, report = load_vsibench(path, strict=strict)
    _log_report(report, f"synth vsi ({path})")
    return records


def build_synth(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = SYNTH_TASKS,
    image_size: Any = None,
    points_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """A SynthRooms directory (``loc3r synth --out DIR``; layout in :mod:`loc3r.synthrooms.writer`).

    ``tasks``: ``situated`` = the SQA3D-format situations + questions of the split (poses in our world
    frame, read with ``convention="loc3r_world"``, task ``synth_situated``), ``vsi`` = the VSI-Bench-style
    records of the split on the scan's posed frames (task ``synth_vsi``). Splits: ``train``, ``val``,
    ``test``, ``test_novel_view``. ``points_size`` defaults to the rendered resolution.
    """
    from torch.utils.data import ConcatDataset

    from loc3r.data.sqa3d import SQA3DDataset, load_sqa3d
    from loc3r.synthrooms.writer import read_index

    root = Path(spec.root)
    unknown = sorted(set(tasks) - set(SYNTH_TASKS))
    if unknown or not tasks:
        raise SampleError(f"dataset synth at {root}: option 'tasks' must be a non-empty subset of {SYNTH_TASKS}")
    try:
        index = read_index(root)
    except (OSError, ValueError, RuntimeError) as err:
        raise SampleError(f"dataset synth at {root}: not a SynthRooms directory ({err})") from err
    if spec.split not in index.get("splits", {}):
        raise SampleError(f"dataset synth at {root}: no split {spec.split!r} (has {sorted(index['splits'])})")
    scenes = index["splits"][spec.split]
    if points_size is None and scenes:
        first = index["scenes"][scenes[0]]
        points_size = (int(first["height"]), int(first["width"]))
    # SynthRooms clips are small (8 frames of 112 px: ~1.5 MB with their points): keep a split's clips decoded, so a
    # fine-tuning run decodes each JPEG / depth PNG once instead of once per sample
    frames = _cached_or_frame_source(
        cache, str(root / "scans"), "synth", spec, num_frames, image_size, points_size, None, None, strict, 256
    )
    parts: list[Dataset] = []
    if "situated" in tasks:
        records, report = load_sqa3d(root / "sqa3d", spec.split, convention="loc3r_world", strict=strict)
        _log_report(report, f"synth situated {spec.split} ({root})")
        if records:
            parts.append(SQA3DDataset(records, frames, task="synth_situated", instance_masks=True))
    if "vsi" in tasks:
        records = synth_vsi_records(root / "vsibench" / f"{spec.split}.jsonl", strict=strict)
        if records:
            parts.append(SynthVSIDataset(records, frames))
    if not parts:
        raise EmptySplitError(f"dataset synth at {root}: split {spec.split!r} has no samples for tasks {list(tasks)}")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_synth_pretrain(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = ("objects", "presence", "count", "color", "caption"),
    recognition_labels: bool = True,
) -> Dataset:
    """SynthRooms recognition pretraining tasks with no spatial supervision (:mod:`loc3r.synthrooms.pretraining`):
    object listing in order of appearance, presence, counting, colour, captions, and per-pixel category labels for
    the recognition objective."""
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    return SynthPretrainDataset(spec.root, spec.split, num_frames, tuple(tasks), recognition_labels)
