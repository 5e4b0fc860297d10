"""The one coordinate convention of loc3r (DESIGN.md §3) and the geometry built on it.

Conventions used everywhere in the package:

* Units are metres and radians.
* World frame: right-handed, z up (gravity); for generated scenes the floor is at z = 0.
* Camera pose: 4x4 **camera-to-world**, camera axes as OpenCV (x right, y down, z forward).
* BEV ("anchor") frame of a clip: origin = the first frame's camera centre with z dropped; x axis = the
  first camera's viewing direction projected on the floor plane; y = z × x (to the left); z up.
  Every layout / situation target and prediction lives in this frame. Because it is built from the
  first pose only, a gravity-preserving rigid motion of the whole world (rotation about z, any
  translation) leaves all BEV x-y coordinates and yaws unchanged.
* Yaw: heading of a forward direction f in the BEV (or world) frame, ``atan2(f_y, f_x)`` in [-pi, pi).

All functions are vectorised with NumPy; none loops over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_ROT_TOL = 1e-3


class GeometryError(ValueError):
    """Invalid geometric input (non-finite, non-rigid pose, bad shape, ...)."""


def wrap_angle(theta: np.ndarray | float) -> np.ndarray | float:
    """Wrap angles (radians) to [-pi, pi)."""
    if isinstance(theta, float | int) and not isinstance(theta, bool):
        # scalar fast path (hot in situation generation); Python's float % is the same floor-mod as np.mod
        wrapped_scalar = (float(theta) + math.pi) % (2.0 * math.pi) - math.pi
        return wrapped_scalar - 2.0 * math.pi if wrapped_scalar >= math.pi else wrapped_scalar
    wrapped = np.mod(np.asarray(theta, dtype=np.float64) + np.pi, 2.0 * np.pi) - np.pi
    # For theta just below -pi, theta + pi is a tiny negative number whose mod rounds up to exactly 2 pi,
    # which would give +pi; map that edge back into [-pi, pi).
    wrapped = np.where(wrapped >= np.pi, wrapped - 2.0 * np.pi, wrapped)
    if np.ndim(wrapped) == 0:
        return float(wrapped)
    return wrapped


def yaw_of_direction(direction: np.ndarray) -> np.ndarray | float:
    """Yaw ``atan2(f_y, f_x)`` of direction vector(s) ``[..., >=2]``, in [-pi, pi)."""
    direction = np.asarray(direction, dtype=np.float64)
    return wrap_angle(np.arctan2(direction[..., 1], direction[..., 0]))


def yaw_to_direction(yaw: np.ndarray | float) -> np.ndarray:
    """Unit floor-plane direction(s) ``[..., 2]`` for yaw angle(s)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.cos(yaw), np.sin(yaw)], axis=-1)


