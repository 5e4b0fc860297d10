"""``loc3r serve``: the web demo (Gradio) on a checkpoint directory.

Example::

    loc3r serve --model runs/demo/runs/loc3r-seed0/final --data data/synthrooms --port 7860

Open http://127.0.0.1:7860: upload a video or pick a SynthRooms sample, or stream the webcam; type a situation and a
question; see the answer, the BEV map with the predicted pose, its uncertainty ellipse, the camera path and the
per-frame layout points. Needs ``pip install "loc3r[demo]"`` (Gradio). See :mod:`loc3r.apps.web`.
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
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest video upload in MB (default 200)")
    p.add_argument("--max-question-chars", type=int, default=500,
                   help="longest question / situation in characters (default 500)")  # fmt: skip
    p.add_argument("--live-idle-s", type=float, default=120.0,
                   help="close a webcam session after this many seconds without a frame (default 120)")  # fmt: skip
    p.add_argument("--max-live", type=int, default=8, help="webcam sessions open at once at most (default 8)")
    p.add_argument("--cache-ttl-s", type=int, default=3600,
                   help="delete uploads and pictures from Gradio's cache after this many s (default 3600)")  # fmt: skip
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from loc3r.core.errors import ConfigError
    from loc3r.data.schema import SampleError

    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be between 1 and 65535")
    problem = port_problem(args.host, args.port)  # before loading the model: a busy port fails in a second
    if problem:
        raise ConfigError(problem)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ConfigError('the web demo needs Gradio: pip install "loc3r[demo]"') from None
    from loc3r.apps.web import DemoBackend, build_app

    try:
        backend = DemoBackend(args.model, args.data, args.frames, max_question_chars=args.max_question_chars,
                              max_upload_mb=args.max_upload_mb, live_idle_s=args.live_idle_s,
                              max_live=args.max_live)  # fmt: skip
    except (FileNotFoundError, SampleError, ValueError, OSError) as err:
        raise ConfigError(str(err)) from err
    app = build_app(backend, cache_ttl_s=args.cache_ttl_s)
    print(f"loc3r serve: http://{args.host}:{args.port} (model {args.model})", flush=True)
    try:
        app.launch(server_name=args.host, server_port=args.port, show_error=False, quiet=True,
                   max_file_size=int(args.max_upload_mb * 2**20))  # fmt: skip
    except OSError as err:  # taken between the check and the launch
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen ({err})") from err
    finally:
        backend.close()
    return 0


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (busy, privileged, unknown address), or None."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return f"--host {host}: not an address of this machine ({err.strerror})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except PermissionError:
            return f"--port {port}: permission denied (ports below 1024 need root; use e.g. --port 7860)"
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return f"--port {port}: already in use on {host} (another loc3r serve?); choose another --port"
            return f"--host {host} --port {port}: cannot listen ({err.strerror})"
    return None
