"""Real VSI-Bench meta_info layouts (written here in that format): tilted boxes made upright, the full vocabulary
with category-typical meshes and synonyms, floors at any height, room_size / room_center honoured, unknown
categories as plain boxes, bad boxes named; and one such room rendered end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, Polygon

from loc3r.synthrooms.catalog import CATEGORIES
from loc3r.synthrooms.meta_info import LayoutError, layout_from_entry, load_meta_info
from loc3r.synthrooms.vocabulary import EXTRA_CATEGORIES, canonical_category, get_category

#: every category of the public VSI-Bench meta_info validation files (ScanNet, ScanNet++, ARKitScenes)
VSI_VOCABULARY = (
    "chair table door sofa|ceiling light|monitor pillow tv|trash bin|window bed stool keyboard refrigerator backpack|"
    "computer tower|toilet heater|computer mouse|whiteboard printer|trash can|bookshelf plant stove bathtub telephone "
    "washer lamp mirror towel fireplace microwave cup shoes counter radiator nightstand crate|power strip|"
    "exhaust fan|clock laptop bucket basket blanket dishwasher suitcase cushion closet kettle fan|coat hanger|"
    "cutting board|pan bowl headphones|shoe rack|table lamp|washing machine|oven mattress guitar piano|paper bag"
)


def _names() -> list[str]:
    # multi-word names are separated by "|", single words by spaces
    out: list[str] = []
    for chunk in VSI_VOCABULARY.split("|"):
        words = chunk.split()
        if len(words) == 2 and chunk.strip() in ("ceiling light", "computer tower", "computer mouse", "trash bin",
                                                 "trash can", "power strip", "exhaust fan", "coat hanger",
                                                 "cutting board", "shoe rack", "table lamp", "washing machine",
                                                 "paper bag"):  # fmt: skip
            out.append(chunk.strip())
        else:
            out += words
    return out


def box(centre, lengths, axes=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> dict:
    a = np.asarray(axes, dtype=float).reshape(3, 3)
    signs = np.array([[i, j, k] for i in (-0.5, 0.5) for j in (-0.5, 0.5) for k in (-0.5, 0.5)])
    corners = np.asarray(centre) + (signs * np.asarray(lengths)) @ a
    return {"centroid": list(centre), "axesLengths": list(lengths), "normalizedAxes": list(axes),
            "min": corners.min(0).tolist(), "max": corners.max(0).tolist()}  # fmt: skip


def rot_x(deg: float) -> list[float]:
    """Axes of a box rotated about world x (tilted out of the vertical)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return [1, 0, 0, 0, c, s, 0, -s, c]


def scannet_like_entry(z_floor: float = -0.8) -> dict:
    """Like a real ScanNet entry: floor at z = -0.8, one chair tilted 35 deg, synonyms, 9 m x 4 m of objects."""
    bbox = {
        "chair": [
            box([1.0, 0.5, z_floor + 0.45], [0.6, 0.6, 0.9]),
            box([2.0, 0.5, z_floor + 0.45], [0.6, 0.9, 0.6], rot_x(35.0)),
        ],
        "table": [box([1.5, 1.5, z_floor + 0.375], [1.2, 0.8, 0.75])],
        "refrigerator": [box([-3.0, -1.0, z_floor + 0.9], [0.7, 0.7, 1.8])],
        "trash can": [box([3.5, -1.2, z_floor + 0.3], [0.3, 0.3, 0.6])],
        "washer": [box([-3.0, 1.0, z_floor + 0.42], [0.6, 0.6, 0.84])],
        "stove": [box([-2.0, -1.3, z_floor + 0.45], [0.7, 0.6, 0.9])],
    }
    return {"room_size": 30.0, "room_center": [0.2, 0.1, z_floor + 1.2],
            "object_counts": {k: len(v) for k, v in bbox.items()}, "object_bbox": bbox}  # fmt: skip


def test_every_vsibench_category_is_known_with_synonyms() -> None:
    names = _names()
    assert len(set(names)) == 65
    assert all(canonical_category(n) is not None for n in names), [n for n in names if canonical_category(n) is None]
    for a, b in (("refrigerator", "fridge"), ("trash can", "trash bin"), ("washer", "washing machine")):
        assert canonical_category(a) == canonical_category(b)
    # the generator's own set (and so every seed's draws) is unchanged: the new categories are layout-only
    assert len(CATEGORIES) == 32 and not set(EXTRA_CATEGORIES) & set(CATEGORIES)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(CATEGORIES) + sorted(EXTRA_CATEGORIES)), st.floats(0.0, 1.0), st.integers(0, 99))
def test_every_category_mesh_lies_in_its_box(name: str, t: float, seed: int) -> None:
    cat = get_category(name)
    w, d, h = (lo + t * (hi - lo) for lo, hi in zip(cat.size_min, cat.size_max, strict=True))
    parts = cat.builder(w, d, h, np.random.default_rng(seed))
    assert parts
    for p in parts:
        lo, hi = np.asarray(p.lo), np.asarray(p.hi)
        assert (hi > lo).all(), (name, p)
        assert (lo >= np.array([-w / 2, -d / 2, 0]) - 1e-9).all() and (hi <= np.array([w / 2, d / 2, h]) + 1e-9).all()


