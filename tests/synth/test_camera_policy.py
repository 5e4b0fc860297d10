"""The ``frame_objects`` camera policy: frames show objects and the clip shows the room's objects (on a small generated
set), the motion between frames is bounded like a person's, heights and pitches stay in their family's band, it is a
pure function of the seed, and the ``walk`` policy is unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from PIL import Image

from loc3r.cli import main as cli_main
from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms.freespace import free_space
from loc3r.synthrooms.scene import SceneConfig, generate_layout
from loc3r.synthrooms.trajectory import (
    _FO_NOVEL_HIGH,
    _FO_NOVEL_LOW,
    _FO_TRAIN,
    _FPS,
    _SPEED,
    object_visibility,
    sample_frame_objects,
    sample_trajectory,
)
from loc3r.synthrooms.writer import SynthSettings, generate_dataset

#: the demo's room complexity (DemoSettings.data)
DEMO_ROOMS = SceneConfig(min_objects=4, max_objects=10, min_side=3.0, max_side=6.0)


def _layouts(n: int, first: int = 0) -> list:
    return [generate_layout(f"r{r}", np.random.default_rng(r), DEMO_ROOMS) for r in range(first, first + n)]


def _yaw_pitch(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    forward = poses[:, :3, 2]
    return np.arctan2(forward[:, 1], forward[:, 0]), np.arcsin(np.clip(forward[:, 2], -1.0, 1.0))


def test_frame_objects_meets_its_goals_on_a_small_generated_set(tmp_path) -> None:
    """6 rooms of the demo's complexity, 8 frames at 64x64: >= 95 % of frames have an object covering >= 2 % of the
    pixels and >= 95 % of each room's objects are shown (the writer's threshold); the held-out rescan of the test room
    uses the novel-view family's heights."""
    settings = SynthSettings(num_scenes=6, frames=8, width=64, height=64, min_objects=4, max_objects=10,
                             max_side=6.0, val_fraction=0.0, test_fraction=0.2, situations_per_scene=10,
                             questions_per_situation=1, vsi_questions_per_type=1, write_video=False, shadows=False,
                             camera_policy="frame_objects")  # fmt: skip
    summary = generate_dataset(tmp_path, settings, progress=False)
    assert not summary.failed
    index = summary.index
    assert index["settings"]["camera_policy"] == "frame_objects"
    framed, frames, seen_share = 0, 0, []
    for scene_id, scene in index["scenes"].items():
        scan = tmp_path / "scans" / scene_id
        seen: set[int] = set()
        for i in range(scene["num_frames"]):
            counts = np.bincount(np.asarray(Image.open(scan / "instance" / f"{i}.png")).ravel())
            counts[0] = 0
            frames += 1
            framed += int(counts.max() >= 0.02 * 64 * 64)
            seen |= {int(k) for k in np.flatnonzero(counts >= settings.min_pixels)}
        assert seen == {int(k) for k in json.loads((scan / "scene.json").read_text())["first_seen_frame"]}
        seen_share.append(len(seen) / scene["num_objects"])
        heights = [np.loadtxt(scan / "pose" / f"{i}.txt")[2, 3] for i in range(scene["num_frames"])]
        band = _FO_TRAIN[0] if scene["trajectory"] == "walk" else (_FO_NOVEL_LOW[0][0], _FO_NOVEL_HIGH[0][1])
        assert band[0] - 0.03 <= min(heights) and max(heights) <= band[1] + 0.03, (scene_id, heights)
    assert {s["trajectory"] for s in index["scenes"].values()} == {"walk", "novel_view"}
    assert framed / frames >= 0.95, (framed, frames)
    assert np.mean(seen_share) >= 0.95, seen_share


