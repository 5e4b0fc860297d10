"""``loc3r prepare msqa``: the ScanNet scenes of the MSQA (ScanNet part) file (frames from ``--scannet-root``)."""

from __future__ import annotations

from typing import Any

from loc3r.data.prepare_plan import ClipPlan, scannet_frames


def collect(opts: Any, report: Any, plan: ClipPlan) -> None:
    """Every question's scene of the MSQA file ``--root``."""
    from loc3r.benchmarks.msqa.reader import load_msqa

    frames_root, table = scannet_frames(opts)
    records, rep = load_msqa(opts.root, scene_meta=table, strict=opts.strict)
    report.merge(rep)
    plan.scenes(frames_root, (r.scene_id for r in records))