def test_tilted_box_floor_height_room_size_and_centre() -> None:
    entry = scannet_like_entry()
    layout = layout_from_entry("scene0251_00", entry, source="meta.json")
    tilted = layout.objects[1]
    b = entry["object_bbox"]["chair"][1]
    # gravity-aligned: height = vertical extent of the corners, footprint = min-area rectangle of their projection
    assert tilted.size[2] == pytest.approx(b["max"][2] - b["min"][2])
    a = np.asarray(b["normalizedAxes"]).reshape(3, 3)
    signs = np.array([[i, j, k] for i in (-0.5, 0.5) for j in (-0.5, 0.5) for k in (-0.5, 0.5)])
    corners = np.asarray(b["centroid"]) + (signs * np.asarray(b["axesLengths"])) @ a
    footprint = MultiPoint([tuple(p) for p in corners[:, :2]]).minimum_rotated_rectangle
    assert tilted.size[0] * tilted.size[1] == pytest.approx(footprint.area)
    assert Polygon(tilted.corners_xy()).symmetric_difference(footprint).area < 1e-6
    # floor at z = 0 wherever the file has it; room = the file's room_size around its room_center
    assert min(o.center[2] - o.size[2] / 2 for o in layout.objects) == pytest.approx(0.0, abs=1e-9)
    room = Polygon(layout.floor_polygon)
    assert room.area == pytest.approx(30.0) and (room.centroid.x, room.centroid.y) == pytest.approx((0.2, 0.1))
    assert [o.category for o in layout.objects][2:6] == ["table", "fridge", "trash bin", "washing machine"]
    # the same room with its floor at z = +1.3: the same layout
    up = layout_from_entry("scene0251_00", scannet_like_entry(z_floor=1.3))
    for o1, o2 in zip(layout.objects, up.objects, strict=True):
        np.testing.assert_allclose(o1.center, o2.center, atol=1e-9)
        np.testing.assert_allclose(o1.size, o2.size, atol=1e-9)


def test_unknown_category_plain_box_and_bad_boxes_named(tmp_path: Path) -> None:
    entry = scannet_like_entry()
    entry["object_bbox"]["hoverboard"] = [box([0.0, -1.0, -0.6], [0.7, 0.25, 0.2])]
    warnings: list[str] = []
    layout = layout_from_entry("scene0461_00", entry, source="meta.json", warnings=warnings)
    assert layout.objects[-1].category == "hoverboard" and len(warnings) == 1
    assert "meta.json: scene 'scene0461_00': object 'hoverboard'[0]: unknown category" in warnings[0]
    with pytest.raises(LayoutError, match="unknown category 'hoverboard'"):
        layout_from_entry("scene0461_00", entry, strict=True)
    from loc3r.synthrooms.mesh import object_parts

    assert len(object_parts(layout.objects[-1])) == 1  # a plain box
    bad = scannet_like_entry()
    bad["object_bbox"]["table"][0]["axesLengths"] = [1.2, 0.0, 0.75]
    nan = scannet_like_entry()
    nan["object_bbox"]["stove"][0]["centroid"] = [float("nan"), 0.0, 0.0]
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"a": bad, "b": nan, "c": scannet_like_entry()}))
    warnings = []
    assert [lay.scene_id for lay in load_meta_info(path, warnings=warnings)] == ["c"]
    assert "scene 'a': object 'table'[0]: degenerate box, field 'axesLengths'" in warnings[0]
    assert "scene 'b': object 'stove'[0]: field 'centroid' has non-finite values" in warnings[1]
    with pytest.raises(LayoutError, match="degenerate box"):
        load_meta_info(path, strict=True)


def test_synth_cli_strict_refuses_unknown_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.cli import main

    entry = scannet_like_entry()
    entry["object_bbox"]["hoverboard"] = [box([0.0, -1.0, -0.6], [0.7, 0.25, 0.2])]
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"scene0461_00": entry}))
    assert main(["synth", "--out", str(tmp_path / "out"), "--layouts", str(path), "--strict", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("loc3r synth: error: ") and "object 'hoverboard'[0]: unknown category" in err


@pytest.mark.slow
def test_real_style_room_renders_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.cli import main

    entry = scannet_like_entry()
    entry["object_bbox"].update(
        {name: [box([-1.0 + 0.9 * k, 1.6, -0.8 + 0.3], [0.4, 0.4, 0.6])]
         for k, name in enumerate(("oven", "piano", "mirror", "guitar", "hoverboard"))}
    )  # fmt: skip
    entry["object_counts"] = {k: len(v) for k, v in entry["object_bbox"].items()}
    path = tmp_path / "scannet_like_meta_info.json"
    path.write_text(json.dumps({"scene0251_00": entry}))
    argv = ["synth", "--out", str(tmp_path / "out"), "--layouts", str(path), "--frames", "2", "--size", "32x24",
            "--val-fraction", "0", "--test-fraction", "0", "--no-novel-view", "--situations", "1", "--no-video",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "loc3r synth: warning: " in captured.err and "'hoverboard'[0]: unknown category" in captured.err
    index = json.loads((tmp_path / "out" / "synthrooms.json").read_text())
    assert list(index["scenes"]) == ["scene0251_00_00"] and not index["failed"]
    assert index["scenes"]["scene0251_00_00"]["room_area"] == pytest.approx(30.0, abs=0.01)
