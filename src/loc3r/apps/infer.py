"""Python inference API: a checkpoint + video (frames, a video file, a frame folder or a ScanNet-style scan
folder) + situation + question → position, heading, uncertainty, answer and a BEV picture.

Example::

    from loc3r.apps.infer import Loc3rPredictor

    predictor = Loc3rPredictor.from_pretrained("runs/demo/runs/loc3r-seed0/final")
    result = predictor.predict("data/synthrooms/scans/synth00003_00", "I am facing the sofa.",
                               "What is on my left?", bev_png="bev.png")
    print(result.position, result.heading_deg, result.sigma, result.answer)

Inputs:

* ``frames`` as an array ``[T, H, W, 3] uint8``; one **image file** (a still: T = 1); a **list of image paths**
  (an unordered set of views, taken in the order given); a **camera-rig folder** (``rig.json`` + one image
  folder per camera, :func:`load_rig`: frames interleaved per time step, each with its camera's pose, anchor =
  camera 0 at t = 0); or a path to a **video file** (decoded with PyAV,
  ``num_frames`` uniformly sampled); or a **folder of images** (sorted by name, uniformly sampled); or a
  **ScanNet SensReader-style scan folder** (``color/``, ``pose/`` [, ``depth/``, ``intrinsic/``]), which also
  gives poses (and depth-derived points, which only the ``cue_injection`` baseline uses).
* ``poses`` (optional) ``[T, 4, 4]`` camera-to-world (OpenCV axes, z up) for the sampled frames: needed for
  world-frame outputs, the camera prior and a trajectory in the picture; without poses the outputs are
  in the BEV frame of the first frame (origin = first camera, x = its forward direction). A checkpoint with the
  camera prior runs on a plain RGB video too, without its camera tokens (trained for it with camera-prior dropout,
  our addition: ``model.loc3r.camera_prior_dropout``).

Every result says which inputs it used (``Result.inputs``, ``"inputs"`` in ``to_dict``): frames, poses, depth and
whether the camera prior ran (:func:`describe_inputs` is its one-line form).

Outputs are in the BEV anchor frame (``position``, ``heading``) and, when poses are given, also in the world frame.

Encode once, ask many (AR / robot use: many questions about the same surroundings)::

    session = predictor.session("scan_or_video.mp4", poses=None)   # runs the frames + video prefix once
    for situation, question in queries:
        result = session.ask(situation, question)                   # runs only the question's text tokens
    session.layout                                                  # per-vision-token BEV layout (question-free)

The prompt is ``<video> situation <Pos> <Ori> question`` and the decoder is causal, so the video part's keys and
values do not depend on the question (:class:`loc3r.model.modeling_loc3r.VideoPrefix`); answers, poses and layout
equal the uncached :meth:`Loc3rPredictor.predict` (tested).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.data.schema import ClipSample, SampleError

_log = logging.getLogger("loc3r.apps.infer")

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class Result:
    """One prediction. BEV frame: metres, radians; ``*_world`` when poses were given."""

    answer: str | None
    position: np.ndarray | None  # (2,) BEV x, y
    heading: float | None  # BEV yaw, radians
    sigma: np.ndarray | None  # (2,) position standard deviations, metres
    confidence: float | None  # orientation confidence (length of the circular soft-argmax vector, 0..1)
    position_world: np.ndarray | None = None
    heading_world: float | None = None
    bev_png_path: str | None = None
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def heading_deg(self) -> float | None:
        return None if self.heading is None else float(np.degrees(self.heading))

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return v.tolist() if isinstance(v, np.ndarray) else v

        return {
            "answer": self.answer,
            "position": clean(self.position),
            "heading_deg": self.heading_deg,
            "sigma": clean(self.sigma),
            "confidence": self.confidence,
            "position_world": clean(self.position_world),
            "heading_world_deg": None if self.heading_world is None else float(np.degrees(self.heading_world)),
            "bev_png_path": self.bev_png_path,
            "seconds": self.seconds,
            "frame_problems": self.extras.get("frame_problems", []),
            "inputs": self.inputs,
        }

    @property
    def inputs(self) -> dict[str, Any]:
        """Which inputs the prediction used: ``{"frames", "poses", "depth", "camera_prior"[, "note"]}``."""
        return dict(self.extras.get("inputs", {}))


def describe_inputs(inputs: dict[str, Any]) -> str:
    """One line for people: ``8 frames, poses: none, depth: none, camera prior: not used (no poses)``."""
    if not inputs:
        return "unknown"
    text = (f"{inputs.get('frames')} frames, poses: {inputs.get('poses')}, depth: {inputs.get('depth')}, "
            f"camera prior: {inputs.get('camera_prior')}")  # fmt: skip
    return text + (f" ({inputs['note']})" if inputs.get("note") else "")


def _inputs(config: Any, frames: np.ndarray, poses: Any, points: Any, camera_used: bool | None) -> dict[str, Any]:
    """The ``inputs`` of a :class:`Result` (``camera_used``: ``SampleMeta.camera_prior_used`` of its prompt)."""
    inputs: dict[str, Any] = {
        "frames": int(frames.shape[0]),
        "poses": "given" if poses is not None else "none",
        "depth": "none" if points is None else ("used" if config.cue_injection else "given, not used"),
    }
    if camera_used is None:
        inputs["camera_prior"] = "off (the model has none)"
    elif camera_used:
        inputs["camera_prior"] = "used"
    else:
        missing = "no poses" if config.camera_prior == "poses" else "no camera features"
        inputs["camera_prior"] = f"not used ({missing})"
        if not getattr(config, "camera_prior_dropout", 0.0):
            inputs["note"] = (
                "this checkpoint was trained with camera tokens on every sample (camera_prior_dropout 0): without "
                "them it runs outside its training"
            )
    return inputs


def _read_images(paths: list[Path], count: int, what: str) -> np.ndarray:
    """``count`` of ``paths`` (uniformly, in the order given), all of one size (``what``: "set" / "video")."""
    from loc3r.data.video import read_rgb, uniform_indices

    picked = uniform_indices(len(paths), count).tolist()
    images = [read_rgb(paths[i], record=str(paths[i])) for i in picked]
    for i, image in zip(picked, images, strict=True):
        if image.shape != images[0].shape:
            raise SampleError(
                f"{paths[i]}: image is {image.shape[1]}x{image.shape[0]} but {paths[picked[0]]} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; all images of a {what} must have one size"
            )
    return np.stack(images)


def _checked_poses(poses: Any, num_frames: int) -> np.ndarray:
    """``poses`` as a finite, rigid ``[T, 4, 4]`` float64 array (a :class:`SampleError` otherwise)."""
    from loc3r.core.geometry import GeometryError, validate_poses

    try:
        poses = np.asarray(poses, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise SampleError(f"poses must be a [T, 4, 4] array of numbers ({err})") from err
    if poses.shape != (num_frames, 4, 4):
        raise SampleError(f"poses must be [T={num_frames}, 4, 4], got {poses.shape}")
    try:
        return validate_poses(poses, "poses")
    except GeometryError as err:
        raise SampleError(str(err)) from err


def load_frames(
    source: Any, num_frames: int, poses: Any = None, frame_log: Any = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """``(frames [T,H,W,3] uint8, poses [T,4,4] | None, points [T,h,w,3] | None, scene_id)`` from any input kind.

    Errors name the path: missing path, empty folder, unreadable image, images of different sizes, wrong array
    shape, pose count mismatch, non-finite or non-rigid poses. Frames of a scan folder or video that were skipped
    (see :meth:`loc3r.data.scannet.ScanNetScene.load_clip`) go to ``frame_log``
    (:class:`~loc3r.data.video.FrameLog`), which raises when strict.
    """
    from loc3r.data.video import frame_problems_meta

    points = None
    scene_id = "input"
    if isinstance(source, np.ndarray):
        frames = source
    elif isinstance(source, (list, tuple)):  # an unordered set of images, taken in the order given
        if not source:
            raise SampleError("the image set is empty")
        missing = [p for p in source if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: no such image file")
        frames = _read_images([Path(p) for p in source], min(num_frames, len(source)), "set")
        scene_id = Path(source[0]).parent.name or "images"
    elif Path(source).is_dir() and (Path(source) / "rig.json").is_file():
        frames, rig_poses = load_rig(Path(source), num_frames)
        poses = rig_poses if poses is None else poses
        scene_id = Path(source).name
    elif Path(source).is_file() and Path(source).suffix.lower() in _IMAGE_SUFFIXES:  # one still image
        from loc3r.data.video import read_rgb

        frames = read_rgb(Path(source), record=str(source))[None]
        scene_id = Path(source).stem
    else:
        path = Path(source)
        scene_id = path.stem if path.is_file() else path.name
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or frame folder")
        if path.is_dir() and (path / "color").is_dir() and (path / "pose").is_dir():
            from loc3r.data.scannet import ScanNetScene

            scene = ScanNetScene(path)
            has_depth = (path / "depth").is_dir() and (path / "intrinsic").is_dir()
            clip = scene.load_clip(num_frames, points_size=(64, 64) if has_depth else None)
            frames, points = clip.frames, clip.points
            if frame_log is not None:
                frame_log.add(frame_problems_meta(clip.meta), str(path))
            if poses is None:
                poses = clip.poses
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not files:
                raise SampleError(f"{path}: folder holds no images ({sorted(_IMAGE_SUFFIXES)})")
            frames = _read_images(files, num_frames, "video")
        else:
            from loc3r.data.video import decode_video

            video = decode_video(path, num_frames, record=str(path))
            frames = video.frames
            if frame_log is not None:
                frame_log.add(frame_problems_meta({"frame_problems": video.problems}), str(path))
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise SampleError(f"frames must be [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    if poses is not None:
        poses = _checked_poses(poses, frames.shape[0])
    return frames, poses, points, scene_id


def is_plain_folder_name(name: str) -> bool:
    """A rig camera's ``name`` names a folder directly inside the rig folder: one path part, never ``..`` or an
    absolute path (a ``rig.json`` must not make the reader open folders elsewhere)."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0") and ":" not in name


