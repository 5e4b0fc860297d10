"""The prepared-data cache written by ``loc3r prepare`` and read by the trainer.

Why a cache: a ScanNet clip of 32 frames costs 32 JPEG decodes, 32 16-bit PNG decodes and 32
depth-to-world unprojections every time a question of that scene is drawn (SQA3D has ~100 questions per
scene). ``loc3r prepare`` does this once per scene and stores the result; the trainer then reads one file.

Layout of a cache directory::

    <cache>/cache_info.json            settings the clips were prepared with (dataset, num_frames, sizes)
    <cache>/prepare_report.json        the last preparation report (scenes, samples, skips, errors)
    <cache>/clips/<key>.safetensors    one file per scene (ScanNet-style) or per video (VSI-Bench)

Each clip file is a **safetensors** file, chosen by measurement (``benchmarks/bench_prepare.py``, table
in ``benchmarks/RESULTS.md``): for a 32-frame 640x480 clip (33 MiB raw) it writes in ~10 ms and reads in ~9
ms, like plain ``.npz``, and reads ~3x / ~6x faster than zstd Parquet / ``np.savez_compressed``, which are
~4x smaller on disk (on SynthRooms' flat-shaded frames; real photos compress less) but write 6-50x slower.
Reading is what the trainer repeats every step, and disk is cheap next to data-loader stalls;
safetensors also needs no unpickling and carries the JSON header used below. Store frames at the model's
input size (``--image-size 384``) to cut the size.
Tensors of a ScanNet-style clip:
``frames [T, H, W, 3] uint8``, ``poses [T, 4, 4] float64`` (world camera-to-world, axis alignment already
applied), ``points [T, h, w, 3] float32`` (world points, NaN = invalid; absent when depth was not
prepared), ``frame_ids [T] int64``, ``color_intrinsic``/``depth_intrinsic [3, 3]``, ``axis_alignment [4, 4]``.
Scalars (scene id, ``axis_aligned``, layout, ``num_valid_frames``, loader meta) are JSON in the
safetensors metadata header. A video clip (VSI-Bench) holds ``frames`` and ``indices`` plus
``num_source_frames`` / ``fps`` in the header.

Clip keys are file-name safe: a scene id as is (``scene0000_00``), a video as ``<dataset>__<scene_name>``.

:class:`CachedFrameSource` has the ``clip(scene_id)`` interface of
:class:`~loc3r.data.scannet.ScanNetFrameSource`, so the SQA3D / ScanQA / MSQA / SynthRooms datasets read
prepared clips without any change;
:class:`~loc3r.benchmarks.vsibench.reader.CachedVSIBenchDataset` does the same for VSI-Bench videos.
A clip read from the cache is *bit-identical* to the one the loader would compute with the same settings
(tested), so training on prepared data is training on the same samples.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.core.io import write_json
from loc3r.data.scannet import ScanNetClip
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, VideoClip

CACHE_VERSION = 1
CLIP_DIR = "clips"
INFO_FILE = "cache_info.json"
REPORT_FILE = "prepare_report.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")

CacheInfo = dict[str, Any]


def clip_key(scene_id: str) -> str:
    """File-name-safe key of a scene (characters other than ``[A-Za-z0-9._-]`` become ``_``)."""
    key = _SAFE.sub("_", scene_id)
    if not key or key in (".", ".."):
        raise SampleError(f"scene id {scene_id!r} cannot be used as a cache key")
    return key


def video_key(dataset: str, scene_name: str) -> str:
    """Key of a VSI-Bench video ``<dataset>/<scene_name>.mp4``."""
    return clip_key(f"{dataset}__{scene_name}")


def scan_key(dataset: str, scene_name: str) -> str:
    """Key of a VSI-style record's clip taken from the posed scan of its scene (``loc3r prepare vsibench
    --scan-root DATASET=DIR``), next to the video clip of :func:`video_key`."""
    return clip_key(f"scan__{dataset}__{scene_name}")


def clip_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / CLIP_DIR / f"{key}.safetensors"


def _atomic_save(tensors: dict[str, np.ndarray], header: dict[str, Any], path: str | Path) -> int:
    """Write ``tensors`` + the ``loc3r`` header atomically; returns the file size in bytes."""
    from safetensors.numpy import save_file

    path = Path(path)
    metadata = {"loc3r": json.dumps(header)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is shared data, like the loaders' inputs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def write_scannet_clip(path: str | Path, clip: ScanNetClip) -> int:
    """Store a :class:`ScanNetClip` atomically; returns the file size in bytes."""
    tensors: dict[str, np.ndarray] = {
        "frames": np.asarray(clip.frames, dtype=np.uint8),
        "poses": np.asarray(clip.poses, dtype=np.float64),
        "frame_ids": np.asarray(clip.frame_ids, dtype=np.int64),
        "color_intrinsic": np.asarray(clip.color_intrinsic, dtype=np.float64),
        "depth_intrinsic": np.asarray(clip.depth_intrinsic, dtype=np.float64),
        "axis_alignment": np.asarray(clip.axis_alignment, dtype=np.float64),
    }
    if clip.points is not None:
        tensors["points"] = np.asarray(clip.points, dtype=np.float32)
    header = {
        "kind": "scannet",
        "version": CACHE_VERSION,
        "scene_id": clip.scene_id,
        "axis_aligned": bool(clip.axis_aligned),
        "layout": clip.layout,
        "num_valid_frames": int(clip.num_valid_frames),
        "meta": clip.meta,
    }
    return _atomic_save(tensors, header, path)


def write_video_clip(path: str | Path, clip: VideoClip, source: str) -> int:
    """Store a decoded :class:`VideoClip` (``source``: the video path, for messages); returns bytes."""
    header = {
        "kind": "video",
        "version": CACHE_VERSION,
        "source": source,
        "num_source_frames": int(clip.num_source_frames),
        "fps": clip.fps,
    }
    tensors = {"frames": np.asarray(clip.frames, dtype=np.uint8), "indices": np.asarray(clip.indices, np.int64)}
    return _atomic_save(tensors, header, path)


def _read(path: Path, kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise SampleError(f"{path}: prepared clip is missing (run `loc3r prepare` for this dataset)")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = json.loads((handle.metadata() or {}).get("loc3r", "null"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise SampleError(f"{path}: corrupt prepared clip ({err}); delete it and re-run `loc3r prepare`") from err
    if not isinstance(header, dict) or header.get("kind") != kind:
        raise SampleError(f"{path}: not a loc3r {kind} clip (header field 'loc3r' is {header!r})")
    if header.get("version") != CACHE_VERSION:
        raise SampleError(f"{path}: cache version {header.get('version')} != {CACHE_VERSION}; re-run `loc3r prepare`")
    return tensors, header


def read_scannet_clip(path: str | Path) -> ScanNetClip:
    """Read a clip written by :func:`write_scannet_clip` (errors name the file)."""
    path = Path(path)
    t, h = _read(path, "scannet")
    missing = [k for k in ("frames", "poses", "frame_ids", "color_intrinsic", "axis_alignment") if k not in t]
    if missing:
        raise SampleError(f"{path}: prepared clip lacks tensor(s) {missing}")
    return ScanNetClip(
        scene_id=str(h["scene_id"]),
        frames=t["frames"],
        poses=t["poses"],
        points=t.get("points"),
        frame_ids=t["frame_ids"],
        color_intrinsic=t["color_intrinsic"],
        depth_intrinsic=t.get("depth_intrinsic", np.eye(3)),
        axis_alignment=t["axis_alignment"],
        axis_aligned=bool(h["axis_aligned"]),
        layout=str(h["layout"]),
        num_valid_frames=int(h["num_valid_frames"]),
        meta=dict(h.get("meta") or {}),
    )


def read_video_clip(path: str | Path) -> VideoClip:
    """Read a clip written by :func:`write_video_clip`."""
    path = Path(path)
    t, h = _read(path, "video")
    return VideoClip(
        frames=t["frames"], indices=t["indices"], num_source_frames=int(h["num_source_frames"]), fps=h.get("fps")
    )


def write_cache_info(cache_dir: str | Path, info: CacheInfo) -> None:
    write_json(Path(cache_dir) / INFO_FILE, {"version": CACHE_VERSION, **info}, indent=2)


def read_cache_info(cache_dir: str | Path) -> CacheInfo:
    """The settings a cache was prepared with; a missing / malformed file names the directory."""
    path = Path(cache_dir) / INFO_FILE
    if not path.is_file():
        raise SampleError(f"{cache_dir}: not a prepared loc3r cache ({INFO_FILE} missing; run `loc3r prepare`)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SampleError(f"{path}: malformed cache info ({err})") from err
    if not isinstance(info, dict) or info.get("version") != CACHE_VERSION:
        raise SampleError(
            f"{path}: cache version {info.get('version') if isinstance(info, dict) else None} "
            f"!= {CACHE_VERSION}; re-run `loc3r prepare`"
        )
    return info


def _size_tuple(value: Any) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))


def check_cache_settings(
    cache_dir: str | Path,
    num_frames: int,
    image_size: tuple[int, int] | None = None,
    points_size: tuple[int, int] | None = None,
    check_sizes: bool = False,
) -> CacheInfo:
    """Refuse a cache prepared with other settings than the run wants (the samples would differ silently)."""
    info = read_cache_info(cache_dir)
    if int(info.get("num_frames", -1)) != int(num_frames):
        raise SampleError(
            f"{cache_dir}: prepared with {info.get('num_frames')} frames per clip but data.num_frames = {num_frames}; "
            f"re-run `loc3r prepare ... --frames {num_frames}` into a new directory"
        )
    if check_sizes:
        for name, wanted in (("image_size", image_size), ("points_size", points_size)):
            have = _size_tuple(info.get(name))
            if wanted is not None and have != tuple(wanted):
                raise SampleError(f"{cache_dir}: prepared with {name} = {have}, the dataset asks for {tuple(wanted)}")
    return info


class CachedFrameSource:
    """Prepared clips of a cache directory behind :class:`~loc3r.data.scannet.ScanNetFrameSource`'s interface.

    ``clip(scene_id)`` reads ``<cache>/clips/<key>.safetensors`` (memory-mapped by safetensors, then
    copied once into numpy arrays); a scene the preparation skipped is an error naming the file, recorded
    in :attr:`report` like the on-the-fly loader does.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        num_frames: int,
        *,
        strict: bool = False,
        image_size: tuple[int, int] | None = None,
        points_size: tuple[int, int] | None = None,
    ) -> None:
        self.root = Path(cache_dir)
        self.info = check_cache_settings(self.root, num_frames, image_size, points_size, check_sizes=True)
        self.num_frames = int(num_frames)
        self.report = LoadReport(f"prepared clips {self.root}", strict=strict)

    def clip(self, scene_id: str) -> ScanNetClip:
        path = clip_path(self.root, clip_key(scene_id))
        try:
            clip = read_scannet_clip(path)
        except SampleError as err:
            kind = "missing_scene" if not path.is_file() else "bad_scene"
            self.report.error(kind, str(err), file=path, record=scene_id)  # raises when strict
            raise
        if clip.scene_id != scene_id:
            raise SampleError(f"{path}: holds scene {clip.scene_id!r}, expected {scene_id!r}")
        return clip
