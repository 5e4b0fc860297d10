"""``loc3r serve``: the web demo (Gradio) on a checkpoint directory.

Example::

    loc3r serve --model runs/demo/runs/loc3r-seed0/final --data data/synthrooms --port 7860

Open http://127.0.0.1:7860: upload a video or pick a SynthRooms sample, or stream the webcam; type a situation and a
question; see the answer, the BEV map with the predicted pose, its uncertainty ellipse, the camera path and the
per-frame layout points. Needs ``pip install "loc3r[demo]"`` (Gradio). See :mod:`loc3r.web`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="web demo (Gradio): video or webcam, situation + question, BEV map")
    p.add_argument("--model", required=True, help="checkpoint directory (e.g. a run's final/)")
    p.add_argument("--data", default=None, help="SynthRooms (or ScanNet-style) root whose scans are offered as samples")
    p.add_argument("--frames", type=int, default=None, help="frames per video (default: the training recipe's)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from loc3r.data.schema import SampleError

    def fail(message: str) -> int:
        print(f"loc3r serve: error: {message}", file=sys.stderr)
        return 2

    try:
        import gradio  # noqa: F401
    except ImportError:
        return fail('the web demo needs Gradio: pip install "loc3r[demo]"')
    from loc3r.web import DemoBackend, build_app

    try:
        backend = DemoBackend(args.model, args.data, args.frames)
    except (FileNotFoundError, SampleError, ValueError, OSError) as err:
        return fail(str(err))
    app = build_app(backend)
    print(f"loc3r serve: http://{args.host}:{args.port} (model {args.model})", flush=True)
    app.launch(server_name=args.host, server_port=args.port, show_error=False, quiet=True)
    return 0