@pytest.mark.parametrize("family", ["walk", "novel_view"])
@pytest.mark.parametrize("num_frames", [8, 16])
def test_frame_objects_moves_like_a_person(family: str, num_frames: int) -> None:
    """Bounded per-frame translation (on a straight line in the free space) and rotation, a continuous dense video at
    walking / panning speed, the camera always in the free space, height and pitch in the family's band."""
    steps = num_frames - 1
    step_m, yaw_step = min(1.2, 8.4 / steps), np.deg2rad(min(90.0, 540.0 / steps))
    for layout in _layouts(4, first=20):
        traj = sample_frame_objects(layout, np.random.default_rng(7), num_frames, family=family)
        poses = traj.poses
        assert poses.shape == (num_frames, 4, 4) and traj.kind == family and traj.policy == "frame_objects"
        centres = poses[:, :3, 3]
        assert np.all(np.linalg.norm(np.diff(centres[:, :2], axis=0), axis=1) <= step_m + 1e-6)
        yaw, pitch = _yaw_pitch(poses)
        assert np.all(np.abs((np.diff(yaw) + np.pi) % (2 * np.pi) - np.pi) <= yaw_step + 1e-6)
        assert np.all(np.abs(np.diff(pitch)) <= np.deg2rad(30.0) + 1e-6)
        for a, b in zip(poses[:-1, :3, :3], poses[1:, :3, :3], strict=True):  # whole rotation, roll included
            assert np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))) <= np.degrees(yaw_step) + 31.0
        dense = traj.dense_positions
        assert np.all(np.linalg.norm(np.diff(dense[:, :2], axis=0), axis=1) <= 1.5 * _SPEED / _FPS + 1e-6)
        free = free_space(layout, 0.35)
        assert shapely.contains_xy(free, dense[:, 0], dense[:, 1]).all()
        if family == "walk":
            (h_lo, h_hi), (p_lo, p_hi) = _FO_TRAIN
        else:
            low = centres[0, 2] < 1.5
            (h_lo, h_hi), (p_lo, p_hi) = _FO_NOVEL_LOW if low else _FO_NOVEL_HIGH
        assert np.all((centres[:, 2] >= h_lo - 0.021) & (centres[:, 2] <= h_hi + 0.021)), centres[:, 2]
        assert np.all((np.degrees(pitch) >= p_lo - 1e-6) & (np.degrees(pitch) <= p_hi + 1e-6)), np.degrees(pitch)


def test_frame_objects_is_a_function_of_the_seed() -> None:
    layout = _layouts(1, first=3)[0]
    a = sample_trajectory("walk", layout, np.random.default_rng(5), 8, policy="frame_objects")
    b = sample_trajectory("walk", layout, np.random.default_rng(5), 8, policy="frame_objects")
    c = sample_trajectory("walk", layout, np.random.default_rng(6), 8, policy="frame_objects")
    assert np.array_equal(a.poses, b.poses) and np.array_equal(a.dense_positions, b.dense_positions)
    assert not np.allclose(a.poses, c.poses)


def test_walk_policy_is_unchanged() -> None:
    """The poses of today's walks and novel views (pinned from main before the camera policies), the default policy
    of sample_trajectory and SynthSettings, and the settings fingerprint of every existing dataset."""
    pinned = {
        (0, "walk"): (49.049709, -81.526062),
        (0, "novel_view"): (51.40703, -77.906464),
        (1, "walk"): (49.455006, -66.551519),
        (1, "novel_view"): (43.882879, -48.242785),
        (2, "walk"): (50.493049, -81.776562),
        (2, "novel_view"): (36.39408, -55.528119),
    }
    for r, layout in enumerate(_layouts(3)):
        for kind in ("walk", "novel_view"):
            p = sample_trajectory(kind, layout, np.random.default_rng(10 + r), 8).poses
            q = sample_trajectory(kind, layout, np.random.default_rng(10 + r), 8, policy="walk").poses
            assert np.array_equal(p, q)
            got = (p[:, :3, 3].sum(), (p[:, :3, :3] * np.arange(9).reshape(3, 3)).sum())
            assert np.allclose(got, pinned[(r, kind)], atol=1e-5), (r, kind, got)
    assert SynthSettings().camera_policy == "walk" and "camera_policy" not in SynthSettings().to_dict()
    assert SynthSettings().fingerprint() == "80e47d1afe3b71bd"  # main's, before camera policies
    assert SynthSettings(camera_policy="frame_objects").fingerprint() != SynthSettings().fingerprint()
    assert SynthSettings(camera_policy="frame_objects").to_dict()["camera_policy"] == "frame_objects"


