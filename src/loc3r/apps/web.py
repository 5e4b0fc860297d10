"""The web demo (``loc3r serve``): a Gradio page on any loc3r checkpoint directory.

What a visitor can do:

* **Video**: upload a video file, or pick a SynthRooms sample (scan folders of ``--data``; their poses are used, so
  the map shows the camera path and world coordinates), type a situation and a question, press *Ask*: the answer,
  the BEV map (per-vision-token layout points coloured by their source frame, the camera path when poses are known,
  the predicted position with its 1-σ / 2-σ uncertainty ellipses and heading), the numbers (position, heading, σ,
  orientation confidence, latency) and the sampled frames. Asking again on the same video re-uses its encoded
  video prefix (:meth:`loc3r.apps.infer.Loc3rPredictor.session`), so only the question's tokens run.
* **Webcam**: stream the browser's camera; frames feed a :class:`loc3r.apps.stream.LiveSession` (last T frames), the map
  refreshes as frames arrive and questions are answered on the latest update.

Every answer says which inputs it used (frames, poses, depth, camera prior: ``inputs`` in the details and a line in
the status box); a checkpoint with the camera prior runs on an uploaded video or the webcam without poses (its
camera tokens left out). Bad input (no video, a corrupt or unreadable file, an empty question) shows a one-line
message in the page's status box; unexpected exceptions are logged on the server and
the page says only what failed, never a stack trace.

Made to run for days: question and situation text and uploads are bounded (``max_question_chars``,
``max_upload_mb``); BEV pictures go to the page as arrays, so no file of one visitor is ever written where another
could be served it, and nothing piles up in the temporary folder; messages never show server paths (only file
names); each webcam visitor's live session (its capture thread) is closed when the visitor leaves (the page state's
``delete_callback``), after ``live_idle_s`` without a frame, or when more than ``max_live`` are open (oldest first);
:meth:`DemoBackend.close` ends everything and removes the backend's temporary folder.

Gradio is the convention of this field's demos (Hugging Face Spaces); it is an optional dependency
(``pip install "loc3r[demo]"``).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.apps.infer import describe_inputs
from loc3r.data.schema import SampleError

_log = logging.getLogger("loc3r.apps.web")

#: an absolute path inside a message: replaced by its last part (the page never shows server paths)
_ABS_PATH = re.compile(r"(?<![\w.])(?:/[^\s'\"/:,()\[\]]+)+/([^\s'\"/:,()\[\]]+)")


def public_message(text: str) -> str:
    """``text`` with every absolute path reduced to its file name (``/tmp/gradio/ab12/walk.mp4`` -> ``walk.mp4``)."""
    return _ABS_PATH.sub(r"\1", str(text))


def _read_png(path: str | Path | None) -> np.ndarray | None:
    """The picture at ``path`` as an RGB array, the file then removed (nothing of a visitor stays on disk)."""
    if not path:
        return None
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    finally:
        path.unlink(missing_ok=True)
    return array


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

    def __init__(
        self,
        model_dir: str | Path,
        data_root: str | Path | None = None,
        num_frames: int | None = None,
        *,
        max_question_chars: int = 500,
        max_upload_mb: float = 200.0,
        live_idle_s: float = 120.0,
        max_live: int = 8,
    ):
        from loc3r.apps.infer import Loc3rPredictor

        self.predictor = Loc3rPredictor.from_pretrained(model_dir, num_frames=num_frames)
        self.samples = list_samples(data_root)
        self.max_question_chars = int(max_question_chars)
        self.max_upload_mb = float(max_upload_mb)
        self.live_idle_s = float(live_idle_s)
        self.max_live = int(max_live)
        self.out_dir = Path(tempfile.mkdtemp(prefix="loc3r_web_"))
        self._lock = threading.Lock()
        self._live_lock = threading.Lock()
        self._session: Any = None
        self._session_key: tuple | None = None
        self._count = 0
        #: open webcam sessions: id -> {"live", "source", "dir", "seen"}
        self._lives: dict[str, dict[str, Any]] = {}
        self._closed = threading.Event()
        # one thread for the server's life: closes webcam sessions whose visitor went away without a word
        self._reaper = threading.Thread(target=self._reap_loop, name="loc3r-web-reaper", daemon=True)
        self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._closed.wait(max(0.2, min(5.0, self.live_idle_s / 2))):
            self.reap_live()

    def _check_text(self, situation: str | None, question: str | None) -> str:
        if not question or not question.strip():
            raise SampleError("the question is empty: type a question")
        for name, text in (("question", question), ("situation", situation or "")):
            if len(text) > self.max_question_chars:
                raise SampleError(f"the {name} has {len(text)} characters; the limit is {self.max_question_chars}")
        return question.strip()

    # ------------------------------------------------------------------------------------------------ video
    def _source(self, video_path: str | None, sample: str | None) -> tuple[Path, tuple]:
        if video_path:
            path = Path(video_path)
            if not path.is_file():
                raise SampleError(f"the uploaded video {path.name} was not received; upload it again")
            megabytes = path.stat().st_size / 2**20
            if megabytes > self.max_upload_mb:
                raise SampleError(f"the video is {megabytes:.0f} MB; the limit is {self.max_upload_mb:g} MB")
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
            question = self._check_text(situation, question)
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
                result = session.ask(situation, question, bev_png=png)
                bev = _read_png(result.bev_png_path)
                seconds = time.perf_counter() - t0
        except (SampleError, FileNotFoundError, ValueError) as err:
            return {"status": f"Error: {public_message(err)}", "answer": "", "bev": None, "details": {}, "frames": []}
        except Exception as err:  # never a stack trace on the page; the server log has it
            _log.exception("web demo: ask failed")
            return {"status": f"Error: the model failed on this input ({type(err).__name__})", "answer": "",
                    "bev": None, "details": {}, "frames": []}  # fmt: skip
        details = {k: v for k, v in result.to_dict().items() if k not in ("bev_png_path", "seconds", "answer")}
        details["frame_problems"] = [  # file names only, never server paths
            {k: public_message(v) if isinstance(v, str) else v for k, v in p.items()}
            for p in details.get("frame_problems") or []
        ]
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
        return {"status": status, "answer": result.answer or "", "bev": bev, "details": details,
                "frames": frames}  # fmt: skip

    # ------------------------------------------------------------------------------------------------ webcam
    def _open_live(self, state: dict | None) -> dict[str, Any]:
        """The visitor's live session (by the id in its page state), opened when there is none; idle ones are
        closed first, and the oldest when ``max_live`` are open."""
        from loc3r.apps.stream import LiveSession, PushSource

        self.reap_live()
        key = (state or {}).get("id")
        with self._live_lock:
            entry = self._lives.get(key) if key else None
            if entry is None:
                idle = [k for k, e in self._lives.items() if not e["busy"]]
                while len(self._lives) >= self.max_live and idle:  # the oldest idle one gives way
                    oldest = min(idle, key=lambda k: self._lives[k]["seen"])
                    idle.remove(oldest)
                    self._close_live_locked(oldest)
                key = uuid.uuid4().hex
                source = PushSource()
                bev_dir = self.out_dir / f"live-{key}"
                live = LiveSession(self.predictor, source, min_frames=2, bev_dir=bev_dir).start()
                entry = {"id": key, "live": live, "source": source, "dir": bev_dir, "seen": time.monotonic(), "busy": 0}
                self._lives[key] = entry
            entry["seen"] = time.monotonic()
            entry["busy"] += 1  # a call is using it: never reaped under it (the caller calls _release)
            return entry

    def _release(self, entry: dict[str, Any]) -> None:
        with self._live_lock:
            entry["busy"] -= 1
            entry["seen"] = time.monotonic()

    def _close_live_locked(self, key: str) -> None:
        entry = self._lives.pop(key, None)
        if entry is None:
            return
        entry["source"].close()
        entry["live"].on_event = lambda e: None
        entry["live"].close()
        shutil.rmtree(entry["dir"], ignore_errors=True)

    def close_live(self, state: dict | None) -> None:
        """End a visitor's live session (its capture thread) and remove its files; the page calls this when the
        visitor leaves (``gr.State(delete_callback=...)``)."""
        key = (state or {}).get("id")
        if key:
            with self._live_lock:
                self._close_live_locked(key)

    def reap_live(self) -> int:
        """Close the live sessions without a frame for ``live_idle_s``; returns how many."""
        now = time.monotonic()
        with self._live_lock:
            idle = [k for k, e in self._lives.items() if not e["busy"] and now - e["seen"] > self.live_idle_s]
            for key in idle:
                self._close_live_locked(key)
        return len(idle)

    @property
    def live_sessions(self) -> int:
        return len(self._lives)

    def close(self) -> None:
        """Close every live session and remove the backend's temporary folder."""
        self._closed.set()
        with self._live_lock:
            for key in list(self._lives):
                self._close_live_locked(key)
        shutil.rmtree(self.out_dir, ignore_errors=True)

    def webcam_frame(self, state: dict | None, image: np.ndarray | None) -> tuple[dict, np.ndarray | None, str]:
        """Push one webcam frame into the visitor's live session; ``(state, latest BEV picture, status)``."""
        if image is None:
            return state or {}, None, "waiting for the webcam"
        entry = self._open_live(state)
        try:
            return self._webcam_frame(entry, image)
        finally:
            self._release(entry)

    def _webcam_frame(self, entry: dict[str, Any], image: np.ndarray) -> tuple[dict, np.ndarray | None, str]:
        state = {"id": entry["id"]}
        live, source = entry["live"], entry["source"]
        source.push(np.asarray(image, dtype=np.uint8)[..., :3], name="webcam")
        deadline = time.monotonic() + 1.0  # let the capture thread take the frame (it never waits for the model)
        while live.counts["received"] < source.pushed and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._lock:
            live.step()
        latest = live.latest
        if latest is None:
            return state, None, f"collecting frames ({live.counts['received']} received)"
        inputs = latest.get("inputs", {})
        if latest.get("bev_png"):
            entry["bev"] = _read_png(latest.pop("bev_png"))
        status = (
            f"{latest['frames']} frames, update {latest['latency_s']:.2f} s, received {live.counts['received']}, "
            f"dropped {live.dropped}; poses: {inputs.get('poses')}, camera prior: {inputs.get('camera_prior')}"
        )
        return state, entry.get("bev"), status

    def webcam_ask(
        self, state: dict | None, situation: str | None, question: str | None
    ) -> tuple[str, np.ndarray | None]:
        try:
            question = self._check_text(situation, question)
        except SampleError as err:
            return f"Error: {err}", None
        with self._live_lock:
            entry = self._lives.get((state or {}).get("id") or "")
            if entry is not None:
                entry["busy"] += 1
        if entry is None:
            return "Error: no webcam frames yet: start the webcam first", None
        try:
            return self._webcam_ask(entry, situation, question)
        finally:
            self._release(entry)

    def _webcam_ask(self, entry: dict[str, Any], situation: str | None, question: str) -> tuple[str, np.ndarray | None]:
        if entry["live"].session is None:
            return "Error: no webcam frames yet: start the webcam first", None
        live = entry["live"]
        q = live.ask(situation, question)
        deadline = time.monotonic() + 30
        while not q.done.is_set() and time.monotonic() < deadline:  # a window still filling: answered once full,
            with self._lock:  # or when the webcam stops (stall)
                live.step()
            q.done.wait(timeout=0.05)
        event = q.event or {"event": "error", "message": "no answer in 30 s"}
        if event["event"] != "answer":
            return f"Error: {public_message(event.get('message'))}", None
        bev = _read_png(event.get("bev_png"))
        return f"{event['answer']}  (position {event['position']}, heading {event['heading_deg']} deg, " \
               f"{event['latency_s']:.2f} s)", bev  # fmt: skip


