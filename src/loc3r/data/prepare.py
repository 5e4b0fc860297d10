"""``loc3r prepare``: validate a dataset on disk, sample its clips once and write the training cache.

For every scene (ScanNet-style datasets) or video (VSI-Bench) the clip the trainer would build is built
once, with the loaders of :mod:`loc3r.data` (so coordinates are converted in exactly one place): ``T``
frames sampled uniformly over the valid frames (:func:`~loc3r.data.video.uniform_indices`), their world
camera poses (axis alignment applied) and the per-pixel world points from depth + pose (the layout
targets' source). The clip is written to ``<out>/clips/<key>.safetensors`` (format: :mod:`loc3r.data.cache`).

Guarantees:

* **Resumable, nothing lost.** Each clip is written to a temporary file and moved into place with
  ``os.replace``; a re-run skips every clip already on disk and only does the rest. A cache prepared with
  other settings (frames, sizes) is refused instead of being mixed.
* **Bad input is named, preparation goes on.** A missing scene folder, a truncated PNG, a pose file with 3
  rows, an annotation whose ``question_id`` has no question, a video that cannot be decoded: each becomes
  an entry of the report with file, record and field (the loaders' :class:`~loc3r.data.video.LoadReport`),
  and the other scenes are prepared. With ``strict`` the first error stops the run (clips already
  written stay).
* ``check`` validates only (the same loading, nothing is written).

Scan datasets and their inputs:

=============  =========================================  ===========================================
dataset        ``root``                                   frames from
=============  =========================================  ===========================================
scannet        folder of scene folders (SensReader or     ``root``
               ``posed_images`` export, or ScanNet's
               ``scans/`` with ``<scene>/<scene>.sens``)
scannetpp      ScanNet++ ``data/`` (``<scene>/iphone/``,   ``root`` (``scannetpp_camera``: iphone | dslr)
               ``<scene>/dslr/``)
arkitscenes    folder of ARKitScenes video folders        ``root``
               (``<video_id>/lowres_wide/`` ...)
=============  =========================================  ===========================================

A benchmark's part (which files, which clips: only the scenes its annotation files reference) is its folder's
``prepare.py`` (:mod:`loc3r.data.prepare_plan`), whose docstring names its inputs; ``loc3r prepare`` knows every
folder that has one.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loc3r.benchmarks import benchmark_modules
from loc3r.core.io import write_json
from loc3r.data.cache import (
    REPORT_FILE,
    clip_path,
    read_cache_info,
    write_cache_info,
    write_scannet_clip,
    write_video_clip,
)
from loc3r.data.prepare_plan import ClipPlan, ClipTask
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport

#: datasets whose root is a folder of scan folders, one clip per scan (read by :func:`loc3r.data.captures.open_scan`)
SCAN_DATASETS = ("scannet", "scannetpp", "arkitscenes")
#: every dataset ``loc3r prepare`` knows: the scan datasets and the benchmark folders with a ``prepare.py``
DATASETS = (*SCAN_DATASETS, *(name.split(".")[-2] for name in benchmark_modules("prepare")))


@dataclass
class PrepareOptions:
    """Settings of one preparation run (the CLI flags)."""

    dataset: str
    root: Path
    out: Path
    num_frames: int = 32
    image_size: tuple[int, int] | None = None  # (height, width) of stored frames; None = file size
    points_size: tuple[int, int] | None = (96, 128)  # (h, w) grid of world points; None = no depth
    splits: Sequence[str] | None = None  # default: every split of DEFAULT_SPLITS whose files exist
    scannet_root: Path | None = None
    video_root: Path | None = None
    scene_meta: Path | None = None
    scans_root: Path | None = None
    #: VSI-style records: source dataset (scannet | scannetpp | arkitscenes) -> folder of its posed scans
    scan_roots: dict[str, Path] | None = None
    max_depth: float = 10.0
    #: which ScanNet++ camera a scan clip is read from: "iphone" (LiDAR depth: layout targets) or "dslr"
    scannetpp_camera: str = "iphone"
    check: bool = False
    strict: bool = False
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        import math

        from loc3r.core.errors import ConfigError

        if not (isinstance(self.max_depth, int | float) and math.isfinite(self.max_depth) and self.max_depth > 0):
            raise ConfigError(f"--max-depth must be a positive number of metres, got {self.max_depth!r} (with it "
                              "every depth pixel would be invalid: no layout target at all)")  # fmt: skip

    def settings(self) -> dict[str, Any]:
        """What a cache must agree on to be resumed / read (stored in ``cache_info.json``)."""
        return {
            "dataset": self.dataset,
            "num_frames": int(self.num_frames),
            "image_size": None if self.image_size is None else list(self.image_size),
            "points_size": None
            if self.points_size is None or (self.dataset == "vsibench" and not self.scan_roots)
            else list(self.points_size),
            "max_depth": float(self.max_depth),
        }


@dataclass
class PrepareResult:
    """Outcome of :func:`prepare_dataset`; ``report`` holds counts, skips and named errors."""

    report: LoadReport
    clips_total: int = 0
    clips_written: int = 0
    clips_existing: int = 0
    clips_failed: list[str] = field(default_factory=list)
    samples: int = 0
    samples_ready: int = 0
    #: VSI-style records with scan roots: samples whose clip comes from a posed scan (layout targets)
    samples_with_layout_targets: int | None = None
    frames_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        head = [
            f"clips (scenes / videos): {self.clips_total} referenced, {self.clips_written} prepared now, "
            f"{self.clips_existing} already prepared, {len(self.clips_failed)} failed",
            f"samples: {self.samples} loaded, {self.samples_ready} with a prepared clip"
            + (
                ""
                if self.samples_with_layout_targets is None
                else f", {self.samples_with_layout_targets} with layout targets (posed scan; the others: mp4 frames, "
                "see vsi_no_scan_root / scene_without_scan / too_few_valid_poses below)"
            ),
            f"frames written: {self.frames_written} ({self.bytes_written / 2**20:.1f} MiB) in {self.seconds:.1f} s "
            f"({self.frames_per_second:.1f} frames/s)",
        ]
        if self.clips_failed:
            shown = ", ".join(self.clips_failed[:10]) + (" ..." if len(self.clips_failed) > 10 else "")
            head.append(f"failed clips: {shown}")
        return "\n".join(head) + "\n" + self.report.summary()

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "report"}
        out["frames_per_second"] = self.frames_per_second
        out["report"] = self.report.to_dict()
        return out


# ---------------------------------------------------------------- per-clip work (runs in worker processes)


@dataclass
class _Outcome:
    key: str
    frames: int = 0
    nbytes: int = 0
    report: LoadReport = field(default_factory=LoadReport)  # (a dataclass: it pickles back from a worker)
    failed: bool = False


@functools.lru_cache(maxsize=2)
def _scene_meta_table(path: str, scans_root: Path | None) -> Any:
    """The scene-meta JSON, parsed once per process (not once per scene)."""
    from loc3r.data.scannet import SceneMetaTable

    return SceneMetaTable.from_json(path, scans_root=scans_root)


def _prepare_one(task: ClipTask, opts: PrepareOptions) -> _Outcome:
    """Load one clip with the dataset's loader and (unless ``check``) write it; never raises on bad input."""
    report = LoadReport(f"clip {task.key}")
    out = _Outcome(task.key, report=report)
    target = clip_path(opts.out, task.key)
    try:
        if task.video is not None:
            from loc3r.data.video import decode_video

            video = decode_video(Path(task.video), opts.num_frames, opts.image_size, record=task.record)
            out.frames = int(video.frames.shape[0])
            if not opts.check:
                out.nbytes = write_video_clip(target, video, task.video)
        else:
            from loc3r.data.captures import open_scan

            table = _scene_meta_table(str(opts.scene_meta), opts.scans_root) if opts.scene_meta else None
            scene = open_scan(  # any posed-scan format: SensReader export, .sens, ScanNet++, ARKitScenes
                Path(task.scene_dir or ""), task.scene_id, scene_meta=table, scans_root=opts.scans_root, report=report,
                scannetpp_camera=opts.scannetpp_camera,
            )  # fmt: skip
            if task.min_valid_frames:
                valid = len(scene.valid_frame_ids())
                if valid < task.min_valid_frames:
                    out.failed = True
                    report.error(
                        "too_few_valid_poses",
                        f"{task.scene_dir}/pose: scene {task.scene_id!r} ({task.record}) has {valid} frames with a "
                        f"valid pose, fewer than the {task.min_valid_frames} of a clip; field 'pose': its samples "
                        "keep the mp4 frames (no layout targets)",
                        file=f"{task.scene_dir}/pose",
                        record=task.record,
                        field="pose",
                    )
                    return out
            clip = scene.load_clip(opts.num_frames, opts.image_size, opts.points_size, max_depth=opts.max_depth)
            out.frames = int(clip.frames.shape[0])
            if opts.strict and report.errors:  # --strict: a scene with a bad file is not written
                out.failed = True
            elif not opts.check:
                out.nbytes = write_scannet_clip(target, clip)
    except SampleError as err:
        out.failed = True
        if task.video is not None:
            kind = "missing_file" if not Path(task.video).is_file() else "undecodable_video"
            report.error(kind, str(err), file=task.video, record=task.record, field="video")
        else:
            missing = not Path(task.scene_dir or "").is_dir()
            report.error(
                "missing_scene" if missing else "bad_scene", str(err), file=task.scene_dir, record=task.scene_id
            )
    return out


