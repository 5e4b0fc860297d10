"""Camera trajectories through a SynthRooms scene: hand-held walks, a held-out novel-viewpoint family, and a camera
policy that frames the room's objects.

Both families return camera-to-world poses ``[T, 4, 4]`` (OpenCV camera axes, world z up; see
:mod:`loc3r.core.geometry`) whose centres lie in the scene's walkable free space
(:func:`loc3r.synthrooms.freespace.free_space` with ``clearance``), so a camera is never inside an
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

Two **camera policies** make these families (``SynthSettings.camera_policy``, ``loc3r synth --camera-policy``):
``"walk"`` is the above. ``"frame_objects"`` (:func:`sample_frame_objects`) films the room like a person showing
its objects, so that frames look at objects rather than walls and the clip shows (nearly) all of them:

* the camera stays at one height (walk family: ``U(1.2, 1.8) m`` with the 2 cm bob, pitch within -30..0 deg; novel
  family: the low 0.6-0.9 m / 0..+15 deg or high 1.95-2.3 m / -45..-30 deg band above), roll smooth noise 2 (4) deg;
* candidate views: 40 standing points drawn in the free space; from each, one view looking at each object's centre
  (pitch clipped to the band) and 12 evenly spaced pan headings. Each view is cast at 40 rays per image row through
  the scene's real meshes (Embree; occlusion included) to get the share of its pixels each object covers;
* a beam search (width 16) picks one view per frame: +3 per object newly shown (>= 0.4 % of the pixels), +4 when the
  frame's largest object covers >= 3 %, a small bonus for walking on (up to 0.6 of a step) and a cost for turning,
  ranked with a look-ahead of the objects still visible from standing points reachable in the frames left;
* motion is bounded: consecutive frames stand at most ``min(1.2, 8.4 / (T - 1))`` m apart on a straight line in the
  free space, and turn at most ``min(90, 540 / (T - 1))`` deg of yaw and 30 deg of pitch; the video between two
  frames eases in and out along that segment (the person stops at each view), at walking / panning speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from loc3r.data.schema import SceneLayout
from loc3r.data.video import uniform_indices
from loc3r.synthrooms.freespace import free_space, sample_free_points

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
    policy: str = "walk"  # the camera policy that made it (CAMERA_POLICIES)


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


def sample_walk(
    layout: SceneLayout, rng: np.random.Generator, num_frames: int = 32, clearance: float = 0.35
) -> Trajectory:
    """A hand-held walk (see the module docstring); ``num_frames`` poses sampled uniformly in time."""
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
    idx = uniform_indices(n_dense, num_frames)
    poses = np.stack([camera_pose(np.array([xy[i, 0], xy[i, 1], height[i]]), yaw[i], pitch[i], roll[i]) for i in idx])
    dense = np.column_stack([xy, height])
    return Trajectory(poses=poses, kind="walk", dense_positions=dense)


def sample_novel_view(
    layout: SceneLayout, rng: np.random.Generator, num_frames: int = 32, clearance: float = 0.35
) -> Trajectory:
    """A held-out viewpoint trajectory (see the module docstring)."""
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
    idx = uniform_indices(n_dense, num_frames)
    poses = np.stack([camera_pose(np.array([xy[i, 0], xy[i, 1], cam_h]), yaw[i], pitch[i], roll[i]) for i in idx])
    return Trajectory(poses=poses, kind="novel_view", dense_positions=np.column_stack([xy, np.full(n_dense, cam_h)]))


# --- The "frame_objects" camera policy ---

#: camera policies of SynthRooms (``SynthSettings.camera_policy``, ``loc3r synth --camera-policy``)
CAMERA_POLICIES = ("walk", "frame_objects")
#: the most the camera moves / turns (yaw) / tilts (pitch) between consecutive frames, and over the whole clip
_FO_STEP_M, _FO_CLIP_M = 1.2, 8.4
_FO_YAW_DEG, _FO_CLIP_YAW_DEG = 90.0, 540.0
_FO_PITCH_DEG = 30.0
_FO_PAN_VIEWS = 12  # besides looking at each object, every standing point looks in this many directions (panning)
_FO_POSITIONS = 40  # candidate standing points drawn in the free space
_FO_GRID = 40  # planning rays per image row (the image is rendered with ``grid x grid / aspect`` rays)
_FO_SEEN = 0.004  # planned share of pixels for an object to count as seen (the writer's threshold is 0.2 %)
_FO_FRAMED = 0.03  # planned share of pixels of a frame's largest object for the frame to frame it (goal: 2 %)
_FO_BEAM = 16
#: beam-search weights (see _plan_views)
_FO_NEW, _FO_FRAME_BONUS, _FO_WALK, _FO_TURN, _FO_AHEAD = 3.0, 4.0, 0.5, 0.2, 1.0
#: (height range m, pitch range deg) of the two families: the walks' band, and the novel viewpoints' low / high bands
_FO_TRAIN = ((1.2, 1.8), (-30.0, 0.0))
_FO_NOVEL_LOW = ((0.6, 0.9), (0.0, 15.0))
_FO_NOVEL_HIGH = ((1.95, 2.3), (-45.0, -30.0))


def _rotations(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``[V, 3, 3]`` camera-to-world rotations of :func:`camera_pose` without roll (columns right, down, forward)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    forward = np.stack([cp * cy, cp * sy, sp], axis=-1)
    right = np.stack([sy, -cy, np.zeros_like(yaw)], axis=-1)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=-1)


def _plan_rays(hfov_deg: float, aspect: float, grid: int) -> np.ndarray:
    """Camera-frame ray directions ``[P, 3]`` (OpenCV, z = 1) of a ``grid``-wide image of ``hfov_deg``."""
    w, h = grid, max(4, int(round(grid / aspect)))
    f = (w / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    return np.stack([(u - w / 2.0) / f, (v - h / 2.0) / f, np.ones_like(u)], axis=-1).reshape(-1, 3)


def _view_coverage(
    renderer, origins: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, rays: np.ndarray, n_ids: int
) -> np.ndarray:
    """``[V, n_ids]`` share of each view's pixels that show instance id k (the scene's real meshes, occlusion
    included: Embree casts the view's rays)."""
    out = np.zeros((len(yaw), n_ids))
    chunk = max(1, 65536 // len(rays))
    for lo in range(0, len(yaw), chunk):
        hi = min(len(yaw), lo + chunk)
        dirs = np.einsum("pc,vwc->vpw", rays, _rotations(yaw[lo:hi], pitch[lo:hi]))
        orig = np.repeat(origins[lo:hi], len(rays), axis=0)
        ids = renderer.first_hit_instance(orig, dirs.reshape(-1, 3)).astype(np.int64).reshape(hi - lo, -1)
        flat = ids + n_ids * np.arange(hi - lo)[:, None]
        out[lo:hi] = np.bincount(flat.ravel(), minlength=n_ids * (hi - lo)).reshape(hi - lo, n_ids) / len(rays)
    return out


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _plan_views(
    cover: np.ndarray,
    pos_of: np.ndarray,
    yaw: np.ndarray,
    pitch: np.ndarray,
    reach: np.ndarray,
    dist: np.ndarray,
    num_frames: int,
    step_m: float,
    yaw_step: float,
    pitch_step: float,
    rng: np.random.Generator,
) -> list[int]:
    """A sequence of ``num_frames`` candidate views by beam search.

    Each frame scores ``3 x (objects it newly shows) + 4 x [its largest object covers >= 3 %] + 0.5 x min(largest
    share / 10 %, 1) + 0.5 x min(metres walked / (0.6 step), 1) - 0.2 x yaw turned / yaw step``; consecutive views
    must be reachable (standing points within ``step_m`` on a straight line in the free space) and turn at most
    ``yaw_step`` / ``pitch_step``. Beams are ranked by their score plus the objects not yet shown that views within
    the remaining steps could show; the best-scoring sequence is returned (ties broken by a tiny draw from ``rng``).
    """
    seen = cover >= _FO_SEEN  # [V, N]
    # what could still be seen within r more steps from each standing point (an optimistic look-ahead that lets the
    # beam walk towards objects no nearby view shows, through frames that show nothing new)
    n_pos = reach.shape[0]
    from_pos = np.zeros((n_pos, seen.shape[1]), dtype=bool)
    np.logical_or.at(from_pos, pos_of, seen)
    within = [np.eye(n_pos, dtype=bool)]
    for _ in range(1, num_frames):
        within.append((within[-1].astype(np.int32) @ reach.astype(np.int32)) > 0)
    reachable = [(w.astype(np.int32) @ from_pos.astype(np.int32)) > 0 for w in within]  # [r][P, N]
    best = cover.max(axis=1) if cover.shape[1] else np.zeros(len(cover))
    quality = _FO_FRAME_BONUS * (best >= _FO_FRAMED) + 0.5 * np.minimum(best / 0.1, 1.0)
    quality = quality + rng.uniform(0.0, 1e-3, size=len(quality))
    score0 = _FO_NEW * seen.sum(axis=1) + quality
    order = np.argsort(-score0, kind="stable")[:_FO_BEAM]
    beams = [(float(score0[v]), [int(v)], seen[v].copy()) for v in order]
    for k in range(1, num_frames):
        left = num_frames - 1 - k  # steps after this one
        pool: dict[tuple[int, bytes], tuple[float, list[int], np.ndarray]] = {}
        for score, seq, covered in beams:
            v = seq[-1]
            dyaw = np.abs(_wrap(yaw - yaw[v]))
            ok = reach[pos_of[v], pos_of] & (dyaw <= yaw_step + 1e-9) & (np.abs(pitch - pitch[v]) <= pitch_step + 1e-9)
            if not ok.any():
                ok = pos_of == pos_of[v]  # stay: turning on the spot is always possible
            gain = (seen & ~covered).sum(axis=1)
            walked = np.minimum(dist[pos_of[v], pos_of] / (0.6 * step_m), 1.0)
            total = score + _FO_NEW * gain + quality + _FO_WALK * walked - _FO_TURN * dyaw / yaw_step
            total[~ok] = -np.inf
            ahead = total + _FO_AHEAD * (reachable[left][pos_of] & ~(covered | seen)).sum(axis=1)
            for w in np.argsort(-ahead, kind="stable")[:_FO_BEAM]:
                if not np.isfinite(total[w]):
                    break
                cov = covered | seen[w]
                key = (int(w), cov.tobytes())
                if key not in pool or pool[key][1] < ahead[w]:
                    pool[key] = (float(total[w]), float(ahead[w]), [*seq, int(w)], cov)
        beams = [(b[0], b[2], b[3]) for b in sorted(pool.values(), key=lambda b: -b[1])[:_FO_BEAM]]
    return max(beams, key=lambda b: b[0])[1]


def _candidate_views(
    layout: SceneLayout,
    piece: Polygon,
    rng: np.random.Generator,
    cam_h: float,
    pitch_band: tuple[float, float],
    hfov_deg: float,
    aspect: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The ``frame_objects`` candidate views: standing points ``[P, 2]``, and per view its standing point, yaw, pitch
    and the share of its pixels each of ``layout.objects`` covers ``[V, N]``; None when there is no object to look
    at."""
    from loc3r.synthrooms.mesh import build_scene_mesh
    from loc3r.synthrooms.render import SceneRenderer

    p_lo, p_hi = pitch_band
    positions = sample_free_points(piece, rng, _FO_POSITIONS)
    objects = list(layout.objects)
    # from every standing point, look at every object's centre (pitch within the family's band)
    centres = np.array([o.center for o in objects], dtype=np.float64).reshape(-1, 3)
    rel = centres[None, :, :2] - positions[:, None, :]
    horiz = np.hypot(rel[..., 0], rel[..., 1])
    pos_of, obj_of = np.nonzero(horiz >= 0.4)
    if len(pos_of) == 0:
        return None
    yaw = np.arctan2(rel[pos_of, obj_of, 1], rel[pos_of, obj_of, 0])
    pitch = np.clip(np.arctan2(centres[obj_of, 2] - cam_h, horiz[pos_of, obj_of]), p_lo, p_hi)
    # and pans: evenly spaced headings at the band's middle pitch (the frames between two far-apart objects)
    pan = rng.uniform(0.0, 2 * np.pi) + np.arange(_FO_PAN_VIEWS) * (2 * np.pi / _FO_PAN_VIEWS)
    pos_of = np.concatenate([pos_of, np.repeat(np.arange(len(positions)), _FO_PAN_VIEWS)])
    yaw = _wrap(np.concatenate([yaw, np.tile(pan, len(positions))]))
    pitch = np.concatenate([pitch, np.full(len(positions) * _FO_PAN_VIEWS, (p_lo + p_hi) / 2.0)])
    origins = np.column_stack([positions[pos_of], np.full(len(pos_of), cam_h)])
    ids = np.array([o.instance_id for o in objects], dtype=np.int64)
    renderer = SceneRenderer(build_scene_mesh(layout), shadows=False)
    cover = _view_coverage(renderer, origins, yaw, pitch, _plan_rays(hfov_deg, aspect, _FO_GRID), int(ids.max()) + 1)
    return positions, pos_of, yaw, pitch, cover[:, ids]


def object_visibility(
    layout: SceneLayout, rng: np.random.Generator, hfov_deg: float = 60.0, aspect: float = 1.0, clearance: float = 0.35
) -> np.ndarray:
    """``[N]`` the largest share of the pixels each of ``layout.objects`` covers in any candidate view of the
    ``frame_objects`` policy (walk band, 1.5 m): 0 for an object no camera in the walkable space can see (e.g. a box
    of a real layout that lies behind the room's walls) — the ceiling of what any clip of the policy can show."""
    views = _candidate_views(
        layout, _walkable_piece(layout, clearance), rng, 1.5, tuple(np.deg2rad(_FO_TRAIN[1])), hfov_deg, aspect
    )
    return np.zeros(len(layout.objects)) if views is None else views[4].max(axis=0)


def sample_frame_objects(
    layout: SceneLayout,
    rng: np.random.Generator,
    num_frames: int = 32,
    clearance: float = 0.35,
    family: str = "walk",
    hfov_deg: float = 60.0,
    aspect: float = 1.0,
) -> Trajectory:
    """A person filming the room's objects (the ``frame_objects`` policy; see the module docstring).

    ``family`` picks the height and pitch band: ``"walk"`` (the training distribution: 1.2-1.8 m, pitch -30..0 deg)
    or ``"novel_view"`` (held out: low 0.6-0.9 m looking 0..15 deg up, or high 1.95-2.3 m looking 30-45 deg down).
    ``hfov_deg`` and ``aspect`` (width / height) are the camera's, so the planned views are the rendered ones.
    """
    piece = _walkable_piece(layout, clearance)
    if family == "walk":
        (h_lo, h_hi), (p_lo, p_hi) = _FO_TRAIN
        roll_std = 2.0
    else:
        (h_lo, h_hi), (p_lo, p_hi) = _FO_NOVEL_LOW if rng.random() < 0.5 else _FO_NOVEL_HIGH
        h_hi = max(h_lo, min(h_hi, layout.height - 0.25))
        roll_std = 4.0
    cam_h = min(rng.uniform(h_lo, h_hi), layout.height - 0.2)
    p_lo, p_hi = np.deg2rad(p_lo), np.deg2rad(p_hi)
    views = _candidate_views(layout, piece, rng, cam_h, (p_lo, p_hi), hfov_deg, aspect)
    if views is None:  # no object to look at (an empty room): film it as a walk would
        return sample_walk(layout, rng, num_frames, clearance)
    positions, pos_of, yaw, pitch, cover = views
    # standing points reachable from each other in one frame step: close enough, on a straight line in the free space
    steps = max(num_frames - 1, 1)
    step_m = min(_FO_STEP_M, _FO_CLIP_M / steps)
    yaw_step = np.deg2rad(min(_FO_YAW_DEG, _FO_CLIP_YAW_DEG / steps))
    pitch_step = np.deg2rad(_FO_PITCH_DEG)
    dist = np.hypot(*(positions[:, None, :] - positions[None, :, :]).transpose(2, 0, 1))
    reach = dist <= step_m
    for i, j in zip(*np.nonzero(np.triu(reach, 1)), strict=True):
        if not piece.covers(LineString([positions[i], positions[j]])):
            reach[i, j] = reach[j, i] = False
    seq = np.asarray(_plan_views(cover, pos_of, yaw, pitch, reach, dist, num_frames, step_m, yaw_step, pitch_step, rng))
    key_xy, key_yaw, key_pitch = positions[pos_of[seq]], np.unwrap(yaw[seq]), pitch[seq]
    # the video between two planned frames: ease in / out along the straight segment (the person stops at each view)
    seg_time = [
        max(np.hypot(*(key_xy[k + 1] - key_xy[k])) / _SPEED, abs(key_yaw[k + 1] - key_yaw[k]) / _PAN_SPEED)
        for k in range(len(seq) - 1)
    ]
    n_seg = max(2, int(np.ceil(1.5 * max(seg_time, default=0.0) * _FPS)))
    u = np.arange(n_seg) / n_seg
    ease = u * u * (3.0 - 2.0 * u)
    if len(seq) > 1:
        parts_xy, parts_yaw, parts_pitch = [], [], []
        for k in range(len(seq) - 1):
            parts_xy.append(key_xy[k] + np.outer(ease, key_xy[k + 1] - key_xy[k]))
            parts_yaw.append(key_yaw[k] + ease * (key_yaw[k + 1] - key_yaw[k]))
            parts_pitch.append(key_pitch[k] + ease * (key_pitch[k + 1] - key_pitch[k]))
        xy = np.concatenate([*parts_xy, key_xy[-1:]])
        yaw_d = np.concatenate([*parts_yaw, key_yaw[-1:]])
        pitch_d = np.concatenate([*parts_pitch, key_pitch[-1:]])
    else:
        xy, yaw_d, pitch_d = key_xy, key_yaw, key_pitch
    n_dense = len(xy)
    t = np.arange(n_dense) / _FPS
    height = np.minimum(cam_h + 0.02 * np.sin(2 * np.pi * t * _SPEED / 0.7), layout.height - 0.2)
    roll = np.deg2rad(_smooth_noise(rng, n_dense, sigma_samples=_FPS, std=roll_std))
    idx = uniform_indices(n_dense, num_frames)
    poses = np.stack(
        [camera_pose(np.array([xy[i, 0], xy[i, 1], height[i]]), yaw_d[i], pitch_d[i], roll[i]) for i in idx]
    )
    return Trajectory(poses=poses, kind=family, dense_positions=np.column_stack([xy, height]), policy="frame_objects")


def sample_trajectory(
    kind: str,
    layout: SceneLayout,
    rng: np.random.Generator,
    num_frames: int = 32,
    policy: str = "walk",
    hfov_deg: float = 60.0,
    aspect: float = 1.0,
    hold_frames: int = 1,
) -> Trajectory:
    """Dispatch on ``kind`` in :data:`TRAJECTORY_KINDS` and ``policy`` in :data:`CAMERA_POLICIES` (``"walk"``: the
    hand-held walk / novel-view families; ``"frame_objects"``: views planned to frame the room's objects, in the
    walk's or the novel views' height and pitch band). ``hfov_deg`` / ``aspect`` matter to ``frame_objects`` only.

    ``hold_frames``: the camera holds each view for that many consecutive frames (the policy plans
    ``ceil(num_frames / hold_frames)`` views). Why: Qwen2.5-VL's patch embedding fuses 2 consecutive frames into one
    token; with ``hold_frames = 2`` every vision token shows ONE view, so its pixels and its 3D point agree (measured
    on the oracle rung, benchmarks/RESULTS.md "Issue 20")."""
    if policy not in CAMERA_POLICIES:
        raise ValueError(f"unknown camera policy {policy!r}; expected one of {CAMERA_POLICIES}")
    if hold_frames < 1:
        raise ValueError(f"hold_frames must be >= 1, got {hold_frames}")
    num_views = -(-num_frames // hold_frames)
    if policy == "frame_objects":
        traj = sample_frame_objects(layout, rng, num_views, family=kind, hfov_deg=hfov_deg, aspect=aspect)
    elif kind == "walk":
        traj = sample_walk(layout, rng, num_views)
    else:
        traj = sample_novel_view(layout, rng, num_views)
    if hold_frames > 1:
        traj.poses = np.repeat(traj.poses, hold_frames, axis=0)[:num_frames]
    return traj
