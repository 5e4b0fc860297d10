"""Procedural SynthRooms scenes: a room footprint furnished with objects of the catalog, as a SceneLayout.

Generation (all randomness from one ``numpy.random.Generator``, so a scene is a pure function of its seed):

1. **Room**: a rectangle with sides in ``[min_side, max_side]`` metres, or (with probability
   ``l_shape_prob``) an L shape: the rectangle minus a notch of 30-55 % of each side at a random corner.
   Height in ``[min_height, max_height]``. Walls are axis-aligned, the floor polygon is counter-clockwise
   with its bounding box starting at the world origin, floor at z = 0.
2. **Theme** (bedroom, living room, office, kitchen, bathroom or mixed) gives category weights, so rooms
   look plausible; the object count is uniform in ``[min_objects, max_objects]``.
3. **Placement** by rejection sampling in the order doors -> windows -> furniture (with its groups: chairs
   around a table, a chair at a desk, pillows and a nightstand with a bed) -> things on top of flat
   furniture. The rules per placement kind are in :mod:`loc3r.synthrooms.catalog`. A candidate is kept
   iff its footprint lies inside the floor polygon, its top is below the ceiling, its **box does not
   intersect any other box** (touching faces allowed; a 1 mm tolerance) and, for blocking objects, it
   does not enter the keep-out zone in front of a door and the blocking footprints stay below
   ``max_blocking_fraction`` of the floor.
4. **Walkability**: the scene is accepted when its free space (:func:`~loc3r.synthrooms.freespace.free_space`)
   has a connected piece of at least ``min_free_area`` m²; otherwise the room is re-drawn.

The result has objects with unique ``instance_id`` 1..N, colours and colour names from the category
palettes (a colour not yet used by that category in the scene is preferred, so "the green chair" is
usually unique).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms.catalog import CATEGORIES, COLORS, Category, Placement

# fmt: off
#: Category weights per room theme (categories not listed are not drawn in that theme, except doors and
#: windows which every room gets).
THEMES: dict[str, dict[str, float]] = {
    "bedroom": {
        "bed": 6, "nightstand": 3, "wardrobe": 2, "dresser": 2, "lamp": 2, "pillow": 2, "desk": 1, "chair": 1,
        "plant": 1, "picture": 2, "trash bin": 1, "backpack": 1, "tv": 1, "box": 1, "armchair": 1, "laptop": 1,
        "radiator": 1,
    },
    "living": {
        "sofa": 6, "armchair": 3, "table": 3, "tv": 3, "cabinet": 3, "lamp": 2, "plant": 2, "bookshelf": 2,
        "picture": 2, "chair": 1, "box": 1, "trash bin": 1, "radiator": 1, "stool": 1,
    },
    "office": {
        "desk": 6, "chair": 3, "monitor": 3, "laptop": 2, "bookshelf": 3, "cabinet": 2, "whiteboard": 2, "trash bin": 2,
        "plant": 2, "lamp": 1, "box": 2, "table": 1, "backpack": 1, "radiator": 1,
    },
    "kitchen": {
        "fridge": 4, "sink": 3, "cabinet": 4, "table": 3, "chair": 2, "stool": 2, "microwave": 2, "trash bin": 2,
        "plant": 1, "washing machine": 1, "box": 1, "picture": 1,
    },
    "bathroom": {
        "toilet": 4, "sink": 4, "bathtub": 3, "cabinet": 2, "trash bin": 2, "washing machine": 2, "plant": 1,
        "picture": 1, "radiator": 1, "box": 1,
    },
}
# fmt: on
THEMES["mixed"] = {name: 1.0 for name in CATEGORIES if name not in ("door", "window")}

_GAP = 0.005  # distance between a wall-placed object's back and the wall (m)
_TOL = 1e-3  # boxes may touch; an overlap below this (m) in any axis is not an intersection
_DOOR_KEEPOUT = 0.9  # depth (m) of the floor area in front of a door kept free of blocking objects


class SceneGenerationError(RuntimeError):
    """The generator could not build a valid scene with the requested settings."""


@dataclass(frozen=True)
class SceneConfig:
    """Scene complexity parameters (metres)."""

    min_objects: int = 6
    max_objects: int = 14
    min_side: float = 3.0
    max_side: float = 10.0
    min_height: float = 2.4
    max_height: float = 3.2
    l_shape_prob: float = 0.35
    max_blocking_fraction: float = 0.4
    min_free_area: float = 2.0
    clearance: float = 0.3  # walking clearance used for the walkability check
    themes: tuple[str, ...] = ("bedroom", "living", "office", "kitchen", "bathroom", "mixed")
    #: paint every object in its category's own colour (:func:`category_code_color`) instead of a colour drawn
    #: from the category's palette: recognition becomes a colour lookup (for from-scratch tiny models, which do
    #: not learn shape-based recognition in CPU minutes; see benchmarks/RESULTS.md, "Why localization is at
    #: chance"). Duplicates of a category then share a colour and are not named in generated text.
    category_colors: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"SceneConfig: need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if not 2.0 <= self.min_side <= self.max_side:
            raise ValueError(f"SceneConfig: need 2 <= min_side <= max_side, got {self.min_side}, {self.max_side}")
        if not 2.2 <= self.min_height <= self.max_height:
            raise ValueError(
                f"SceneConfig: need 2.2 <= min_height <= max_height, got {self.min_height}, {self.max_height}"
            )
        unknown = [t for t in self.themes if t not in THEMES]
        if unknown or not self.themes:
            raise ValueError(f"SceneConfig: unknown themes {unknown}; known: {sorted(THEMES)}")


# --- Room footprint ---


@functools.cache
def _code_palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` sRGB colours, greedily maximising the smallest distance to the colours already taken and to
    the room's white walls, grey floors / ceilings and black shadows (farthest-point sampling on a 5-level RGB
    grid; deterministic)."""
    levels = (0, 64, 128, 192, 255)
    grid = np.array([(r, g, b) for r in levels for g in levels for b in levels], dtype=float)
    # white walls, grey floors / ceilings, and black (shadows)
    taken = [np.array(c, dtype=float) for c in ((232, 232, 226), (128, 128, 128), (192, 192, 192), (0, 0, 0))]
    out: list[tuple[int, int, int]] = []
    dist = np.min([np.linalg.norm(grid - t, axis=1) for t in taken], axis=0)
    for _ in range(count):
        k = int(np.argmax(dist))
        out.append(tuple(int(v) for v in grid[k]))
        dist = np.minimum(dist, np.linalg.norm(grid - grid[k], axis=1))
    return out