def validate_pose(pose: np.ndarray, where: str = "pose") -> np.ndarray:
    """Check that ``pose`` is a finite 4x4 rigid transform; return it as float64.

    ``where`` names the file / sample / field for the error message.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4):
        raise GeometryError(f"{where}: expected a 4x4 camera-to-world matrix, got shape {pose.shape}")
    if not np.all(np.isfinite(pose)):
        raise GeometryError(f"{where}: pose has non-finite entries (inf/NaN)")
    if not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise GeometryError(f"{where}: last row of the pose must be [0, 0, 0, 1], got {pose[3].tolist()}")
    rot = pose[:3, :3]
    if not np.allclose(rot.T @ rot, np.eye(3), atol=_ROT_TOL) or np.linalg.det(rot) < 0.0:
        raise GeometryError(f"{where}: rotation part is not a proper rotation (R^T R != I or det < 0)")
    return pose


def validate_poses(poses: np.ndarray, where: str = "poses") -> np.ndarray:
    """Vectorised :func:`validate_pose` over ``[T, 4, 4]``; the error names the first bad frame."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise GeometryError(f"{where}: expected [T, 4, 4] camera-to-world matrices, got shape {poses.shape}")
    finite = np.isfinite(poses).all(axis=(1, 2))
    rot = poses[:, :3, :3]
    rtr = np.einsum("tji,tjk->tik", rot, rot)
    rigid = np.abs(rtr - np.eye(3)).max(axis=(1, 2)) < _ROT_TOL
    bottom = np.abs(poses[:, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1) < 1e-6
    with np.errstate(invalid="ignore"):
        proper = np.linalg.det(np.where(finite[:, None, None], rot, np.eye(3))) > 0
    ok = finite & rigid & bottom & proper
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        validate_pose(poses[bad], f"{where}[{bad}]")  # raises with the precise reason
    return poses


def camera_center(pose: np.ndarray) -> np.ndarray:
    """Camera centre(s) in world coordinates, ``[..., 3]``."""
    return np.asarray(pose)[..., :3, 3]


def camera_forward(pose: np.ndarray) -> np.ndarray:
    """Viewing direction(s) (camera +z axis) in world coordinates, ``[..., 3]``."""
    return np.asarray(pose)[..., :3, 2]


@dataclass(frozen=True)
class AnchorFrame:
    """Rigid map world -> BEV frame of a clip: ``p_bev = R @ (p_world - origin)``.

    ``rotation`` is a rotation about z only, so BEV z equals world z (floor stays at z = 0).
    """

    origin: np.ndarray  # (3,) world coordinates of the BEV origin (z = 0)
    yaw: float  # world yaw of the BEV x axis

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation world -> BEV."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])

    @property
    def world_to_bev(self) -> np.ndarray:
        """4x4 homogeneous transform world -> BEV."""
        mat = np.eye(4)
        mat[:3, :3] = self.rotation
        mat[:3, 3] = -self.rotation @ self.origin
        return mat

    @property
    def bev_to_world(self) -> np.ndarray:
        """4x4 homogeneous transform BEV -> world."""
        return np.linalg.inv(self.world_to_bev)

    def points_to_bev(self, points: np.ndarray) -> np.ndarray:
        """World points ``[..., 3]`` -> BEV points ``[..., 3]`` (NaN stays NaN)."""
        points = np.asarray(points, dtype=np.float64)
        return (points - self.origin) @ self.rotation.T

    def points_to_world(self, points: np.ndarray) -> np.ndarray:
        """BEV points ``[..., 3]`` (or ``[..., 2]`` on the floor) -> world points ``[..., 3]``."""
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-1] == 2:
            points = np.concatenate([points, np.zeros(points.shape[:-1] + (1,))], axis=-1)
        return points @ self.rotation + self.origin

    def yaw_to_bev(self, yaw_world: np.ndarray | float) -> np.ndarray | float:
        return wrap_angle(np.asarray(yaw_world) - self.yaw)

    def yaw_to_world(self, yaw_bev: np.ndarray | float) -> np.ndarray | float:
        return wrap_angle(np.asarray(yaw_bev) + self.yaw)

    def poses_to_bev(self, poses: np.ndarray) -> np.ndarray:
        """Camera-to-world poses ``[..., 4, 4]`` -> camera-to-BEV poses."""
        return self.world_to_bev @ np.asarray(poses, dtype=np.float64)


def anchor_frame(first_pose: np.ndarray, where: str = "poses[0]") -> AnchorFrame:
    """The BEV anchor frame of a clip from its first camera-to-world pose (DESIGN.md §3).

    If the first camera looks (almost) straight up or down its viewing direction has no floor
    projection; the image "up" direction (camera -y) projected on the floor is used instead.
    """
    pose = validate_pose(first_pose, where)
    forward = camera_forward(pose)
    if np.hypot(forward[0], forward[1]) < 1e-3:
        forward = -pose[:3, 1]
    origin = camera_center(pose).copy()
    origin[2] = 0.0
    return AnchorFrame(origin=origin, yaw=float(np.arctan2(forward[1], forward[0])))


