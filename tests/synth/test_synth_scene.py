"""SynthRooms scenes, catalog geometry, meta_info layouts and trajectories."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from shapely.geometry import Point, Polygon

from loc3r.core.geometry import camera_center, camera_forward, validate_poses, yaw_of_direction
from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms.catalog import CATEGORIES
from loc3r.synthrooms.freespace import free_space, is_free
from loc3r.synthrooms.mesh import _part_mesh, build_scene_mesh, object_parts, triangulate_polygon
from loc3r.synthrooms.meta_info import LayoutError, layout_from_entry, layout_to_entry, load_meta_info
from loc3r.synthrooms.render import SceneRenderer, make_intrinsic
from loc3r.synthrooms.scene import SceneConfig, category_code_color, generate_layout
from loc3r.synthrooms.trajectory import camera_pose, sample_novel_view, sample_walk
from loc3r.synthrooms.vocabulary import canonical_category

SEEDS = range(24)


@pytest.fixture(scope="module")
def layouts() -> list[SceneLayout]:
    return [generate_layout(f"s{i}", np.random.default_rng(i)) for i in SEEDS]


def _box_volume_overlap(a: SceneObject, b: SceneObject) -> float:
    """Independent check: footprint intersection area x z-interval overlap (m³)."""
    za = (a.center[2] - a.size[2] / 2, a.center[2] + a.size[2] / 2)
    zb = (b.center[2] - b.size[2] / 2, b.center[2] + b.size[2] / 2)
    dz = min(za[1], zb[1]) - max(za[0], zb[0])
    if dz <= 0:
        return 0.0
    return Polygon(a.corners_xy()).intersection(Polygon(b.corners_xy())).area * dz


def test_vocabulary_has_at_least_20_categories_with_valid_ranges():
    assert len(CATEGORIES) >= 20
    for required in (
        "bed",
        "sofa",
        "chair",
        "table",
        "desk",
        "cabinet",
        "bookshelf",
        "tv",
        "lamp",
        "plant",
        "box",
        "fridge",
        "sink",
        "toilet",
        "door",
        "window",
        "trash bin",
        "pillow",
        "monitor",
    ):
        assert required in CATEGORIES
    for cat in CATEGORIES.values():
        assert all(0 < lo <= hi for lo, hi in zip(cat.size_min, cat.size_max, strict=True)), cat.name
        assert cat.colors and cat.placements
    assert canonical_category("Couch") == "sofa"
    assert canonical_category("trash_can") == "trash bin"
    assert canonical_category("spaceship") is None


@pytest.mark.parametrize("name", sorted(CATEGORIES))
def test_every_category_geometry_lies_inside_its_box(name):
    """The renderer's instance pixels can only be checked against boxes if every part is inside its box."""
    cat = CATEGORIES[name]
    rng = np.random.default_rng(0)
    for k in range(3):
        size = cat.sample_size(rng, on_top=bool(k % 2))
        obj = SceneObject(name, k + 1, np.array([1.0, 2.0, 0.5 + size[2] / 2]), size, yaw=0.7 * k)
        parts = object_parts(obj)
        assert parts
        for part in parts:
            verts = _part_mesh(part).vertices
            assert (verts >= -size / 2 * np.array([1, 1, 0]) - 1e-9).all(), (name, part)
            assert (verts <= size / 2 * np.array([1, 1, 2]) + 1e-9).all(), (name, part)


def test_scenes_have_no_interpenetration_and_stay_in_the_room(layouts):
    for layout in layouts:
        room = Polygon(layout.floor_polygon)
        assert room.exterior.is_ccw and room.is_valid
        ids = [o.instance_id for o in layout.objects]
        assert len(set(ids)) == len(ids) and min(ids) >= 1
        for i, a in enumerate(layout.objects):
            assert room.buffer(1e-6).contains(Polygon(a.corners_xy())), (layout.scene_id, a.category)
            assert a.center[2] - a.size[2] / 2 >= -1e-9
            assert a.center[2] + a.size[2] / 2 <= layout.height
            assert a.category in CATEGORIES
            for b in layout.objects[i + 1 :]:
                assert _box_volume_overlap(a, b) < 1e-5, (layout.scene_id, a.category, b.category)


