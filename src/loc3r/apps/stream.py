"""Live inference on a continuous camera stream (``loc3r stream``; the web demo's webcam mode uses the same class).

A **source** (a video file played at its own frame rate, a camera device, a folder that frames keep arriving in, or
frames pushed from code) runs in its own thread and only ever appends to a bounded buffer: the capture never waits
for the model. The **model loop** (:meth:`LiveSession.step` / :meth:`LiveSession.run`) takes the new frames, keeps
a window of at most ``T`` of them, and whenever the window changed and ``min_interval`` passed it **updates**: one
:class:`~loc3r.apps.infer.PredictorSession` on the window (frames + video prefix of the prompt run once), which
refreshes
the per-token BEV layout map and the pose estimate for the current situation. **Questions** (typed on stdin, appended
to a file, or :meth:`LiveSession.ask` from code) are answered at any time from the current update's cached prefix,
so a question costs only its own text tokens.

Window selection (``select``):

* ``"last"``: the last ``T`` frames;
* ``"coverage"``: coverage-aware key frames (the paper's stated limit is a fixed 32 uniform frames, which leaves
  blind spots in large scenes): a new frame always enters; when the window is full, the most redundant older frame
  leaves — the one closest to its nearest neighbour in the window, by camera pose (metres + radians of viewing
  direction) when every frame has a pose, else by a 16x16 grey thumbnail difference. So a camera that keeps looking
  at one corner does not push out the rest of the room.

Counted: frames received, frames dropped (left the buffer or the window before any update used them — the price of
never blocking the capture), frames resized (a frame whose size differs from the stream's first frame is resized to
it), frames without pose. Latency: seconds per update (encode + pose read-out) and per question (answer time and
the wait from asking to answering).

What is re-used between updates: the loaded model and processor, and within an update the KV prefix for every
question. What is not: the LLM's KV cache of the previous window — every prompt token attends to the first frames
of the window and the BEV anchor is the window's first frame, so once the window slides every key/value changes;
the vision tower's per-frame features would survive a slide (they depend on their own frames only) but Qwen2.5-VL
pairs consecutive frames into one temporal patch, so they survive only slides by an even number of frames (not
implemented; the vision tower is a small part of an update next to the LLM on thousands of tokens).

Bad input never stops the loop: a stalled source is reported (``stall`` event) and the loop keeps waiting, an ended
source is reported (``ended``) and pending questions are still answered, a frame of another size is resized, a frame
without pose makes the update pose-free (BEV frame only, and a checkpoint's camera prior runs without its tokens) —
except that a checkpoint with the camera prior from poses skips pose-less frames once the stream has given a pose
(a stream that never gives one, a plain RGB video or webcam, runs pose-free); each is an event with a message.
``update`` and ``answer`` events say which inputs they used (``inputs``: frames, poses, depth, camera prior).
"""

from __future__ import annotations

import collections
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.data.schema import SampleError

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class StreamFrame:
    """One captured frame: arrival order ``seq``, capture time (seconds, monotonic), RGB, optional camera-to-world
    pose (OpenCV axes, z up) and whether any update has used it yet."""

    seq: int
    time: float
    image: np.ndarray
    pose: np.ndarray | None = None
    used: bool = False
    name: str = ""


# ---------------------------------------------------------------------------------------------------- sources
class FrameSource:
    """A live source: :meth:`frames` yields ``(image [H, W, 3] uint8, pose [4, 4] | None, name)`` as they arrive.

    It runs in the capture thread; ``stop`` is set when the session ends. Errors are reported, not raised, by
    :class:`LiveSession` (the source then counts as ended).
    """

    description = "source"

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        raise NotImplementedError


def decoded_frames(path: Path) -> Iterator[tuple[int, float | None, float | None, Any]]:
    """``(index, presentation time | None, the stream's average frame rate | None, PyAV frame)`` of every frame of a
    video file, decoded one at a time; a file FFmpeg cannot decode is a :class:`SampleError` naming it."""
    import av

    from loc3r.data.video import open_video

    container = open_video(path, None)
    try:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else None
        for index, frame in enumerate(container.decode(stream)):
            yield index, frame.time, rate, frame
    except av.error.FFmpegError as err:
        raise SampleError(f"{path}: cannot decode video ({err})") from err
    finally:
        container.close()