def test_unknown_camera_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="camera policy 'orbit'"):
        SynthSettings(camera_policy="orbit")
    with pytest.raises(ValueError, match="camera policy 'orbit'"):
        sample_trajectory("walk", _layouts(1)[0], np.random.default_rng(0), 4, policy="orbit")


def test_object_visibility_is_zero_behind_the_walls() -> None:
    """The ceiling of what a clip can show: every object of a generated room is visible from some candidate view, a box
    placed wholly outside the room (as real layouts have behind their walls) from none."""
    layout = _layouts(1, first=4)[0]
    x_max = float(np.asarray(layout.floor_polygon)[:, 0].max())
    outside = SceneObject("box", 99, np.array([x_max + 1.0, 1.0, 0.5]), np.array([0.5, 0.5, 1.0]))
    shown = object_visibility(SceneLayout("x", layout.floor_polygon, layout.height, [*layout.objects, outside]),
                              np.random.default_rng(0))  # fmt: skip
    assert shown.shape == (len(layout.objects) + 1,)
    assert np.all(shown[:-1] >= 0.004), shown
    assert shown[-1] == 0.0


def test_cli_camera_policy(tmp_path) -> None:
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--scenes", "2", "--frames", "2", "--size", "32x32", "--no-video",
            "--no-novel-view", "--situations", "1", "--quiet"]  # fmt: skip
    assert cli_main([*args, "--camera-policy", "frame_objects"]) == 0
    index = json.loads((out / "synthrooms.json").read_text())
    assert index["settings"]["camera_policy"] == "frame_objects"
    with pytest.raises(SystemExit):
        cli_main([*args, "--camera-policy", "orbit"])


@pytest.mark.parametrize("policy", ["walk", "frame_objects"])
def test_hold_frames_repeats_each_planned_view(policy: str) -> None:
    """``hold_frames = 2``: frames (0, 1), (2, 3), ... are the same view (so a Qwen2.5-VL token, which fuses two
    consecutive frames, shows one view); the views are the ones the policy plans for ``ceil(T / 2)`` frames; an odd
    ``T`` keeps the last view once; ``hold_frames = 1`` is the policy unchanged."""
    layout = _layouts(1, first=2)[0]
    held = sample_trajectory("walk", layout, np.random.default_rng(3), 7, policy=policy, hold_frames=2).poses
    planned = sample_trajectory("walk", layout, np.random.default_rng(3), 4, policy=policy).poses
    assert held.shape == (7, 4, 4)
    assert np.array_equal(held[0::2], planned) and np.array_equal(held[1::2], planned[:3])
    once = sample_trajectory("walk", layout, np.random.default_rng(3), 7, policy=policy, hold_frames=1).poses
    assert np.array_equal(once, sample_trajectory("walk", layout, np.random.default_rng(3), 7, policy=policy).poses)


def test_hold_frames_setting() -> None:
    assert "hold_frames" not in SynthSettings().to_dict()  # the fingerprint of every earlier dataset is kept
    assert SynthSettings(hold_frames=2).fingerprint() != SynthSettings().fingerprint()
    with pytest.raises(ValueError, match="hold_frames must be >= 1, got 0"):
        SynthSettings(hold_frames=0)
    with pytest.raises(ValueError, match="hold_frames must be >= 1, got 0"):
        sample_trajectory("walk", _layouts(1)[0], np.random.default_rng(0), 4, hold_frames=0)
