"""``loc3r infer``: one query on a video → position, heading, uncertainty, answer and a BEV picture.

Example::

    loc3r infer --model runs/demo/runs/loc3r-seed0/final --video data/synthrooms/scans/synth00003_00 \\
        --situation "I am facing the sofa." --question "What is on my left?" --bev bev.png

``--video`` is a video file, a folder of images, or a ScanNet-style scan folder (``color/``, ``pose/``; its poses
are used). ``--poses P.npy`` gives ``[T, 4, 4]`` camera-to-world poses for the sampled frames; without poses a
checkpoint with the camera prior runs without its camera tokens. Prints a table or, with ``--json``, one JSON object;
both say which inputs were used (``inputs``: frames, poses, depth, camera prior). Python API:
:class:`loc3r.apps.infer.Loc3rPredictor`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("infer", help="answer a situated question on a video; position, heading, BEV picture")
    p.add_argument("--model", required=True, help="checkpoint directory (e.g. a run's final/)")
    p.add_argument("--video", required=True, nargs="+",
                   help="video file, image folder, ScanNet-style scan folder, camera-rig folder (rig.json), one "
                   "image, or several images (an unordered set)")  # fmt: skip
    p.add_argument("--situation", default=None, help="situation text (default: the pseudo-situation)")
    p.add_argument("--question", required=True)
    p.add_argument("--poses", default=None, help=".npy file of [T, 4, 4] camera-to-world poses")
    p.add_argument("--frames", type=int, default=None, help="frames to sample (default: the training recipe's)")
    p.add_argument("--bev", default=None, help="write the BEV picture to this PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--strict", action="store_true", help="a bad frame (unreadable, other size, bad pose) is an error, not skipped"
    )
    p.set_defaults(func=_run)


def _load_poses(path: str):  # noqa: ANN202 - numpy array
    """``--poses`` file: a ``.npy`` array (never pickled) or a text file of numbers; errors name the file."""
    import numpy as np

    from loc3r.data.schema import SampleError

    try:
        if path.endswith(".npy"):
            poses = np.load(path, allow_pickle=False)
        else:
            poses = np.loadtxt(path, dtype=np.float64, ndmin=2)
            if poses.size % 16:
                raise ValueError(f"{poses.size} numbers, not a multiple of 16")
            poses = poses.reshape(-1, 4, 4)
    except FileNotFoundError as err:
        raise SampleError(f"{path}: --poses file does not exist") from err
    except (OSError, ValueError, EOFError) as err:
        raise SampleError(f"{path}: --poses is not a [T, 4, 4] .npy array or text matrix ({err})") from err
    if not np.issubdtype(poses.dtype, np.number):
        raise SampleError(f"{path}: --poses holds {poses.dtype} values, not numbers")
    return poses


def _run(args: argparse.Namespace) -> int:
    import json
    import sys

    from loc3r.apps.infer import Loc3rPredictor

    poses = _load_poses(args.poses) if args.poses else None
    predictor = Loc3rPredictor.from_pretrained(args.model, num_frames=args.frames)
    predictor.strict = args.strict
    video = args.video[0] if len(args.video) == 1 else list(args.video)
    result = predictor.predict(video, args.situation, args.question, poses=poses, bev_png=args.bev)
    out = result.to_dict()
    for problem in out["frame_problems"]:  # skipped frames are never silent, even with --json (stdout stays JSON)
        where = f"{problem['file']} ({problem['field']})"
        print(f"loc3r infer: skipped frame: {where}: {problem['message']}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    else:
        from loc3r.apps.infer import describe_inputs

        for key, value in out.items():
            print(f"{key:>18}: {describe_inputs(value) if key == 'inputs' else value}")
    return 0
