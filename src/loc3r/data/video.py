"""Shared frame I/O of the real-benchmark loaders, and the load report they all fill.

* :class:`LoadReport` collects what a loader skipped and why. Two kinds of events exist:

  - **skips** are expected properties of valid data (real ScanNet has frames whose pose is a row of
    ``-inf``; an SQA3D test scene without a mesh is simply not convertible). They are counted per kind
    with a few example files and never stop loading.
  - **errors** are bad input (a truncated PNG, a pose file with 3 rows, an annotation whose
    ``question_id`` has no question, a video that cannot be decoded). Each gets an entry naming the
    file, the record and the field. With ``strict=True`` the first error raises
    :class:`~loc3r.data.schema.SampleError`; otherwise the loader goes on with the rest.

* :func:`uniform_indices` is the one frame-sampling rule of all loaders: ``T`` indices spread evenly
  over ``n`` frames, first and last included, ``round(linspace(0, n - 1, T))`` (the rule of LLaVA-Video
  and Qwen-VL's video readers, so frame choices match the peer projects).

* :func:`read_rgb`, :func:`read_depth_png` and :func:`decode_video` read images with Pillow and videos
  with PyAV (FFmpeg); every failure becomes a :class:`SampleError` that names the file.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from loc3r.data.schema import SampleError

_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ReportEntry:
    """One bad-input event: what kind, where (file / record / field) and why."""

    kind: str
    message: str
    file: str | None = None
    record: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.record:
            where.append(f"record {self.record}")
        if self.field:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"[{self.kind}] {prefix}: {self.message}" if prefix else f"[{self.kind}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LoadReport:
    """What a loader read, skipped and rejected (see the module docstring for skips vs errors).

    ``counts`` holds plain counters (``"frames_total"``, ``"records_loaded"``, ...), ``skips`` the
    number of skipped items per reason with up to 5 example locations each, ``errors`` every error entry.
    """

    name: str = "load"
    strict: bool = False
    counts: collections.Counter = field(default_factory=collections.Counter)
    skips: collections.Counter = field(default_factory=collections.Counter)
    skip_examples: dict[str, list[str]] = field(default_factory=dict)
    errors: list[ReportEntry] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the plain counter ``key``."""
        self.counts[key] += n

    def skip(self, reason: str, where: str | None = None, n: int = 1) -> None:
        """Record ``n`` items skipped for an expected ``reason`` (never raises, even when strict)."""
        self.skips[reason] += n
        if where is not None:
            examples = self.skip_examples.setdefault(reason, [])
            if len(examples) < _MAX_EXAMPLES:
                examples.append(where)

    def error(
        self,
        kind: str,
        message: str,
        *,
        file: str | Path | None = None,
        record: str | int | None = None,
        field: str | None = None,
    ) -> ReportEntry:
        """Record bad input; raise :class:`SampleError` with the same text when ``strict``."""
        entry = ReportEntry(
            kind, message, None if file is None else str(file), None if record is None else str(record), field
        )
        self.errors.append(entry)
        if self.strict:
            raise SampleError(f"{self.name}: {entry}")
        return entry

    def merge(self, other: LoadReport) -> None:
        """Fold another report into this one (e.g. per-scene reports into a dataset report)."""
        self.counts.update(other.counts)
        self.skips.update(other.skips)
        for reason, examples in other.skip_examples.items():
            mine = self.skip_examples.setdefault(reason, [])
            mine.extend(examples[: max(0, _MAX_EXAMPLES - len(mine))])
        self.errors.extend(other.errors)

    def errors_of(self, kind: str) -> list[ReportEntry]:
        return [e for e in self.errors if e.kind == kind]

    @property
    def ok(self) -> bool:
        """True when no error was recorded (skips are allowed)."""
        return not self.errors

    def summary(self, max_errors: int = 20) -> str:
        """Human-readable multi-line summary for the CLI and logs."""
        lines = [f"{self.name}:"]
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key}: {value}")
        for reason, value in sorted(self.skips.items()):
            examples = self.skip_examples.get(reason, [])
            suffix = f" (e.g. {', '.join(examples)})" if examples else ""
            lines.append(f"  skipped[{reason}]: {value}{suffix}")
        if self.errors:
            lines.append(f"  errors: {len(self.errors)}")
            for entry in self.errors[:max_errors]:
                lines.append(f"    {entry}")
            if len(self.errors) > max_errors:
                lines.append(f"    ... and {len(self.errors) - max_errors} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counts": dict(self.counts),
            "skips": dict(self.skips),
            "skip_examples": {k: list(v) for k, v in self.skip_examples.items()},
            "errors": [e.to_dict() for e in self.errors],
        }


