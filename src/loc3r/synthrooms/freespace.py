"""Walkable free space of a SynthRooms scene, as a 2D region of the floor plane (world frame, metres).

The free space is where an agent (or a hand-held camera's carrier) can stand:

    free = erode(floor, clearance)  \\  union_k  buffer(footprint_k, clearance)

over the *blocking* objects k, i.e. objects whose box bottom ``center_z - size_z / 2`` is at most
:data:`BLOCKING_MAX_BOTTOM` (0.5 m). Windows, wall-mounted tvs and things standing on tables have their
bottom higher up and do not block walking. ``clearance`` is the radius of the walking body: a point in the
free space is at least ``clearance`` from every wall and every blocking footprint.

The region is a Shapely geometry (Polygon or MultiPolygon, possibly empty). It is used by the camera
trajectories (render engineer) and by the situation generator (:mod:`loc3r.synthrooms.questions`).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from loc3r.data.schema import SceneLayout, SceneObject

#: An object blocks walking iff the bottom of its box is at most this high above the floor (metres).
BLOCKING_MAX_BOTTOM = 0.5
#: Default body radius: minimum distance from walls and blocking footprints (metres).
DEFAULT_CLEARANCE = 0.3
# Rejection sampling gives up after this many candidate points per requested point.
_MAX_TRIES_PER_POINT = 10_000


def object_footprint(obj: SceneObject) -> Polygon:
    """The floor-plane footprint (oriented rectangle) of an object's box."""
    return Polygon(obj.corners_xy())


def is_blocking(obj: SceneObject) -> bool:
    """True if the object stands on (or near) the floor: box bottom <= :data:`BLOCKING_MAX_BOTTOM`."""
    return float(obj.center[2]) - float(obj.size[2]) / 2.0 <= BLOCKING_MAX_BOTTOM


def blocking_objects(layout: SceneLayout) -> list[SceneObject]:
    """The objects of ``layout`` that block walking."""
    return [obj for obj in layout.objects if is_blocking(obj)]


def free_space(layout: SceneLayout, clearance: float = DEFAULT_CLEARANCE) -> BaseGeometry:
    """Walkable region: floor eroded by ``clearance`` minus blocking footprints buffered by ``clearance``.

    Returns a Shapely (Multi)Polygon, empty when nothing is walkable (tiny or fully furnished room). The layout is
    valid where it entered (the generator builds valid rooms; :func:`~loc3r.synthrooms.meta_info.layout_from_entry`
    checks a file's floor polygon and boxes).
    """
    floor = Polygon(np.asarray(layout.floor_polygon, dtype=np.float64))
    region = floor.buffer(-clearance, join_style="mitre") if clearance > 0 else floor
    blockers = [object_footprint(o) for o in blocking_objects(layout)]
    if blockers and not region.is_empty:
        obstacles = unary_union(blockers)
        if clearance > 0:
            obstacles = obstacles.buffer(clearance)
        region = region.difference(obstacles)
    shapely.prepare(region)
    return region


def sample_free_points(free: BaseGeometry, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` points ``[count, 2]`` drawn uniformly from the region ``free`` by rejection sampling.

    Candidates are uniform in the bounding box and kept if inside ``free``; this is exactly uniform on
    the region. Deterministic given ``rng``'s state. Raises ``ValueError`` if the region is empty (zero
    area) or so thin that sampling fails.
    """
    return _FreePointSampler(free).sample(rng, count)


class _FreePointSampler:
    """:func:`sample_free_points` for many calls on one region: its area and bounds are computed once.

    ``sample(rng, count)`` returns exactly what ``sample_free_points(free, rng, count)`` returns and draws
    the same numbers from ``rng`` (it is that function's implementation); situation generation draws one
    point per pose attempt, ~100k times per dataset, where Shapely's area / bounds dominated.
    """

    def __init__(self, free: BaseGeometry) -> None:
        self.free = free
        self.empty = bool(free.is_empty or free.area <= 0.0)
        if not self.empty:
            self.area = free.area
            self.bounds = free.bounds

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.empty:
            raise ValueError("sample_free_points: the free space is empty (room too small or fully furnished)")
        if count == 0:
            return np.zeros((0, 2))
        xmin, ymin, xmax, ymax = self.bounds
        accept = self.area / max((xmax - xmin) * (ymax - ymin), 1e-12)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        have, tried = 0, 0
        while have < count:
            if tried > _MAX_TRIES_PER_POINT * count:
                raise ValueError(
                    f"sample_free_points: only {have}/{count} points after {tried} candidates "
                    f"(free area {self.area:.4f} m², acceptance {accept:.2e})"
                )
            batch = int(min(max(16, 1.3 * (count - have) / accept), 1_000_000))
            cx = rng.uniform(xmin, xmax, batch)
            cy = rng.uniform(ymin, ymax, batch)
            tried += batch
            inside = shapely.contains_xy(self.free, cx, cy).nonzero()[0]
            xs.append(cx[inside])
            ys.append(cy[inside])
            have += len(inside)
        out = np.empty((count, 2))
        out[:, 0] = (xs[0] if len(xs) == 1 else np.concatenate(xs))[:count]
        out[:, 1] = (ys[0] if len(ys) == 1 else np.concatenate(ys))[:count]
        return out


def is_free(free: BaseGeometry, xy: np.ndarray) -> bool | np.ndarray:
    """Whether floor point(s) ``xy`` (``[2]`` or ``[..., 2]``; a 3rd coordinate is ignored) lie in ``free``.

    Points on the region's boundary count as free (the clearance is already built into the region).
    """
    pts = np.asarray(xy, dtype=np.float64)
    inside = shapely.intersects_xy(free, pts[..., 0], pts[..., 1])
    if np.ndim(inside) == 0:
        return bool(inside)
    return np.asarray(inside, dtype=bool)
