"""``loc3r prepare synthrooms``: every scan of a SynthRooms directory (``root/scans/<scene>``), after validating the
records of its splits (situations and questions in SQA3D format, VSI-style records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loc3r.data.prepare_plan import ClipPlan
from loc3r.data.schema import SampleError

DEFAULT_SPLITS = ("train", "val", "test", "test_novel_view")


def collect(opts: Any, report: Any, plan: ClipPlan) -> None:
    """Every scene of the index (a clip each), counted once per record of the splits read."""
    from loc3r.benchmarks.sqa3d.reader import load_sqa3d
    from loc3r.benchmarks.synthrooms.reader import synth_vsi_records
    from loc3r.synthrooms.writer import read_index

    root = Path(opts.root)
    try:
        index = read_index(root)
    except (OSError, ValueError, RuntimeError) as err:
        raise SampleError(f"{root}: not a SynthRooms directory ({err})") from err
    frames_root = root / "scans"
    for scene_id in sorted(index.get("scenes", {})):
        plan.scene(frames_root, scene_id, samples=0)
    for split in opts.splits or [s for s in DEFAULT_SPLITS if s in index.get("splits", {})]:
        records, rep = load_sqa3d(root / "sqa3d", split, convention="loc3r_world", strict=opts.strict)
        report.merge(rep)
        plan.scenes(frames_root, (r.scene_id for r in records))
        vsi_path = root / "vsibench" / f"{split}.jsonl"
        if vsi_path.is_file():
            try:
                plan.scenes(frames_root, [r.scene_name for r in synth_vsi_records(vsi_path)])
            except SampleError as err:
                report.error("bad_record", str(err), file=vsi_path)