def unproject_pixels(u: np.ndarray, v: np.ndarray, depth: np.ndarray, intrinsic: np.ndarray) -> np.ndarray:
    """Pixel coordinates (u right, v down, pixel centres at integer + 0.5) and metric depth
    -> camera-frame points ``[..., 3]`` (OpenCV axes)."""
    fx, fy, cx, cy = intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
    x = (u - cx) / fx * depth
    y = (v - cy) / fy * depth
    return np.stack([x, y, depth], axis=-1)


def project_points(points_world: np.ndarray, intrinsic: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points ``[..., 3]`` -> pixel coordinates ``[..., 2]`` (u, v) and camera depth ``[...]``.

    Points behind the camera get depth <= 0; their pixel coordinates are meaningless.
    """
    world_to_cam = np.linalg.inv(np.asarray(pose, dtype=np.float64))
    pts = np.asarray(points_world, dtype=np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = pts[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsic[0, 0] * pts[..., 0] / z + intrinsic[0, 2]
        v = intrinsic[1, 1] * pts[..., 1] / z + intrinsic[1, 2]
    return np.stack([u, v], axis=-1), z


def depth_to_world_points(
    depth: np.ndarray, intrinsic: np.ndarray, pose: np.ndarray, max_depth: float = 20.0
) -> np.ndarray:
    """Unproject a metric depth map ``[H, W]`` to world points ``[H, W, 3]``.

    Pixels with depth that is NaN, inf, <= 0 or > ``max_depth`` are invalid and come back as NaN, so
    they can never turn into a wrong target. Pixel (i, j) is sampled at its centre (j + 0.5, i + 0.5).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise GeometryError(f"depth: expected an [H, W] map, got shape {depth.shape}")
    if not (np.isfinite(max_depth) and max_depth > 0):
        raise GeometryError(f"max_depth must be a positive number of metres, got {max_depth!r}")
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0) & (depth <= max_depth)
    safe_depth = np.where(valid, depth, 1.0)
    cam = unproject_pixels(u, v, safe_depth, np.asarray(intrinsic, dtype=np.float64))
    pose = np.asarray(pose, dtype=np.float64)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    world[~valid] = np.nan
    return world


@dataclass(frozen=True)
class VisionSegment:
    """A run of consecutive LLM vision tokens that tile frames as a regular grid.

    The tokens are row-major over ``grid_h x grid_w`` cells; cell (r, c) covers the normalised image
    rectangle ``[c / grid_w, (c + 1) / grid_w) x [r / grid_h, (r + 1) / grid_h)`` of **every** frame in
    ``frame_indices`` (Qwen2.5-VL merges 2 frames per token; LLaVA-OneVision 1). ``extra_tokens``
    tokens follow the grid and have no footprint (e.g. LLaVA-OneVision's newline token).
    """

    frame_indices: tuple[int, ...]
    grid_h: int
    grid_w: int
    extra_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        return self.grid_h * self.grid_w + self.extra_tokens