class VideoFileSource(FrameSource):
    """A video file played at its own frame rate (``realtime=False``: as fast as it decodes). ``poses[i]`` is the
    pose of decoded frame ``i`` (frames past the end of ``poses`` or with non-finite rows have none)."""

    def __init__(self, path: str | Path, poses: Any = None, realtime: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file")
        self.poses = None if poses is None else np.asarray(poses, dtype=np.float64)
        if self.poses is not None and (self.poses.ndim != 3 or self.poses.shape[1:] != (4, 4)):
            raise SampleError(f"{self.path}: poses must be [N, 4, 4] camera-to-world, got shape {self.poses.shape}")
        self.realtime = realtime
        self.description = f"video file {self.path}"

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        start = time.monotonic()
        for i, at, rate, frame in decoded_frames(self.path):
            if stop.is_set():
                return
            if self.realtime:  # the frame's presentation time, else its index at the stream's rate (else 30 fps)
                delay = start + (float(at) if at is not None else i / (rate or 30.0)) - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
            pose = None
            if self.poses is not None and i < len(self.poses) and np.isfinite(self.poses[i]).all():
                pose = self.poses[i]
            yield frame.to_ndarray(format="rgb24"), pose, f"{self.path.name}#{i}"


class CameraSource(FrameSource):
    """A camera device read through FFmpeg (``/dev/video0`` with ``format="v4l2"`` on Linux; ``avfoundation`` /
    ``dshow`` elsewhere). Not exercised by the tests: the CI and dev machines have no camera."""

    def __init__(self, device: str, format: str | None = None, options: dict[str, str] | None = None) -> None:
        self.device = device
        self.format = format or ("v4l2" if sys.platform.startswith("linux") else None)
        self.options = options or {}
        self.description = f"camera {device}"

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        import av

        try:
            container = av.open(self.device, format=self.format, options=self.options)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise SampleError(f"{self.device}: cannot open camera ({err})") from err
        try:
            for i, frame in enumerate(container.decode(video=0)):
                if stop.is_set():
                    return
                yield frame.to_ndarray(format="rgb24"), None, f"{self.device}#{i}"
        finally:
            container.close()


def _read_pose(path: Path, what: str, frame: str, owner: str, messages: list[str]) -> np.ndarray | None:
    """A finite 4x4 pose from a text file, or None with a message naming the file (``what``: "pose file" / "rig
    pose", ``frame``: what the pose maps, ``owner``: the frame or time step that then has no pose)."""
    try:
        pose = np.loadtxt(path, dtype=np.float64)
    except (ValueError, OSError) as err:
        messages.append(f"{path}: {what} unreadable ({err}); {owner} has no pose")
        return None
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        kind = "pose" if what == "pose file" else what
        messages.append(f"{path}: {kind} must be a finite 4x4 {frame}, got shape {pose.shape}; {owner} has no pose")
        return None
    return pose


class FolderSource(FrameSource):
    """A folder that image files keep arriving in, taken in name order; polled every ``poll`` seconds.

    Poses: a ScanNet-style folder (``color/<name>.jpg`` + ``pose/<name>.txt``, what ``loc3r synth`` writes) or a flat
    folder with ``<name>.txt`` (4x4 camera-to-world) next to ``<name>.png``; a frame without a readable pose file has
    no pose. A file that cannot be read yet (still being written) is retried on the next poll, up to 3 times.
    ``idle_end``: seconds without a new file after which the source counts as ended (None: never; a live folder).
    """

    def __init__(self, path: str | Path, poll: float = 0.1, idle_end: float | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such frame folder")
        scannet = (self.path / "color").is_dir()
        self.images = self.path / "color" if scannet else self.path
        self.pose_dir = self.path / "pose" if scannet else self.path
        self.poll = poll
        self.idle_end = idle_end
        self.description = f"frame folder {self.path}"
        #: what the source skipped (a broken image, an unreadable pose file), emitted by the session as warnings
        self.messages: list[str] = []
        self.skipped: list[str] = []  # image files skipped as unreadable

    def _pose(self, image: Path) -> np.ndarray | None:
        path = self.pose_dir / f"{image.stem}.txt"
        if not path.is_file():
            return None
        return _read_pose(path, "pose file", "camera-to-world", f"frame {image.name}", self.messages)

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        from loc3r.data.video import read_rgb

        seen: set[str] = set()
        failures: collections.Counter[str] = collections.Counter()
        last_new = time.monotonic()
        while not stop.is_set():
            new = sorted(p for p in self.images.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.name not in seen)
            for path in new:
                try:
                    image = read_rgb(path, record=path.name)
                except SampleError as err:
                    failures[path.name] += 1
                    if failures[path.name] >= 3:  # a broken file, not one still being written: skipped, named
                        seen.add(path.name)
                        self.skipped.append(str(path))
                        self.messages.append(f"{err}; frame skipped (unreadable after 3 tries)")
                        continue
                    break  # keep name order: retry this file on the next poll
                seen.add(path.name)
                last_new = time.monotonic()
                yield image, self._pose(path), path.name
            if self.idle_end is not None and time.monotonic() - last_new > self.idle_end:
                return
            stop.wait(self.poll)


class RigFolderSource(FrameSource):
    """A camera rig whose images keep arriving: ``rig.json`` (``{"cameras": [{"name", "extrinsic"}]}``, as for
    :func:`loc3r.apps.infer.load_rig`) and one folder per camera. A time step is a file name of camera 0 (name order)
    that every camera writes (synchronised cameras share names). A step is yielded once every camera has it, frames
    interleaved (camera 0 first), each with its pose ``rig_pose @ extrinsic`` when ``rig_pose/<name>.txt``
    (rig-to-world) exists, else none (or the extrinsic alone for ``"static": true``). A step still incomplete when
    camera 0 is ``max_lag`` steps further is skipped with a message (the cameras disagree on the frame count)."""

    def __init__(self, path: str | Path, poll: float = 0.1, idle_end: float | None = None, max_lag: int = 3) -> None:
        from loc3r.apps.infer import read_rig_spec

        self.path = Path(path)
        self.names, self.extrinsics, self.static = read_rig_spec(self.path)
        self.group = len(self.names)
        self.poll, self.idle_end, self.max_lag = poll, idle_end, max_lag
        self.messages: list[str] = []
        self.skipped: list[str] = []  # image files of time steps skipped as unreadable
        self.description = f"camera rig {self.path} ({', '.join(self.names)})"
        self._rig_poses: np.ndarray | None = None
        self._rig_poses_stamp: tuple[int, int] | None = None

    def _rig_pose(self, stem: str, step: int) -> np.ndarray | None:
        """Rig-to-world pose of a time step: ``rig_pose/<stem>.txt``, else row ``step`` of ``rig_poses.npy`` (the
        file :func:`loc3r.apps.infer.load_rig` reads; re-read when it grows), else identity for a static rig, else none.
        A pose file that cannot be used is named in a message (the step then has no pose)."""
        pose_file = self.path / "rig_pose" / f"{stem}.txt"
        if pose_file.is_file():
            return _read_pose(pose_file, "rig pose", "rig-to-world", f"time step {stem!r}", self.messages)
        npy = self.path / "rig_poses.npy"
        if npy.is_file():
            stat = npy.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._rig_poses_stamp:
                self._rig_poses_stamp = (stat.st_mtime_ns, stat.st_size)
                try:
                    arr = np.load(npy, allow_pickle=False).astype(np.float64)
                except (ValueError, OSError) as err:
                    self.messages.append(f"{npy}: rig poses unreadable ({err}); steps without rig_pose/ have no pose")
                    arr = None
                if arr is not None and (arr.ndim != 3 or arr.shape[1:] != (4, 4)):
                    self.messages.append(f"{npy}: rig poses must be [S, 4, 4] rig-to-world, got shape {arr.shape}")
                    arr = None
                self._rig_poses = arr
            arr = self._rig_poses
            if arr is not None and step < len(arr) and np.isfinite(arr[step]).all():
                return arr[step]
            if arr is not None:
                self.messages.append(f"{npy}: no finite pose for time step {step} ({stem!r}); it has no pose")
            return None
        return np.eye(4) if self.static else None

    def _files(self, name: str) -> list[Path]:
        d = self.path / name
        return sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES) if d.is_dir() else []

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        from loc3r.data.video import read_rgb

        step = 0
        failures: collections.Counter[str] = collections.Counter()
        last_new = time.monotonic()
        while not stop.is_set():
            # a time step = one file name (stem) of camera 0; synchronised cameras write the same names
            files = [{p.stem: p for p in self._files(n)} for n in self.names]
            steps = sorted(files[0])
            if step < len(steps) and all(steps[step] in f for f in files):
                stem = steps[step]
                rig_pose = self._rig_pose(stem, step)
                try:
                    images = [read_rgb(f[stem], record=f[stem].name) for f in files]
                except SampleError as err:  # a whole time step or none: the window holds whole steps
                    failures[stem] += 1
                    if failures[stem] < 3:  # maybe still being written: retry on the next poll
                        stop.wait(self.poll)
                        continue
                    self.skipped.extend(str(f[stem]) for f in files)
                    self.messages.append(f"rig step {stem!r} skipped: {err} (unreadable after 3 tries)")
                    step += 1
                    continue
                for c, image in enumerate(images):
                    pose = None if rig_pose is None else rig_pose @ self.extrinsics[c]
                    yield image, pose, f"{self.names[c]}/{files[c][stem].name}"
                step += 1
                last_new = time.monotonic()
                continue
            if len(steps) - step > self.max_lag:  # camera 0 moved on; some camera never delivered this step
                missing = [n for n, f in zip(self.names, files, strict=True) if steps[step] not in f]
                counts = {n: len(f) for n, f in zip(self.names, files, strict=True)}
                self.messages.append(f"rig step {steps[step]!r} skipped: camera(s) {missing} have no frame for it "
                                     f"(the cameras disagree on the frame count: {counts})")  # fmt: skip
                step += 1
                continue
            if self.idle_end is not None and time.monotonic() - last_new > self.idle_end:
                return
            stop.wait(self.poll)


class PushSource(FrameSource):
    """Frames handed in from code (:meth:`push`), e.g. the web demo's webcam; :meth:`close` ends the source."""

    description = "pushed frames"

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[np.ndarray, np.ndarray | None, str] | None] = queue.Queue()
        self.pushed = 0

    def push(self, image: np.ndarray, pose: np.ndarray | None = None, name: str = "") -> None:
        self._queue.put((image, pose, name))
        self.pushed += 1

    def close(self) -> None:
        self._queue.put(None)

    def frames(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is None:
                return
            yield item


# ---------------------------------------------------------------------------------------------------- window
def _pose_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Metres between camera centres + radians between viewing directions (z axes of the OpenCV camera)."""
    cos = float(np.clip(np.dot(a[:3, 2], b[:3, 2]), -1.0, 1.0))
    return float(np.linalg.norm(a[:3, 3] - b[:3, 3])) + float(np.arccos(cos))


def _thumb(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32) / 255.0


class FrameWindow:
    """At most ``size`` frames for the next update, by the ``"last"`` or ``"coverage"`` rule (module docstring).

    ``dropped``: frames that left the window before any update used them.
    """

    def __init__(self, size: int, select: str = "last") -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self.size, self.select = size, select
        self.frames: list[StreamFrame] = []
        self._thumbs: dict[int, np.ndarray] = {}
        self.dropped = 0
        self.version = 0  # bumped whenever the window changes

    def _distance(self, a: StreamFrame, b: StreamFrame) -> float:
        if a.pose is not None and b.pose is not None:
            return _pose_distance(a.pose, b.pose)
        return float(np.abs(self._thumbs[a.seq] - self._thumbs[b.seq]).mean()) * 10.0

    def add(self, frame: StreamFrame) -> None:
        self.frames.append(frame)
        self.version += 1
        if self.select == "coverage":
            self._thumbs[frame.seq] = _thumb(frame.image)
        while len(self.frames) > self.size:
            if self.select == "last":
                out = self.frames.pop(0)
            else:  # the most redundant older frame leaves (never the newest: it is the current view)
                nearest = [min(self._distance(f, g) for g in self.frames if g is not f) for f in self.frames[:-1]]
                out = self.frames.pop(int(np.argmin(nearest)))
            self._thumbs.pop(out.seq, None)
            if not out.used:
                self.dropped += 1

    def snapshot(self) -> list[StreamFrame]:
        return sorted(self.frames, key=lambda f: f.seq)  # temporal order for the model


# ---------------------------------------------------------------------------------------------------- session
@dataclass
class _Question:
    situation: str | None
    question: str
    asked: float
    done: threading.Event = field(default_factory=threading.Event)
    event: dict[str, Any] | None = None


class LiveSession:
    """The live loop on one source (see the module docstring). Events (dicts) go to ``on_event``.

    Args:
        predictor: a :class:`~loc3r.apps.infer.Loc3rPredictor`.
        source: a :class:`FrameSource`.
        window: ``T``, frames per update (default: the predictor's ``num_frames``).
        select: ``"last"`` or ``"coverage"``.
        min_frames: frames needed before the first update.
        min_interval: seconds between updates at least (the model loop never runs faster).
        situation: the situation the pose estimate of every update is for (default: the pseudo-situation);
            the last situation asked replaces it.
        stall_timeout: seconds without a frame before a ``stall`` event.
        buffer: frames the capture buffer holds; older unread frames are dropped (counted).
        bev_dir: write the BEV picture of every update there (``update-<n>.png``) and of every answer.
        wait_full_window: a question asked while the window still fills waits for a full window (or the end of the
            source, or a stall); False answers it on the frames there are (a driver that updates at fixed query
            times, such as :mod:`loc3r.apps.stream_eval`, asks on the window it chose).
    """

    def __init__(
        self,
        predictor: Any,
        source: FrameSource,
        window: int | None = None,
        select: str = "last",
        min_frames: int = 2,
        min_interval: float = 0.0,
        situation: str | None = None,
        stall_timeout: float = 2.0,
        buffer: int = 256,
        bev_dir: str | Path | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        max_new_tokens: int = 16,
        wait_full_window: bool = True,
    ) -> None:
        self.predictor = predictor
        self.source = source
        self.wait_full_window = wait_full_window
        #: frames per time step (a camera rig's N cameras): the window holds whole steps, updates wait for them
        self.group = int(getattr(source, "group", 1))
        size = window or predictor.num_frames
        if self.group > 1:  # select is "last" (``loc3r stream --rig`` refuses --select coverage)
            size = max(1, size // self.group) * self.group
            min_frames = max(min_frames, self.group)
        self.window = FrameWindow(size, select)
        self.min_frames = max(1, min(min_frames, self.window.size))
        self.min_interval = min_interval
        self.situation = situation
        self.stall_timeout = stall_timeout
        self.bev_dir = None if bev_dir is None else Path(bev_dir)
        if self.bev_dir is not None:
            self.bev_dir.mkdir(parents=True, exist_ok=True)
        self.on_event = on_event or (lambda e: None)
        self.max_new_tokens = max_new_tokens
        #: skip pose-less frames once a pose arrived: the camera prior keeps its tokens on a stream that has poses
        self.needs_poses = predictor.model.config.camera_prior == "poses"
        self._pose_seen = False
        self._buffer: collections.deque[StreamFrame] = collections.deque(maxlen=buffer)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._questions: queue.Queue[_Question] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._size: tuple[int, int] | None = None
        self._last_frame_time = time.monotonic()
        self._stalled = False
        self._ended_reported = False
        self._encoded_version = -1
        self._last_update = 0.0
        self.session: Any = None  # PredictorSession of the latest update
        self.session_frames: list[StreamFrame] = []
        self.latest: dict[str, Any] | None = None  # the latest update event
        self.counts = collections.Counter(received=0, dropped_buffer=0, resized=0, no_pose=0, skipped_no_pose=0)
        self.update_latency: list[float] = []
        self.question_latency: list[float] = []
        self.error: str | None = None

    # ------------------------------------------------------------------------------------------ capture thread
    def start(self) -> LiveSession:
        self._thread = threading.Thread(target=self._capture, name="loc3r-capture", daemon=True)
        self._thread.start()
        return self

    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("time", time.time())
        self.on_event(event)

    def _capture(self) -> None:
        seq = 0
        try:
            for image, pose, name in self.source.frames(self._stop):
                image = np.asarray(image)
                if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                    self._emit({"event": "warning", "message": f"{name}: frame must be [H, W, 3] uint8, got "
                                f"{image.shape} {image.dtype}; skipped"})  # fmt: skip
                    continue
                if self._size is None:
                    self._size = image.shape[:2]
                elif image.shape[:2] != self._size:
                    from loc3r.data.video import resize_rgb

                    if self.counts["resized"] == 0:
                        self._emit({"event": "warning", "message": f"{name}: frame size {image.shape[1]}x"
                                    f"{image.shape[0]} differs from the stream's {self._size[1]}x{self._size[0]}; "
                                    "frames of another size are resized to it (counted as 'resized')"})  # fmt: skip
                    image = resize_rgb(image, self._size)
                    self.counts["resized"] += 1
                if pose is None:
                    self.counts["no_pose"] += 1
                frame = StreamFrame(seq=seq, time=time.monotonic(), image=image, pose=pose, name=name)
                seq += 1
                with self._lock:
                    if len(self._buffer) == self._buffer.maxlen:
                        self.counts["dropped_buffer"] += 1
                    self._buffer.append(frame)
                    self.counts["received"] += 1
                    self._last_frame_time = frame.time
        except (SampleError, FileNotFoundError, OSError) as err:
            self.error = str(err)
            self._emit({"event": "error", "message": f"{self.source.description}: {err}"})
        finally:
            self._ended.set()

    # ------------------------------------------------------------------------------------------ model loop
    def ask(self, situation: str | None, question: str) -> _Question:
        """Queue a question; answered by the model loop at its next step (``q.done.wait()``, then ``q.event``)."""
        q = _Question(situation=situation.strip() if situation and situation.strip() else None,
                      question=question, asked=time.monotonic())  # fmt: skip
        self._questions.put(q)
        return q

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def _take_frames(self) -> None:
        with self._lock:
            new = list(self._buffer)
            self._buffer.clear()
        for frame in new:
            self._pose_seen = self._pose_seen or frame.pose is not None
            if self.needs_poses and frame.pose is None and self._pose_seen:
                self.counts["skipped_no_pose"] += 1
                if self.counts["skipped_no_pose"] == 1:
                    self._emit({"event": "warning", "message": f"{frame.name}: no pose, but this stream gives poses "
                                "and this checkpoint's camera prior uses one per frame; frames without pose are "
                                "skipped"})  # fmt: skip
                continue
            self.window.add(frame)

    def update(self) -> dict[str, Any] | None:
        """Encode the current window (a new :class:`~loc3r.apps.infer.PredictorSession`) and read the pose estimate."""
        frames = self.window.snapshot()
        if len(frames) < self.min_frames or len(frames) % self.group:
            return None
        t0 = time.perf_counter()
        poses = [f.pose for f in frames]
        have_poses = all(p is not None for p in poses)
        span = frames[-1].time - frames[0].time
        meta = {"sampled_fps": (len(frames) - 1) / span} if len(frames) > 1 and span > 1e-3 else {}
        images = np.stack([f.image for f in frames])
        try:
            session = self.predictor.session(images, poses=np.stack(poses) if have_poses else None, meta=meta)
            png = None if self.bev_dir is None else self.bev_dir / f"update-{len(self.update_latency):05d}.png"
            pose = session.ask(self.situation, "Where am I?", max_new_tokens=0, bev_png=png)
        except (SampleError, ValueError) as err:
            self._emit({"event": "error", "message": f"update on {len(frames)} frames failed: {err}"})
            self._encoded_version = self.window.version
            return None
        for f in frames:
            f.used = True
        self.session, self.session_frames = session, frames
        self._encoded_version = self.window.version
        self._last_update = time.monotonic()
        seconds = time.perf_counter() - t0
        self.update_latency.append(seconds)
        layout = session.layout[0]
        event = {
            "event": "update",
            "frames": len(frames),
            "first_seq": frames[0].seq,
            "last_seq": frames[-1].seq,
            "poses": have_poses,
            "inputs": session.inputs,
            "latency_s": round(seconds, 4),
            "situation": self.situation,
            **_pose_fields(pose),
            "layout_points": 0 if layout is None else int(layout.shape[0]),
            "received": self.counts["received"],
            "dropped": self.dropped,
            "bev_png": pose.bev_png_path,
        }
        if not have_poses and any(p is not None for p in poses):
            event["message"] = f"{sum(p is None for p in poses)} of {len(frames)} frames have no pose: BEV frame only"
        self.latest = event
        self._emit(event)
        return event

    @property
    def dropped(self) -> int:
        return self.counts["dropped_buffer"] + self.window.dropped

    def _answer(self, q: _Question) -> None:
        t0 = time.perf_counter()
        if q.situation is not None:
            self.situation = q.situation
        try:
            png = None if self.bev_dir is None else self.bev_dir / f"answer-{len(self.question_latency):05d}.png"
            result = self.session.ask(q.situation, q.question, max_new_tokens=self.max_new_tokens, bev_png=png)
        except (SampleError, ValueError) as err:
            q.event = {"event": "error", "question": q.question, "message": str(err)}
        else:
            seconds = time.perf_counter() - t0
            self.question_latency.append(seconds)
            q.event = {
                "event": "answer",
                "situation": q.situation,
                "question": q.question,
                "answer": result.answer,
                **_pose_fields(result),
                "inputs": result.inputs,
                "latency_s": round(seconds, 4),
                "wait_s": round(time.monotonic() - q.asked, 4),
                "frames": len(self.session_frames),
                "last_seq": self.session_frames[-1].seq,
                "bev_png": result.bev_png_path,
            }
        self._emit(q.event)
        q.done.set()

    def _answerable(self) -> bool:
        """Whether waiting questions are answered now: once an update covered a full window, or when no fuller one
        can come (the source ended with everything encoded, or it stalled). A question asked while the window
        still fills waits for it instead of being answered on the first two frames."""
        if not self.wait_full_window or len(self.session_frames) >= self.window.size or self._stalled:
            return True
        with self._lock:
            buffered = len(self._buffer)
        return self.ended and buffered == 0 and not self._update_pending()

    def _update_pending(self) -> bool:
        """The window changed since the last update and holds enough frames (whole rig steps) for one."""
        n = len(self.window.frames)
        return self.window.version != self._encoded_version and n >= self.min_frames and n % self.group == 0

    def _source_warnings(self) -> None:
        for message in list(getattr(self.source, "messages", [])):
            self.source.messages.remove(message)
            self._emit({"event": "warning", "message": message})

    def step(self) -> bool:
        """One turn of the model loop: take new frames, update when due, answer waiting questions.
        Returns False once the source has ended and everything is done."""
        self._source_warnings()
        self._take_frames()
        now = time.monotonic()
        complete = len(self.window.frames) % self.group == 0  # a rig's step is taken only once all cameras are in
        if self.window.version != self._encoded_version and complete and now - self._last_update >= self.min_interval:
            self.update()
        while self.session is not None and self._answerable():
            try:
                q = self._questions.get_nowait()
            except queue.Empty:
                break
            self._answer(q)
        with self._lock:
            idle = time.monotonic() - self._last_frame_time
            buffered = len(self._buffer)
        if self.ended:
            if not self._ended_reported:
                self._ended_reported = True
                self._emit({"event": "ended", "message": f"{self.source.description}: stream ended",
                            "received": self.counts["received"]})  # fmt: skip
            if self.session is None and not self._questions.empty():
                while not self._questions.empty():  # nothing will ever be encoded: tell the askers
                    q = self._questions.get_nowait()
                    q.event = {"event": "error", "question": q.question,
                               "message": "the stream ended before enough frames arrived to answer"}  # fmt: skip
                    self._emit(q.event)
                    q.done.set()
            return buffered > 0 or self._update_pending() or not self._questions.empty()
        if idle > self.stall_timeout and not self._stalled:
            self._stalled = True
            self._emit({"event": "stall", "message": f"{self.source.description}: no frame for {idle:.1f} s; "
                        "still waiting (answers use the last update)"})  # fmt: skip
        elif idle <= self.stall_timeout and self._stalled:
            self._stalled = False
            self._emit({"event": "resumed", "message": f"{self.source.description}: frames arrive again"})
        return True

    def run(self, max_seconds: float | None = None, idle_sleep: float = 0.01) -> dict[str, Any]:
        """Start (if needed) and loop until the source ended and everything is answered, or ``max_seconds``."""
        if self._thread is None:
            self.start()
        t0 = time.monotonic()
        while self.step():
            if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                break
            time.sleep(idle_sleep)
        return self.close()

    def close(self) -> dict[str, Any]:
        """Stop the capture thread; the summary event (counts, median latencies)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._source_warnings()  # what the source said after the last step
        summary = {
            "event": "summary",
            **dict(self.counts),
            "dropped": self.dropped,
            "updates": len(self.update_latency),
            "questions": len(self.question_latency),
            "median_update_s": statistics.median(self.update_latency) if self.update_latency else None,
            "median_question_s": statistics.median(self.question_latency) if self.question_latency else None,
            "error": self.error,
        }
        self._emit(summary)
        return summary


def _pose_fields(result: Any) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        return None if v is None else [round(float(x), 4) for x in np.asarray(v).reshape(-1)]

    return {
        "position": clean(result.position),
        "heading_deg": None if result.heading_deg is None else round(result.heading_deg, 2),
        "sigma": clean(result.sigma),
        "confidence": None if result.confidence is None else round(float(result.confidence), 4),
        "position_world": clean(result.position_world),
    }
