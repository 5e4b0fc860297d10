"""Property tests of the one coordinate convention (loc3r.core.geometry, DESIGN.md §3, issue 2 part 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import gravity_motion, random_rotation
from loc3r.core.geometry import (
    GeometryError,
    VisionSegment,
    anchor_frame,
    depth_to_world_points,
    pool_token_points,
    project_points,
    unproject_pixels,
    validate_pose,
    validate_poses,
    wrap_angle,
    yaw_of_direction,
    yaw_to_direction,
)
from loc3r.objectives.camera_prior import pose_camera_features

SETTINGS = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------------------------------------- helpers
def random_pose(rng: np.random.Generator, extent: float = 5.0) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = random_rotation(rng)
    pose[:3, 3] = rng.uniform(-extent, extent, size=3)
    return pose


def intrinsic(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


K_SMALL = intrinsic(8.0, 9.0, 5.0, 4.0)  # for 8 x 10 depth maps
SEGMENTS = (VisionSegment((0, 1), 2, 3), VisionSegment((2,), 4, 5, extra_tokens=1))


def random_depth(rng: np.random.Generator, num_frames: int, h: int = 8, w: int = 10) -> np.ndarray:
    depth = rng.uniform(0.3, 6.0, size=(num_frames, h, w))
    bad = rng.random(size=depth.shape)
    depth[bad < 0.05] = np.nan
    depth[(bad >= 0.05) & (bad < 0.08)] = 0.0
    depth[(bad >= 0.08) & (bad < 0.10)] = -1.0
    depth[(bad >= 0.10) & (bad < 0.12)] = np.inf
    return depth


def bev_targets(depth: np.ndarray, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layout-target pipeline: depth + pose -> world points -> anchor/BEV frame -> per-token means."""
    world = np.stack([depth_to_world_points(d, K_SMALL, p) for d, p in zip(depth, poses, strict=True)])
    anchor = anchor_frame(poses[0])
    tokens, valid = pool_token_points(anchor.points_to_bev(world), SEGMENTS)
    return world, tokens, valid


# ------------------------------------------------------------------------------ rigid-motion invariance
@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    angle=st.one_of(st.floats(-100.0, 100.0, allow_nan=False), st.sampled_from([math.pi, -math.pi, 0.0])),
    translation=st.tuples(*[st.floats(-1e3, 1e3, allow_nan=False)] * 3),
)
def test_gravity_preserving_motion_leaves_targets_unchanged(
    seed: int, angle: float, translation: tuple[float, float, float]
) -> None:
    rng = np.random.default_rng(seed)
    poses = np.stack([random_pose(rng) for _ in range(3)])
    depth = random_depth(rng, 3)
    agent_pos = rng.uniform(-5, 5, size=3)
    agent_yaw = float(rng.uniform(-10, 10))

    motion = gravity_motion(angle, np.asarray(translation))
    moved_poses = motion @ poses

    world, tokens, valid = bev_targets(depth, poses)
    moved_world, moved_tokens, moved_valid = bev_targets(depth, moved_poses)

    # the whole world moved: unprojected points follow the motion exactly
    finite = np.isfinite(world).all(-1)
    np.testing.assert_array_equal(np.isfinite(moved_world).all(-1), finite)
    np.testing.assert_allclose(moved_world[finite], world[finite] @ motion[:3, :3].T + motion[:3, 3], atol=1e-8)

    # every BEV layout target (x, y) and its validity is unchanged
    np.testing.assert_array_equal(moved_valid, valid)
    assert valid.any() and not valid[-1]  # the extra token never has a target
    np.testing.assert_allclose(moved_tokens[valid, :2], tokens[valid, :2], atol=1e-7)
    # BEV z is world height, so it moves with the vertical translation only
    np.testing.assert_allclose(moved_tokens[valid, 2] - tokens[valid, 2], translation[2], atol=1e-7)

    # the situation pose (agent position x-y and yaw in the anchor frame) is unchanged
    anchor, moved_anchor = anchor_frame(poses[0]), anchor_frame(moved_poses[0])
    moved_pos = motion[:3, :3] @ agent_pos + motion[:3, 3]
    np.testing.assert_allclose(
        moved_anchor.points_to_bev(moved_pos)[:2], anchor.points_to_bev(agent_pos)[:2], atol=1e-7
    )
    yaw_diff = wrap_angle(moved_anchor.yaw_to_bev(agent_yaw + angle) - anchor.yaw_to_bev(agent_yaw))
    assert min(abs(yaw_diff), abs(abs(yaw_diff) - 2 * math.pi)) < 1e-9

    # and so are the camera-prior pose features
    np.testing.assert_allclose(
        pose_camera_features(moved_poses, moved_anchor), pose_camera_features(poses, anchor), atol=1e-5
    )


