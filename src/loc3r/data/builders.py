"""What the dataset builders share: the frame source of a scan dataset (a ``loc3r prepare`` cache or the posed
scans), option parsing and the loader-report log.

The builders themselves, one per dataset *kind*, are in the benchmark folders (``DATASET_KINDS`` of
``loc3r/benchmarks/<name>/reader.py``, found by :mod:`loc3r.data.registry`). Each takes the recipe's
:class:`~loc3r.data.spec.DatasetSpec` (kind, root, split) plus ``num_frames`` and the spec's ``options`` as keyword
arguments (:func:`loc3r.data.registry.build_dataset` checks the options against the signature). Loader reports
(skipped / malformed records) are logged, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loc3r.data.schema import ClipSample, SampleError

_log = logging.getLogger("loc3r.data")


class EmptySplitError(SampleError):
    """A split holds no sample of the tasks asked for (e.g. still images that ground no situation): an evaluation
    of several tasks scores the others; training on it is an error."""


@dataclass
class SceneRecordsDataset:
    """Records of scan scenes (``record.scene_id``) + their frame source -> :class:`ClipSample`: the datasets of the
    ScanNet-frame benchmarks (SQA3D, ScanQA, MSQA) define :meth:`to_sample`."""

    records: Sequence[Any]
    frames: Any  # a ScanNetFrameSource / CachedFrameSource: ``clip(scene_id)`` and ``report``
    task: str = ""

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        record = self.records[index]
        return self.to_sample(record, self.frames.clip(record.scene_id))

    def to_sample(self, record: Any, clip: Any) -> ClipSample:
        raise NotImplementedError

    def clip_sample(self, record: Any, clip: Any, meta: dict[str, Any], **fields: Any) -> ClipSample:
        """The validated sample of ``record`` on its scene's ``clip`` (frames, poses, world points, frame ids; meta
        + ``axis_aligned`` + the clip's frame problems); ``fields``: the record's own (ids, question, answers...)."""
        from loc3r.data.video import frame_problems_meta

        return ClipSample(scene_id=record.scene_id, task=self.task, frames=clip.frames, poses=clip.poses,
                          points=clip.points, frame_indices=clip.frame_ids, **fields,
                          meta={**meta, "axis_aligned": clip.axis_aligned, **frame_problems_meta(clip.meta)},
                          ).validate()  # fmt: skip

    def samples(self) -> Iterator[ClipSample]:
        """All samples grouped by scene (one clip load per scene); failing scenes are skipped and reported in
        ``frames.report`` (or raise when the report is strict)."""
        order = sorted(range(len(self.records)), key=lambda i: (self.records[i].scene_id, i))
        for i in order:
            try:
                yield self[i]
            except SampleError:
                if self.frames.report.strict:
                    raise
                self.frames.report.skip("sample_without_frames", self.records[i].scene_id)


def scene_meta_table(scene_meta: str | None, scans_root: str | None) -> Any:
    """The scene-meta table (axis alignment, mesh centres) of option ``scene_meta``, or None."""
    if not scene_meta:
        return None
    from loc3r.data.scannet import SceneMetaTable

    return SceneMetaTable.from_json(scene_meta, scans_root=scans_root)


def read_record_rows(path: str | Path, what: str) -> list[Any]:
    """The rows of a benchmark's record file (``.parquet`` by pyarrow, else a JSON list or JSON Lines); a missing,
    unreadable or non-list file is a :class:`SampleError` naming it."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        if not path.is_file():
            raise SampleError(f"{path}: {what} record file is missing")
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises ArrowInvalid / OSError subclasses
            raise SampleError(f"{path}: cannot read parquet ({err})") from err
    from loc3r.core.io import read_json_or_jsonl, read_jsonl

    read = read_jsonl if path.suffix.lower() == ".jsonl" else read_json_or_jsonl  # an empty JSONL file has no records
    data = read(path, f"{what} record file")
    if not isinstance(data, list):
        raise SampleError(f"{path}: expected a JSON list of {what} records, got {type(data).__name__}")
    return data


def text_field(value: Any, where: str, field: str) -> str:
    """``value`` when it is a non-empty string, else a :class:`SampleError` naming ``where`` and ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise SampleError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    return value


def report_bad_record(report: Any, err: Exception, file: Any, record: Any) -> None:
    """Report a malformed record on ``report``; the field is the one the message names (``field '<name>'``)."""
    message = str(err)
    field = message.split("field '")[1].split("'")[0] if "field '" in message else None
    report.error("bad_record", message, file=file, record=record, field=field)


def parse_size(value: Any, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value):
        return (int(value[0]), int(value[1]))
    raise SampleError(f"option {name!r} must be an int or [height, width], got {value!r}")


def frame_source(
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

    table = scene_meta_table(scene_meta, scans_root)
    return CaptureFrameSource(  # SensReader export, .sens, ScanNet++ or ARKitScenes scans
        root,
        num_frames=num_frames,
        image_size=parse_size(image_size, "image_size"),
        points_size=parse_size(points_size, "points_size"),
        scene_meta=table,
        scans_root=scans_root,
        strict=strict,
        cache_size=cache_size,
    )


def cached_or_frame_source(
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
    return frame_source(
        Path(scannet_root), num_frames, image_size, points_size, scene_meta, scans_root, strict, cache_size
    )


def log_report(report: Any, where: str) -> None:
    if report.errors or report.skips:
        _log.warning("%s: loaded with problems\n%s", where, report.summary())
    else:
        _log.info("%s: %s", where, dict(report.counts))


def scene_records_builder(
    kind: str, read: Callable[..., tuple[Sequence[Any], Any]], dataset: Callable[[Sequence[Any], Any], Any]
) -> Callable[..., Any]:
    """The builder of a benchmark whose records are read by ``read(spec, scene_meta=..., scans_root=...,
    strict=...) -> (records, report)`` and whose samples are ``dataset(records, frames)`` on ScanNet-style frames
    (option ``scannet_root``) or a ``loc3r prepare`` cache (option ``cache``)."""

    def build(
        spec: Any,
        num_frames: int,
        scannet_root: str | None = None,
        scene_meta: str | None = None,
        scans_root: str | None = None,
        image_size: Any = None,
        points_size: Any = (96, 128),
        strict: bool = False,
        cache: str | None = None,
    ) -> Any:
        records, report = read(spec, scene_meta=scene_meta, scans_root=scans_root, strict=strict)
        log_report(report, f"{kind} {spec.split} ({spec.root})")
        frames = cached_or_frame_source(
            cache, scannet_root, kind, spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
        )
        return dataset(records, frames)

    build.__name__ = build.__qualname__ = f"build_{kind}"
    return build
