"""Benchmarks on streamed video: a long video pushed through ``loc3r stream``'s live session and answered at given
times (VSI-SUPER streaming counting, :class:`~loc3r.benchmarks.vsisuper.task.VSICountStreamingTask`).

``loc3r eval --config configs/paper/eval/vsisuper_count_streaming.yaml`` passes :func:`stream_counts` to the runner
(:func:`loc3r.evaluate.runner.evaluate`, ``stream_predict``): the evaluation layer cannot import this one. For one
sample (a video, its query times and its prompted question) it drives the very machinery of ``loc3r stream``:

1. a :class:`~loc3r.apps.stream.LiveSession` on a :class:`~loc3r.apps.stream.PushSource`, window ``num_frames`` with the
   config's rule (``data.options.stream_select``: ``last`` | ``coverage``), ``min_frames=1``, no timed updates
   (``min_interval=inf``: the driver says when to encode, so the result does not depend on the machine's speed);
2. the video is decoded once, sequentially, keeping the first frame at or after each whole second (1 fps, the
   frame of second ``k`` — Cambrian-S samples its streams at 1 fps and asks after frame index ``t``); each kept
   frame is pushed, and once the capture thread has taken it the session steps (the frame enters the window by the
   window rule; a frame that leaves the window unused is counted as dropped, as live);
3. at each query time ``t``, right after the frame of second ``floor(t)``: :meth:`LiveSession.update` encodes the
   current window and the question is asked (:meth:`LiveSession.ask`) and answered from that update's cached
   prefix — exactly what a user typing the question into ``loc3r stream --video V --questions -`` at that moment
   of the video would get, minus the timing noise.

A video that ends before a query time, or an update / answer that fails, is a :class:`SampleError` naming the
video (the runner lists the sample as skipped, with the reason).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.data.schema import SampleError


@dataclass
class StreamedAnswers:
    """The answers of one streamed video, one per query time, with what each was computed from."""

    answers: list[str]
    times: list[float]
    frames_pushed: int = 0
    windows: list[tuple[int, int]] = field(default_factory=list)  # (first, last) frame (second) of each update
    dropped: int = 0

    @property
    def answer(self) -> str:  # a record's text field, for tools that print one answer
        return " | ".join(self.answers)


def frames_per_second(path: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """``(second, RGB frame)`` for each whole second of a video: the first decoded frame whose presentation time is
    at or after that second (a second with no frame is skipped). Decodes sequentially, holding one frame."""
    from loc3r.apps.stream import decoded_frames

    next_second = 0
    for index, at, rate, frame in decoded_frames(Path(path)):
        t = at if at is not None else (index / rate if rate else float(index))
        if t + 1e-6 >= next_second:
            second = int(math.floor(t + 1e-6))
            yield second, frame.to_ndarray(format="rgb24")
            next_second = second + 1


def _wait_taken(session: Any, source: Any, timeout: float = 60.0) -> None:
    """Block until the capture thread has taken every pushed frame (or the source failed)."""
    t0 = time.monotonic()
    while session.counts["received"] < source.pushed and not session.ended:
        if time.monotonic() - t0 > timeout:
            raise SampleError(f"the stream's capture thread took no frame for {timeout:.0f} s")
        time.sleep(0.0005)


#: seconds one streamed question may take before the sample fails (instead of waiting forever)
ANSWER_TIMEOUT_S = 600.0


def stream_answers(
    model: Any,
    video: str | Path,
    question: str,
    query_times: list[float],
    num_frames: int,
    select: str = "last",
    max_new_tokens: int = 16,
) -> StreamedAnswers:
    """Push ``video`` at 1 fps through a :class:`~loc3r.apps.stream.LiveSession` and ask ``question`` at each of
    ``query_times`` (seconds, increasing); see the module docstring."""
    from loc3r.apps.infer import Loc3rPredictor
    from loc3r.apps.stream import LiveSession, PushSource

    errors: list[str] = []
    predictor = Loc3rPredictor(model, num_frames=num_frames)
    source = PushSource()
    session = LiveSession(
        predictor, source, window=num_frames, select=select, min_frames=1, min_interval=math.inf,
        stall_timeout=math.inf, buffer=4096, max_new_tokens=max_new_tokens, wait_full_window=False,
        on_event=lambda e: errors.append(str(e.get("message"))) if e.get("event") == "error" else None,
    )  # fmt: skip
    pending = sorted(float(t) for t in query_times)
    out = StreamedAnswers(answers=[], times=[])
    last_second = -1
    session.start()
    try:
        for second, image in frames_per_second(video):
            source.push(image, None, name=f"{Path(video).name}@{second}s")
            out.frames_pushed += 1
            last_second = second
            _wait_taken(session, source)
            session.step()  # the frame enters the window (no update: min_interval is infinite)
            while pending and math.floor(pending[0]) <= second:
                t = pending.pop(0)
                update = session.update()
                if update is None:
                    raise SampleError(f"{video}: update at {t:g} s failed: {'; '.join(errors) or 'no frames'}")
                out.windows.append((int(update["first_seq"]), int(update["last_seq"])))
                q = session.ask(None, question)
                deadline = time.monotonic() + ANSWER_TIMEOUT_S
                while not q.done.is_set():
                    if time.monotonic() > deadline:  # never hang an evaluation on one question
                        raise SampleError(f"{video}: no answer at {t:g} s within {ANSWER_TIMEOUT_S:g} s")
                    session.step()
                if q.event is None or q.event.get("event") != "answer":
                    raise SampleError(f"{video}: question at {t:g} s failed: {(q.event or {}).get('message')}")
                out.answers.append(str(q.event["answer"]))
                out.times.append(t)
            if not pending:
                break
    finally:
        source.close()
        summary = session.close()
    if errors and not out.answers:
        raise SampleError(f"{video}: {errors[0]}")
    if pending:
        raise SampleError(f"{video}: the video ends at {last_second} s, before query time(s) {pending}")
    out.dropped = int(summary.get("dropped") or 0)
    return out


def stream_counts(model: Any, sample: Any, config: Any, max_new_tokens: int) -> StreamedAnswers:
    """The runner's ``stream_predict`` for VSI-SUPER streaming counting: :func:`stream_answers` on the sample's video
    (``meta['video_path']``), query times and prompted question, window ``config.num_frames``."""
    meta = sample.meta
    if not meta.get("streamed") or not meta.get("query_times"):
        raise SampleError(f"sample {sample.sample_id!r}: not a streamed sample (meta['query_times'] is missing)")
    select = (config.data.options or {}).get("stream_select", "last")
    return stream_answers(model, meta["video_path"], sample.question, list(meta["query_times"]),
                          int(config.num_frames), select=select, max_new_tokens=max_new_tokens)  # fmt: skip