@pytest.mark.parametrize("look", ["down", "up"])
def test_invariance_with_vertical_first_camera(look: str) -> None:
    """The anchor falls back to the image-up direction when the first camera looks straight down/up."""
    pose = np.eye(4)
    # looking down: camera z = world -z (x stays +x, so image-up = world +y); looking up: identity rotation
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0]) if look == "down" else np.eye(3)
    pose[:3, 3] = [1.0, 2.0, 2.5]
    rng = np.random.default_rng(3)
    poses = np.stack([pose, random_pose(rng), random_pose(rng)])
    validate_poses(poses)
    depth = random_depth(rng, 3)
    motion = gravity_motion(1.234, np.array([3.0, -7.0, 0.5]))
    _, tokens, valid = bev_targets(depth, poses)
    _, moved_tokens, moved_valid = bev_targets(depth, motion @ poses)
    np.testing.assert_array_equal(moved_valid, valid)
    np.testing.assert_allclose(moved_tokens[valid, :2], tokens[valid, :2], atol=1e-7)


def test_anchor_frame_hand_computed() -> None:
    pose = np.eye(4)
    pose[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # level camera looking along world +x
    pose[:3, :3] = gravity_motion(math.pi / 2, np.zeros(3))[:3, :3] @ pose[:3, :3]  # now looking along +y
    pose[:3, 3] = [1.0, 2.0, 1.6]
    anchor = anchor_frame(pose)
    assert anchor.yaw == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(anchor.origin, [1.0, 2.0, 0.0])
    # a point 3 m in front of the camera and 1 m to its left (world -x) on the floor
    np.testing.assert_allclose(anchor.points_to_bev(np.array([0.0, 5.0, 0.0])), [3.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(anchor.points_to_world(np.array([3.0, 1.0])), [0.0, 5.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(anchor.world_to_bev @ anchor.bev_to_world, np.eye(4), atol=1e-12)
    assert anchor.yaw_to_bev(math.pi / 2) == pytest.approx(0.0)
    assert anchor.yaw_to_world(0.0) == pytest.approx(math.pi / 2)


# ------------------------------------------------------------------------------------------------ wrap_angle
def assert_same_angle(a: float, b: float, tol: float) -> None:
    assert abs(math.sin(a) - math.sin(b)) <= tol and abs(math.cos(a) - math.cos(b)) <= tol


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_wrap_angle_range_and_mod_2pi(theta: float) -> None:
    w = wrap_angle(theta)
    assert isinstance(w, float)
    assert -math.pi <= w < math.pi
    assert_same_angle(w, theta, 1e-9 + 16 * float(np.spacing(abs(theta))))
    assert wrap_angle(w) == pytest.approx(w, abs=1e-12)  # idempotent


def test_wrap_angle_edges() -> None:
    assert wrap_angle(math.pi) == -math.pi
    assert wrap_angle(-math.pi) == -math.pi
    assert wrap_angle(0.0) == 0.0
    assert wrap_angle(2 * math.pi) == pytest.approx(0.0, abs=1e-15)
    # just below -pi: ((θ + π) mod 2π) rounds to exactly 2π; must still land in [-π, π)
    below = float(np.nextafter(-math.pi, -10.0))
    assert -math.pi <= wrap_angle(below) < math.pi
    assert -math.pi <= wrap_angle(-math.pi - 1e-17) < math.pi
    for k in range(-7, 8):
        w = wrap_angle(math.pi + 2 * math.pi * k)
        assert -math.pi <= w < math.pi
        assert_same_angle(w, math.pi, 1e-12)
    for huge in (1e12, -1e12, 1e15, -1e300, 1e300):
        assert -math.pi <= wrap_angle(huge) < math.pi
    arr = wrap_angle(np.array([math.pi, -math.pi, 3 * math.pi / 2, -7.0, below]))
    assert isinstance(arr, np.ndarray) and arr.shape == (5,)
    assert ((arr >= -math.pi) & (arr < math.pi)).all()
    np.testing.assert_allclose(arr[:4], [-math.pi, -math.pi, -math.pi / 2, -7.0 + 2 * math.pi], atol=1e-12)


@SETTINGS
@given(st.floats(-50.0, 50.0, allow_nan=False), st.floats(0.01, 100.0))
def test_yaw_direction_round_trip(yaw: float, scale: float) -> None:
    direction = yaw_to_direction(yaw) * scale
    back = yaw_of_direction(direction)
    assert -math.pi <= back < math.pi
    assert_same_angle(back, yaw, 1e-9)


# ------------------------------------------------------------------------------------- project / unproject
@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    u=st.floats(0.0, 640.0),
    v=st.floats(0.0, 480.0),
    depth=st.floats(0.05, 50.0),
    fx=st.floats(50.0, 1500.0),
    fy=st.floats(50.0, 1500.0),
)
def test_project_of_unproject_is_identity(seed: int, u: float, v: float, depth: float, fx: float, fy: float) -> None:
    rng = np.random.default_rng(seed)
    k = intrinsic(fx, fy, 320.0, 240.0)
    pose = random_pose(rng, extent=20.0)
    cam = unproject_pixels(np.array(u), np.array(v), np.array(depth), k)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    uv, z = project_points(world, k, pose)
    np.testing.assert_allclose(uv, [u, v], rtol=0, atol=1e-6)
    assert z == pytest.approx(depth, rel=1e-9)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_unproject_of_project_is_identity_in_front_of_camera(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = intrinsic(500.0, 480.0, 320.0, 240.0)
    pose = random_pose(rng, extent=20.0)
    cam = np.stack([rng.uniform(-3, 3, 20), rng.uniform(-3, 3, 20), rng.uniform(0.1, 30, 20)], -1)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    uv, z = project_points(world, k, pose)
    assert (z > 0).all()
    back_cam = unproject_pixels(uv[:, 0], uv[:, 1], z, k)
    np.testing.assert_allclose(back_cam @ pose[:3, :3].T + pose[:3, 3], world, atol=1e-8)


def test_depth_map_pixel_centres_hand_computed() -> None:
    """Pixel (i, j) is sampled at its centre (j + 0.5, i + 0.5): with cx = W/2 the centre pixels are symmetric."""
    k = intrinsic(2.0, 2.0, 2.0, 1.0)  # 2 x 4 map
    depth = np.full((2, 4), 2.0)
    pts = depth_to_world_points(depth, k, np.eye(4))
    np.testing.assert_allclose(pts[0, 0], [(0.5 - 2.0) / 2 * 2, (0.5 - 1.0) / 2 * 2, 2.0])
    np.testing.assert_allclose(pts[1, 3], [(3.5 - 2.0) / 2 * 2, (1.5 - 1.0) / 2 * 2, 2.0])
    uv, z = project_points(pts, k, np.eye(4))
    np.testing.assert_allclose(uv[1, 2], [2.5, 1.5])


# ------------------------------------------------------------------------------------------- validate_pose(s)
def _bad_poses() -> list[tuple[str, np.ndarray, str]]:
    good = random_pose(np.random.default_rng(0))
    nan = good.copy()
    nan[0, 3] = np.nan
    inf = good.copy()
    inf[1, 1] = np.inf
    scaled = good.copy()
    scaled[:3, :3] *= 1.1
    sheared = good.copy()
    sheared[0, 1] += 0.2
    reflected = good.copy()
    reflected[:3, 0] *= -1.0
    last_row = good.copy()
    last_row[3] = [0.0, 0.0, 0.1, 1.0]
    return [
        ("nan", nan, "non-finite"),
        ("inf", inf, "non-finite"),
        ("scaled", scaled, "not a proper rotation"),
        ("sheared", sheared, "not a proper rotation"),
        ("reflected", reflected, "not a proper rotation"),
        ("last_row", last_row, "last row"),
        ("shape", good[:3], "4x4"),
    ]


@pytest.mark.parametrize(("name", "pose", "reason"), _bad_poses(), ids=[b[0] for b in _bad_poses()])
def test_validate_pose_rejects(name: str, pose: np.ndarray, reason: str) -> None:
    field = f"scene0000_00/pose/{name}.txt"
    with pytest.raises(GeometryError, match=rf"^{field}: .*{reason}"):
        validate_pose(pose, field)


@pytest.mark.parametrize(("name", "pose", "reason"), _bad_poses()[:-1], ids=[b[0] for b in _bad_poses()[:-1]])
def test_validate_poses_names_the_bad_frame(name: str, pose: np.ndarray, reason: str) -> None:
    rng = np.random.default_rng(1)
    poses = np.stack([random_pose(rng), random_pose(rng), pose, random_pose(rng)])
    with pytest.raises(GeometryError, match=rf"sample 'x' field 'poses'\[2\]: .*{reason}"):
        validate_poses(poses, "sample 'x' field 'poses'")


def test_validate_poses_accepts_rigid_and_rejects_shapes() -> None:
    rng = np.random.default_rng(2)
    poses = np.stack([random_pose(rng) for _ in range(5)])
    np.testing.assert_array_equal(validate_poses(poses), poses)
    np.testing.assert_array_equal(validate_pose(poses[0]), poses[0])
    with pytest.raises(GeometryError, match=r"^poses: expected \[T, 4, 4\]"):
        validate_poses(poses[0])
    with pytest.raises(GeometryError, match=r"expected \[T, 4, 4\]"):
        validate_poses(np.zeros((2, 3, 4)))


# ------------------------------------------------------------------------------------ depth and token masks
def test_depth_to_world_points_masks_invalid_depth() -> None:
    depth = np.array([[np.nan, -1.0, 0.0], [np.inf, 25.0, 2.0]])
    pts = depth_to_world_points(depth, intrinsic(1.0, 1.0, 1.5, 1.0), np.eye(4), max_depth=20.0)
    assert pts.shape == (2, 3, 3)
    valid = np.isfinite(pts).all(-1)
    np.testing.assert_array_equal(valid, [[False, False, False], [False, False, True]])
    assert np.isnan(pts[~valid]).all()  # invalid pixels are NaN in every coordinate
    np.testing.assert_allclose(pts[1, 2], [(2.5 - 1.5) * 2.0, (1.5 - 1.0) * 2.0, 2.0])
    with pytest.raises(GeometryError, match=r"depth: expected an \[H, W\] map"):
        depth_to_world_points(np.zeros((1, 2, 3)), np.eye(3), np.eye(4))


def test_pool_token_points_footprint_hand_computed() -> None:
    """2 frames of 4 x 6 pixels, one 2 x 3 token grid merging both frames: each token = 2 x 2 pixels x 2 frames."""
    t, h, w = 2, 4, 6
    f, i, j = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    points = np.stack([100.0 * f + 10.0 * i + j, np.ones_like(f, dtype=float), np.zeros_like(f, dtype=float)], -1)
    tokens, valid = pool_token_points(points, [VisionSegment((0, 1), 2, 3)])
    assert tokens.shape == (6, 3) and valid.all()
    for r in range(2):
        for c in range(3):
            # mean over frames {0,1} (50), rows {2r, 2r+1} (10 (2r + 0.5)), cols {2c, 2c+1} (2c + 0.5)
            assert tokens[r * 3 + c, 0] == pytest.approx(50.0 + 10.0 * (2 * r + 0.5) + (2 * c + 0.5))
    np.testing.assert_allclose(tokens[:, 1:], [[1.0, 0.0]] * 6)
    # one frame per segment, in token order
    tokens2, _ = pool_token_points(points, [VisionSegment((1,), 1, 1), VisionSegment((0,), 2, 1)])
    np.testing.assert_allclose(tokens2[:, 0], [100.0 + 15.0 + 2.5, 5.0 + 2.5, 25.0 + 2.5])


@pytest.mark.parametrize(
    ("size", "grid", "expected_cells"),
    [
        (5, 2, [[0, 1], [2, 3, 4]]),  # pixel 2's centre (0.5) lies in [1/2, 1): the second cell
        (10, 3, [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]),  # pixel 3 = [0.3, 0.4), mostly in the second third
        (4, 4, [[0], [1], [2], [3]]),
    ],
)
def test_pool_token_points_footprint_non_divisible(size: int, grid: int, expected_cells: list[list[int]]) -> None:
    """When the grid does not divide the map, each pixel goes to the cell containing its centre."""
    rows = np.arange(size, dtype=float)
    points = np.zeros((1, size, 1, 3))
    points[0, :, 0, 0] = 2.0**rows  # sums identify the set of pixels exactly
    tokens, valid = pool_token_points(points, [VisionSegment((0,), grid, 1)], min_valid_fraction=0.0)
    assert valid.all()
    for cell, members in enumerate(expected_cells):
        assert tokens[cell, 0] == pytest.approx(np.mean(2.0 ** np.array(members)))
    # transposed: columns follow the same rule
    tokens_t, _ = pool_token_points(points.transpose(0, 2, 1, 3), [VisionSegment((0,), 1, grid)], 0.0)
    np.testing.assert_allclose(tokens_t[:, 0], tokens[:, 0])


def test_pool_token_points_masks_sparse_tokens() -> None:
    points = np.full((1, 4, 4, 3), np.nan)
    points[0, 0, 0] = [1.0, 2.0, 3.0]  # cell (0,0): 1 of 4 valid pixels (25 %)
    points[0, :2, 2:] = 5.0  # cell (0,1): all valid
    points[0, 2, 0] = [7.0, np.nan, 0.0]  # cell (1,0): partially NaN point -> invalid pixel
    seg = [VisionSegment((0,), 2, 2, extra_tokens=2)]
    tokens, valid = pool_token_points(points, seg, min_valid_fraction=0.3)
    assert tokens.shape == (6, 3)
    np.testing.assert_array_equal(valid, [False, True, False, False, False, False])
    assert np.isnan(tokens[~valid]).all()
    np.testing.assert_allclose(tokens[1], [5.0, 5.0, 5.0])
    tokens, valid = pool_token_points(points, seg, min_valid_fraction=0.25)
    np.testing.assert_array_equal(valid, [True, True, False, False, False, False])
    np.testing.assert_allclose(tokens[0], [1.0, 2.0, 3.0])


def test_pool_token_points_errors_and_empty() -> None:
    with pytest.raises(GeometryError, match=r"segment 1: frame indices \(3,\) out of range for 2 frames"):
        pool_token_points(np.zeros((2, 4, 4, 3)), [VisionSegment((0,), 2, 2), VisionSegment((3,), 2, 2)])
    with pytest.raises(GeometryError, match=r"points: expected \[T, H, W, 3\]"):
        pool_token_points(np.zeros((4, 4, 3)), [])
    tokens, valid = pool_token_points(np.zeros((1, 2, 2, 3)), [])
    assert tokens.shape == (0, 3) and valid.shape == (0,)


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    gh=st.integers(1, 5),
    gw=st.integers(1, 5),
    frac=st.floats(0.0, 1.0),
)
def test_pool_token_points_matches_per_cell_reference(seed: int, h: int, w: int, gh: int, gw: int, frac: float) -> None:
    """The vectorised pooling equals a direct per-cell computation from the normalised-rectangle definition."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(2, h, w, 3))
    points[rng.random(size=(2, h, w)) < 0.3] = np.nan
    tokens, valid = pool_token_points(points, [VisionSegment((0, 1), gh, gw)], min_valid_fraction=frac)
    centre_v = (np.arange(h) + 0.5) / h
    centre_u = (np.arange(w) + 0.5) / w
    for r in range(gh):
        for c in range(gw):
            in_rows = (centre_v >= r / gh) & (centre_v < (r + 1) / gh)
            in_cols = (centre_u >= c / gw) & (centre_u < (c + 1) / gw)
            cell = points[:, in_rows][:, :, in_cols].reshape(-1, 3)
            good = np.isfinite(cell).all(-1)
            expect_valid = good.sum() > 0 and good.sum() >= frac * len(cell)
            assert valid[r * gw + c] == expect_valid
            if expect_valid:
                np.testing.assert_allclose(tokens[r * gw + c], cell[good].mean(0), rtol=1e-9, atol=1e-12)
            else:
                assert np.isnan(tokens[r * gw + c]).all()
