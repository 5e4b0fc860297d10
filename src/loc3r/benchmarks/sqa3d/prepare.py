"""``loc3r prepare sqa3d``: the ScanNet scenes the SQA3D question files reference (frames from ``--scannet-root``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loc3r.data.prepare_plan import ClipPlan, scannet_frames, splits_to_prepare

DEFAULT_SPLITS = ("train", "val", "test")


def collect(opts: Any, report: Any, plan: ClipPlan) -> None:
    """Every question's scene, for each split present (``v1_balanced_questions_<split>_scannetv2.json``)."""
    from loc3r.benchmarks.sqa3d.reader import load_sqa3d

    root = Path(opts.root)
    frames_root, table = scannet_frames(opts)
    splits = splits_to_prepare(
        opts, DEFAULT_SPLITS, lambda s: any(root.rglob(f"v1_balanced_questions_{s}_scannetv2.json")),
        "no SQA3D files v1_balanced_questions_<split>_scannetv2.json found",
    )  # fmt: skip
    for split in splits:
        records, rep = load_sqa3d(root, split, scene_meta=table, scans_root=opts.scans_root, strict=opts.strict)
        report.merge(rep)
        plan.scenes(frames_root, (r.scene_id for r in records))