def uniform_indices(num_available: int, num_frames: int) -> np.ndarray:
    """``num_frames`` indices spread evenly over ``range(num_available)``: ``round(linspace(0, n-1, T))``.

    First and last frame are always included. With fewer available frames than requested, indices
    repeat (the clip keeps its length ``T``; callers may count this).
    """
    if num_available <= 0:
        raise ValueError(f"uniform_indices: no frames to sample from (num_available={num_available})")
    if num_frames <= 0:
        raise ValueError(f"uniform_indices: num_frames must be positive, got {num_frames}")
    return np.rint(np.linspace(0.0, num_available - 1, num_frames)).astype(np.int64)


def resize_rgb(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize an ``[H, W, 3] uint8`` image to ``size = (height, width)`` (bilinear, anti-aliased)."""
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return image
    height, width = size
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((int(width), int(height)), Image.Resampling.BILINEAR))


def read_rgb(path: str | Path, size: tuple[int, int] | None = None, record: str | None = None) -> np.ndarray:
    """Read an image file as ``[H, W, 3] uint8`` RGB, optionally resized to ``size = (height, width)``.

    Raises :class:`SampleError` naming the file (and ``record``) when it is missing, truncated or not
    an image.
    """
    return read_rgb_with_size(path, size, record)[0]


_PIL_FLAG_LOCK = threading.Lock()


@contextlib.contextmanager
def _truncated_images_fail() -> Iterator[None]:
    """Decode with Pillow's truncated-image check on, whatever the process set globally: lmms-eval, for one, sets
    ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on import, which would turn a truncated frame into silently padded
    pixels (and a truncated depth PNG into wrong layout targets) instead of a named, counted bad frame."""
    with _PIL_FLAG_LOCK:  # the flag is process-global: two decoding threads must not restore it under each other
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def read_rgb_with_size(
    path: str | Path, size: tuple[int, int] | None = None, record: str | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`read_rgb` that also returns the file's own ``(height, width)``.

    When shrinking a JPEG, libjpeg's DCT-domain scaling (Pillow ``draft``) first decodes at the largest
    1/2, 1/4 or 1/8 scale that stays at least ``size``, then a bilinear resize gives the exact size: the
    same picture, 2-4x faster for ScanNet's 1296x968 frames.
    """
    where = f"{path}" + (f" (record {record})" if record else "")
    try:
        with _truncated_images_fail(), Image.open(path) as img:
            native = (int(img.size[1]), int(img.size[0]))
            if size is not None and img.format == "JPEG":
                img.draft("RGB", (int(size[1]), int(size[0])))
            img.load()  # Pillow decodes lazily: force it so a truncated file fails here
            rgb = img.convert("RGB")
    except FileNotFoundError as err:
        raise SampleError(f"{where}: image file is missing") from err
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise SampleError(f"{where}: cannot decode image ({err})") from err
    return resize_rgb(np.asarray(rgb, dtype=np.uint8), size), native


def read_depth_png(path: str | Path, record: str | None = None) -> np.ndarray:
    """Read a 16-bit depth PNG as ``[H, W] uint16`` (raw units, e.g. millimetres for ScanNet).

    An 8-bit or colour PNG is rejected: silently reading it would turn depth into garbage targets.
    """
    where = f"{path}" + (f" (record {record})" if record else "")
    try:
        with _truncated_images_fail(), Image.open(path) as img:
            img.load()
            mode = img.mode
            array = np.asarray(img)
    except FileNotFoundError as err:
        raise SampleError(f"{where}: depth file is missing") from err
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise SampleError(f"{where}: cannot decode depth PNG ({err})") from err
    if array.ndim != 2 or mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise SampleError(f"{where}: depth PNG must be single-channel 16-bit, got mode {mode!r} shape {array.shape}")
    if array.dtype != np.uint16:
        if array.min(initial=0) < 0 or array.max(initial=0) > np.iinfo(np.uint16).max:
            raise SampleError(f"{where}: depth values out of the uint16 range")
        array = array.astype(np.uint16)
    return array


@dataclass
class VideoClip:
    """Frames decoded from a video file: ``frames [T, H, W, 3] uint8`` at source indices ``indices``."""

    frames: np.ndarray
    indices: np.ndarray
    num_source_frames: int
    fps: float | None
    problems: list[dict[str, Any]] = field(default_factory=list)  # ReportEntry dicts of frames not decoded


def open_video(path: Path, record: str | None) -> Any:
    """The PyAV container of a video file with a video stream (a :class:`SampleError` naming the file and record
    otherwise)."""
    import av  # PyAV: FFmpeg bindings

    where = f"{path}" + (f" (record {record})" if record else "")
    if not path.is_file():
        raise SampleError(f"{where}: video file is missing")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise SampleError(f"{where}: cannot open video ({err})") from err
    if not container.streams.video:
        container.close()
        raise SampleError(f"{where}: file has no video stream")
    return container


def count_video_frames(path: str | Path, record: str | None = None) -> int:
    """Number of frames of the first video stream, by demuxing packets (no decoding).

    The container's ``stream.frames`` header is unreliable (0 for many encoders), so packets are counted.
    """
    import av

    path = Path(path)
    container = open_video(path, record)
    try:
        stream = container.streams.video[0]
        count = 0
        for packet in container.demux(stream):
            if packet.size > 0:
                count += 1
    except av.error.FFmpegError as err:
        raise SampleError(f"{path}" + (f" (record {record})" if record else "") + f": corrupt video ({err})") from err
    finally:
        container.close()
    return count


def _decode_selected(
    path: Path, wanted: np.ndarray, size: tuple[int, int] | None, record: str | None
) -> tuple[dict[int, np.ndarray], int, float | None]:
    """Decode sequentially, converting only the frames in ``wanted`` to RGB; also count all frames."""
    import av

    where = f"{path}" + (f" (record {record})" if record else "")
    container = open_video(path, record)
    wanted_set = {int(i) for i in wanted}
    last = max(wanted_set)
    out: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else None
        for frame in container.decode(stream):
            if decoded in wanted_set:
                if size is None:
                    rgb = frame.to_ndarray(format="rgb24")
                else:
                    rgb = frame.reformat(width=int(size[1]), height=int(size[0]), format="rgb24").to_ndarray()
                out[decoded] = rgb
            decoded += 1
            if decoded > last:
                break
    except av.error.FFmpegError as err:
        raise SampleError(f"{where}: cannot decode video ({err})") from err
    finally:
        container.close()
    return out, decoded, fps


def decode_video(
    path: str | Path,
    num_frames: int,
    size: tuple[int, int] | None = None,
    record: str | None = None,
) -> VideoClip:
    """Decode ``num_frames`` uniformly sampled frames (:func:`uniform_indices`) of a video with PyAV.

    Frames are returned as ``[T, H, W, 3] uint8`` RGB, resized by FFmpeg's scaler to
    ``size = (height, width)`` when given. The frame count comes from the demuxer; if the decoder then
    yields fewer frames (a damaged tail), the indices are re-sampled over the frames that do decode and the clip's
    ``problems`` says so (file, record, how many frames were lost), never silently.
    Any failure raises :class:`SampleError` naming the file and ``record``.
    """
    path = Path(path)
    where = f"{path}" + (f" (record {record})" if record else "")
    total = count_video_frames(path, record)
    if total == 0:
        raise SampleError(f"{where}: video has no frames")
    indices = uniform_indices(total, num_frames)
    frames, decoded, fps = _decode_selected(path, indices, size, record)
    problems: list[dict[str, Any]] = []
    if len(frames) < len(set(indices.tolist())):
        if decoded == 0:
            raise SampleError(f"{where}: no frame could be decoded")
        problems.append(
            ReportEntry(
                "undecodable_frames",
                f"the container holds {total} frames but only the first {decoded} decode; the clip was sampled "
                f"over those {decoded}",
                file=str(path),
                record=record,
                field="video",
            ).to_dict()
        )
        indices = uniform_indices(decoded, num_frames)
        frames, decoded, fps = _decode_selected(path, indices, size, record)
        total = decoded
        if len(frames) < len(set(indices.tolist())):
            raise SampleError(f"{where}: decoder returned fewer frames than it counted")
    stacked = np.stack([frames[int(i)] for i in indices]).astype(np.uint8, copy=False)
    return VideoClip(frames=stacked, indices=indices, num_source_frames=total, fps=fps, problems=problems)


def iter_json_records(data: Any, path: Path, key: str | None) -> Iterator[tuple[int, Any]]:
    """Enumerate the records of a parsed JSON file, under ``data[key]`` when ``key`` is given."""
    if key is not None:
        if not isinstance(data, dict) or key not in data:
            raise SampleError(f"{path}: expected a JSON object with a {key!r} list")
        data = data[key]
    if not isinstance(data, list):
        raise SampleError(f"{path}: expected a JSON list of records" + (f" under {key!r}" if key else ""))
    yield from enumerate(data)


def frame_problems_meta(clip_meta: dict[str, Any] | None) -> dict[str, Any]:
    """``{"frame_problems": [...]}`` for a sample's ``meta`` when its clip had skipped frames, else ``{}``.

    Every dataset copies its clip's problems (``clip.meta["frame_problems"]``, see
    :meth:`loc3r.data.scannet.ScanNetScene.load_clip`) into the samples it builds with this, so that the command
    consuming the sample (in any DataLoader worker) can count and name them (:class:`FrameLog`).
    """
    problems = (clip_meta or {}).get("frame_problems") or []
    return {"frame_problems": [dict(p) for p in problems]} if problems else {}


class FrameLog:
    """The frames a command (``train``, ``eval``, ``infer``) used samples without: counted, named, written.

    :meth:`add` reads ``meta["frame_problems"]`` of each consumed sample (the loaders put them there, so this
    works across DataLoader worker processes); each problem (file, record, field) is counted once, with the
    number of samples it affected. With ``strict`` the first sample that has one raises
    :class:`~loc3r.data.schema.SampleError` naming the file, record and field (``--strict``). :meth:`write`
    stores :meth:`to_dict` as ``frame_report.json`` in the run folder; :meth:`summary` is what gets printed.
    """

    FILE_NAME = "frame_report.json"

    def __init__(self, command: str, strict: bool = False) -> None:
        self.command = command
        self.strict = bool(strict)
        self.samples = 0
        self.samples_with_problems = 0
        self._entries: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(self, meta: dict[str, Any] | None, sample_id: str | None = None) -> None:
        self.samples += 1
        problems = (meta or {}).get("frame_problems") or []
        if not problems:
            return
        self.samples_with_problems += 1
        if self.strict:
            entry = ReportEntry(**{k: problems[0].get(k) for k in ("kind", "message", "file", "record", "field")})
            where = f" (sample {sample_id})" if sample_id else ""
            raise SampleError(f"{self.command} --strict: bad frame{where}: {entry}")
        for problem in problems:
            key = tuple(problem.get(k) for k in ("kind", "file", "record", "field"))
            entry = self._entries.setdefault(key, {**problem, "samples": 0})
            entry["samples"] += 1

    @property
    def problems(self) -> list[dict[str, Any]]:
        return list(self._entries.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "samples": self.samples,
            "samples_with_skipped_frames": self.samples_with_problems,
            "frames_skipped": len(self._entries),
            "problems": self.problems,
        }

    def summary(self, max_lines: int = 20) -> str:
        """One line when nothing was skipped; else a count and one line per skipped frame (file, record, field)."""
        head = (
            f"{self.command}: {self.samples} samples, {len(self._entries)} bad frames skipped "
            f"(in {self.samples_with_problems} samples)"
        )
        lines = [head]
        for entry in self.problems[:max_lines]:
            text = ReportEntry(**{k: entry.get(k) for k in ("kind", "message", "file", "record", "field")})
            lines.append(f"  {text}")
        if len(self._entries) > max_lines:
            lines.append(f"  ... and {len(self._entries) - max_lines} more (see {self.FILE_NAME})")
        return "\n".join(lines)

    def write(self, directory: str | Path, name: str | None = None) -> Path:
        """Write :meth:`to_dict` atomically to ``directory/frame_report.json`` (or ``name``); returns the path."""
        from loc3r.core.io import write_json

        return write_json(Path(directory) / (name or self.FILE_NAME), self.to_dict(), indent=1)
