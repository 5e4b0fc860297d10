"""Sample types shared by every dataset loader, the model's processor and evaluation.

Every loader (SynthRooms, ScanNet, SQA3D, ScanQA, VSI-Bench, MSQA) converts its files into these types,
in the one world convention of :mod:`loc3r.core.geometry` (metres, z up, camera-to-world OpenCV poses).
The BEV anchor frame is *not* applied here: the processor applies it per clip, from ``poses[0]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loc3r.core.errors import SampleError
from loc3r.core.geometry import GeometryError, validate_poses

PSEUDO_SITUATION = "I am standing in the room."
#: the egocentric sectors a situation text puts side objects in ("with the lamp on my left")
SIDE_ROLES = ("left", "right", "behind")
#: the roles of ``ClipSample.referents``: where the agent stands, what it faces, the side objects by sector
REFERENT_ROLES = ("anchor", "faced", *SIDE_ROLES)

__all__ = ["PSEUDO_SITUATION", "SampleError", "ClipSample", "SceneObject", "SceneLayout", "check_text"]


def check_text(text: object, where: str) -> None:
    """Raise :class:`SampleError` when ``text`` cannot be encoded as UTF-8: bytes that were not UTF-8 on the command
    line or in a file read with ``surrogateescape`` arrive as lone surrogates, which the tokenizers reject with a bare
    ``TypeError``; the message names the field and the first bad character."""
    if not isinstance(text, str):
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        try:
            bad = "byte " + text[err.start : err.end].encode("utf-8", "surrogateescape").hex(" ")
        except UnicodeEncodeError:
            bad = ascii(text[err.start : err.end])
        raise SampleError(
            f"{where} is not UTF-8 text ({bad} at character {err.start}, after {text[: err.start][-20:]!r}); "
            "re-encode it as UTF-8"
        ) from None


@dataclass
class ClipSample:
    """One (video clip, prompt, targets) example.

    Shapes: T frames of RGB ``[T, H, W, 3] uint8``; optional per-pixel world points
    ``[T, h, w, 3] float32`` (NaN = invalid pixel; from depth + pose, any resolution) used for the layout
    targets and for the cue-injection baseline; optional ``poses [T, 4, 4]`` camera-to-world (needed for
    the BEV anchor frame, the camera prior and the situation targets); optional ``camera_features
    [T, F]`` from an external 3D foundation model.
    """

    sample_id: str
    scene_id: str
    task: str  # e.g. "sqa3d", "scanqa", "vsibench", "synth_situated", "synth_vsi"
    frames: np.ndarray
    question: str
    answer: str | None = None  # the training target / primary reference answer
    answers: list[str] = field(default_factory=list)  # all reference answers (evaluation)
    situation_text: str | None = None  # None -> PSEUDO_SITUATION is used when situations are on
    agent_position: np.ndarray | None = None  # (3,) world metres, or None when unknown
    agent_yaw: float | None = None  # world yaw (radians), or None when unknown
    poses: np.ndarray | None = None
    points: np.ndarray | None = None
    camera_features: np.ndarray | None = None
    frame_indices: np.ndarray | None = None  # indices of the sampled frames in the source video
    options: list[str] | None = None  # multiple-choice options ("A. ...") when the task has them
    #: optional per-pixel semantic labels ``[T, h, w]`` (integers; negative = unlabelled) naming, through
    #: ``label_names[value]``, what each pixel shows; the targets of the per-token recognition objective
    pixel_labels: np.ndarray | None = None
    label_names: list[str] | None = None
    #: optional per-pixel instance ids ``[T, h, w]`` (0 = no object) and the instances the situation text names,
    #: by role (``{"anchor": [...], "faced": [...], "left": [...], "right": [...], "behind": [...]}``, roles in
    #: ``REFERENT_ROLES``): the targets of the pointer heads' anchor supervision
    pixel_instances: np.ndarray | None = None
    referents: dict[str, list[int]] | None = None
    #: instance id -> the object's name ("black table"), for the oracle-objects diagnostic input
    instance_names: dict[int, str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> ClipSample:
        """Check shapes, dtypes and finiteness; raise :class:`SampleError` naming sample and field."""
        where = f"sample {self.sample_id!r} (scene {self.scene_id!r})"
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise SampleError(f"{where}: field 'frames' must be [T, H, W, 3], got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise SampleError(f"{where}: field 'frames' must be uint8 RGB, got dtype {frames.dtype}")
        num_frames = frames.shape[0]
        if num_frames == 0:
            raise SampleError(f"{where}: field 'frames' is empty")
        for name in ("question", "situation_text", "answer"):
            check_text(getattr(self, name, None), f"{where}: field {name!r}")
        if self.poses is not None:
            poses = np.asarray(self.poses)
            if poses.shape[0] != num_frames:
                raise SampleError(f"{where}: field 'poses' has {poses.shape[0]} poses for {num_frames} frames")
            try:
                self.poses = validate_poses(poses, f"{where}: field 'poses'")
            except GeometryError as err:
                raise SampleError(str(err)) from err
        if self.points is not None:
            points = np.asarray(self.points)
            if points.ndim != 4 or points.shape[0] != num_frames or points.shape[-1] != 3:
                raise SampleError(
                    f"{where}: field 'points' must be [T={num_frames}, h, w, 3], got shape {points.shape}"
                )
        if self.camera_features is not None:
            feats = np.asarray(self.camera_features)
            if feats.ndim != 2 or feats.shape[0] != num_frames:
                raise SampleError(
                    f"{where}: field 'camera_features' must be [T={num_frames}, F], got shape {feats.shape}"
                )
            if not np.isfinite(feats).all():
                raise SampleError(f"{where}: field 'camera_features' has non-finite values")
        for name in ("pixel_labels", "pixel_instances"):
            maps = None if getattr(self, name) is None else np.asarray(getattr(self, name))
            if maps is not None and (maps.ndim != 3 or maps.shape[0] != num_frames or maps.dtype.kind not in "iu"):
                raise SampleError(
                    f"{where}: field {name!r} must be an integer [T={num_frames}, h, w] array, got {maps.dtype} "
                    f"{maps.shape}"
                )
        if self.pixel_labels is not None:
            top = int(np.asarray(self.pixel_labels).max(initial=-1))
            if not self.label_names or top >= len(self.label_names):
                raise SampleError(
                    f"{where}: field 'label_names' must name every value of 'pixel_labels' "
                    f"(max {top}, {len(self.label_names or [])} names)"
                )
        if self.referents is not None and (
            not isinstance(self.referents, dict)
            or not all(isinstance(v, list) and all(isinstance(i, int) for i in v) for v in self.referents.values())
        ):
            raise SampleError(f"{where}: field 'referents' must map a role to a list of instance ids")
        if self.agent_position is not None:
            pos = np.asarray(self.agent_position, dtype=np.float64)
            if pos.shape != (3,) or not np.isfinite(pos).all():
                raise SampleError(f"{where}: field 'agent_position' must be 3 finite numbers, got {pos}")
            self.agent_position = pos
        if self.agent_yaw is not None and not np.isfinite(self.agent_yaw):
            raise SampleError(f"{where}: field 'agent_yaw' is not finite ({self.agent_yaw})")
        if (self.agent_position is None) != (self.agent_yaw is None):
            raise SampleError(f"{where}: 'agent_position' and 'agent_yaw' must be given together")
        return self


@dataclass
class SceneObject:
    """An object as an oriented box in the world frame (z up); ``yaw`` rotates the box about z."""

    category: str
    instance_id: int
    center: np.ndarray  # (3,) metres, box centre
    size: np.ndarray  # (3,) full extents along the box's own x, y, z axes, metres
    yaw: float = 0.0
    color: tuple[int, int, int] = (128, 128, 128)
    color_name: str = ""  # human word for ``color`` used in generated text ("green sofa"), may be empty

    def corners_xy(self) -> np.ndarray:
        """The 4 floor-plane corners ``[4, 2]`` of the box footprint."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.asarray(self.center)[:2]


@dataclass
class SceneLayout:
    """A room: floor polygon (counter-clockwise ``[K, 2]``, metres), wall height and objects."""

    scene_id: str
    floor_polygon: np.ndarray
    height: float
    objects: list[SceneObject] = field(default_factory=list)