def test_rooms_are_rectangles_and_l_shapes_within_size_limits(layouts):
    shapes = {len(layout.floor_polygon) for layout in layouts}
    assert shapes == {4, 6}
    cfg = SceneConfig()
    for layout in layouts:
        ext = layout.floor_polygon.max(0) - layout.floor_polygon.min(0)
        assert (ext >= cfg.min_side - 1e-6).all() and (ext <= cfg.max_side + 1e-6).all()
        assert cfg.min_height <= layout.height <= cfg.max_height
        assert cfg.min_objects <= len(layout.objects) <= cfg.max_objects
        assert free_space(layout).area >= cfg.min_free_area


def test_scenes_use_many_categories_and_placement_rules(layouts):
    cats = {o.category for layout in layouts for o in layout.objects}
    assert len(cats) >= 20
    for layout in layouts:
        by_id = {o.instance_id: o for o in layout.objects}
        for o in layout.objects:
            if o.category == "pillow":  # on top of a bed
                bottom = o.center[2] - o.size[2] / 2
                assert any(
                    abs(b.center[2] + b.size[2] / 2 - bottom) < 1e-9 for b in by_id.values() if b.category == "bed"
                )
            if o.category == "window":
                assert o.center[2] - o.size[2] / 2 >= 0.8 - 1e-9


def test_generation_is_deterministic_and_complexity_is_a_parameter():
    a = generate_layout("x", np.random.default_rng(5))
    b = generate_layout("x", np.random.default_rng(5))
    assert json.dumps(layout_to_entry(a)) == json.dumps(layout_to_entry(b))
    c = generate_layout("x", np.random.default_rng(6))
    assert json.dumps(layout_to_entry(a)) != json.dumps(layout_to_entry(c))
    small = SceneConfig(min_objects=3, max_objects=4, min_side=3.0, max_side=4.0)
    big = SceneConfig(min_objects=16, max_objects=20, min_side=7.0, max_side=10.0)
    for seed in range(4):
        s = generate_layout("s", np.random.default_rng(seed), small)
        g = generate_layout("g", np.random.default_rng(seed), big)
        assert 3 <= len(s.objects) <= 4 and 16 <= len(g.objects) <= 20
        assert Polygon(s.floor_polygon).area < Polygon(g.floor_polygon).area


def test_category_colors_paint_each_category_in_its_own_distinct_colour():
    colours = {name: np.array(category_code_color(name), dtype=float) for name in CATEGORIES}
    names = sorted(colours)
    gaps = [np.linalg.norm(colours[a] - colours[b]) for i, a in enumerate(names) for b in names[i + 1 :]]
    assert min(gaps) > 20  # pairwise distinct sRGB (not just different by rounding)
    coded = SceneConfig(min_objects=8, max_objects=12, category_colors=True)
    seen: dict[str, tuple] = {}
    for seed in range(6):
        layout = generate_layout("c", np.random.default_rng(seed), coded)
        for obj in layout.objects:
            assert tuple(obj.color) == category_code_color(obj.category)
            assert seen.setdefault(obj.category, tuple(obj.color)) == tuple(obj.color)
    assert len(seen) >= 8
    # off by default: palettes give the same category several colours
    palette = {
        (o.category, tuple(o.color))
        for seed in range(6)
        for o in generate_layout("p", np.random.default_rng(seed)).objects
    }
    assert len(palette) > len({c for c, _ in palette})
    from loc3r.synthrooms.writer import SynthSettings

    assert SynthSettings(category_colors=True).scene_config.category_colors  # `loc3r synth --category-colors`
    assert SynthSettings().fingerprint() != SynthSettings(category_colors=True).fingerprint()


def test_triangulation_covers_l_shape():
    poly = np.array([[0, 0], [4, 0], [4, 2], [2, 2], [2, 4], [0, 4]], dtype=float)
    tris = triangulate_polygon(poly)

    def tri_area(a: int, b: int, c: int) -> float:
        (x1, y1), (x2, y2) = poly[b] - poly[a], poly[c] - poly[a]
        return abs(x1 * y2 - x2 * y1) / 2

    area = sum(tri_area(a, b, c) for a, b, c in tris)
    assert len(tris) == 4 and math.isclose(area, 12.0)


