"""Camera trajectories through a SynthRooms scene: hand-held walks and a held-out novel-viewpoint family.

Both families return camera-to-world poses ``[T, 4, 4]`` (OpenCV camera axes, world z up; see
:mod:`loc3r.geometry`) whose centres lie in the scene's walkable free space
(:func:`loc3r.data.synth.freespace.free_space` with ``clearance``), so a camera is never inside an
object or closer than ``clearance`` to a wall.

**Walk** (:func:`sample_walk`, the training distribution), modelled on how people scan rooms with a phone:

* a polyline of 2-8 waypoints in the largest free region, each leg a straight segment inside the free
  space (>= 0.8 m long, total length ``~ U(1.5, 3) * sqrt(free area)`` clipped to [3, 15] m), resampled
  every 2 cm and smoothed with a Gaussian of sigma 0.4 m along the arc (halved until the smoothed path
  stays in the free space, so it never cuts a corner through furniture);
* the camera moves at constant speed; the dense path (30 samples per second at 0.5 m/s) is the video,
  and ``num_frames`` frames are taken uniformly from it (the first and the last included);
* heading = (path tangent + 0.7 x unit direction to the free space's centroid, so the camera looks into
  the room rather than at the nearest wall) + a look-around sweep ``A sin(2 pi s / lambda + phi)`` with
  ``A ~ U(25, 70) deg`` and ``lambda ~ U(2, 5) m``; camera height ``U(1.2, 1.8) m`` with a 2 cm walking bob; pitch
  ``U(-25, -5) deg`` (looking slightly down) with a slow 5 deg wobble; roll: smooth noise of 2 deg std.

**Novel viewpoint** (:func:`sample_novel_view`, held out): heights, directions and pitches the walks never
produce: the camera is either **low** (0.6-0.9 m, pitch 0..+15 deg, looking slightly up) or **high**
(1.95-2.3 m, pitch -45..-30 deg, looking down), visits 2-3 stations where it pans 180-300 deg in place,
and moves between them walking *backwards* (heading = tangent + pi); roll std 4 deg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from loc3r.data.schema import SceneLayout
from loc3r.data.synth.freespace import free_space, sample_free_points

__all__ = [
    "TrajectoryError",
    "Trajectory",
    "camera_pose",
    "sample_walk",
    "sample_novel_view",
    "sample_trajectory",
    "TRAJECTORY_KINDS",
]

TRAJECTORY_KINDS = ("walk", "novel_view")
_DS = 0.02  # path resampling step (m)
_SPEED = 0.5  # walking speed (m/s)
_FPS = 30.0  # dense video rate
_PAN_SPEED = np.deg2rad(45.0)  # rad/s when panning in place


class TrajectoryError(RuntimeError):
    """No valid trajectory could be built (e.g. no free space)."""


@dataclass
class Trajectory:
    """Sampled frames of a trajectory plus the dense path they come from (for plots / debugging)."""

    poses: np.ndarray  # [T, 4, 4] camera-to-world
    kind: str
    dense_positions: np.ndarray  # [N, 3]


def camera_pose(position: np.ndarray, yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world 4x4 (OpenCV axes) of a camera at ``position`` with heading ``yaw`` (world yaw of the
    viewing direction), ``pitch`` (up positive) and ``roll`` (about the viewing direction, clockwise in
    the image positive), all radians.

    forward ``f = (cos p cos y, cos p sin y, sin p)``; right ``r0 = (sin y, -cos y, 0)``; down
    ``d0 = f x r0``; roll turns (r0, d0) about f. Columns of R are (right, down, forward), det R = +1.
    """
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    forward = np.array([cp * cy, cp * sy, sp])
    right0 = np.array([sy, -cy, 0.0])
    down0 = np.cross(forward, right0)
    cr, sr = np.cos(roll), np.sin(roll)
    right = cr * right0 + sr * down0
    down = -sr * right0 + cr * down0
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def _largest_piece(free: BaseGeometry) -> Polygon:
    pieces = [g for g in getattr(free, "geoms", [free]) if isinstance(g, Polygon) and not g.is_empty]
    if not pieces:
        raise TrajectoryError("the scene has no walkable free space for the camera")
    piece = max(pieces, key=lambda g: g.area)
    shapely.prepare(piece)
    return piece


#: the camera may pass over furniture whose top is below this (its height is drawn from 1.2 m up)
_PASS_OVER_M = 1.1
#: the least clearance of the fall-backs: a person needs about this much room around the camera
_MIN_CLEARANCE_M = 0.1


