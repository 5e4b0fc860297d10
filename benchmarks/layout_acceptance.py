"""Do real VSI-Bench ``meta_info`` layouts render? Acceptance of ``loc3r synth --layouts`` per file.

For each file: how many rooms load (with the warnings: unknown categories, count mismatches), how many render
end to end through ``generate_dataset`` (room mesh, trajectory, frames, situations, questions), how many boxes
were tilted and made gravity-aligned, the room areas against ``room_size``, and the share of object footprint
area that lies outside the inferred room rectangle (real boxes are fitted to scan points)::

    python benchmarks/layout_acceptance.py META_INFO.json [...] --out /tmp/acceptance [--frames 2 --size 64x48]

The public VSI-Bench files (thinking-in-space ``data/meta_info/{scannet,scannetpp,arkitscenes}_meta_info_val.json``)
are evaluation data: render them to check the generator, never to train on.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon

from loc3r.synthrooms.meta_info import load_meta_info
from loc3r.synthrooms.writer import SynthSettings, generate_dataset


def _tilted(entry: dict) -> int:
    n = 0
    for boxes in entry.get("object_bbox", {}).values():
        for box in boxes if isinstance(boxes, list) else []:
            axes = np.asarray(box.get("normalizedAxes", [0] * 9), dtype=np.float64).reshape(3, 3)
            if math.degrees(math.acos(min(1.0, float(np.abs(axes[:, 2]).max())))) > 20.0:
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", default=None, help="where to render (default: a temporary directory)")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    for file in args.files:
        data = json.loads(Path(file).read_text())
        warnings: list[str] = []
        layouts = load_meta_info(file, warnings=warnings)
        area_err, outside = [], []
        for layout in layouts:
            room = Polygon(layout.floor_polygon)
            given = data[layout.scene_id].get("room_size")
            if given:
                area_err.append(abs(room.area - float(given)) / float(given))
            feet = [Polygon(o.corners_xy()) for o in layout.objects]
            total = sum(f.area for f in feet)
            outside.append(sum(f.difference(room).area for f in feet) / total if total else 0.0)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(args.out) / Path(file).stem if args.out else Path(tmp)
            settings = SynthSettings(
                num_scenes=len(data), frames=args.frames, width=width, height=height, layouts_file=str(file),
                val_fraction=0.0, test_fraction=0.0, novel_view=False, situations_per_scene=2,
                questions_per_situation=1, vsi_questions_per_type=1, write_video=False,
            )  # fmt: skip
            t0 = time.perf_counter()
            summary = generate_dataset(out, settings, workers=args.workers, progress=False)
            seconds = time.perf_counter() - t0
        rendered = len(summary.index["scenes"])
        rows.append(
            {
                "file": Path(file).name,
                "rooms": len(data),
                "loaded": len(layouts),
                "rendered": rendered,
                "failed": dict(summary.failed),
                "tilted_boxes": sum(_tilted(e) for e in data.values()),
                "boxes": sum(len(b) for e in data.values() for b in e.get("object_bbox", {}).values()),
                "warnings": len(warnings),
                "warning_examples": warnings[:3],
                "max_area_error": max(area_err) if area_err else None,
                "median_outside_share": float(np.median(outside)) if outside else None,
                "seconds": seconds,
            }
        )
    print("| file | rooms | loaded | rendered | tilted boxes made upright | warnings | max room-area error | "
          "median footprint share outside the room | s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['file']} | {r['rooms']} | {r['loaded']} | {r['rendered']} | {r['tilted_boxes']} / {r['boxes']} | "
            f"{r['warnings']} | {100 * (r['max_area_error'] or 0):.2f} % | "
            f"{100 * (r['median_outside_share'] or 0):.1f} % | {r['seconds']:.0f} |"
        )
    for r in rows:
        for scene, err in list(r["failed"].items())[:5]:
            print(f"  {r['file']}: failed {scene}: {err}")
        for w in r["warning_examples"]:
            print(f"  {r['file']}: warning: {w}")


if __name__ == "__main__":
    main()
