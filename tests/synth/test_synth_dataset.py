"""The SynthRooms contract checked from outside: only the files on disk, read as ScanNet / meta_info / SQA3D /
VSI-Bench, and loc3r.core.geometry for all projection math (issue 3, "Contract checked from outside")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shapely.geometry import Point, Polygon

from loc3r.core.geometry import depth_to_world_points, project_points, validate_pose
from loc3r.synthrooms.freespace import free_space, is_free
from loc3r.synthrooms.meta_info import layout_from_entry
from loc3r.synthrooms.writer import SPLITS, SYNTH_VERSION, SynthSettings, generate_dataset, read_index

SETTINGS = SynthSettings(
    num_scenes=4,
    frames=8,
    width=64,
    height=64,
    seed=3,
    situations_per_scene=4,
    questions_per_situation=3,
    vsi_questions_per_type=1,
    val_fraction=0.25,
    test_fraction=0.25,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    summary = generate_dataset(out, SETTINGS, workers=1, progress=False)
    assert not summary.failed
    return out


def _read_matrix(path: Path) -> np.ndarray:
    rows = [[float(x) for x in line.split()] for line in path.read_text().splitlines() if line.strip()]
    return np.asarray(rows)


def _scan(root: Path, scene_id: str):
    d = root / "scans" / scene_id
    k = _read_matrix(d / "intrinsic" / "intrinsic_depth.txt")
    assert k.shape == (4, 4)
    n = len(list((d / "depth").glob("*.png")))
    depth, inst, poses = [], [], []
    for i in range(n):
        img = Image.open(d / "depth" / f"{i}.png")
        arr = np.asarray(img)
        assert arr.dtype in (np.uint16, np.int32) and arr.max() < 65536
        depth.append(arr.astype(np.float64) / 1000.0)
        inst.append(np.asarray(Image.open(d / "instance" / f"{i}.png")).astype(np.int64))
        poses.append(validate_pose(_read_matrix(d / "pose" / f"{i}.txt"), f"{scene_id}/pose/{i}.txt"))
        assert np.asarray(Image.open(d / "color" / f"{i}.jpg")).shape == (*arr.shape, 3)
    meta = json.loads((d / "meta_info.json").read_text())
    layout = layout_from_entry(scene_id, meta[scene_id], source=str(d / "meta_info.json"))
    return k[:3, :3], np.stack(depth), np.stack(inst), np.stack(poses), layout


def _all_scans(root: Path) -> list[str]:
    index = read_index(root)
    return [s for split in SPLITS for s in index["splits"][split]]


def test_index_splits_and_files(dataset):
    index = read_index(dataset)
    assert index["complete"] and index["version"] == SYNTH_VERSION and index["settings"]["frames"] == 8
    assert {len(index["splits"][s]) for s in ("train", "val", "test")} == {1, 2}
    assert len(index["splits"]["test_novel_view"]) == len(index["splits"]["test"])
    rooms = {s: {index["scenes"][x]["room_id"] for x in index["splits"][s]} for s in SPLITS}
    assert not rooms["train"] & (rooms["val"] | rooms["test"])  # split by room
    assert rooms["test_novel_view"] == rooms["test"]
    for split in SPLITS:
        q = json.loads((dataset / "sqa3d" / f"v1_balanced_questions_{split}_scannetv2.json").read_text())["questions"]
        a = json.loads((dataset / "sqa3d" / f"v1_balanced_sqa_annotations_{split}_scannetv2.json").read_text())
        a = a["annotations"]
        assert sorted(x["question_id"] for x in q) == sorted(x["question_id"] for x in a)
        assert {x["scene_id"] for x in q} <= set(index["splits"][split])
        for rec in (dataset / "vsibench" / f"{split}.jsonl").read_text().splitlines():
            r = json.loads(rec)
            assert set(r) >= {"id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth"}
            assert r["scene_name"] in index["splits"][split]
            assert (dataset / "vsibench" / r["dataset"] / f"{r['scene_name']}.mp4").is_file()
        meta = json.loads((dataset / "meta_info" / f"synthrooms_meta_info_{split}.json").read_text())
        assert set(meta) == set(index["splits"][split])
    all_q = [json.loads(line)["id"] for s in SPLITS for line in (dataset / "vsibench" / f"{s}.jsonl").open()]
    assert len(all_q) == len(set(all_q)) > 0
    for scene in _all_scans(dataset):
        d = dataset / "scans" / scene
        for name in ("intrinsic_color", "intrinsic_depth", "extrinsic_color", "extrinsic_depth"):
            assert _read_matrix(d / "intrinsic" / f"{name}.txt").shape == (4, 4)
        assert len(list((d / "color").glob("*.jpg"))) == 8


def test_unprojected_depth_lies_in_room_and_in_instance_boxes(dataset):
    """(a) every valid depth pixel unprojects inside the room; (b) pixels of instance k inside object k's box
    (within 2 cm); instance-0 pixels lie on the floor, the ceiling or a wall."""
    tol = 0.02
    for scene in _all_scans(dataset):
        k, depth, inst, poses, layout = _scan(dataset, scene)
        room = Polygon(layout.floor_polygon)
        by_id = {o.instance_id: o for o in layout.objects}
        seen_objects = 0
        for t in range(len(depth)):
            pts = depth_to_world_points(depth[t], k, poses[t])
            valid = np.isfinite(pts).all(-1)
            assert valid.mean() > 0.99, scene  # a closed room: (almost) every pixel sees a surface
            p = pts[valid]
            ids = inst[t][valid]
            inside = np.array([room.buffer(tol).contains(Point(x, y)) for x, y in p[:, :2]])
            assert inside.all(), (scene, t)
            assert (p[:, 2] > -tol).all() and (p[:, 2] < layout.height + tol).all()
            for iid in np.unique(ids):
                q = p[ids == iid]
                if iid == 0:
                    on_floor = np.abs(q[:, 2]) < tol
                    on_ceiling = np.abs(q[:, 2] - layout.height) < tol
                    boundary = room.exterior
                    on_wall = np.array([boundary.distance(Point(x, y)) < tol for x, y in q[:, :2]])
                    assert (on_floor | on_ceiling | on_wall).all(), (scene, t)
                    continue
                assert iid in by_id, (scene, t, iid)
                obj = by_id[iid]
                c, s = np.cos(obj.yaw), np.sin(obj.yaw)
                rel = q - obj.center
                local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], -1)
                excess = np.abs(local) - obj.size / 2
                assert excess.max() <= tol, (scene, t, obj.category, float(excess.max()))
                seen_objects += 1
        assert seen_objects > 0, scene


def test_reprojection_into_other_frames_matches_depth(dataset):
    """(c) points of frame i re-project into frame j with matching depth and instance where visible, and
    never in front of what frame j sees (no see-through)."""
    total_matched = 0
    for scene in _all_scans(dataset):
        k, depth, inst, poses, _layout = _scan(dataset, scene)
        n, h, w = depth.shape
        pairs = [(i, i + 1) for i in range(n - 1)] + [(n - 1, 0)]
        for i, j in pairs:
            pts = depth_to_world_points(depth[i], k, poses[i])
            valid = np.isfinite(pts).all(-1)
            uv, z = project_points(pts[valid], k, poses[j])
            col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
            ok = (z > 0.05) & (col >= 1) & (col < w - 1) & (row >= 1) & (row < h - 1)
            if ok.sum() < 20:
                continue
            zi, ci, ri = z[ok], col[ok], row[ok]
            ids_i = inst[i][valid][ok]
            d_near = depth[j][ri, ci]
            neigh = np.stack([depth[j][ri + dr, ci + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], -1)
            neigh = np.where(neigh > 0, neigh, np.inf)
            see_through = zi < neigh.min(-1) - 0.05
            assert see_through.mean() < 0.01, (scene, i, j, see_through.mean())
            matched = np.abs(zi - d_near) < 0.02 + 0.005 * zi
            if matched.sum() >= 10:
                same = ids_i[matched] == inst[j][ri[matched], ci[matched]]
                assert same.mean() > 0.97, (scene, i, j, same.mean())
            total_matched += int(matched.sum())
            # neighbouring frames of a smooth walk overlap a lot
            if scene.endswith("_00") and j == i + 1:
                assert matched.mean() > 0.2, (scene, i, j, matched.mean())
    assert total_matched > 1000


def test_situations_are_in_free_space_and_name_existing_objects(dataset):
    index = read_index(dataset)
    n_checked = 0
    for split in SPLITS:
        qs = json.loads((dataset / "sqa3d" / f"v1_balanced_questions_{split}_scannetv2.json").read_text())["questions"]
        anns = json.loads((dataset / "sqa3d" / f"v1_balanced_sqa_annotations_{split}_scannetv2.json").read_text())
        by_id = {a["question_id"]: a for a in anns["annotations"]}
        layouts = {}
        for q in qs:
            a = by_id[q["question_id"]]
            scene = q["scene_id"]
            assert index["scenes"][scene]["split"] == split
            if scene not in layouts:
                meta = json.loads((dataset / "scans" / scene / "meta_info.json").read_text())
                layout = layout_from_entry(scene, meta[scene])
                layouts[scene] = (layout, free_space(layout))
            layout, free = layouts[scene]
            pos = a["position"]
            assert pos["z"] == 0.0 and is_free(free, np.array([pos["x"], pos["y"]]))
            rot = a["rotation"]
            assert rot["_x"] == 0.0 and rot["_y"] == 0.0
            assert rot["_z"] ** 2 + rot["_w"] ** 2 == pytest.approx(1.0)
            objects = {o.instance_id: o for o in layout.objects}
            assert a["referenced_instances"]
            for iid in a["referenced_instances"]:
                assert iid in objects
                assert objects[iid].category in q["situation"]
            assert a["answers"][0]["answer"]
            n_checked += 1
    assert n_checked > 0


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs >= 2 usable CPUs"
)
def test_video_bytes_independent_of_available_cpus(tmp_path):
    """The same seed gives the same ``video.mp4`` whatever CPUs the encoding process may use (machine,
    cgroup, affinity): x264's automatic thread count would change the bitstream (here: 1 vs >= 2 CPUs at
    128x128, where x264 would use 2 threads)."""
    settings = SynthSettings(
        num_scenes=1, frames=6, width=128, height=128, seed=4, situations_per_scene=1, vsi_questions_per_type=1
    )
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        one = generate_dataset(tmp_path / "one_cpu", settings, workers=1, progress=False)
    finally:
        os.sched_setaffinity(0, cpus)
    many = generate_dataset(tmp_path / "all_cpus", settings, workers=1, progress=False)
    assert not one.failed and not many.failed
    videos = sorted(p.relative_to(tmp_path / "one_cpu") for p in (tmp_path / "one_cpu").rglob("*.mp4"))
    assert videos, "no video written"
    for rel in videos:
        assert (tmp_path / "one_cpu" / rel).read_bytes() == (tmp_path / "all_cpus" / rel).read_bytes(), rel


def test_determinism_from_seed_and_independent_of_workers(tmp_path):
    settings = SynthSettings(
        num_scenes=3,
        frames=4,
        width=32,
        height=32,
        seed=11,
        situations_per_scene=2,
        questions_per_situation=2,
        vsi_questions_per_type=1,
    )
    a = generate_dataset(tmp_path / "a", settings, workers=1, progress=False)
    b = generate_dataset(tmp_path / "b", settings, workers=2, progress=False)
    assert not a.failed and not b.failed
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert ta.keys() == tb.keys()
    assert [k for k in ta if ta[k] != tb[k]] == []
    other = SynthSettings(**{**settings.to_dict(), "seed": 12})
    c = generate_dataset(tmp_path / "c", other, workers=1, progress=False)
    tc = _tree(tmp_path / "c")
    assert tc["scans/synth00000_00/pose/0.txt"] != ta["scans/synth00000_00/pose/0.txt"]
    assert c.index["fingerprint"] != a.index["fingerprint"]


def test_situations_name_only_objects_seen_in_the_video(dataset):
    """A situation must be groundable from the clip: every object it references appears in some frame's instance
    mask (``first_seen_frame``, recomputed here from the instance PNGs, not trusted from scene.json)."""
    checked = 0
    for scene_id in _all_scans(dataset):
        _, _, inst, _, _ = _scan(dataset, scene_id)
        min_pixels = SETTINGS.min_pixels
        seen = {int(i) for f in inst for i, c in zip(*np.unique(f, return_counts=True), strict=True) if c >= min_pixels}
        ann = json.loads((dataset / "scans" / scene_id / "sqa3d.json").read_text())["annotations"]
        for a in ann:
            assert set(a["referenced_instances"]) <= seen, (scene_id, a["question_id"], a["referenced_instances"])
            checked += 1
    assert checked > 0
