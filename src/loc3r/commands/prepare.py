"""``loc3r prepare``: validate a dataset and write the clip cache the trainer reads.

Examples::

    loc3r prepare scannet   --root data/scannet/posed_images --out cache/scannet --frames 32
    loc3r prepare scannet   --root data/scannet/scans --out cache/scannet_sens      # <scene>/<scene>.sens directly
    loc3r prepare scannetpp --root data/scannetpp/data --out cache/scannetpp        # iphone/ (--scannetpp-camera dslr)
    loc3r prepare arkitscenes --root data/arkitscenes/raw/Training --out cache/arkitscenes
    loc3r prepare sqa3d     --root data/sqa3d --scannet-root data/scannet/posed_images \\
                            --scans-root data/scannet/scans --out cache/sqa3d --frames 32 --workers 8
    loc3r prepare vsibench  --root data/vsibench/train.jsonl --video-root data/vsibench --out cache/vsibench
    loc3r prepare vsibench  --root data/vlm3r/vsi_train.json --video-root data/vsibench \
                            --scan-root scannet=data/scannet/posed_images --out cache/vlm3r   # + layout targets
    loc3r prepare synthrooms --root data/synthrooms --out cache/synthrooms --check

Re-running the same command resumes (prepared clips are skipped). ``--check`` only validates;
``--strict`` stops at the first bad input. The report (scenes, samples, frames skipped and why, missing
files, errors with file / record / field) is printed and saved as ``<out>/prepare_report.json``.
Then point a recipe's dataset at the cache with ``options: {cache: <out>}`` (see docs/real_data.md).
"""

from __future__ import annotations

import argparse


def _hw(text: str) -> tuple[int, int]:
    """``HxW`` or a single ``N`` (square) -> (height, width)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or N, got {text!r}") from err
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH or N with positive numbers, got {text!r}")
    return parts[0], parts[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    from loc3r.data.prepare import DATASETS  # light module-level import: no torch

    p = subparsers.add_parser(
        "prepare",
        help="validate a dataset and write the prepared clip cache the trainer reads",
        description="Validate DATASET's files, sample T frames per scene/video, compute the world points "
        "(layout targets) once and write a resumable safetensors cache; prints what was skipped and why.",
    )
    p.add_argument("dataset", choices=DATASETS, help="dataset format")
    p.add_argument("--root", required=True, help="dataset root (see `loc3r.data.prepare` for each dataset)")
    p.add_argument("--out", required=True, help="cache directory (created; re-running resumes)")
    p.add_argument("--frames", type=int, default=32, help="frames per clip, T (default 32; = data.num_frames)")
    p.add_argument("--image-size", type=_hw, default=None, help="stored frame size HxW (default: file size)")
    p.add_argument("--points-size", type=_hw, default=(96, 128), help="world-point grid HxW (default 96x128)")
    p.add_argument("--no-points", action="store_true", help="do not read depth (no layout targets)")
    p.add_argument("--split", action="append", default=None, help="split(s) to read (default: all present)")
    p.add_argument("--scannet-root", default=None, help="ScanNet frames (sqa3d / scanqa / msqa)")
    p.add_argument("--video-root", default=None, help="VSI-Bench videos <dataset>/<scene>.mp4 (default: --root)")
    p.add_argument("--scene-meta", default=None, help="scene meta JSON (axis alignment, mesh centres)")
    p.add_argument("--scans-root", default=None, help="ScanNet scans/ folder (<scene>/<scene>.txt alignment)")
    p.add_argument(
        "--scan-root",
        action="append",
        default=None,
        metavar="DATASET=DIR",
        help="vsibench: posed scans of a source dataset (scannet | scannetpp | arkitscenes), DIR/<scene_name>/ in "
        "its own format (ScanNet export or .sens, ScanNet++ scene, ARKitScenes video folder): the records of its "
        "scenes take their T frames from the scan (layout targets)",
    )
    p.add_argument("--scannetpp-camera", choices=["iphone", "dslr"], default="iphone",
                   help="ScanNet++ scans: read the iPhone video + LiDAR depth (default) or the undistorted DSLR "
                   "images (world points only with dslr/render_depth)")  # fmt: skip
    p.add_argument("--max-depth", type=float, default=10.0, help="depths beyond this (m) are invalid (default 10)")
    p.add_argument("--check", action="store_true", help="only validate; write nothing")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input (prepared clips are kept)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from loc3r.data.prepare import PrepareOptions, prepare_dataset

    scan_roots = {}
    for item in args.scan_root or []:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            print(f"loc3r prepare: error: --scan-root expects DATASET=DIR, got {item!r}", file=sys.stderr)
            return 2
        scan_roots[name] = Path(folder)
    opts = PrepareOptions(
        dataset=args.dataset,
        root=Path(args.root),
        out=Path(args.out),
        num_frames=args.frames,
        image_size=args.image_size,
        points_size=None if args.no_points else args.points_size,
        splits=args.split,
        scannet_root=Path(args.scannet_root) if args.scannet_root else None,
        video_root=Path(args.video_root) if args.video_root else None,
        scene_meta=Path(args.scene_meta) if args.scene_meta else None,
        scans_root=Path(args.scans_root) if args.scans_root else None,
        scan_roots=scan_roots or None,
        max_depth=args.max_depth,
        scannetpp_camera=args.scannetpp_camera,
        check=args.check,
        strict=args.strict,
        workers=max(1, args.workers),
        progress=not args.quiet,
    )
    result = prepare_dataset(opts)
    print(result.summary())
    if args.check:
        print("check only: nothing written")
    return 0 if result.report.ok else 1
