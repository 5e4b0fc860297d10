"""``loc3r prepare scanqa``: the ScanNet scenes the ScanQA files reference (frames from ``--scannet-root``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loc3r.data.prepare_plan import ClipPlan, scannet_frames, splits_to_prepare

DEFAULT_SPLITS = ("train", "val", "test_w_obj", "test_wo_obj")


def collect(opts: Any, report: Any, plan: ClipPlan) -> None:
    """Every question's scene, for each split present (``ScanQA_v1.0_<split>.json``)."""
    from loc3r.benchmarks.scanqa.reader import load_scanqa

    root = Path(opts.root)
    frames_root, _ = scannet_frames(opts)
    splits = splits_to_prepare(
        opts, DEFAULT_SPLITS, lambda s: (root / f"ScanQA_v1.0_{s}.json").is_file(),
        "no ScanQA files ScanQA_v1.0_<split>.json found",
    )  # fmt: skip
    for split in splits:
        records, rep = load_scanqa(root, split, strict=opts.strict)
        report.merge(rep)
        plan.scenes(frames_root, (r.scene_id for r in records))
