"""The web demo (``loc3r serve``): a Gradio page on any loc3r checkpoint directory.

What a visitor can do:

* **Video**: upload a video file, or pick a SynthRooms sample (scan folders of ``--data``; their poses are used, so
  the map shows the camera path and world coordinates), type a situation and a question, press *Ask*: the answer,
  the BEV map (per-vision-token layout points coloured by their source frame, the camera path when poses are known,
  the predicted position with its 1-σ / 2-σ uncertainty ellipses and heading), the numbers (position, heading, σ,
  orientation confidence, latency) and the sampled frames. Asking again on the same video re-uses its encoded
  video prefix (:meth:`loc3r.infer.Loc3rPredictor.session`), so only the question's tokens run.
* **Webcam**: stream the browser's camera; frames feed a :class:`loc3r.stream.LiveSession` (last T frames), the map
  refreshes as frames arrive and questions are answered on the latest update.

Every answer says which inputs it used (frames, poses, depth, camera prior: ``inputs`` in the details and a line in
the status box); a checkpoint with the camera prior runs on an uploaded video or the webcam without poses (its
camera tokens left out). Bad input (no video, a corrupt or unreadable file, an empty question) shows a one-line
message in the page's status box; unexpected exceptions are logged on the server and
the page says only what failed, never a stack trace.

Gradio is the convention of this field's demos (Hugging Face Spaces); it is an optional dependency
(``pip install "loc3r[demo]"``).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.data.schema import SampleError
from loc3r.infer import describe_inputs

__all__ = ["build_app", "DemoBackend", "list_samples"]

_log = logging.getLogger("loc3r.web")


def list_samples(data_root: str | Path | None) -> dict[str, Path]:
    """``{name: scan folder}`` of a SynthRooms / ScanNet-style root (``scans/<id>/color`` + ``pose``), sorted."""
    if data_root is None:
        return {}
    root = Path(data_root)
    scans = root / "scans" if (root / "scans").is_dir() else root
    if not scans.is_dir():
        raise FileNotFoundError(f"{root}: no such data folder")
    return {
        p.name: p for p in sorted(scans.iterdir()) if p.is_dir() and (p / "color").is_dir() and (p / "pose").is_dir()
    }


class DemoBackend:
    """Everything the page calls, without Gradio (tested directly and through the browser).

    One predictor per server; the latest encoded video is kept (``PredictorSession``), keyed by its source, so
    several questions on one video encode it once. Calls are serialised by a lock (one model, CPU or one GPU).
    """

    def __init__(self, model_dir: str | Path, data_root: str | Path | None = None, num_frames: int | None = None):
        from loc3r.infer import Loc3rPredictor

        self.predictor = Loc3rPredictor.from_pretrained(model_dir, num_frames=num_frames)
        self.samples = list_samples(data_root)
        self.out_dir = Path(tempfile.mkdtemp(prefix="loc3r_web_"))
        self._lock = threading.Lock()
        self._session: Any = None
        self._session_key: tuple | None = None
        self._count = 0

    # ------------------------------------------------------------------------------------------------ video
    def _source(self, video_path: str | None, sample: str | None) -> tuple[Path, tuple]:
        if video_path:
            path = Path(video_path)
            if not path.is_file():
                raise SampleError(f"the uploaded video {path.name} was not received; upload it again")
            return path, ("file", str(path), path.stat().st_mtime_ns, path.stat().st_size)
        if sample:
            if sample not in self.samples:
                raise SampleError(f"unknown sample {sample!r}")
            return self.samples[sample], ("sample", sample)
        raise SampleError("no video: upload a video file or pick a SynthRooms sample")

    def ask(self, video_path: str | None, sample: str | None, situation: str | None, question: str | None) -> dict:
        """Answer one question; returns ``{"status", "answer", "bev", "details", "frames"}`` (errors in
        ``status`` only)."""
        try:
            if not question or not question.strip():
                raise SampleError("the question is empty: type a question")
            path, key = self._source(video_path, sample)
            with self._lock:
                t0 = time.perf_counter()
                reused = self._session is not None and self._session_key == key
                if not reused:
                    self._session, self._session_key = None, None
                    self._session = self.predictor.session(path)
                    self._session_key = key
                session = self._session
                self._count += 1
                png = self.out_dir / f"bev-{self._count:05d}.png"
                result = session.ask(situation, question.strip(), bev_png=png)
                seconds = time.perf_counter() - t0
        except (SampleError, FileNotFoundError, ValueError) as err:
            return {"status": f"Error: {err}", "answer": "", "bev": None, "details": {}, "frames": []}
        except Exception as err:  # never a stack trace on the page; the server log has it
            _log.exception("web demo: ask failed")
            return {"status": f"Error: the model failed on this input ({type(err).__name__})", "answer": "",
                    "bev": None, "details": {}, "frames": []}  # fmt: skip
        details = {k: v for k, v in result.to_dict().items() if k not in ("bev_png_path", "seconds", "answer")}
        details.update(
            seconds_total=round(seconds, 3),
            seconds_question=round(result.seconds, 3),
            video_encoded=("re-used (cached prefix)" if reused else f"now ({session.encode_seconds:.3f} s)"),
            frames=int(session.frames.shape[0]),
            layout_points=0 if session.layout[0] is None else int(session.layout[0].shape[0]),
            poses="from the scan" if session.poses is not None else "none (BEV frame of the first frame)",
        )
        frames = [(f, f"frame {i}") for i, f in enumerate(session.frames)]
        status = f"OK: answered in {seconds:.2f} s" + (" (video prefix re-used)" if reused else "")
        status += f"; inputs: {describe_inputs(result.inputs)}"
        return {"status": status, "answer": result.answer or "", "bev": result.bev_png_path, "details": details,
                "frames": frames}  # fmt: skip

    # ------------------------------------------------------------------------------------------------ webcam
    def webcam_frame(self, state: dict | None, image: np.ndarray | None) -> tuple[dict, str | None, str]:
        """Push one webcam frame into the visitor's live session; ``(state, latest BEV png, status)``."""
        from loc3r.stream import LiveSession, PushSource

        state = state or {}
        if image is None:
            return state, None, "waiting for the webcam"
        live = state.get("live")
        if live is None:
            source = PushSource()
            bev_dir = self.out_dir / f"live-{id(source)}"
            live = LiveSession(self.predictor, source, min_frames=2, bev_dir=bev_dir).start()
            state = {"live": live, "source": source}
        state["source"].push(np.asarray(image, dtype=np.uint8)[..., :3], name="webcam")
        deadline = time.monotonic() + 1.0  # let the capture thread take the frame (it never waits for the model)
        while live.counts["received"] < state["source"].pushed and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._lock:
            live.step()
        latest = live.latest
        if latest is None:
            return state, None, f"collecting frames ({live.counts['received']} received)"
        inputs = latest.get("inputs", {})
        return (
            state,
            latest.get("bev_png"),
            (
                f"{latest['frames']} frames, update {latest['latency_s']:.2f} s, received {live.counts['received']}, "
                f"dropped {live.dropped}; poses: {inputs.get('poses')}, camera prior: {inputs.get('camera_prior')}"
            ),
        )

    def webcam_ask(self, state: dict | None, situation: str | None, question: str | None) -> tuple[str, str | None]:
        if not question or not question.strip():
            return "Error: the question is empty: type a question", None
        live = (state or {}).get("live")
        if live is None or live.session is None:
            return "Error: no webcam frames yet: start the webcam first", None
        q = live.ask(situation, question.strip())
        with self._lock:
            live.step()
        q.done.wait(timeout=30)
        event = q.event or {"event": "error", "message": "no answer in 30 s"}
        if event["event"] != "answer":
            return f"Error: {event.get('message')}", None
        return f"{event['answer']}  (position {event['position']}, heading {event['heading_deg']} deg, " \
               f"{event['latency_s']:.2f} s)", event.get("bev_png")  # fmt: skip