# ---------------------------------------------------------------- records and the clips they need


def _collect(opts: PrepareOptions, report: LoadReport) -> ClipPlan:
    """Read and validate the dataset's records (its benchmark folder's ``prepare.collect``); the clips they need."""
    root = Path(opts.root)
    if not root.exists():
        raise SampleError(f"{root}: dataset root of {opts.dataset!r} does not exist")
    plan = ClipPlan()
    if opts.dataset in SCAN_DATASETS:
        for entry in sorted(p for p in root.iterdir() if p.is_dir()):
            plan.scene(root, entry.name, samples=0)
    else:
        importlib.import_module(f"loc3r.benchmarks.{opts.dataset}.prepare").collect(opts, report, plan)
    return plan


# ---------------------------------------------------------------- the run


def _check_settings(opts: PrepareOptions) -> None:
    """Create ``cache_info.json`` or refuse a cache prepared with other settings."""
    info_path = Path(opts.out) / "cache_info.json"
    wanted = opts.settings()
    if info_path.is_file():
        have = read_cache_info(opts.out)
        diff = {k: (have.get(k), v) for k, v in wanted.items() if have.get(k) != v}
        if diff:
            details = ", ".join(f"{k}: cache {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise SampleError(f"{info_path}: the cache was prepared with other settings ({details}); use a new --out")
    elif not opts.check:
        write_cache_info(opts.out, {**wanted, "root": str(opts.root)})


def prepare_dataset(opts: PrepareOptions, log: Callable[[str], None] | None = None) -> PrepareResult:
    """Validate ``opts.dataset`` under ``opts.root`` and write its clip cache to ``opts.out`` (module docstring).

    Returns the result (also written to ``<out>/prepare_report.json`` unless ``check``). Raises
    :class:`SampleError` only for unusable arguments, or at the first bad input when ``strict``.
    """
    if opts.dataset not in DATASETS:
        raise SampleError(f"unknown dataset {opts.dataset!r}; choose one of {DATASETS}")
    if opts.num_frames <= 0:
        raise SampleError(f"--frames must be positive, got {opts.num_frames}")
    start = time.perf_counter()
    report = LoadReport(f"prepare {opts.dataset} ({opts.root})", strict=opts.strict)
    result = PrepareResult(report=report)
    _check_settings(opts)
    plan = _collect(opts, report)
    tasks, per_clip, fallback = list(plan.tasks.values()), plan.per_clip, plan.fallback
    result.clips_total = len(tasks)
    result.samples = sum(per_clip.values()) if opts.dataset not in SCAN_DATASETS else 0
    todo: list[ClipTask] = []
    for task in tasks:
        if not opts.check and clip_path(opts.out, task.key).is_file():
            result.clips_existing += 1
        else:
            todo.append(task)
    todo_keys = {t.key for t in todo}
    ok_keys = {t.key for t in tasks if t.key not in todo_keys}

    def absorb(outcome: _Outcome) -> None:
        scene_report = outcome.report
        report.merge(scene_report)
        if outcome.failed:
            result.clips_failed.append(outcome.key)
        else:
            ok_keys.add(outcome.key)
            result.frames_written += outcome.frames
            result.bytes_written += outcome.nbytes
            result.clips_written += 0 if opts.check else 1
        if opts.strict and scene_report.errors:
            raise SampleError(f"{report.name}: {scene_report.errors[0]} (--strict: stopped; prepared clips are kept)")

    progress = None
    if opts.progress and todo:
        from tqdm import tqdm

        progress = tqdm(total=len(todo), desc=f"prepare {opts.dataset}", unit="clip")
    try:
        if opts.workers <= 1 or len(todo) <= 1:
            for task in todo:
                absorb(_prepare_one(task, opts))
                if progress is not None:
                    progress.update()
        else:
            with ProcessPoolExecutor(max_workers=opts.workers) as pool:
                pending = {pool.submit(_prepare_one, task, opts) for task in todo}
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                        for fut in done:
                            absorb(fut.result())
                            if progress is not None:
                                progress.update()
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
    finally:
        if progress is not None:
            progress.close()
        result.seconds = time.perf_counter() - start
        result.samples_ready = sum(n for k, n in per_clip.items() if k in ok_keys or fallback.get(k) in ok_keys)
        if opts.scan_roots:
            with_scan = sum(n for k, n in per_clip.items() if k.startswith("scan__") and k in ok_keys)
            result.samples_with_layout_targets = with_scan
        if not opts.check and Path(opts.out).is_dir():
            write_json(Path(opts.out) / REPORT_FILE, result.to_dict(), indent=2, default=str)
    if log is not None:
        log(result.summary())
    return result