def test_meta_info_round_trip_and_identical_render(layouts):
    layout = layouts[3]
    entry = json.loads(json.dumps(layout_to_entry(layout)))
    assert entry["room_size"] == pytest.approx(Polygon(layout.floor_polygon).area, abs=1e-3)
    assert sum(entry["object_counts"].values()) == len(layout.objects)
    back = layout_from_entry(layout.scene_id, entry)
    assert back.height == pytest.approx(layout.height)
    np.testing.assert_allclose(back.floor_polygon, layout.floor_polygon, atol=1e-6)
    src = {o.instance_id: o for o in layout.objects}
    for o in back.objects:
        ref = src[o.instance_id]
        assert o.category == ref.category and o.color == ref.color and o.color_name == ref.color_name
        np.testing.assert_allclose(o.center, ref.center, atol=1e-6)
        np.testing.assert_allclose(o.size, ref.size, atol=1e-6)
        assert math.cos(o.yaw - ref.yaw) == pytest.approx(1.0, abs=1e-9)
    k = make_intrinsic(32, 32)
    pose = sample_walk(layout, np.random.default_rng(0), 1).poses[0]
    f1 = SceneRenderer(build_scene_mesh(layout)).render(pose, k, 32, 32)
    f2 = SceneRenderer(build_scene_mesh(back)).render(pose, k, 32, 32)
    np.testing.assert_array_equal(f1.instance, f2.instance)
    np.testing.assert_allclose(f1.depth, f2.depth, atol=1e-5)


def _entry_with(box_update: dict, category: str = "chair") -> dict:
    box = {
        "centroid": [1.0, 1.0, 0.45],
        "axesLengths": [0.5, 0.5, 0.9],
        "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "min": [0.75, 0.75, 0.0],
        "max": [1.25, 1.25, 0.9],
    }
    box.update(box_update)
    return {
        "room_size": 12.0,
        "object_counts": {category: 1, "table": 1},
        "object_bbox": {
            category: [box],
            "table": [
                {
                    "centroid": [2.5, 2.5, 0.375],
                    "axesLengths": [1.2, 0.8, 0.75],
                    "normalizedAxes": [0, 1, 0, -1, 0, 0, 0, 0, 1],
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("update", "category", "message"),
    [
        ({}, "spaceship", "unknown category 'spaceship'"),
        ({"axesLengths": [0.5, 0.0, 0.9]}, "chair", "degenerate box"),
        ({"centroid": [1.0, float("nan"), 0.45]}, "chair", "non-finite"),
        ({"normalizedAxes": [1, 0, 0, 1, 0, 0, 0, 0, 1]}, "chair", "not orthogonal"),
        ({"normalizedAxes": [2, 0, 0, 0, 1, 0, 0, 0, 1]}, "chair", "not unit"),
        ({"min": [2, 2, 2]}, "chair", "exceeds 'max'"),
        ({"centroid": [1.0, 1.0]}, "chair", "must have 3 numbers"),
    ],
)
def test_bad_layout_entries_name_scene_and_object(tmp_path, update, category, message):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"good": _entry_with({}), "scene0042_00": _entry_with(update, category)}))
    with pytest.raises(LayoutError) as err:
        load_meta_info(path, strict=True)
    text = str(err.value)
    assert str(path) in text and "scene0042_00" in text and f"{category!r}[0]" in text and message in text
    # without strict, loading goes on: the bad scene is skipped (an unknown category is a plain box), with a warning
    warnings: list[str] = []
    layouts = load_meta_info(path, warnings=warnings)
    assert layouts[0].scene_id == "good" and len(warnings) == 1 and message in warnings[0]
    assert "scene0042_00" in warnings[0] and str(path) in warnings[0]


def test_bad_layout_counts_and_json(tmp_path):
    entry = _entry_with({})
    entry["object_counts"]["chair"] = 2
    with pytest.raises(LayoutError, match=r"scene 'r1'.*object_counts\['chair'\] = 2"):
        layout_from_entry("r1", entry, strict=True)
    warnings: list[str] = []
    assert len(layout_from_entry("r1", entry, warnings=warnings).objects) == 2  # real files do this: every box renders
    assert "object_counts['chair'] = 2 but object_bbox has 1 boxes" in warnings[0]
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(LayoutError, match="broken.json: not valid JSON"):
        load_meta_info(bad)


