"""What a benchmark's part of ``loc3r prepare`` fills in: the clips its records need (:class:`ClipPlan`).

A benchmark folder's ``prepare.py`` (``loc3r prepare <name>``) exports ``collect(opts, report, plan)``: it reads and
validates its records with its reader (problems go to ``report``, a :class:`~loc3r.data.video.LoadReport`) and
adds the clip of each record to ``plan``; :func:`loc3r.data.prepare.prepare_dataset` then prepares those clips.
Optional: ``DEFAULT_SPLITS`` (the splits read when ``--split`` is not given). This module is separate from
:mod:`loc3r.data.prepare` so that the benchmark steps it imports do not import it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loc3r.data.cache import clip_key
from loc3r.data.schema import SampleError


@dataclass(frozen=True)
class ClipTask:
    """One clip to prepare: a ScanNet-style scene (``scene_dir``) or a video (``video``)."""

    key: str
    scene_id: str
    scene_dir: str | None = None
    video: str | None = None
    record: str | None = None
    #: a scan with fewer valid poses is refused (VSI-style records: the mp4 is the fallback)
    min_valid_frames: int = 0


@dataclass
class ClipPlan:
    """The clips of a dataset (by key), the samples that need each and the fallback clip of a clip (VSI-style
    records: scan clip -> the record's video clip)."""

    tasks: dict[str, ClipTask] = field(default_factory=dict)
    per_clip: dict[str, int] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)

    def add(self, task: ClipTask, samples: int = 1) -> str:
        """Plan ``task`` (once per key) for ``samples`` more samples; returns its key."""
        self.tasks.setdefault(task.key, task)
        if samples:
            self.per_clip[task.key] = self.per_clip.get(task.key, 0) + samples
        return task.key

    def scene(self, frames_root: Path, scene_id: str, samples: int = 1) -> str:
        """Plan the scan folder ``frames_root/scene_id`` of ``samples`` more samples."""
        key = clip_key(scene_id)
        return self.add(ClipTask(key=key, scene_id=scene_id, scene_dir=str(frames_root / scene_id)), samples)

    def scenes(self, frames_root: Path, scene_ids: Iterable[str]) -> None:
        """One sample per entry of ``scene_ids`` (a record's scene)."""
        for scene_id in scene_ids:
            self.scene(frames_root, scene_id)


def scannet_frames(opts: Any) -> tuple[Path, Any]:
    """``(frames root, scene-meta table or None)`` of a benchmark on ScanNet frames (``--scannet-root`` required)."""
    if opts.scannet_root is None:
        raise SampleError(f"dataset {opts.dataset}: --scannet-root (the ScanNet frames) is required")
    table = None
    if opts.scene_meta:
        from loc3r.data.scannet import SceneMetaTable

        table = SceneMetaTable.from_json(opts.scene_meta, scans_root=opts.scans_root)
    return Path(opts.scannet_root), table


def splits_to_prepare(opts: Any, defaults: Sequence[str], exists: Callable[[str], bool], missing: str) -> list[str]:
    """``--split`` values, else the ``defaults`` whose files exist; none at all is a :class:`SampleError`
    (``missing`` says which files were looked for)."""
    splits = list(opts.splits or [s for s in defaults if exists(s)])
    if not splits:
        raise SampleError(f"{opts.root}: {missing}")
    return splits