def read_rig_spec(folder: Path) -> tuple[list[str], list[np.ndarray], bool]:
    """Camera names, extrinsics (camera-to-rig) and ``static`` flag of ``<folder>/rig.json`` (checked, file named)."""
    from loc3r.core.io import read_json

    spec = read_json(folder / "rig.json", "rig file")
    where = f"{folder / 'rig.json'}"
    cams = spec.get("cameras") if isinstance(spec, dict) else None
    if not isinstance(cams, list) or not cams:
        raise SampleError(f"{where}: field 'cameras' must be a non-empty list")
    extrinsics = []
    for k, cam in enumerate(cams):
        if not isinstance(cam, dict) or not isinstance(cam.get("name"), str):
            raise SampleError(f"{where}: cameras[{k}] needs a 'name'")
        if not is_plain_folder_name(cam["name"]):
            raise SampleError(f"{where}: cameras[{k}]: field 'name' {cam['name']!r} must be a folder name inside the "
                              "rig folder (no '/', '\\', '..')")  # fmt: skip
        ext = np.asarray(cam.get("extrinsic", np.eye(4)), dtype=np.float64)
        if ext.shape != (4, 4) or not np.isfinite(ext).all():
            raise SampleError(f"{where}: cameras[{k}] ('{cam['name']}'): field 'extrinsic' must be a finite 4x4")
        extrinsics.append(ext)
    return [c["name"] for c in cams], extrinsics, bool(spec.get("static"))