def test_real_style_entry_without_room_gets_an_enclosing_room():
    layout = layout_from_entry("scene0000_00", _entry_with({}, "office chair"))
    room = Polygon(layout.floor_polygon)
    assert room.area == pytest.approx(12.0)  # the file's room_size
    assert [o.category for o in layout.objects] == ["chair", "table"]
    assert [o.instance_id for o in layout.objects] == [1, 2]
    table = layout.objects[1]
    assert table.size[0] == pytest.approx(1.2) and math.cos(table.yaw - math.pi / 2) == pytest.approx(1.0)
    for o in layout.objects:
        assert room.contains(Polygon(o.corners_xy()))
    assert layout.height >= 2.5


def test_camera_pose_convention():
    pose = camera_pose(np.array([1.0, 2.0, 1.5]), yaw=0.3, pitch=-0.2, roll=0.1)
    validate_poses(pose[None])
    assert yaw_of_direction(camera_forward(pose)) == pytest.approx(0.3)
    assert camera_forward(pose)[2] == pytest.approx(math.sin(-0.2))
    level = camera_pose(np.zeros(3), yaw=1.0)
    np.testing.assert_allclose(level[:3, 1], [0, 0, -1], atol=1e-12)  # image down = world down


def test_walks_and_novel_views_stay_in_free_space_with_their_heights(layouts):
    for layout in layouts[:10]:
        free = free_space(layout, 0.3)
        walk = sample_walk(layout, np.random.default_rng(1), 16)
        nov = sample_novel_view(layout, np.random.default_rng(1), 16)
        for traj in (walk, nov):
            poses = validate_poses(traj.poses)
            assert poses.shape == (16, 4, 4)
            assert is_free(free, camera_center(poses)[:, :2]).all()
        h_walk = camera_center(walk.poses)[:, 2]
        h_nov = camera_center(nov.poses)[:, 2]
        assert ((h_walk > 1.15) & (h_walk < 1.85)).all()
        assert ((h_nov < 0.95) | (h_nov > 1.9)).all()
        pitch_walk = np.degrees(np.arcsin(camera_forward(walk.poses)[:, 2]))
        assert ((pitch_walk > -32) & (pitch_walk < 2)).all()
        steps = np.linalg.norm(np.diff(camera_center(walk.poses)[:, :2], axis=0), axis=1)
        assert steps.max() < 2.0  # smooth path, no teleports
        a = sample_walk(layout, np.random.default_rng(9), 8).poses
        b = sample_walk(layout, np.random.default_rng(9), 8).poses
        np.testing.assert_array_equal(a, b)


def test_render_depth_is_exact_z_depth_in_an_empty_room():
    layout = SceneLayout("empty", np.array([[0, 0], [4, 0], [4, 4], [0, 4]], dtype=float), 2.5, [])
    renderer = SceneRenderer(build_scene_mesh(layout))
    w = h = 48
    k = make_intrinsic(w, h, 60.0)
    pose = camera_pose(np.array([0.5, 2.0, 1.25]), yaw=0.0)  # looks at the wall x = 4, 3.5 m away
    frame = renderer.render(pose, k, w, h)
    assert (frame.depth > 0).all() and (frame.instance == 0).all()
    v = np.arange(h) + 0.5
    # rows whose ray hits the wall before floor/ceiling: |v - cy| / fy * 3.5 m < 1.25 m
    wall_rows = np.abs(v - k[1, 2]) / k[1, 1] * 3.5 < 1.25 - 1e-3
    assert 0 < wall_rows.sum() < h
    np.testing.assert_allclose(frame.depth[wall_rows], 3.5, atol=1e-5)
    # a floor pixel: z-depth = height / ((v - cy) / fy)
    floor_row = h - 1
    np.testing.assert_allclose(frame.depth[floor_row, w // 2], 1.25 / ((v[floor_row] - k[1, 2]) / k[1, 1]), rtol=1e-5)
    assert frame.rgb.dtype == np.uint8 and frame.rgb.std() > 1.0  # shaded, textured


def test_free_space_points_are_outside_objects(layouts):
    layout = layouts[0]
    free = free_space(layout, 0.3)
    pts = [Point(p) for p in np.asarray(sample_walk(layout, np.random.default_rng(2), 8).dense_positions)[:, :2]]
    for o in layout.objects:
        if o.center[2] - o.size[2] / 2 <= 0.5:
            fp = Polygon(o.corners_xy())
            assert all(not fp.contains(p) for p in pts)
    assert free.area > 0