def _walkable_piece(layout: SceneLayout, clearance: float) -> Polygon:
    """The largest walkable piece; when furniture leaves none (real layouts whose boxes, e.g. one box around an
    L-shaped sofa, cover the floor), the clearance drops to 0.1 m, then the camera may pass over furniture lower
    than 1.1 m — only rooms that used to fail take these steps, so no existing seed's draws change."""
    try:
        return _largest_piece(free_space(layout, clearance))
    except TrajectoryError:
        pass
    small = min(clearance, _MIN_CLEARANCE_M)
    try:
        return _largest_piece(free_space(layout, small))
    except TrajectoryError:
        tall = [o for o in layout.objects if float(o.center[2] + o.size[2] / 2) >= _PASS_OVER_M]
        return _largest_piece(
            free_space(SceneLayout(layout.scene_id, layout.floor_polygon, layout.height, tall), small)
        )


def _smooth_noise(rng: np.random.Generator, n: int, sigma_samples: float, std: float) -> np.ndarray:
    """Gaussian-filtered white noise with the given std (for roll / small wobbles)."""
    if n == 0:
        return np.zeros(0)
    raw = rng.normal(size=n + int(6 * sigma_samples) + 1)
    k = np.arange(-int(3 * sigma_samples), int(3 * sigma_samples) + 1)
    kernel = np.exp(-0.5 * (k / max(sigma_samples, 1e-6)) ** 2)
    smooth = np.convolve(raw, kernel / kernel.sum(), mode="valid")[:n]
    return smooth / max(smooth.std(), 1e-9) * std if n > 1 else smooth * 0.0


def _waypoints(piece: Polygon, rng: np.random.Generator, target_length: float, max_points: int = 8) -> np.ndarray:
    start = sample_free_points(piece, rng, 1)[0]
    pts = [start]
    length = 0.0
    prev_dir = None
    while length < target_length and len(pts) < max_points:
        cand = sample_free_points(piece, rng, 48)
        vec = cand - pts[-1]
        dist = np.hypot(vec[:, 0], vec[:, 1])
        ok = dist >= 0.8
        if prev_dir is not None:
            cosang = (vec @ prev_dir) / np.maximum(dist, 1e-9)
            ok &= cosang > -0.5  # no U-turns sharper than 120 deg
        good = [i for i in np.flatnonzero(ok) if piece.covers(LineString([pts[-1], cand[i]]))]
        if not good:
            break
        i = int(rng.choice(good))
        prev_dir = vec[i] / dist[i]
        length += float(dist[i])
        pts.append(cand[i])
    return np.asarray(pts)


def _densify(points: np.ndarray, step: float = _DS) -> np.ndarray:
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
        out.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(out)