def load_rig(folder: Path, num_frames: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames (interleaved per time step) and poses of a camera-rig folder.

    Layout: ``rig.json`` = ``{"cameras": [{"name": "front", "extrinsic": 4x4 camera-to-rig}, ...], "static": false}``,
    one image folder per camera (``<folder>/<name>/``, files in name order = time steps), optional
    ``rig_poses.npy`` ``[S, 4, 4]`` rig-to-world per time step. Poses per frame: ``rig_pose[t] @ extrinsic[c]``; with
    ``"static": true`` and no rig poses, the rig frame is the world (``extrinsic[c]``); else no poses. The anchor is
    camera 0 at t = 0 (the first frame). ``max(1, num_frames // N)`` time steps are sampled uniformly.
    """
    from loc3r.data.video import read_rgb, uniform_indices

    names, extrinsics, static = read_rig_spec(folder)
    files = []
    for name in names:
        d = folder / name
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no image folder for rig camera '{name}'")
        files.append(sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES))
    counts = {n: len(f) for n, f in zip(names, files, strict=True)}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise SampleError(f"{folder}: the rig's cameras disagree on the frame count ({counts}); every camera needs "
                          "one image per time step")  # fmt: skip
    steps = next(iter(counts.values()))
    rig_poses = None
    if (folder / "rig_poses.npy").is_file():
        rig_poses = np.load(folder / "rig_poses.npy", allow_pickle=False).astype(np.float64)
        if rig_poses.shape != (steps, 4, 4):
            raise SampleError(f"{folder / 'rig_poses.npy'}: must be [{steps}, 4, 4] (one per time step), "
                              f"got {rig_poses.shape}")  # fmt: skip
    elif static:
        rig_poses = np.repeat(np.eye(4)[None], steps, axis=0)
    picked = uniform_indices(steps, min(steps, max(1, num_frames // len(names)))).tolist()
    frames = np.stack([read_rgb(files[c][t], record=str(files[c][t])) for t in picked for c in range(len(names))])
    poses = None
    if rig_poses is not None:
        poses = np.stack([rig_poses[t] @ extrinsics[c] for t in picked for c in range(len(names))])
    return frames, poses


class Loc3rPredictor:
    """A loaded loc3r checkpoint ready for single queries (see the module docstring)."""

    def __init__(self, model: Any, num_frames: int = 8, strict: bool = False) -> None:
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            from loc3r.core.errors import ConfigError

            raise ConfigError(f"--frames / num_frames must be a positive number of frames, got {num_frames!r}")
        self.model = model
        self.num_frames = num_frames
        self.strict = strict  # a skipped frame (unreadable, other size, bad pose) is an error instead
        self.processor = model.build_processor(mode="eval")

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, num_frames: int | None = None) -> Loc3rPredictor:
        """Load a checkpoint directory; ``num_frames`` defaults to the frames per clip recorded with the
        checkpoint by training (its processor config), else 8."""
        from loc3r.model.loading import load_model

        model = load_model(model_dir)
        if num_frames is None:
            num_frames = model.num_frames  # recorded with the checkpoint by training
            if num_frames is None:
                num_frames = 8
                _log.warning(
                    "%s: loc3r_processor_config.json records no 'num_frames' (the frames per clip of training); "
                    "using %d — pass --frames / num_frames= to choose",
                    model_dir,
                    num_frames,
                )
        return cls(model, num_frames)

    def _load(self, video: Any, poses: Any, points: np.ndarray | None) -> tuple[Any, ...]:
        """``(frames, poses, points, scene_id, frame problems)`` of a query's input (:func:`load_frames`)."""
        from loc3r.data.video import FrameLog

        frame_log = FrameLog("loc3r infer", strict=self.strict)
        frames, poses, loaded_points, scene_id = load_frames(video, self.num_frames, poses, frame_log=frame_log)
        points = points if points is not None else loaded_points
        if self.model.config.cue_injection and points is None:
            raise SampleError(
                "this checkpoint uses cue injection: it needs depth-derived points (give a scan folder with depth/ "
                "and intrinsic/, or points=[T, h, w, 3])"
            )
        return frames, poses, points, scene_id, frame_log.problems

    def session(
        self, video: Any, poses: Any = None, points: np.ndarray | None = None, meta: dict | None = None
    ) -> PredictorSession:
        """Load and encode ``video`` once (frames + video prefix of the prompt); ask it any number of questions.

        ``video`` / ``poses`` / ``points`` as for :meth:`predict`; ``meta`` goes into the sample (e.g.
        ``{"sampled_fps": 2.0}`` for the M-RoPE time scale of a live stream).
        """
        frames, poses, points, scene_id, problems = self._load(video, poses, points)
        session = PredictorSession(self, frames, poses, points, scene_id, meta=meta)
        session.frame_problems = problems
        return session

    def predict(
        self,
        video: Any,
        situation: str | None,
        question: str,
        poses: Any = None,
        points: np.ndarray | None = None,
        bev_png: str | Path | None = None,
        gt_position: Any = None,
        gt_heading: float | None = None,
        max_new_tokens: int = 32,
    ) -> Result:
        """Answer one query; ``bev_png`` writes the BEV picture (layout, trajectory, pose, ground truth).

        The uncached path (the whole prompt in one forward); for several questions on one video use
        :meth:`session`. Frames skipped while loading are listed in ``result.extras["frame_problems"]``."""
        import torch

        frames, poses, points, scene_id, problems = self._load(video, poses, points)
        sample = self._sample(frames, poses, points, scene_id, situation, question)
        t0 = time.perf_counter()
        with torch.inference_mode():
            batch = self.processor([sample], mode="eval")
            pred = self.model.predict(batch, max_new_tokens=max_new_tokens)[0]
        inputs = _inputs(self.model.config, frames, poses, points, batch.metadata[0].camera_prior_used)
        return self._result(pred, time.perf_counter() - t0, poses, situation, question, bev_png, gt_position,
                            gt_heading, problems, inputs)  # fmt: skip

    def _sample(
        self,
        frames: np.ndarray,
        poses: np.ndarray | None,
        points: np.ndarray | None,
        scene_id: str,
        situation: str | None,
        question: str,
        meta: dict | None = None,
    ) -> ClipSample:
        if not isinstance(question, str) or not question.strip():
            raise SampleError("the question is empty")
        return ClipSample(
            sample_id="query",
            scene_id=scene_id,
            task="infer",
            frames=frames,
            question=question,
            situation_text=situation.strip() if isinstance(situation, str) and situation.strip() else None,
            poses=poses,
            points=points if self.model.config.cue_injection else None,
            meta=dict(meta or {}),
        ).validate()

    def _result(
        self,
        pred: Any,
        seconds: float,
        poses: np.ndarray | None,
        situation: str | None,
        question: str,
        bev_png: str | Path | None,
        gt_position: Any,
        gt_heading: float | None,
        frame_problems: list[dict[str, Any]],
        inputs: dict[str, Any],
    ) -> Result:
        result = Result(
            answer=pred.answer,
            position=pred.position_bev,
            heading=pred.yaw_bev,
            sigma=pred.position_sigma,
            confidence=pred.yaw_confidence,
            position_world=pred.position_world,
            heading_world=pred.yaw_world,
            seconds=seconds,
            extras={"frame_problems": frame_problems, "inputs": inputs},
        )
        result.extras["layout"] = pred.layout_mean
        result.extras["layout_frame"] = pred.layout_frame
        if result.position is None:  # plain LM: localization only as text coordinates
            from loc3r.data.text_localization import parse_pose_text

            parsed = parse_pose_text(pred.answer)
            if parsed is not None:
                result.position, result.heading = parsed
                result.extras["localization"] = "parsed from text"
        if bev_png is not None:
            from loc3r.apps.viz import plot_bev
            from loc3r.core.geometry import anchor_frame

            traj = None
            gt_xy = gt_position
            if poses is not None:
                anchor = anchor_frame(poses[0])
                traj = anchor.poses_to_bev(poses)
                if gt_position is not None:
                    gt_xy = anchor.points_to_bev(np.asarray(gt_position, dtype=np.float64).reshape(1, -1)[:, :3])[0]
                    gt_heading = None if gt_heading is None else float(anchor.yaw_to_bev(gt_heading))
            result.bev_png_path = str(
                plot_bev(
                    bev_png,
                    layout_xy=pred.layout_mean,
                    trajectory=traj,
                    pred_xy=result.position,
                    pred_yaw=result.heading,
                    pred_sigma=result.sigma,
                    gt_xy=gt_xy,
                    gt_yaw=gt_heading,
                    title=f"{situation or ''} {question}",  # wrapped to the figure by plot_bev
                    layout_frame=pred.layout_frame,
                )
            )
        return result


class PredictorSession:
    """One encoded video, any number of (situation, question) pairs (see the module docstring).

    Built by :meth:`Loc3rPredictor.session`. ``encode_seconds``: time of the one-off part (frame preprocessing +
    vision tower + LLM over the video prefix); each :class:`Result` ``seconds`` is that question's own time.
    """

    def __init__(
        self,
        predictor: Loc3rPredictor,
        frames: np.ndarray,
        poses: np.ndarray | None,
        points: np.ndarray | None,
        scene_id: str,
        meta: dict | None = None,
    ) -> None:
        import torch

        self.predictor = predictor
        self.frames, self.poses, self.points, self.scene_id = frames, poses, points, scene_id
        self.meta = dict(meta or {})
        self.frame_problems: list[dict[str, Any]] = []  # frames skipped while loading (set by Loc3rPredictor.session)
        t0 = time.perf_counter()
        # the prefix does not depend on the question; any valid question builds the prompt it is cut from
        sample = predictor._sample(frames, poses, points, scene_id, None, "?", self.meta)
        with torch.inference_mode():
            batch = predictor.processor([sample], mode="eval")
            self.prefix = predictor.model.encode_prefix(batch)
        self._encoding = batch.encodings[0]
        self.metadata = batch.metadata[0]
        #: which inputs the encoded video used (the ``inputs`` of every answer)
        self.inputs = _inputs(predictor.model.config, frames, poses, points, self.metadata.camera_prior_used)
        self.encode_seconds = time.perf_counter() - t0
        self._layout: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None

    @property
    def num_prefix_tokens(self) -> int:
        return self.prefix.length

    @property
    def layout(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """``(layout_mean [N, 2], layout_sigma [N, 2], layout_frame [N])`` in the BEV frame: the layout head on the
        prefix's vision tokens — question-independent, computed once (``None`` without the layout objective)."""
        if self._layout is None:
            import torch

            model = self.predictor.model
            if model.layout_head is None:
                self._layout = (None, None, None)
            else:
                with torch.inference_mode():
                    mask = self.prefix.input_ids[0] == model.video_token_id
                    mean, log_var = model.layout_head(self.prefix.hidden[0][mask])
                frames = np.concatenate(
                    [np.full(s.num_tokens, min(s.frame_indices), dtype=np.int64) for s in self.metadata.segments]
                )
                self._layout = (
                    mean.float().cpu().numpy(),
                    torch.exp(0.5 * log_var).float().cpu().numpy(),
                    frames,
                )
        return self._layout

    def ask(
        self,
        situation: str | None,
        question: str,
        bev_png: str | Path | None = None,
        gt_position: Any = None,
        gt_heading: float | None = None,
        max_new_tokens: int = 32,
    ) -> Result:
        """Answer one (situation, question) on the encoded video; same output as :meth:`Loc3rPredictor.predict`."""
        return self.ask_many([(situation, question)], max_new_tokens=max_new_tokens, bev_pngs=[bev_png],
                             gt_position=gt_position, gt_heading=gt_heading)[0]  # fmt: skip

    def ask_many(
        self,
        queries: list[tuple[str | None, str]],
        max_new_tokens: int = 32,
        batch_size: int = 8,
        bev_pngs: list[str | Path | None] | None = None,
        gt_position: Any = None,
        gt_heading: float | None = None,
    ) -> list[Result]:
        """Answer several (situation, question) pairs, ``batch_size`` per forward, all on the one cached prefix."""
        import torch

        predictor = self.predictor
        extras = (self.frame_problems, self.inputs)
        out: list[Result] = []
        for start in range(0, len(queries), batch_size):
            chunk = queries[start : start + batch_size]
            t0 = time.perf_counter()
            samples = [
                predictor._sample(self.frames, self.poses, self.points, self.scene_id, sit, q, self.meta)
                for sit, q in chunk
            ]
            with torch.inference_mode():
                batch = predictor.processor(samples, mode="eval", video_encoding=self._encoding, with_pixels=False)
                preds = predictor.model.predict(batch, max_new_tokens=max_new_tokens, prefix=self.prefix)
            seconds = (time.perf_counter() - t0) / len(chunk)
            for k, ((sit, q), pred) in enumerate(zip(chunk, preds, strict=True)):
                png = bev_pngs[start + k] if bev_pngs is not None else None
                result = predictor._result(pred, seconds, self.poses, sit, q, png, gt_position, gt_heading, *extras)
                out.append(result)
        return out
