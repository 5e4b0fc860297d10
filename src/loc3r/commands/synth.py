"""``loc3r synth``: generate (or resume) a SynthRooms dataset.

Example::

    loc3r synth --out data/synthrooms --scenes 100 --frames 32 --size 128x128 --seed 0 --workers 2

The output layout is documented in :mod:`loc3r.synthrooms.writer`. Re-running the same command resumes:
finished scans are skipped, half-written ones (from a killed run) are discarded and redone.
"""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--size must look like WIDTHxHEIGHT (e.g. 128x128), got {text!r}") from err
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"--size must be at least 8x8, got {text!r}")
    return w, h


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate SynthRooms: procedural rooms rendered as posed video (ScanNet/SQA3D/VSI-Bench formats)",
        description="Generate a SynthRooms dataset: procedural furnished rooms rendered as posed monocular "
        "video with exact depth, instance masks, layouts, situations and questions, written in the ScanNet "
        "SensReader / VSI-Bench meta_info / SQA3D / VSI-Bench formats. Resumable.",
    )
    p.add_argument("--out", required=True, help="output directory (created; re-running resumes)")
    p.add_argument(
        "--scenes",
        type=int,
        default=None,
        help="number of rooms (default 10; with --layouts: the first N rooms of the file, default all)",
    )
    p.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--size", type=_size, default=(128, 128), help="image size WxH (default 128x128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--layouts", default=None, help="VSI-Bench meta_info JSON file with the rooms to render")
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --layouts: unknown categories, count mismatches and bad scenes are errors (default: warnings; "
        "unknown categories render as plain boxes, bad scenes are skipped)",
    )
    p.add_argument("--min-objects", type=int, default=6, help="min objects per generated room (default 6)")
    p.add_argument("--max-objects", type=int, default=14, help="max objects per generated room (default 14)")
    p.add_argument("--min-side", type=float, default=3.0, help="min room side in metres (default 3)")
    p.add_argument("--max-side", type=float, default=10.0, help="max room side in metres (default 10)")
    p.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view in degrees (default 60)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of rooms for val (default 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="fraction of rooms for test (default 0.1)")
    p.add_argument("--no-novel-view", action="store_true", help="do not render the test rooms' novel-view scans")
    p.add_argument("--extra-splits", nargs="+", choices=["image", "rig"], default=[],
                   help="also render the test rooms as one still image (split test_image) and/or through a "
                   "front/left/right camera rig (split test_rig); existing splits are unchanged")  # fmt: skip
    p.add_argument("--situations", type=int, default=8, help="situations per scan (default 8)")
    p.add_argument("--questions-per-situation", type=int, default=4, help="situated questions each (default 4)")
    p.add_argument("--vsi-per-type", type=int, default=2, help="VSI-Bench questions per type per scan (default 2)")
    p.add_argument(
        "--category-colors",
        action="store_true",
        help="paint every object in its category's own colour (generated rooms only; --layouts keep their colours)",
    )
    p.add_argument(
        "--camera-policy",
        choices=["walk", "frame_objects"],
        default="walk",
        help="how the camera films a room: 'walk' (hand-held walks, default) or 'frame_objects' (views planned to "
        "frame every object of the room, at head height, bounded motion per frame)",
    )
    p.add_argument(
        "--hold-frames",
        type=int,
        default=1,
        help="the camera holds each view for this many consecutive frames (default 1; 2 = every Qwen2.5-VL vision "
        "token, which fuses 2 frames, shows one view)",
    )
    p.add_argument("--no-shadows", action="store_true", help="skip shadow rays (faster rendering)")
    p.add_argument(
        "--format",
        default="sensreader",
        choices=["sensreader", "scannet-sens", "scannetpp", "arkitscenes"],
        help="how each scan's frames are written: ScanNet's SensReader export (default), a ScanNet .sens file, a "
        "ScanNet++ scene (iphone/ + dslr/) or an ARKitScenes video folder (lowres_wide); see loc3r.synthrooms.formats",
    )
    p.add_argument("--no-video", action="store_true", help="do not write the per-scan mp4 videos")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--fsync", action="store_true", help="fsync every file before a scan is committed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    width, height = args.size
    num_scenes = args.scenes if (args.scenes is not None or args.layouts) else 10
    same = ("frames", "seed", "min_objects", "max_objects", "min_side", "max_side", "val_fraction", "test_fraction",
            "category_colors", "camera_policy", "hold_frames")  # fmt: skip
    settings = SynthSettings(
        num_scenes=num_scenes, width=width, height=height, hfov_deg=args.hfov, novel_view=not args.no_novel_view,
        situations_per_scene=args.situations, questions_per_situation=args.questions_per_situation,
        vsi_questions_per_type=args.vsi_per_type, layouts_file=args.layouts, shadows=not args.no_shadows,
        write_video=not args.no_video, extra_splits=tuple(args.extra_splits), capture_format=args.format,
        **{name: getattr(args, name) for name in same},
    )  # fmt: skip
    settings.scene_config  # validates the complexity parameters  # noqa: B018
    summary = generate_dataset(
        args.out,
        settings,
        workers=args.workers,
        progress=not args.quiet,
        fsync=args.fsync,
        strict_layouts=args.strict,
        warn=lambda message: print(f"loc3r synth: warning: {message}", file=sys.stderr),
    )
    index = summary.index
    counts = ", ".join(f"{k} {len(v)}" for k, v in index["splits"].items())
    print(
        f"SynthRooms in {summary.out_dir}: {len(index['scenes'])} scans ({counts}); written "
        f"{len(summary.written)}, resumed {len(summary.skipped)}, failed {len(summary.failed)} "
        f"in {summary.seconds:.1f} s"
    )
    for scene_id, err in summary.failed.items():
        print(f"  failed {scene_id}: {err}", file=sys.stderr)
    return 1 if summary.failed else 0