def _smooth_path(dense: np.ndarray, piece: Polygon, sigma_m: float = 0.4) -> np.ndarray:
    """Gaussian smoothing along the arc (edge-padded), weakened until the path stays in ``piece``."""
    sigma = sigma_m / _DS
    while sigma >= 1.0:
        half = int(3 * sigma)
        k = np.arange(-half, half + 1)
        kernel = np.exp(-0.5 * (k / sigma) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(dense, ((half, half), (0, 0)), mode="edge")
        smooth = np.stack([np.convolve(padded[:, a], kernel, mode="valid") for a in range(2)], axis=1)
        if shapely.contains_xy(piece, smooth[:, 0], smooth[:, 1]).all():
            return smooth
        sigma /= 2.0
    return dense


def _select(n_dense: int, num_frames: int) -> np.ndarray:
    return np.round(np.linspace(0, n_dense - 1, num_frames)).astype(np.int64)


def sample_walk(
    layout: SceneLayout, rng: np.random.Generator, num_frames: int = 32, clearance: float = 0.35
) -> Trajectory:
    """A hand-held walk (see the module docstring); ``num_frames`` poses sampled uniformly in time."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    piece = _walkable_piece(layout, clearance)
    target = float(np.clip(rng.uniform(1.5, 3.0) * np.sqrt(piece.area), 3.0, 15.0))
    way = _waypoints(piece, rng, target)
    if len(way) >= 2:
        path = _smooth_path(_densify(way), piece)
        seg = np.hypot(*np.diff(path, axis=0).T)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        n_dense = max(int(s[-1] / _SPEED * _FPS), num_frames, 2)
        s_dense = np.linspace(0.0, s[-1], n_dense)
        xy = np.stack([np.interp(s_dense, s, path[:, a]) for a in range(2)], axis=1)
        tangent = np.gradient(xy, axis=0)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
        centre = np.array(piece.centroid.coords[0])
        to_centre = centre - xy
        to_centre /= np.maximum(np.linalg.norm(to_centre, axis=1, keepdims=True), 0.5)
        view = tangent + 0.7 * to_centre  # look where you walk, biased towards the room's interior
        base_yaw = np.unwrap(np.arctan2(view[:, 1], view[:, 0]))
    else:  # free space too small for a walk: look around in place
        n_dense = max(num_frames, int(2 * np.pi / _PAN_SPEED * _FPS))
        xy = np.repeat(way[:1], n_dense, axis=0)
        s_dense = np.linspace(0.0, 2 * np.pi, n_dense)
        base_yaw = rng.uniform(-np.pi, np.pi) + s_dense
    amp = np.deg2rad(rng.uniform(25.0, 70.0))
    lam = rng.uniform(2.0, 5.0)
    phase = rng.uniform(0, 2 * np.pi)
    yaw = base_yaw + amp * np.sin(2 * np.pi * s_dense / lam + phase)
    height = rng.uniform(1.2, 1.8) + 0.02 * np.sin(2 * np.pi * s_dense / 0.7)
    height = np.minimum(height, layout.height - 0.2)
    pitch = np.deg2rad(
        rng.uniform(-25.0, -5.0) + 5.0 * np.sin(2 * np.pi * s_dense / rng.uniform(3.0, 6.0) + rng.uniform(0, 2 * np.pi))
    )
    roll = np.deg2rad(_smooth_noise(rng, n_dense, sigma_samples=_FPS, std=2.0))
    idx = _select(n_dense, num_frames)
    poses = np.stack([camera_pose(np.array([xy[i, 0], xy[i, 1], height[i]]), yaw[i], pitch[i], roll[i]) for i in idx])
    dense = np.column_stack([xy, height])
    return Trajectory(poses=poses, kind="walk", dense_positions=dense)


def sample_novel_view(
    layout: SceneLayout, rng: np.random.Generator, num_frames: int = 32, clearance: float = 0.35
) -> Trajectory:
    """A held-out viewpoint trajectory (see the module docstring)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    piece = _walkable_piece(layout, clearance)
    low = rng.random() < 0.5
    if low:
        cam_h = rng.uniform(0.6, 0.9)
        base_pitch = np.deg2rad(rng.uniform(0.0, 15.0))
    else:
        cam_h = rng.uniform(1.95, max(1.95, min(2.3, layout.height - 0.25)))
        base_pitch = np.deg2rad(rng.uniform(-45.0, -30.0))
    cam_h = min(cam_h, layout.height - 0.2)
    stations = _waypoints(piece, rng, target_length=np.inf, max_points=int(rng.integers(2, 4)))
    xs, yaws = [], []
    yaw0 = rng.uniform(-np.pi, np.pi)
    for k, st in enumerate(stations):
        pan = np.deg2rad(rng.uniform(180.0, 300.0)) * rng.choice([-1.0, 1.0])
        n_pan = max(2, int(abs(pan) / _PAN_SPEED * _FPS))
        xs.append(np.repeat(st[None], n_pan, axis=0))
        yaws.append(yaw0 + np.linspace(0.0, pan, n_pan))
        yaw0 = yaw0 + pan
        if k + 1 < len(stations):
            seg = _densify(np.stack([st, stations[k + 1]]), _SPEED / _FPS)[1:]
            back = np.arctan2(*(stations[k + 1] - st)[::-1]) + np.pi  # walking backwards
            turn = np.unwrap([yaw0, back])[1]
            xs.append(seg)
            yaws.append(np.full(len(seg), turn))
            yaw0 = turn
    xy = np.concatenate(xs)
    yaw = np.concatenate(yaws)
    n_dense = len(xy)
    pitch = base_pitch + np.deg2rad(_smooth_noise(rng, n_dense, sigma_samples=_FPS, std=3.0))
    roll = np.deg2rad(_smooth_noise(rng, n_dense, sigma_samples=_FPS, std=4.0))
    idx = _select(n_dense, num_frames)
    poses = np.stack([camera_pose(np.array([xy[i, 0], xy[i, 1], cam_h]), yaw[i], pitch[i], roll[i]) for i in idx])
    return Trajectory(poses=poses, kind="novel_view", dense_positions=np.column_stack([xy, np.full(n_dense, cam_h)]))


def sample_trajectory(kind: str, layout: SceneLayout, rng: np.random.Generator, num_frames: int = 32) -> Trajectory:
    """Dispatch on ``kind`` in :data:`TRAJECTORY_KINDS`."""
    if kind == "walk":
        return sample_walk(layout, rng, num_frames)
    if kind == "novel_view":
        return sample_novel_view(layout, rng, num_frames)
    raise ValueError(f"unknown trajectory kind {kind!r}; expected one of {TRAJECTORY_KINDS}")
