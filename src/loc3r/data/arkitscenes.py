"""ARKitScenes videos (the ``lowres_wide`` set) in the loc3r world frame — the one place ARKitScenes is converted.

Files of a video folder ``<root>/<video_id>/`` (ARKitScenes ``raw`` / ``3dod`` download)::

    lowres_wide/<video_id>_<t>.png                 RGB frames (256x192), ``t`` = timestamp in seconds, 3 decimals
    lowres_depth/<video_id>_<t>.png                depth, uint16 millimetres, 0 = none (same size, same camera)
    lowres_wide_intrinsics/<video_id>_<t>.pincam   one line ``width height fx fy cx cy``
    lowres_wide.traj                               one line per pose: ``t rx ry rz tx ty tz``

Conventions (ARKitScenes' ``tenFpsDataLoader.py`` and its maintainers, apple/ARKitScenes issue 81): a ``.traj`` line is
the world-to-camera transform, rotation as an axis-angle vector (radians, OpenCV's Rodrigues), translation in metres;
the camera-to-world pose is its inverse. Camera axes are OpenCV's (x right, y down, z forward) and the world frame is
gravity-aligned with z up, metres — loc3r's convention, so the inverse is the whole conversion. A frame's pose is the
trajectory entry nearest its timestamp within 5 ms, its intrinsic the ``.pincam`` of the same timestamp (or 1 ms off,
as the official loader looks it up).

Frame validation: a malformed ``.traj`` line (not 7 numbers) is an error naming the file, the line and the field
``pose``, and the line is dropped; a non-finite pose is skipped (``skipped[invalid_pose]``); a frame with no
trajectory entry near its timestamp is skipped (``skipped[no_pose]``, ARKitScenes' trajectories start a little after
the video); a missing or malformed ``.pincam`` is an error naming the file, the frame and the field ``intrinsic``, and
the frame is not used. The rest is ScanNet's (:mod:`loc3r.data.capture_base`).
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np

from loc3r.core.io import read_text
from loc3r.data.capture_base import CaptureScene, FrameFiles
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport

POSE_TOLERANCE_S = 0.005


def matrix_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (Rodrigues' formula)."""
    v = np.asarray(rotvec, dtype=np.float64)
    theta = float(np.linalg.norm(v))
    if theta < 1e-12:
        return np.eye(3)
    k = v / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def read_traj(path: Path, report: LoadReport, scene_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps [N], camera-to-world [N, 4, 4])`` sorted by time; bad lines are reported (module docstring)."""
    stamps, poses = [], []
    for number, line in enumerate(read_text(path, "trajectory file").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            if len(tokens) != 7:
                raise ValueError(f"expected 7 numbers (t rx ry rz tx ty tz), got {len(tokens)}")
            values = [float(v) for v in tokens]
        except ValueError as err:
            report.error("bad_pose_file", f"{path}: line {number}: field 'pose': {err}", file=path,
                         record=f"{scene_id} line {number}", field="pose")  # fmt: skip
            continue
        w2c = np.eye(4)
        w2c[:3, :3] = matrix_from_rotvec(np.asarray(values[1:4]))
        w2c[:3, 3] = values[4:7]
        if np.isfinite(w2c).all():
            try:
                pose = np.linalg.inv(w2c)
            except np.linalg.LinAlgError:
                pose = np.full((4, 4), np.nan)
        else:
            pose = np.full((4, 4), np.nan)
        stamps.append(values[0])
        poses.append(pose)
    order = np.argsort(np.asarray(stamps, dtype=np.float64), kind="stable")
    return np.asarray(stamps, dtype=np.float64)[order], np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)[order]


def read_pincam(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """``(K 3x3, (height, width))`` of a ``.pincam`` file ``width height fx fy cx cy``."""
    tokens = read_text(path, "intrinsics file").split()
    try:
        if len(tokens) != 6:
            raise ValueError(f"expected 6 numbers (width height fx fy cx cy), got {len(tokens)}")
        w, h, fx, fy, cx, cy = (float(v) for v in tokens)
    except ValueError as err:
        raise SampleError(f"{path}: field 'intrinsic': {err}") from err
    k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if not np.isfinite(k).all() or fx <= 0 or fy <= 0 or w <= 0 or h <= 0:
        raise SampleError(f"{path}: field 'intrinsic': focal lengths and size must be finite and > 0")
    return k, (int(h), int(w))


class ARKitScenesScene(CaptureScene):
    """One ARKitScenes video folder (``lowres_wide`` + ``lowres_depth``) in the world frame (module docstring)."""

    layout_name = "arkitscenes"

    def __init__(self, scene_dir: str | Path, scene_id: str | None = None, *, report: LoadReport | None = None) -> None:
        self._setup(Path(scene_dir), scene_id, report)
        wide = self.scene_dir / "lowres_wide"
        if not wide.is_dir():
            raise SampleError(f"{self.scene_dir}: ARKitScenes video {self.scene_id!r} has no lowres_wide/ folder")
        self.traj_path = self.scene_dir / "lowres_wide.traj"
        self._stamps_traj, self._traj = read_traj(self.traj_path, self.report, self.scene_id)
        entries = []
        for path in wide.glob("*.png"):
            prefix, sep, stamp = path.stem.rpartition("_")
            try:
                t = float(stamp)
            except ValueError:
                continue
            if sep:
                entries.append((t, stamp, prefix, path))
        entries.sort()
        self._stamp: dict[int, float] = {}
        files = []
        intr_dir = self.scene_dir / "lowres_wide_intrinsics"
        for number, (t, stamp, prefix, path) in enumerate(entries):
            record = f"{self.scene_id} frame {number} (t={stamp})"
            pincam = intr_dir / f"{prefix}_{stamp}.pincam"
            if not pincam.is_file():  # the official loader also looks 1 ms either side
                for dt in (-0.001, 0.001):
                    other = intr_dir / f"{prefix}_{t + dt:.3f}.pincam"
                    if other.is_file():
                        pincam = other
                        break
            try:
                k, _size = read_pincam(pincam)
            except SampleError as err:
                kind = "missing_file" if not pincam.is_file() else "bad_intrinsic"
                self.report.error(kind, str(err), file=pincam, record=record, field="intrinsic")
                continue
            self._intrinsics[number] = (k, k)
            self._stamp[number] = t
            files.append(FrameFiles(number, path, self.scene_dir / "lowres_depth" / path.name, self.traj_path))
        if not files and entries:
            raise SampleError(f"{intr_dir}: none of the {len(entries)} frames of {self.scene_id!r} has intrinsics")
        self._set_frames(files)
        self.color_intrinsic, self.depth_intrinsic = self._intrinsics[files[0].frame_id]

    def _pose_at(self, t: float) -> np.ndarray | None:
        """The trajectory pose nearest ``t`` within :data:`POSE_TOLERANCE_S`, else None."""
        stamps = self._stamps_traj
        j = bisect.bisect_left(stamps.tolist(), t) if stamps.size else 0
        best = None
        for c in (j - 1, j):
            near = 0 <= c < stamps.size and abs(stamps[c] - t) <= POSE_TOLERANCE_S + 1e-9
            if near and (best is None or abs(stamps[c] - t) < abs(stamps[best] - t)):
                best = c
        return None if best is None else self._traj[best]

    def _raw_pose(self, files: FrameFiles) -> tuple[np.ndarray, str, Path, str] | None:
        t = self._stamp[files.frame_id]
        pose = self._pose_at(t)
        where = f"{self.traj_path} t={t:.3f}"
        if pose is None:
            self.report.skip("no_pose", where)
            return None
        return pose, where, self.traj_path, f"{self.scene_id} frame {files.frame_id} (t={t:.3f})"