def build_app(backend: DemoBackend, cache_ttl_s: int = 3600) -> Any:
    """The Gradio Blocks page (elements carry ``elem_id``s the browser test uses); Gradio's own cache (uploads,
    pictures sent to the page) is purged of files older than ``cache_ttl_s`` seconds."""
    import gradio as gr

    names = sorted(backend.samples)
    ttl = max(1, int(cache_ttl_s))
    with gr.Blocks(title="loc3r demo", delete_cache=(max(1, min(600, ttl // 2)), ttl)) as app:
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
                    bev = gr.Image(label="BEV map", type="numpy", interactive=False, elem_id="bev")
                    details = gr.JSON(label="Pose, uncertainty, latency", elem_id="details")
            frames = gr.Gallery(label="Sampled frames (the map colours layout points by these)", columns=8,
                                elem_id="frames")  # fmt: skip

            def on_ask(v: str | None, s: str | None, sit: str | None, q: str | None):
                out = backend.ask(v, s, sit, q)
                return out["status"], out["answer"], out["bev"], out["details"], out["frames"]

            inputs, outputs = [video, sample, situation, question], [status, answer, bev, details, frames]
            ask.click(on_ask, inputs, outputs, api_name="ask")
            question.submit(on_ask, inputs, outputs, api_name=False)
        with gr.Tab("Webcam"):
            # the visitor's live session is closed when the visitor leaves (or the state expires)
            state = gr.State(None, time_to_live=max(60.0, backend.live_idle_s), delete_callback=backend.close_live)
            with gr.Row():
                with gr.Column():
                    cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="cam")
                    live_situation = gr.Textbox(label="Situation", elem_id="live_situation")
                    live_question = gr.Textbox(label="Question", elem_id="live_question")
                    live_ask = gr.Button("Ask", elem_id="live_ask")
                with gr.Column():
                    live_status = gr.Textbox(label="Live status", interactive=False, elem_id="live_status")
                    live_answer = gr.Textbox(label="Answer", interactive=False, elem_id="live_answer")
                    live_bev = gr.Image(label="Live BEV map", type="numpy", interactive=False, elem_id="live_bev")
            cam.stream(backend.webcam_frame, [state, cam], [state, live_bev, live_status], stream_every=0.5,
                       api_name="webcam_frame")  # fmt: skip
            # the same, one frame per call, for HTTP API clients (a robot, the soak test): /push_frame
            push = gr.Button(visible=False, elem_id="push_frame")
            push.click(backend.webcam_frame, [state, cam], [state, live_bev, live_status], api_name="push_frame")
            live_ask.click(backend.webcam_ask, [state, live_situation, live_question], [live_answer, live_bev],
                           api_name="webcam_ask")  # fmt: skip
    return app