def pool_token_points(
    points: np.ndarray,
    segments: Sequence[VisionSegment],
    min_valid_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean 3D point of every vision token's footprint.

    Args:
        points: ``[T, H, W, 3]`` per-pixel points (any frame, e.g. world or BEV); NaN marks invalid pixels.
        segments: the token layout of the clip, in token order.
        min_valid_fraction: a token whose footprint has fewer valid pixels than this fraction of its
            pixels is masked out.

    Returns:
        ``(token_points [N, 3], valid [N])`` with N = total tokens; invalid tokens have NaN points.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 4 or points.shape[-1] != 3:
        raise GeometryError(f"points: expected [T, H, W, 3], got shape {points.shape}")
    num_frames, h, w, _ = points.shape
    valid_px = np.isfinite(points).all(axis=-1)
    zero_filled = np.where(valid_px[..., None], points, 0.0)
    _check_segments(segments, num_frames)
    out_points: list[np.ndarray] = []
    out_valid: list[np.ndarray] = []
    cell_cache: dict[tuple[int, int], np.ndarray] = {}
    for seg in segments:
        key = (seg.grid_h, seg.grid_w)
        if key not in cell_cache:
            # A pixel belongs to the cell that contains its centre (i + 0.5) / h, i.e. the cell holding the
            # larger part of it when the grid does not divide the map: floor((2 i + 1) * grid / (2 h)).
            cell_cache[key] = _token_cells(h, w, seg.grid_h, seg.grid_w)
        cell = cell_cache[key]
        n_cells = seg.grid_h * seg.grid_w
        frames = list(seg.frame_indices)
        cell_ids = np.tile(cell, len(frames))
        vals = zero_filled[frames].reshape(-1, 3)
        mask = valid_px[frames].reshape(-1).astype(np.float64)
        count = np.bincount(cell_ids, weights=mask, minlength=n_cells)
        total = np.bincount(cell_ids, minlength=n_cells).astype(np.float64)
        sums = np.stack([np.bincount(cell_ids, weights=vals[:, k], minlength=n_cells) for k in range(3)], -1)
        ok = (count > 0) & (count >= min_valid_fraction * total)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / count[:, None]
        mean[~ok] = np.nan
        out_points.append(mean)
        out_valid.append(ok)
        if seg.extra_tokens:
            out_points.append(np.full((seg.extra_tokens, 3), np.nan))
            out_valid.append(np.zeros(seg.extra_tokens, dtype=bool))
    if not out_points:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    return np.concatenate(out_points), np.concatenate(out_valid)


def _check_segments(segments: Sequence[VisionSegment], num_frames: int) -> None:
    for seg_index, seg in enumerate(segments):
        if any(not 0 <= f < num_frames for f in seg.frame_indices):
            raise GeometryError(
                f"segment {seg_index}: frame indices {seg.frame_indices} out of range for {num_frames} frames"
            )


def _token_cells(h: int, w: int, grid_h: int, grid_w: int) -> np.ndarray:
    """Cell index of every pixel of an ``[h, w]`` map on a ``grid_h x grid_w`` token grid (the cell containing
    the pixel centre, as :func:`pool_token_points` assigns them)."""
    rows = ((2 * np.arange(h) + 1) * grid_h) // (2 * h)
    cols = ((2 * np.arange(w) + 1) * grid_w) // (2 * w)
    return (rows[:, None] * grid_w + cols[None, :]).ravel()


def pool_token_labels(
    labels: np.ndarray,
    segments: Sequence[VisionSegment],
    num_classes: int,
    min_valid_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Class histogram of every vision token's footprint (the targets of the per-token recognition loss).

    Args:
        labels: ``[T, H, W]`` integer class per pixel, ``-1`` (or any value outside ``[0, num_classes)``) for
            unlabelled pixels.
        segments: the token layout of the clip, in token order (footprints as in :func:`pool_token_points`).
        num_classes: C.
        min_valid_fraction: a token with fewer labelled pixels than this fraction of its footprint is masked.

    Returns:
        ``(distribution [N, C], valid [N])``: the fraction of the token's labelled pixels in each class (rows sum
        to 1 where valid, 0 elsewhere).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise GeometryError(f"labels: expected [T, H, W], got shape {labels.shape}")
    num_frames, h, w = labels.shape
    labelled = (labels >= 0) & (labels < num_classes)
    _check_segments(segments, num_frames)
    out_dist: list[np.ndarray] = []
    out_valid: list[np.ndarray] = []
    for seg in segments:
        n_cells = seg.grid_h * seg.grid_w
        frames = list(seg.frame_indices)
        cells = np.tile(_token_cells(h, w, seg.grid_h, seg.grid_w), len(frames))
        lab = labels[frames].reshape(-1).astype(np.int64)
        ok_px = labelled[frames].reshape(-1)
        hist = np.bincount(cells[ok_px] * num_classes + lab[ok_px], minlength=n_cells * num_classes)
        hist = hist.reshape(n_cells, num_classes).astype(np.float64)
        count = hist.sum(axis=1)
        total = np.bincount(cells, minlength=n_cells).astype(np.float64)
        ok = (count > 0) & (count >= min_valid_fraction * total)
        dist = np.where(ok[:, None], hist / np.maximum(count, 1.0)[:, None], 0.0)
        out_dist.append(dist)
        out_valid.append(ok)
        if seg.extra_tokens:
            out_dist.append(np.zeros((seg.extra_tokens, num_classes)))
            out_valid.append(np.zeros(seg.extra_tokens, dtype=bool))
    if not out_dist:
        return np.zeros((0, num_classes)), np.zeros(0, dtype=bool)
    return np.concatenate(out_dist), np.concatenate(out_valid)


#: Error model of a monocular metric depth estimator on indoor video, for the cue-injection baseline without a depth
#: sensor (``Loc3rConfig.cue_depth_error``). The values and the published figures they come from are in DESIGN.md §3
#: ("Estimated depth") and benchmarks/RESULTS.md.
MONOCULAR_DEPTH_ERROR: dict[str, float] = {
    "scale_sigma": 0.10,  # per-clip log-scale error (metric scale is what monocular estimators get most wrong)
    "relative_sigma": 0.06,  # per-pixel relative error after scale alignment, smooth over `grid` cells
    "grid": 8.0,  # the relative error is constant on a grid x grid partition of each frame (smooth, not white)
    "hole_fraction": 0.02,  # fraction of grid cells with no estimate (NaN)
}
_DEPTH_ERROR_KEYS = frozenset(MONOCULAR_DEPTH_ERROR)


def check_depth_error(error: dict[str, float], where: str = "depth error") -> dict[str, float]:
    """Validate a depth error model: exactly the keys of :data:`MONOCULAR_DEPTH_ERROR`, finite, in range."""
    if not isinstance(error, dict) or set(error) != _DEPTH_ERROR_KEYS:
        raise GeometryError(f"{where}: must have exactly the keys {sorted(_DEPTH_ERROR_KEYS)}, got {error!r}")
    values = {k: float(v) for k, v in error.items()}
    if not all(np.isfinite(v) and v >= 0 for v in values.values()):
        raise GeometryError(f"{where}: values must be finite and >= 0, got {error!r}")
    if values["hole_fraction"] >= 1 or values["grid"] < 1:
        raise GeometryError(f"{where}: need hole_fraction < 1 and grid >= 1, got {error!r}")
    return values


def simulate_depth_error(points: np.ndarray, poses: np.ndarray, error: dict[str, float], seed: int) -> np.ndarray:
    """World points ``[T, H, W, 3]`` as a monocular depth estimator would give them.

    Every pixel's point moves along its camera ray: ``p' = c_t + s · (1 + ε_cell) · (p - c_t)`` with ``c_t`` the
    camera centre of frame ``t`` (``poses[t][:3, 3]``), ``s = exp(N(0, scale_sigma²))`` one scale per clip, and
    ``ε_cell ~ N(0, relative_sigma²)`` constant on each cell of a ``grid x grid`` partition of each frame; cells
    drawn with probability ``hole_fraction`` become NaN (no estimate). Scaling the distance along the ray scales the
    z-depth by the same factor, so this is exactly a depth-map error. Deterministic in ``seed``; invalid (NaN)
    points stay invalid.
    """
    error = check_depth_error(error)
    points = np.asarray(points, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if points.ndim != 4 or points.shape[-1] != 3 or poses.shape != (points.shape[0], 4, 4):
        raise GeometryError(
            f"simulate_depth_error: points [T, H, W, 3] and poses [T, 4, 4], got {points.shape}, {poses.shape}"
        )
    t, h, w, _ = points.shape
    rng = np.random.default_rng(seed)
    scale = float(np.exp(rng.normal(0.0, error["scale_sigma"])))
    grid = int(error["grid"])
    eps = rng.normal(0.0, error["relative_sigma"], size=(t, grid, grid))
    holes = rng.random((t, grid, grid)) < error["hole_fraction"]
    rows = (np.arange(h) * grid) // h
    cols = (np.arange(w) * grid) // w
    factor = scale * (1.0 + eps[:, rows][:, :, cols])  # [T, H, W]
    factor[holes[:, rows][:, :, cols]] = np.nan
    centres = poses[:, None, None, :3, 3]
    return centres + factor[..., None] * (points - centres)
