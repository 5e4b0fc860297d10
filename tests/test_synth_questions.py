"""Tests of SynthRooms free space, situations and questions (hand-written layouts, no scene generator)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point

from loc3r.data.schema import SampleError, SceneLayout, SceneObject
from loc3r.data.synth.freespace import free_space, is_free, sample_free_points


def _box(category: str, iid: int, x: float, y: float, sx: float, sy: float, sz: float, **kw) -> SceneObject:
    bottom = kw.pop("bottom", 0.0)
    return SceneObject(category, iid, np.array([x, y, bottom + sz / 2]), np.array([sx, sy, sz]), **kw)


def _rect_room(w: float = 6.0, d: float = 5.0, objects: list[SceneObject] | None = None) -> SceneLayout:
    poly = np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=float)
    return SceneLayout("room", poly, 2.8, objects or [])


# ---------------------------------------------------------------------------------------------- free space


def test_free_space_clearance_and_blocking() -> None:
    bed = _box("bed", 1, 2.0, 2.0, 2.0, 1.6, 0.6, yaw=0.4)
    window = _box("window", 2, 0.05, 2.5, 0.1, 1.2, 1.0, bottom=0.9)  # high up: does not block
    layout = _rect_room(objects=[bed, window])
    free = free_space(layout, clearance=0.3)
    pts = sample_free_points(free, np.random.default_rng(0), 2000)
    assert pts.shape == (2000, 2)
    assert is_free(free, pts).all()
    floor_poly = layout.floor_polygon
    # at least clearance from walls and from the bed footprint, everywhere
    assert (pts.min(axis=0) >= 0.3 - 1e-9).all() and (pts.max(axis=0) <= floor_poly.max(axis=0) - 0.3 + 1e-9).all()
    from shapely.geometry import Polygon

    bed_poly = Polygon(bed.corners_xy())
    assert min(bed_poly.distance(Point(p)) for p in pts[:300]) >= 0.3 - 1e-6
    assert not is_free(free, np.array([2.0, 2.0]))
    # the window near the wall does not remove space beyond the wall clearance
    assert is_free(free, np.array([0.45, 2.5]))
    # uniformity: fraction in the left half of the free region matches its area fraction
    left = free.intersection(Polygon([[0, 0], [3, 0], [3, 5], [0, 5]])).area / free.area
    assert abs((pts[:, 0] < 3).mean() - left) < 0.05


def test_free_space_degenerate() -> None:
    tiny = _rect_room(0.5, 0.5)
    free = free_space(tiny, clearance=0.3)
    assert free.is_empty
    with pytest.raises(ValueError, match="empty"):
        sample_free_points(free, np.random.default_rng(0), 3)
    bad = SceneLayout("bad", np.array([[0, 0], [1, 1], [0, 1], [1, 0]], float), 2.5, [])
    with pytest.raises(SampleError, match="bad"):
        free_space(bad)
    nan_obj = _rect_room(objects=[_box("chair", 7, np.nan, 1, 0.5, 0.5, 0.9)])
    with pytest.raises(SampleError, match="object 7"):
        free_space(nan_obj)


def test_sample_free_points_deterministic() -> None:
    free = free_space(_rect_room(objects=[_box("table", 1, 3, 2.5, 1.2, 0.8, 0.75)]))
    a = sample_free_points(free, np.random.default_rng(5), 50)
    b = sample_free_points(free, np.random.default_rng(5), 50)
    np.testing.assert_array_equal(a, b)
