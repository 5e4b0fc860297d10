"""Camera prior: pose features (invariance), file / sample providers (reading, row selection, errors), projector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from conftest import gravity_motion, random_rotation
from loc3r.core.geometry import anchor_frame
from loc3r.data.schema import ClipSample, SampleError
from loc3r.objectives.camera_prior import (
    POSE_FEATURE_DIM,
    CameraFeatureProvider,
    CameraPriorProjector,
    FileCameraProvider,
    PoseCameraProvider,
    SampleFeatureProvider,
    build_camera_provider,
    pose_camera_features,
)


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        poses[i, :3, :3] = random_rotation(rng)
        poses[i, :3, 3] = rng.uniform(-5, 5, size=3)
    return poses


def make_sample(num_frames: int, scene_id: str = "scene0000_00", **kwargs: object) -> ClipSample:
    return ClipSample(
        sample_id="s0",
        scene_id=scene_id,
        task="test",
        frames=np.zeros((num_frames, 2, 2, 3), dtype=np.uint8),
        question="where am I?",
        **kwargs,
    )


# ----------------------------------------------------------------------------------------------- pose features
def test_pose_features_layout_hand_computed() -> None:
    first = np.eye(4)
    first[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # looks along +x, level
    first[:3, 3] = [2.0, 3.0, 1.5]
    second = first.copy()
    second[:3, 3] = [4.0, 3.0, 1.5]  # 2 m further along the viewing direction
    third = first.copy()
    third[:3, 3] = [2.0, 4.0, 2.0]  # 1 m to the left, 0.5 m higher
    feats = pose_camera_features(np.stack([first, second, third]), anchor_frame(first))
    assert feats.shape == (3, POSE_FEATURE_DIM) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[0, :3], [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(feats[1, :3], [2.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(feats[2, :3], [0.0, 1.0, 0.5], atol=1e-6)
    # camera x (right) = BEV -y, camera y (down) = BEV -z
    np.testing.assert_allclose(feats[0, 3:], [0.0, -1.0, 0.0, 0.0, 0.0, -1.0], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    angle=st.floats(-10.0, 10.0, allow_nan=False),
    translation=st.tuples(*[st.floats(-100.0, 100.0, allow_nan=False)] * 3),
)
def test_pose_features_invariant_to_gravity_preserving_motion(
    seed: int, angle: float, translation: tuple[float, float, float]
) -> None:
    rng = np.random.default_rng(seed)
    poses = random_poses(rng, 4)
    moved = gravity_motion(angle, np.asarray(translation)) @ poses
    before = pose_camera_features(poses, anchor_frame(poses[0]))
    after = pose_camera_features(moved, anchor_frame(moved[0]))
    np.testing.assert_allclose(after, before, atol=1e-4)
    # the provider computes the anchor itself when none is given
    sample = make_sample(4, poses=moved)
    np.testing.assert_allclose(PoseCameraProvider()(sample, None), before, atol=1e-4)


def test_pose_features_reject_bad_poses() -> None:
    poses = random_poses(np.random.default_rng(0), 3)
    anchor = anchor_frame(poses[0])
    bad = poses.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"poses\[1\].*non-finite"):
        pose_camera_features(bad, anchor)
    sample = make_sample(3, poses=bad)
    with pytest.raises(SampleError, match=r"sample 's0'.*'poses'"):
        PoseCameraProvider()(sample, None)


def test_pose_provider_needs_poses() -> None:
    provider = PoseCameraProvider()
    assert provider.feature_dim == 9 and isinstance(provider, CameraFeatureProvider)
    with pytest.raises(SampleError, match=r"sample 's0' \(scene 'scene0000_00'\): field 'poses' is missing"):
        provider(make_sample(2), None)
    with pytest.raises(SampleError, match=r"\[T=3, 4, 4\]"):
        provider(make_sample(3, poses=random_poses(np.random.default_rng(0), 2)), None)


# ---------------------------------------------------------------------------------------------- file provider
def test_file_provider_reads_safetensors_and_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tokens_a = rng.normal(size=(10, 6)).astype(np.float32)
    tokens_b = rng.normal(size=(4, 6))  # float64 on disk: converted
    save_file({"camera_tokens": tokens_a, "other": np.zeros(2, dtype=np.float32)}, str(tmp_path / "sa.safetensors"))
    np.savez(tmp_path / "sb.npz", camera_tokens=tokens_b)
    provider = FileCameraProvider(tmp_path)
    assert provider.feature_dim == 6  # inferred from the first file
    assert isinstance(provider, CameraFeatureProvider)
    out = provider(make_sample(3, scene_id="sa", frame_indices=np.array([0, 4, 9])), None)
    np.testing.assert_array_equal(out, tokens_a[[0, 4, 9]])
    assert out.dtype == np.float32 and out.shape == (3, 6)
    out_b = provider(make_sample(4, scene_id="sb"), None)  # no frame_indices, N == T: all rows
    np.testing.assert_allclose(out_b, tokens_b.astype(np.float32))
    assert build_camera_provider("file", str(tmp_path)).feature_dim == 6


def test_file_provider_bf16_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file as save_torch

    tokens = torch.randn(5, 4).to(torch.bfloat16)
    save_torch({"camera_tokens": tokens}, str(tmp_path / "s.safetensors"))
    out = FileCameraProvider(tmp_path)(make_sample(5, scene_id="s"), None)
    np.testing.assert_array_equal(out, tokens.float().numpy())


def test_file_provider_caches_per_scene(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", camera_tokens=np.ones((3, 2)))
    provider = FileCameraProvider(tmp_path)
    first = provider(make_sample(3, scene_id="s"), None)
    (tmp_path / "s.npz").unlink()
    np.testing.assert_array_equal(provider(make_sample(3, scene_id="s"), None), first)  # served from the cache
    small = FileCameraProvider(tmp_path, feature_dim=2, max_cached_scenes=1)
    for name in ("a", "b"):
        np.savez(tmp_path / f"{name}.npz", camera_tokens=np.zeros((2, 2)))
        small(make_sample(2, scene_id=name), None)
    assert list(small._cache) == ["b"]


def test_file_provider_missing_file_names_path(tmp_path: Path) -> None:
    provider = FileCameraProvider(tmp_path, feature_dim=4)
    with pytest.raises(SampleError, match=r"scene0042_00\.safetensors.*scene0042_00\.npz"):
        provider(make_sample(2, scene_id="scene0042_00"), None)
    with pytest.raises(SampleError, match="does not exist"):
        _ = FileCameraProvider(tmp_path / "nope").feature_dim
    with pytest.raises(SampleError, match="no .*safetensors or .*npz"):
        _ = FileCameraProvider(tmp_path).feature_dim
    with pytest.raises(SampleError, match="cannot name"):
        provider(make_sample(2, scene_id="../etc"), None)


def test_file_provider_shape_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "cube.npz", camera_tokens=np.zeros((3, 2, 2)))
    np.savez(tmp_path / "wide.npz", camera_tokens=np.zeros((3, 5)))
    np.savez(tmp_path / "short.npz", camera_tokens=np.zeros((3, 4)))
    np.savez(tmp_path / "nokey.npz", features=np.zeros((3, 4)))
    provider = FileCameraProvider(tmp_path, feature_dim=4)
    with pytest.raises(SampleError, match=r"cube\.npz: field 'camera_tokens' must be \[N_frames, F\]"):
        provider(make_sample(3, scene_id="cube"), None)
    with pytest.raises(SampleError, match=r"wide\.npz.*feature size 5, expected 4"):
        provider(make_sample(3, scene_id="wide"), None)
    with pytest.raises(SampleError, match=r"'frame_indices' is missing and .*short\.npz has 3 rows for 5 frames"):
        provider(make_sample(5, scene_id="short"), None)
    with pytest.raises(SampleError, match=r"'frame_indices' has index 7 outside the 3 rows of .*short\.npz"):
        provider(make_sample(2, scene_id="short", frame_indices=np.array([0, 7])), None)
    with pytest.raises(SampleError, match=r"'frame_indices' must be 2 integers"):
        provider(make_sample(2, scene_id="short", frame_indices=np.array([0, 1, 2])), None)
    with pytest.raises(SampleError, match=r"nokey\.npz: no array 'camera_tokens' \(found \['features'\]\)"):
        provider(make_sample(3, scene_id="nokey"), None)


def test_file_provider_nan_rows(tmp_path: Path) -> None:
    tokens = np.zeros((6, 3), dtype=np.float32)
    tokens[4, 1] = np.nan
    save_file({"camera_tokens": tokens}, str(tmp_path / "s.safetensors"))
    provider = FileCameraProvider(tmp_path)
    ok = provider(make_sample(2, scene_id="s", frame_indices=np.array([0, 5])), None)  # NaN row not used
    assert np.isfinite(ok).all()
    with pytest.raises(SampleError, match=r"s\.safetensors field 'camera_tokens' row 4 has non-finite values"):
        provider(make_sample(2, scene_id="s", frame_indices=np.array([1, 4])), None)


def test_file_provider_refuses_pickled_npz(tmp_path: Path) -> None:
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros(3), np.ones(3)]
    np.savez(tmp_path / "evil.npz", camera_tokens=objects)
    provider = FileCameraProvider(tmp_path, feature_dim=3)
    with pytest.raises(SampleError, match=r"evil\.npz: field 'camera_tokens' cannot be loaded without unpickling"):
        provider(make_sample(2, scene_id="evil"), None)


def test_file_provider_corrupt_files(tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "bad2.npz").write_bytes(b"garbage")
    provider = FileCameraProvider(tmp_path, feature_dim=3)
    with pytest.raises(SampleError, match=r"bad\.safetensors"):
        provider(make_sample(2, scene_id="bad"), None)
    with pytest.raises(SampleError, match=r"bad2\.npz"):
        provider(make_sample(2, scene_id="bad2"), None)


# --------------------------------------------------------------------------------- sample provider, factory
def test_sample_provider_and_factory(tmp_path: Path) -> None:
    feats = np.arange(6, dtype=np.float64).reshape(3, 2)
    provider = build_camera_provider("sample", feature_dim=2)
    assert isinstance(provider, SampleFeatureProvider)
    np.testing.assert_array_equal(provider(make_sample(3, camera_features=feats), None), feats.astype(np.float32))
    with pytest.raises(SampleError, match="'camera_features' is missing"):
        provider(make_sample(3), None)
    with pytest.raises(SampleError, match=r"\[T=3, F=2\]"):
        provider(make_sample(3, camera_features=np.zeros((3, 4))), None)
    assert build_camera_provider(None) is None
    assert isinstance(build_camera_provider("poses"), PoseCameraProvider)
    with pytest.raises(ValueError, match="root"):
        build_camera_provider("file")
    with pytest.raises(ValueError, match="unknown camera prior kind 'cut3r'"):
        build_camera_provider("cut3r")


# ------------------------------------------------------------------------------------------------- projector
def test_projector_shapes_dtype_and_gradients() -> None:
    proj = CameraPriorProjector(POSE_FEATURE_DIM, 16)
    assert isinstance(proj.act, torch.nn.GELU)
    feats = torch.from_numpy(pose_camera_features(random_poses(np.random.default_rng(1), 5), anchor_frame(np.eye(4))))
    out = proj(feats)
    assert out.shape == (5, 16) and out.dtype == torch.float32
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in proj.parameters())
    assert proj.to(torch.bfloat16)(feats).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"features \[\.\.\., 9\]"):
        proj(torch.zeros(5, 8))


def test_file_provider_per_clip_features(tmp_path: Path) -> None:
    """Per-clip files (features of a run on exactly the sampled frames) win over the per-video file; a clip
    whose frames were not exported is an error naming the file and the field, never other frames' rows."""
    from loc3r.objectives.camera_prior import write_clip_features

    rng = np.random.default_rng(1)
    video = rng.normal(size=(20, 5)).astype(np.float32)
    save_file({"camera_tokens": video}, str(tmp_path / "scene.safetensors"))
    clip_a, clip_b = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    write_clip_features(tmp_path, "scene", np.array([0, 7, 14]), clip_a)
    path = write_clip_features(tmp_path, "scene", np.array([2, 9, 16]), clip_b)
    write_clip_features(tmp_path, "scene", np.array([0, 7, 14]), clip_a * 2)  # replaces the first clip
    assert path.name == "scene.clips.safetensors"
    provider = FileCameraProvider(tmp_path)
    assert provider.feature_dim == 5
    out = provider(make_sample(3, scene_id="scene", frame_indices=np.array([2, 9, 16])), None)
    np.testing.assert_allclose(out, clip_b.astype(np.float32))
    out = provider(make_sample(3, scene_id="scene", frame_indices=np.array([0, 7, 14])), None)
    np.testing.assert_allclose(out, (clip_a * 2).astype(np.float32))
    assert not np.allclose(out, video[[0, 7, 14]])  # not the whole-video run's rows
    with pytest.raises(SampleError, match=r"field 'frame_indices' \[1, 7, 14\] matches none of the 2 clips") as err:
        provider(make_sample(3, scene_id="scene", frame_indices=np.array([1, 7, 14])), None)
    assert "scene.clips.safetensors" in str(err.value)
    with pytest.raises(SampleError, match="cannot add one of"):
        write_clip_features(tmp_path, "scene", np.arange(4), rng.normal(size=(4, 5)))
    # a scene without a clips file still reads its per-video file
    save_file({"camera_tokens": video}, str(tmp_path / "other.safetensors"))
    out = provider(make_sample(2, scene_id="other", frame_indices=np.array([3, 4])), None)
    np.testing.assert_array_equal(out, video[[3, 4]])
