"""``loc3r stream``: live layout map, pose estimate and answers on a continuous video source.

Example::

    loc3r stream --model runs/demo/runs/loc3r-seed0/final --video walk.mp4 --questions -      # type questions
    loc3r stream --model DIR --folder incoming/ --select coverage --frames 16 --questions q.txt --bev-dir live/
    loc3r stream --model DIR --camera /dev/video0

One line on stdout per event (``update``, ``answer``, ``stall``, ``resumed``, ``ended``, ``warning``, ``error``,
``summary``): readable text on a terminal, one JSON object when piped (``--format text|json`` to choose);
``--bev latest.png`` keeps the latest BEV picture in one file. A question line is ``situation | question`` or just
``question``; ``--questions FILE`` is read as it grows (a FIFO works too), ``-`` is stdin; a question asked while the
window still fills is answered once it is full (or the source ended or stalled).
See :mod:`loc3r.apps.stream` for what is measured and re-used.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stream", help="live layout map, pose and answers on a video file, camera or folder")
    p.add_argument("--model", required=True, help="checkpoint directory (e.g. a run's final/)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="video file, played at its own frame rate")
    src.add_argument("--camera", help="camera device (e.g. /dev/video0)")
    src.add_argument("--folder", help="folder that frames keep arriving in (ScanNet-style color/ + pose/ or flat); "
                     "also an unordered set of images or a single image")  # fmt: skip
    src.add_argument("--rig", help="camera-rig folder that frames keep arriving in (rig.json + one folder per camera)")
    p.add_argument("--min-frames", type=int, default=2, help="frames before the first update (1: a single image)")
    p.add_argument("--poses", default=None, help="--video only: .npy of [N, 4, 4] camera-to-world, one per frame")
    p.add_argument("--frames", type=int, default=None, help="window T (default: the training recipe's frame count)")
    p.add_argument("--select", choices=["last", "coverage"], default="last", help="window rule (default: last)")
    p.add_argument("--situation", default=None, help="situation of the pose estimate (default: pseudo-situation)")
    p.add_argument("--questions", default=None, help="file of question lines read as it grows, or - for stdin")
    p.add_argument("--min-interval", type=float, default=0.0, help="seconds between updates at least")
    p.add_argument("--stall-timeout", type=float, default=2.0, help="seconds without a frame before a stall event")
    p.add_argument("--idle-end", type=float, default=None, help="--folder: end after this many idle seconds")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-realtime", action="store_true", help="--video: decode as fast as possible")
    p.add_argument("--bev-dir", default=None, help="write a BEV picture per update and per answer here")
    p.add_argument("--bev", default=None, metavar="PNG",
                   help="keep the latest BEV picture (of the last update or answer) in this one PNG file")  # fmt: skip
    p.add_argument("--format", choices=["auto", "text", "json"], default="auto",
                   help="stdout: one readable line per event (text) or one JSON object per event (json); auto: "
                   "text on a terminal, json when piped")  # fmt: skip
    p.set_defaults(func=_run)


def _read_questions(path: str, session, stop, lost: list[str]) -> None:
    """Feed question lines to ``session`` as they appear (stdin, a growing file or a FIFO). A line that is not UTF-8
    text is named (file and line) in an ``error`` event and in ``lost`` (the command then exits non-zero); the
    lines after it are still read."""
    import sys
    import time

    where = "stdin" if path == "-" else path
    number = 0

    def handle(raw: bytes) -> None:
        nonlocal number
        number += 1
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            message = f"{where} line {number}: not UTF-8 text ({err.reason} at byte {err.start}); question skipped"
            lost.append(message)
            session._emit({"event": "error", "message": message})
            return
        if not line:
            return
        situation, _, question = line.lstrip("\ufeff").rpartition("|")
        session.ask(situation.strip() or None, question.strip())

    if path == "-":
        for raw in sys.stdin.buffer:
            handle(raw)
        return
    with open(path, "rb") as f:
        while not stop.is_set():
            raw = f.readline()
            if raw:
                handle(raw)
            else:
                time.sleep(0.05)


def _fmt(v, digits: int = 2) -> str:
    return "-" if v is None else ", ".join(f"{x:.{digits}f}" for x in v) if isinstance(v, list) else f"{v:.{digits}f}"


def event_line(event: dict) -> str:
    """One human-readable line for a stream event (``--format text``)."""
    kind = event.get("event")
    pose = ""
    if event.get("position") is not None:
        pose = f" at ({_fmt(event['position'])}) m, heading {_fmt(event.get('heading_deg'), 0)} deg"
    if kind == "update":
        extra = f"; {event['message']}" if event.get("message") else ""
        return (f"update: {event['frames']} frames (#{event['first_seq']}-#{event['last_seq']}, poses "
                f"{'yes' if event['poses'] else 'no'}){pose}, {event['latency_s']:.2f} s{extra}")  # fmt: skip
    if kind == "answer":
        where = f"[{event['situation']}] " if event.get("situation") else ""
        return (f"answer: {where}{event['question']} -> {event['answer']!r}{pose} "
                f"({event['frames']} frames, {event['latency_s']:.2f} s)")  # fmt: skip
    if kind == "summary":
        return (f"summary: {event['received']} frames received, {event['dropped']} dropped, {event['updates']} "
                f"updates, {event['questions']} answers, median update {_fmt(event['median_update_s'])} s"
                + (f", error: {event['error']}" if event.get("error") else ""))  # fmt: skip
    question = f" ({event['question']})" if event.get("question") else ""
    return f"{kind}{question}: {event.get('message', '')}"


def _run(args: argparse.Namespace) -> int:
    import json
    import sys
    import threading
    from pathlib import Path

    import numpy as np

    from loc3r.apps.infer import Loc3rPredictor
    from loc3r.apps.stream import CameraSource, FolderSource, LiveSession, RigFolderSource, VideoFileSource
    from loc3r.core.errors import ConfigError
    from loc3r.data.schema import SampleError

    if args.select == "coverage" and args.rig:
        raise ConfigError("--rig keeps whole time steps of every camera: use --select last")
    if args.poses and not args.video:
        raise ConfigError("--poses goes with --video (a --folder carries its poses as files)")
    if args.questions and args.questions != "-" and not Path(args.questions).is_file():
        raise ConfigError(f"{args.questions}: no such questions file")
    try:
        if args.video:
            poses = np.load(args.poses, allow_pickle=False) if args.poses else None
            source = VideoFileSource(args.video, poses=poses, realtime=not args.no_realtime)
        elif args.folder:
            source = FolderSource(args.folder, idle_end=args.idle_end)
        elif args.rig:
            source = RigFolderSource(args.rig, idle_end=args.idle_end)
        else:
            source = CameraSource(args.camera)
        predictor = Loc3rPredictor.from_pretrained(args.model, num_frames=args.frames)
    except (FileNotFoundError, SampleError, ValueError, OSError) as err:  # every problem of the inputs: one line
        raise ConfigError(str(err)) from err

    as_json = args.format == "json" or (args.format == "auto" and not sys.stdout.isatty())
    bev_dir = args.bev_dir
    scratch = None
    if args.bev:
        bev = Path(args.bev)
        if bev.is_dir() or not bev.parent.is_dir():
            raise ConfigError(f"--bev {args.bev}: must be a PNG file path in an existing folder")
        if bev_dir is None:  # pictures go to a scratch folder; only the latest is kept, at --bev
            import tempfile

            scratch = tempfile.TemporaryDirectory(prefix="loc3r-stream-bev-")
            bev_dir = scratch.name

    def emit(event: dict) -> None:
        if args.bev and event.get("bev_png"):
            import os
            import shutil

            tmp = Path(args.bev).with_name(f".{Path(args.bev).name}.tmp")
            shutil.copyfile(event["bev_png"], tmp)
            os.replace(tmp, args.bev)
            if scratch is not None:
                Path(event["bev_png"]).unlink(missing_ok=True)
                event["bev_png"] = str(args.bev)
        print(json.dumps(event) if as_json else event_line(event), flush=True)

    session = LiveSession(predictor, source, select=args.select, situation=args.situation, min_frames=args.min_frames,
                          min_interval=args.min_interval, stall_timeout=args.stall_timeout, bev_dir=bev_dir,
                          on_event=emit)  # fmt: skip
    stop = threading.Event()
    lost: list[str] = []  # question lines that could not be read (named in error events)
    reader = None
    if args.questions:
        reader = threading.Thread(target=_read_questions, args=(args.questions, session, stop, lost), daemon=True)
        reader.start()
    try:
        summary = session.run(max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        summary = session.close()
    finally:
        stop.set()
        if reader is not None and args.questions != "-":
            # A daemon thread still running when the interpreter finalises can abort the process ("terminate called
            # without an active exception", seen under CPU load); a file reader stops within one poll, so wait for it.
            reader.join(timeout=5.0)
    if scratch is not None:
        scratch.cleanup()
    if lost:
        more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
        raise SampleError(f"{len(lost)} question line(s) could not be read: {lost[0]}{more}")
    return 0 if summary["error"] is None else 2