def category_code_color(category: str) -> tuple[int, int, int]:
    """The one sRGB colour of ``category`` when ``SceneConfig.category_colors`` is on (categories in sorted order
    take the colours of :func:`_code_palette`: pairwise distinct, and unlike the walls)."""
    names = sorted(CATEGORIES)
    return _code_palette(len(names))[names.index(category)]


def sample_room_polygon(rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    """A counter-clockwise floor polygon ``[K, 2]``: a rectangle or an L shape, bbox corner at the origin."""
    w, d = rng.uniform(cfg.min_side, cfg.max_side, size=2)
    if rng.random() < cfg.l_shape_prob and min(w, d) >= 3.0:
        a = w * rng.uniform(0.3, 0.55)
        b = d * rng.uniform(0.3, 0.55)
        # rectangle minus its top-right a x b notch, CCW
        poly = np.array([[0, 0], [w, 0], [w, d - b], [w - a, d - b], [w - a, d], [0, d]], dtype=np.float64)
        k = int(rng.integers(4))  # which corner the notch is at: rotate by k * 90 deg
        rot = np.array([[0.0, -1.0], [1.0, 0.0]])
        for _ in range(k):
            poly = poly @ rot.T
    else:
        poly = np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=np.float64)
    poly = poly - poly.min(axis=0)
    return np.round(poly, 6)


