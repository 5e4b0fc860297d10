"""``loc3r prepare vsibench``: the videos (or posed scans) of VSI-Bench-style records.

For a record whose source dataset has a scan root (``--scan-root DATASET=DIR``) and whose scene has a scan folder
``DIR/<scene_name>/`` with at least ``T`` valid poses, the clip is the scan's (``T`` frames uniform over the valid
frames, world poses, world points: the layout targets; key :func:`~loc3r.data.cache.scan_key`); its mp4 is prepared
too when it exists (fallback). The others take the record's video ``<video_root>/<dataset>/<scene_name>.mp4`` (no
layout targets), and the report says why: ``vsi_no_scan_root:<dataset>`` (no scan root given for that source
dataset), an error ``scene_without_scan`` (the scene has no folder under the root; names file, record and field
``scene_name``) or ``too_few_valid_poses`` (names the scan's pose folder, the scene and field ``pose``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loc3r.data.cache import scan_key, video_key
from loc3r.data.prepare_plan import ClipPlan, ClipTask


def collect(opts: Any, report: Any, plan: ClipPlan) -> None:
    """Every record's clip (see the module docstring)."""
    from loc3r.benchmarks.vsibench.reader import load_vsibench

    root = Path(opts.root)
    records, rep = load_vsibench(root, strict=opts.strict)
    report.merge(rep)
    video_root = Path(opts.video_root) if opts.video_root else (root.parent if root.is_file() else root)
    scan_roots = {k: Path(v) for k, v in (opts.scan_roots or {}).items()}
    for r in records:
        where, video = f"id={r.id}", str(r.video_path(video_root))
        video_task = ClipTask(key=video_key(r.dataset, r.scene_name), scene_id=r.scene_name, video=video, record=where)
        scene_dir = scan_roots[r.dataset] / r.scene_name if r.dataset in scan_roots else None
        if scene_dir is not None and scene_dir.is_dir():
            scan = ClipTask(key=scan_key(r.dataset, r.scene_name), scene_id=r.scene_name, scene_dir=str(scene_dir),
                            record=where, min_valid_frames=opts.num_frames)  # fmt: skip
            key = plan.add(scan)
            if Path(video).is_file():  # else the scan alone serves it: no fallback video to prepare
                plan.fallback[key] = plan.add(video_task, samples=0)
            continue
        if scene_dir is not None:
            report.error(
                "scene_without_scan",
                f"{root} {where}: field 'scene_name': scene {r.scene_name!r} of dataset {r.dataset!r} has no scan "
                f"folder {scene_dir}; the sample keeps the mp4 frames (no layout targets)",
                file=root, record=where, field="scene_name",
            )  # fmt: skip
        else:
            report.skip(f"vsi_no_scan_root:{r.dataset}", where)
        plan.add(video_task)