def build_app(backend: DemoBackend) -> Any:
    """The Gradio Blocks page (elements carry ``elem_id``s the browser test uses)."""
    import gradio as gr

    names = sorted(backend.samples)
    with gr.Blocks(title="loc3r demo") as app:
        gr.Markdown(
            "# loc3r: where am I, and what is around me?\n"
            "Give a video (upload, or a SynthRooms sample with its camera poses), describe where you are and ask "
            "a question. The map shows the model's layout of the room (one point per vision token, coloured by "
            "frame), the camera path when poses are known, and the predicted position with its uncertainty "
            "ellipses and heading."
        )
        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column():
                    video = gr.Video(label="Video file", sources=["upload"], elem_id="video")
                    sample = gr.Dropdown(choices=names, value=None, label="or a SynthRooms sample",
                                         elem_id="sample", allow_custom_value=False)  # fmt: skip
                    situation = gr.Textbox(label="Situation", placeholder="I am sitting on the bed facing the window.",
                                           elem_id="situation")  # fmt: skip
                    question = gr.Textbox(label="Question", placeholder="What is on my left?", elem_id="question")
                    ask = gr.Button("Ask", variant="primary", elem_id="ask")
                with gr.Column():
                    status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                    answer = gr.Textbox(label="Answer", interactive=False, elem_id="answer")
                    bev = gr.Image(label="BEV map", type="filepath", interactive=False, elem_id="bev")
                    details = gr.JSON(label="Pose, uncertainty, latency", elem_id="details")
            frames = gr.Gallery(label="Sampled frames (the map colours layout points by these)", columns=8,
                                elem_id="frames")  # fmt: skip

            def on_ask(v: str | None, s: str | None, sit: str | None, q: str | None):
                out = backend.ask(v, s, sit, q)
                return out["status"], out["answer"], out["bev"], out["details"], out["frames"]

            ask.click(on_ask, [video, sample, situation, question], [status, answer, bev, details, frames])
            question.submit(on_ask, [video, sample, situation, question], [status, answer, bev, details, frames])
        with gr.Tab("Webcam"):
            state = gr.State(None)
            with gr.Row():
                with gr.Column():
                    cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="cam")
                    live_situation = gr.Textbox(label="Situation", elem_id="live_situation")
                    live_question = gr.Textbox(label="Question", elem_id="live_question")
                    live_ask = gr.Button("Ask", elem_id="live_ask")
                with gr.Column():
                    live_status = gr.Textbox(label="Live status", interactive=False, elem_id="live_status")
                    live_answer = gr.Textbox(label="Answer", interactive=False, elem_id="live_answer")
                    live_bev = gr.Image(label="Live BEV map", type="filepath", interactive=False, elem_id="live_bev")
            cam.stream(backend.webcam_frame, [state, cam], [state, live_bev, live_status], stream_every=0.5)
            live_ask.click(backend.webcam_ask, [state, live_situation, live_question], [live_answer, live_bev])
    return app