def wall_edges(polygon: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Walls of a CCW polygon: ``(start, unit direction, inward unit normal, length)`` per edge."""
    out = []
    k = len(polygon)
    for i in range(k):
        p0, p1 = polygon[i], polygon[(i + 1) % k]
        e = p1 - p0
        length = float(np.hypot(*e))
        if length < 1e-9:
            continue
        u = e / length
        out.append((p0, u, np.array([-u[1], u[0]]), length))
    return out


# --- Boxes ---


def _footprint(center: np.ndarray, size: np.ndarray, yaw: float) -> Polygon:
    c, s = np.cos(yaw), np.sin(yaw)
    hx, hy = size[0] / 2, size[1] / 2
    local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return Polygon(local @ np.array([[c, -s], [s, c]]).T + center[:2])


def boxes_overlap(a: SceneObject, b: SceneObject, tol: float = _TOL) -> bool:
    """True iff the oriented boxes of ``a`` and ``b`` intersect by more than ``tol`` (touching is allowed).

    Two gravity-aligned boxes intersect iff their z intervals overlap and their footprints (convex
    rectangles) overlap; the footprint test shrinks both rectangles by ``tol`` so shared faces pass.
    """
    za = (a.center[2] - a.size[2] / 2, a.center[2] + a.size[2] / 2)
    zb = (b.center[2] - b.size[2] / 2, b.center[2] + b.size[2] / 2)
    if min(za[1], zb[1]) - max(za[0], zb[0]) <= tol:
        return False
    fa = _footprint(np.asarray(a.center), np.asarray(a.size) - 2 * tol, a.yaw)
    fb = _footprint(np.asarray(b.center), np.asarray(b.size) - 2 * tol, b.yaw)
    return bool(fa.intersects(fb))


@dataclass
class _Placed:
    obj: SceneObject
    footprint: Polygon
    blocking: bool


class _Placer:
    """Greedy rejection-sampling placement into one room."""

    def __init__(
        self, scene_id: str, polygon: np.ndarray, height: float, cfg: SceneConfig, rng: np.random.Generator
    ) -> None:
        self.scene_id = scene_id
        self.polygon = polygon
        self.room = Polygon(polygon)
        self.room_tol = self.room.buffer(1e-6, join_style="mitre")
        shapely.prepare(self.room_tol)
        self.height = height
        self.cfg = cfg
        self.rng = rng
        self.walls = wall_edges(polygon)
        self.placed: list[_Placed] = []
        self.keepouts: list[Polygon] = []
        self.blocking_area = 0.0
        self.used_colors: dict[str, set[str]] = {}

    # ---- helpers -------------------------------------------------------------------------------
    def count(self, category: str) -> int:
        return sum(p.obj.category == category for p in self.placed)

    def _color(self, cat: Category) -> str:
        used = self.used_colors.setdefault(cat.name, set())
        fresh = [c for c in cat.colors if c not in used]
        name = str(self.rng.choice(fresh if fresh else list(cat.colors)))
        used.add(name)
        return name

    def _try_add(self, cat: Category, center: np.ndarray, size: np.ndarray, yaw: float) -> SceneObject | None:
        """Validate a candidate box; add and return it if it fits."""
        bottom, top = center[2] - size[2] / 2, center[2] + size[2] / 2
        if bottom < -1e-9 or top > self.height - 0.05:
            return None
        fp = _footprint(center, size, yaw)
        if not self.room_tol.contains(fp):
            return None
        blocking = bottom <= 0.5
        if blocking and cat.name != "door":
            if self.blocking_area + fp.area > self.cfg.max_blocking_fraction * self.room.area:
                return None
            if any(fp.intersects(k) and fp.intersection(k).area > 1e-6 for k in self.keepouts):
                return None
        cand = SceneObject(
            cat.name,
            len(self.placed) + 1,
            center.astype(np.float64),
            size.astype(np.float64),
            float(np.mod(yaw + np.pi, 2 * np.pi) - np.pi),
        )
        for p in self.placed:
            if p.footprint.distance(fp) < _TOL and boxes_overlap(cand, p.obj):
                return None
        if self.cfg.category_colors:
            cand.color = category_code_color(cat.name)
            rgb = np.asarray(cand.color, dtype=float)  # nearest named colour: meta_info keeps a readable name
            cand.color_name = min(COLORS, key=lambda n: float(((np.asarray(COLORS[n]) - rgb) ** 2).sum()))
        else:
            color_name = self._color(cat)
            cand.color, cand.color_name = COLORS[color_name], color_name
        self.placed.append(_Placed(cand, fp, blocking))
        if blocking:
            self.blocking_area += fp.area
        return cand

    # ---- placement kinds -------------------------------------------------------------------------
    def place_wall(self, cat: Category, mounted: bool, tries: int = 40) -> SceneObject | None:
        for _ in range(tries):
            size = cat.sample_size(self.rng)
            lengths = np.array([w[3] for w in self.walls])
            ok = lengths >= size[0] + 0.1
            if not ok.any():
                return None
            probs = np.where(ok, lengths, 0.0)
            p0, u, n, length = self.walls[int(self.rng.choice(len(self.walls), p=probs / probs.sum()))]
            t = self.rng.uniform(size[0] / 2 + 0.05, length - size[0] / 2 - 0.05)
            bottom = 0.0
            if mounted:
                lo, hi = cat.mount_z
                bottom = float(self.rng.uniform(lo, hi))
                size[2] = min(size[2], self.height - 0.12 - bottom)
                if size[2] < 0.5 * cat.size_min[2]:
                    continue
            xy = p0 + t * u + n * (size[1] / 2 + _GAP)
            yaw = float(np.arctan2(n[1], n[0]) - np.pi / 2)  # local +y (front) -> inward normal
            obj = self._try_add(cat, np.array([xy[0], xy[1], bottom + size[2] / 2]), size, yaw)
            if obj is not None:
                if cat.name == "door":
                    c = p0 + t * u
                    corners = [
                        c - u * size[0] / 2,
                        c + u * size[0] / 2,
                        c + u * size[0] / 2 + n * _DOOR_KEEPOUT,
                        c - u * size[0] / 2 + n * _DOOR_KEEPOUT,
                    ]
                    self.keepouts.append(Polygon(corners))
                return obj
        return None

    def place_free(self, cat: Category, tries: int = 40) -> SceneObject | None:
        xmin, ymin, xmax, ymax = self.room.bounds
        for _ in range(tries):
            size = cat.sample_size(self.rng)
            xy = self.rng.uniform([xmin, ymin], [xmax, ymax])
            yaw = float(self.rng.uniform(-np.pi, np.pi))
            obj = self._try_add(cat, np.array([xy[0], xy[1], size[2] / 2]), size, yaw)
            if obj is not None:
                return obj
        return None

    def place_around(
        self, cat: Category, target: SceneObject, sides: tuple[int, ...], tries: int = 12
    ) -> SceneObject | None:
        """Next to ``target`` on one of its local sides (0:+x, 1:-x, 2:+y, 3:-y), front facing it."""
        c, s = np.cos(target.yaw), np.sin(target.yaw)
        rot = np.array([[c, -s], [s, c]])
        for _ in range(tries):
            size = cat.sample_size(self.rng)
            side = int(self.rng.choice(sides))
            axis = 0 if side < 2 else 1
            sign = 1.0 if side in (0, 2) else -1.0
            half_along = target.size[1 - axis] / 2
            offset = self.rng.uniform(-max(half_along - size[0] / 2, 0.0), max(half_along - size[0] / 2, 0.0))
            dist = target.size[axis] / 2 + size[1] / 2 + self.rng.uniform(0.03, 0.15)
            local = np.zeros(2)
            local[axis] = sign * dist
            local[1 - axis] = offset
            xy = target.center[:2] + rot @ local
            to_target = target.center[:2] - xy
            yaw = float(np.arctan2(to_target[1], to_target[0]) - np.pi / 2) + self.rng.normal(0.0, 0.08)
            obj = self._try_add(cat, np.array([xy[0], xy[1], size[2] / 2]), size, yaw)
            if obj is not None:
                return obj
        return None

    def place_on_top(
        self, cat: Category, supporters: list[SceneObject] | None = None, tries: int = 20
    ) -> SceneObject | None:
        if supporters is None:
            supporters = [p.obj for p in self.placed if p.obj.category in cat.supporters]
        if not supporters:
            return None
        for _ in range(tries):
            sup = supporters[int(self.rng.integers(len(supporters)))]
            size = cat.sample_size(self.rng, on_top=True)
            aligned = cat.name in ("tv", "monitor", "laptop", "pillow", "microwave")
            rel = float(self.rng.normal(0.0, 0.15)) if aligned else float(self.rng.uniform(-np.pi, np.pi))
            ex = abs(np.cos(rel)) * size[0] / 2 + abs(np.sin(rel)) * size[1] / 2
            ey = abs(np.sin(rel)) * size[0] / 2 + abs(np.cos(rel)) * size[1] / 2
            hx, hy = sup.size[0] / 2 - ex, sup.size[1] / 2 - ey
            if hx < 0 or hy < 0:
                continue
            lx = self.rng.uniform(-hx, hx)
            if cat.name == "pillow":  # at the head end (back, local -y) of the bed
                ly = self.rng.uniform(-hy, min(hy, -hy + 0.12))
            elif cat.name in ("tv", "monitor", "microwave"):  # towards the back
                ly = self.rng.uniform(-hy, min(hy, -hy + 0.1))
            else:
                ly = self.rng.uniform(-hy, hy)
            c, s = np.cos(sup.yaw), np.sin(sup.yaw)
            xy = sup.center[:2] + np.array([c * lx - s * ly, s * lx + c * ly])
            bottom = sup.center[2] + sup.size[2] / 2
            obj = self._try_add(cat, np.array([xy[0], xy[1], bottom + size[2] / 2]), size, sup.yaw + rel)
            if obj is not None:
                return obj
        return None

    def place(self, cat: Category) -> list[SceneObject]:
        """Place one object of ``cat`` (with its group); returns what was placed (maybe nothing)."""
        kinds = list(cat.placements)
        weights = np.array([cat.placements[k] for k in kinds], dtype=np.float64)
        order = list(self.rng.choice(len(kinds), size=len(kinds), replace=False, p=weights / weights.sum()))
        for idx in order:
            kind = kinds[int(idx)]
            obj = None
            if kind == Placement.WALL:
                obj = self.place_wall(cat, mounted=False)
            elif kind == Placement.WALL_MOUNTED:
                obj = self.place_wall(cat, mounted=True)
            elif kind == Placement.FREE:
                obj = self.place_free(cat)
            elif kind == Placement.ON_TOP:
                obj = self.place_on_top(cat)
            elif kind == Placement.AROUND:
                targets = [p.obj for p in self.placed if p.obj.category in ("table", "desk")]
                if targets:
                    t = targets[int(self.rng.integers(len(targets)))]
                    obj = self.place_around(cat, t, (2,) if t.category == "desk" else (0, 1, 2, 3))
            if obj is not None:
                return [obj]
        return []


def _weights(theme: dict[str, float], placer: _Placer) -> tuple[list[str], np.ndarray]:
    names, weights = [], []
    present = {p.obj.category for p in placer.placed}
    for name, w in theme.items():
        cat = CATEGORIES[name]
        if placer.count(name) >= cat.max_per_scene:
            continue
        if set(cat.placements) == {Placement.ON_TOP} and not present.intersection(cat.supporters):
            continue
        if set(cat.placements) == {Placement.AROUND} and not present.intersection({"table", "desk"}):
            continue
        names.append(name)
        weights.append(w)
    return names, np.asarray(weights, dtype=np.float64)


def _furnish(placer: _Placer, theme: dict[str, float], target: int) -> None:
    rng = placer.rng
    room_area = placer.room.area
    n_doors = 1 + int(room_area > 30 and rng.random() < 0.4)
    for _ in range(n_doors):
        placer.place_wall(CATEGORIES["door"], mounted=True)
    n_windows = int(rng.integers(0, 3)) if target > 4 else int(rng.integers(0, 2))
    for _ in range(n_windows):
        if len(placer.placed) < target:
            placer.place_wall(CATEGORIES["window"], mounted=True)
    failures = 0
    while len(placer.placed) < target and failures < 25:
        names, weights = _weights(theme, placer)
        if not names:
            break
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        cat = CATEGORIES[name]
        placed = placer.place(cat)
        if not placed:
            failures += 1
            continue
        obj = placed[0]
        # groups
        if name == "table":
            for _ in range(int(rng.integers(1, 5))):
                if len(placer.placed) < target:
                    placer.place_around(CATEGORIES["chair" if rng.random() < 0.8 else "stool"], obj, (0, 1, 2, 3))
        elif name == "desk" and len(placer.placed) < target and rng.random() < 0.85:
            placer.place_around(CATEGORIES["chair"], obj, (2,))
        elif name == "bed":
            for _ in range(int(rng.integers(1, 3))):
                if len(placer.placed) < target:
                    placer.place_on_top(CATEGORIES["pillow"], supporters=[obj])
            if len(placer.placed) < target and rng.random() < 0.6:
                placer.place_wall(CATEGORIES["nightstand"], mounted=False)


def generate_layout(
    scene_id: str, rng: np.random.Generator, cfg: SceneConfig | None = None, max_attempts: int = 30
) -> SceneLayout:
    """Generate one furnished room (deterministic given ``rng``'s state). See the module docstring."""
    from loc3r.synthrooms.freespace import free_space  # the questions engineer's module

    cfg = cfg or SceneConfig()
    best: SceneLayout | None = None
    for _attempt in range(max_attempts):
        polygon = sample_room_polygon(rng, cfg)
        height = float(np.round(rng.uniform(cfg.min_height, cfg.max_height), 4))
        theme_name = str(rng.choice(list(cfg.themes)))
        target = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        placer = _Placer(scene_id, polygon, height, cfg, rng)
        _furnish(placer, THEMES[theme_name], target)
        layout = SceneLayout(scene_id, polygon, height, [p.obj for p in placer.placed])
        free = free_space(layout, cfg.clearance)
        pieces = getattr(free, "geoms", [free])
        largest = max((g.area for g in pieces), default=0.0)
        if largest < cfg.min_free_area:
            continue
        if len(layout.objects) >= cfg.min_objects:
            return layout
        if best is None or len(layout.objects) > len(best.objects):
            best = layout
    raise SceneGenerationError(
        f"scene {scene_id!r}: could not place >= {cfg.min_objects} objects with a walkable free space of "
        f">= {cfg.min_free_area} m² in {max_attempts} rooms (best: "
        f"{len(best.objects) if best else 0} objects); lower --min-objects or raise the room size"
    )
