"""``loc3r infer``: one query on a video → position, heading, uncertainty, answer and a BEV picture.

Example::

    loc3r infer --model runs/demo/runs/loc3r-seed0/final --video data/synthrooms/scans/synth00003_00 \\
        --situation "I am facing the sofa." --question "What is on my left?" --bev bev.png

``--video`` is a video file, a folder of images, or a ScanNet-style scan folder (``color/``, ``pose/``; its poses
are used). ``--poses P.npy`` gives ``[T, 4, 4]`` camera-to-world poses for the sampled frames. Prints a table or,
with ``--json``, one JSON object. Python API: :class:`loc3r.infer.Loc3rPredictor`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("infer", help="answer a situated question on a video; position, heading, BEV picture")
    p.add_argument("--model", required=True, help="checkpoint directory (e.g. a run's final/)")
    p.add_argument("--video", required=True, help="video file, image folder or ScanNet-style scan folder")
    p.add_argument("--situation", default=None, help="situation text (default: the pseudo-situation)")
    p.add_argument("--question", required=True)
    p.add_argument("--poses", default=None, help=".npy file of [T, 4, 4] camera-to-world poses")
    p.add_argument("--frames", type=int, default=None, help="frames to sample (default: the training recipe's)")
    p.add_argument("--bev", default=None, help="write the BEV picture to this PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from loc3r.data.schema import SampleError
    from loc3r.infer import Loc3rPredictor

    try:
        predictor = Loc3rPredictor.from_pretrained(args.model, num_frames=args.frames)
        poses = None
        if args.poses:
            poses = np.load(args.poses, allow_pickle=False)
        result = predictor.predict(args.video, args.situation, args.question, poses=poses, bev_png=args.bev)
    except (FileNotFoundError, SampleError, ValueError) as err:
        print(f"loc3r infer: {err}")
        return 2
    out = result.to_dict()
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>18}: {value}")
    return 0
