"""Raw capture readers (ScanNet .sens, ScanNet++ iPhone / DSLR, ARKitScenes) end to end on SynthRooms written in
each format: world points from depth + pose land on the generated objects' boxes and equal the SensReader export's;
bad files are named; ``loc3r prepare`` reads each format."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.cli import main as cli_main
from loc3r.data.arkitscenes import ARKitScenesScene, matrix_from_rotvec
from loc3r.data.cache import read_scannet_clip
from loc3r.data.captures import detect_format, open_scan
from loc3r.data.prepare import PrepareOptions, prepare_dataset
from loc3r.data.scannet import ScanNetScene
from loc3r.data.scannet_sens import SensScene
from loc3r.data.scannetpp import IPhoneDepth, ScanNetppScene, lz4_block_decompress, matrix_from_quaternion
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport
from loc3r.synthrooms.formats import lz4_literal_block, quaternion_from_matrix, rotvec_from_matrix, write_sens
from loc3r.synthrooms.writer import SynthSettings, generate_dataset

SCENE = "synth00000_00"
H, W, T = 32, 48, 4
TINY = dict(
    num_scenes=1, frames=T, width=W, height=H, seed=3, situations_per_scene=1, questions_per_situation=1,
    vsi_questions_per_type=1, write_video=False, novel_view=False, val_fraction=0.0, test_fraction=0.0,
)  # fmt: skip
FORMATS = ("scannet-sens", "scannetpp", "arkitscenes")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("capture_formats")
    out = {}
    for fmt in ("sensreader", *FORMATS):
        summary = generate_dataset(root / fmt, SynthSettings(**TINY, capture_format=fmt), progress=False)
        assert not summary.failed
        out[fmt] = root / fmt
    return out


def _scan(datasets: dict[str, Path], fmt: str) -> Path:
    return datasets[fmt] / "scans" / SCENE


def _boxes(scan: Path) -> tuple[dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]], float]:
    entry = next(iter(json.loads((scan / "meta_info.json").read_text()).values()))
    boxes = {}
    for items in entry["object_bbox"].values():
        for b in items:
            boxes[b["instance_id"]] = (np.array(b["centroid"]), np.array(b["normalizedAxes"]).reshape(3, 3),
                                       np.array(b["axesLengths"]))  # fmt: skip
    return boxes, float(entry["room_height"])


def _check_points_on_objects(scan: Path, clip, tol: float = 0.01) -> int:
    """Every world point of a pixel that shows object k lies in k's box (exact layout), every room-shell point lies
    between floor and ceiling; returns how many object points were checked."""
    boxes, height = _boxes(scan)
    checked = 0
    for t, frame_id in enumerate(clip.frame_ids.tolist()):
        instance = np.asarray(Image.open(scan / "instance" / f"{frame_id}.png"))
        pts = clip.points[t].astype(np.float64)
        valid = np.isfinite(pts).all(axis=-1)
        assert valid.mean() > 0.9
        for k in np.unique(instance[valid]):
            p = pts[valid & (instance == k)]
            if k == 0:
                assert p[:, 2].min() > -tol and p[:, 2].max() < height + tol
                continue
            centre, axes, lengths = boxes[int(k)]
            local = (p - centre) @ axes.T  # coordinates along the box's unit axes
            assert (np.abs(local) <= lengths / 2 + tol).all(), f"object {k}: points outside its box"
            checked += len(p)
    return checked


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_points_land_on_the_generated_objects(datasets, fmt):
    reference = ScanNetScene(_scan(datasets, "sensreader")).load_clip(T, points_size=(H, W))
    scene = open_scan(_scan(datasets, fmt))
    clip = scene.load_clip(T, points_size=(H, W))
    assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 200
    np.testing.assert_array_equal(clip.frame_ids, reference.frame_ids)
    np.testing.assert_allclose(clip.poses, reference.poses, atol=1e-6)
    both = np.isfinite(clip.points) & np.isfinite(reference.points)
    assert both.mean() > 0.9
    np.testing.assert_allclose(clip.points[both], reference.points[both], atol=1e-4)  # same world points
    assert clip.frames.shape == (T, H, W, 3)
    assert np.abs(clip.frames.astype(int) - reference.frames).mean() < 8  # same pictures (lossy codecs differ)
    assert scene.report.ok


def test_format_detection(datasets):
    assert [detect_format(_scan(datasets, f)) for f in ("sensreader", *FORMATS)] == ["sensreader", *FORMATS]
    assert isinstance(open_scan(_scan(datasets, "scannet-sens")), SensScene)


@pytest.mark.parametrize("pose_source", ["arkit", "colmap"])
def test_scannetpp_iphone_pose_sources_agree(datasets, pose_source):
    clip = ScanNetppScene(_scan(datasets, "scannetpp"), pose_source=pose_source).load_clip(T, points_size=(H, W))
    assert clip.layout == "scannetpp_iphone"
    assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 200


def test_scannetpp_dslr_undistorted_images_with_colmap(datasets, tmp_path):
    clip = ScanNetppScene(_scan(datasets, "scannetpp"), camera="dslr").load_clip(T, points_size=(H, W))
    assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 200
    scan = tmp_path / SCENE
    shutil.copytree(_scan(datasets, "scannetpp"), scan)
    shutil.rmtree(scan / "dslr" / "render_depth")
    scene = ScanNetppScene(scan, camera="dslr")
    clip = scene.load_clip(T, points_size=(H, W))
    assert clip.points is None and scene.report.skips["no_depth"] == 1  # no depth: frames only, said so


# ------------------------------------------------------------------------------------------------ bad files


def test_truncated_sens_is_named_and_complete_frames_are_used(datasets, tmp_path):
    sens = tmp_path / SCENE / f"{SCENE}.sens"
    sens.parent.mkdir()
    data = (_scan(datasets, "scannet-sens") / f"{SCENE}.sens").read_bytes()
    sens.write_bytes(data[:-50])  # cut inside the last frame's depth
    scene = SensScene(sens.parent)
    clip = scene.load_clip(T, points_size=(H, W))
    (error,) = scene.report.errors
    assert error.kind == "truncated_file" and error.file == str(sens) and error.field == "depth"
    assert error.record == f"{SCENE} frame {T - 1}" and "truncated" in error.message
    assert clip.num_valid_frames == T - 1 and T - 1 not in clip.frame_ids.tolist()
    sens.write_bytes(data[:40])  # cut inside the header
    with pytest.raises(SampleError, match=r"truncated \.sens header.*field 'intrinsic_color'"):
        SensScene(sens.parent)


def test_sens_invalid_poses_are_skipped_and_counted(tmp_path):
    k = np.array([[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]])
    poses = np.stack([np.eye(4)] * 3)
    poses[1] = -np.inf  # as real ScanNet marks a lost frame
    depth = np.full((3, H, W), 2.0)
    colors = np.zeros((3, H, W, 3), np.uint8)
    (tmp_path / "scene0000_00").mkdir()
    write_sens(tmp_path / "scene0000_00" / "scene0000_00.sens", colors, depth, poses, k)
    scene = SensScene(tmp_path / "scene0000_00")
    assert scene.valid_frame_ids().tolist() == [0, 2]
    assert scene.report.skips["invalid_pose"] == 1
    assert scene.report.skip_examples["invalid_pose"] == [f"{tmp_path / 'scene0000_00' / 'scene0000_00.sens'} frame 1"]
    clip = scene.load_clip(2, points_size=(4, 6))
    np.testing.assert_allclose(clip.points[..., 2], 2.0, atol=1e-3)  # z-depth 2 m in front of an identity camera


def test_bad_traj_line_and_missing_pincam_are_named(datasets, tmp_path):
    scan = tmp_path / SCENE
    shutil.copytree(_scan(datasets, "arkitscenes"), scan)
    traj = scan / "lowres_wide.traj"
    lines = traj.read_text().splitlines()
    lines[1] = "6845.806 0.1 0.2"  # 3 numbers instead of 7
    traj.write_text("\n".join(lines) + "\n")
    pincams = sorted((scan / "lowres_wide_intrinsics").glob("*.pincam"))
    pincams[2].unlink()
    scene = ARKitScenesScene(scan)
    clip = scene.load_clip(T, points_size=(H, W))
    by_kind = {e.kind: e for e in scene.report.errors}
    assert by_kind["bad_pose_file"].file == str(traj) and by_kind["bad_pose_file"].field == "pose"
    assert "line 2" in by_kind["bad_pose_file"].message and "expected 7 numbers" in by_kind["bad_pose_file"].message
    assert by_kind["missing_file"].file == str(pincams[2]) and by_kind["missing_file"].field == "intrinsic"
    assert scene.report.skips["no_pose"] == 1  # frame 1 lost its pose line
    assert clip.num_valid_frames == 2 and sorted(set(clip.frame_ids.tolist())) == [0, 3]
    assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 50


def test_scannetpp_non_finite_pose_is_skipped_and_bad_entry_named(datasets, tmp_path):
    scan = tmp_path / SCENE
    shutil.copytree(_scan(datasets, "scannetpp"), scan)
    path = scan / "iphone" / "pose_intrinsic_imu.json"
    meta = json.loads(path.read_text())
    meta["frame_000001"]["aligned_pose"] = np.full((4, 4), np.nan).tolist()
    path.write_text(json.dumps(meta))  # NaN, as Python's json writes it
    scene = ScanNetppScene(scan)
    assert scene.valid_frame_ids().tolist() == [0, 2, 3] and scene.report.skips["invalid_pose"] == 1
    meta["frame_000002"]["intrinsic"] = [1, 2]
    path.write_text(json.dumps(meta))
    with pytest.raises(SampleError, match=r"pose_intrinsic_imu\.json: frame 'frame_000002', field 'intrinsic'"):
        ScanNetppScene(scan)


# ------------------------------------------------------------------------------------------------ loc3r prepare


@pytest.mark.parametrize("fmt", FORMATS)
def test_prepare_reads_each_format(datasets, fmt, tmp_path):
    out = tmp_path / "cache"
    result = prepare_dataset(
        PrepareOptions(
            dataset="synthrooms", root=datasets[fmt], out=out, num_frames=T, points_size=(H, W), progress=False
        )  # fmt: skip
    )
    assert result.clips_written == 1 and not result.clips_failed, result.summary()
    clip = read_scannet_clip(out / "clips" / f"{SCENE}.safetensors")
    assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 200


def test_prepare_cli_scan_datasets_and_strict_error(datasets, tmp_path, capsys):
    root = tmp_path / "arkit"
    shutil.copytree(_scan(datasets, "arkitscenes"), root / SCENE)
    assert cli_main(["prepare", "arkitscenes", "--root", str(root), "--out", str(tmp_path / "c1"), "--frames", "4",
                     "--points-size", "8x12", "--quiet"]) == 0  # fmt: skip
    assert (tmp_path / "c1" / "clips" / f"{SCENE}.safetensors").is_file()
    root2 = tmp_path / "pp"
    shutil.copytree(_scan(datasets, "scannetpp"), root2 / SCENE)
    assert cli_main(["prepare", "scannetpp", "--root", str(root2), "--out", str(tmp_path / "c2"), "--frames", "4",
                     "--points-size", "8x12", "--scannetpp-camera", "dslr", "--quiet"]) == 0  # fmt: skip
    assert read_scannet_clip(tmp_path / "c2" / "clips" / f"{SCENE}.safetensors").layout == "scannetpp_dslr"
    traj = root / SCENE / "lowres_wide.traj"
    traj.write_text("not a pose line\n" + traj.read_text())
    capsys.readouterr()
    code = cli_main(["prepare", "arkitscenes", "--root", str(root), "--out", str(tmp_path / "c3"), "--frames", "4",
                     "--strict", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and str(traj) in err and "line 1" in err and "'pose'" in err


def test_vsi_records_take_layout_targets_from_each_format(datasets, tmp_path):
    """VSI-style records of a scannetpp / arkitscenes scene (``<dataset>/<scene_name>``) take their clip from the
    posed scan in its own format (``--scan-root DATASET=DIR``)."""
    records = tmp_path / "vsi.jsonl"
    rows = [{"id": i, "dataset": ds, "scene_name": SCENE, "question_type": "room_size_estimation",
             "question": "How big is the room?", "options": None, "ground_truth": "12.0"}
            for i, ds in enumerate(("scannetpp", "arkitscenes"))]  # fmt: skip
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = prepare_dataset(
        PrepareOptions(
            dataset="vsibench",
            root=records,
            out=tmp_path / "cache",
            num_frames=T,
            points_size=(H, W),
            scan_roots={"scannetpp": datasets["scannetpp"] / "scans", "arkitscenes": datasets["arkitscenes"] / "scans"},
            progress=False,
        )  # fmt: skip
    )
    assert result.samples_with_layout_targets == 2, result.summary()
    for ds in ("scannetpp", "arkitscenes"):
        clip = read_scannet_clip(tmp_path / "cache" / "clips" / f"scan__{ds}__{SCENE}.safetensors")
        assert _check_points_on_objects(_scan(datasets, "sensreader"), clip) > 200


# ------------------------------------------------------------------------------------------------ formats, units


def test_default_format_keeps_the_fingerprint_and_layout(datasets):
    settings = SynthSettings(**TINY)
    assert "capture_format" not in settings.to_dict()
    assert SynthSettings(num_scenes=1, frames=4, width=48, height=32, seed=3).fingerprint() == "4cfe1cf7b0c72954"
    assert SynthSettings(**TINY, capture_format="arkitscenes").fingerprint() != settings.fingerprint()
    scan = _scan(datasets, "sensreader")
    assert {p.name for p in scan.iterdir()} >= {"color", "depth", "pose", "intrinsic", "instance"}
    with pytest.raises(ValueError, match="unknown capture format"):
        SynthSettings(**TINY, capture_format="kinect")


def test_lz4_block_decoder_handles_matches_and_literal_blocks():
    # "abcabcabcabcX": literals "abc", then a match of 9 bytes at offset 3 (overlapping copy), then literal "X"
    block = bytes([0x35]) + b"abc" + struct.pack("<H", 3) + bytes([0x10]) + b"X"
    assert lz4_block_decompress(block, 100) == b"abcabcabcabcX"
    payload = bytes(range(256)) * 3
    assert lz4_block_decompress(lz4_literal_block(payload), 10_000) == payload
    with pytest.raises(ValueError):
        lz4_block_decompress(bytes([0x05]) + struct.pack("<H", 9), 100)  # match before any data


def test_iphone_depth_whole_video_stream(tmp_path):
    depth = np.random.default_rng(0).uniform(0.5, 4.0, size=(3, 6, 8)).astype("<f4")
    comp = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    (tmp_path / "depth.bin").write_bytes(comp.compress(depth.tobytes()) + comp.flush())
    reader = IPhoneDepth(tmp_path / "depth.bin", aspect=8 / 6, depth_size=(6, 8))
    assert not reader.per_frame
    for k in (2, 0, 1):
        np.testing.assert_array_equal(reader.read(k), (depth[k] * 1000).astype(np.uint16))
    with pytest.raises(SampleError, match="ends before frame 3"):
        reader.read(3)


def test_rotation_conversions_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.normal(size=4)
        r = matrix_from_quaternion(q)
        np.testing.assert_allclose(matrix_from_quaternion(quaternion_from_matrix(r)), r, atol=1e-12)
        np.testing.assert_allclose(matrix_from_rotvec(rotvec_from_matrix(r)), r, atol=1e-9)
    flip = np.diag([1.0, -1.0, -1.0])  # angle pi
    np.testing.assert_allclose(matrix_from_rotvec(rotvec_from_matrix(flip)), flip, atol=1e-9)


def test_reader_reports_go_to_the_given_report(datasets):
    report = LoadReport("shared")
    open_scan(_scan(datasets, "arkitscenes"), report=report).load_clip(2, points_size=None)
    assert report.counts["clips"] == 1 and report.counts["frames_valid"] == T


def test_synth_cli_format_flag(tmp_path):
    args = ["synth", "--out", str(tmp_path / "ds"), "--scenes", "1", "--frames", "2", "--size", "32x32",
            "--no-video", "--no-novel-view", "--val-fraction", "0", "--test-fraction", "0", "--situations", "1",
            "--quiet"]  # fmt: skip
    assert cli_main([*args, "--format", "arkitscenes"]) == 0
    scan = tmp_path / "ds" / "scans" / SCENE
    assert detect_format(scan) == "arkitscenes" and not (scan / "color").exists()
    assert len(list((scan / "lowres_wide").glob(f"{SCENE}_*.png"))) == 2
