"""The SynthRooms object vocabulary: categories with typical sizes, colours, placement rules and geometry.

Every category is a :class:`Category`: size ranges (metres), a palette of named colours, how it may be
placed, and a *builder* that turns the object's box into primitive parts (boxes and cylinders).

Object-local frame (used by the builders, the scene generator and the renderer):

* the box spans ``x in [-w/2, w/2]`` (width), ``y in [-d/2, d/2]`` (depth), ``z in [0, h]`` (height),
  i.e. the local origin is the centre of the box's **bottom** face;
* the object's **front faces local +y** (a sofa's seat, a fridge's door, a tv's screen); its back is at
  ``y = -d/2`` (against the wall for wall-placed objects);
* world = ``Rz(yaw) @ local + (center_x, center_y, center_z - h/2)``.

Every part lies inside the box (this is what lets the renderer's instance pixels be checked against the
layout boxes within 2 cm). Parts carry a shade factor (multiplied with the object's colour) or a fixed
colour of their own (screens, glass, books), and a texture id from :class:`Texture`.

Placement kinds (:class:`Placement`):

* ``WALL``: back against a wall, facing into the room (bed, sofa, desk, fridge, ...);
* ``WALL_MOUNTED``: hangs on a wall at a height range (window, picture, wall tv; doors stand on the floor);
* ``FREE``: anywhere on the floor with a random yaw (table, armchair, box, ...);
* ``AROUND``: next to a table or desk, facing it (chair, stool);
* ``ON_TOP``: standing on the flat top of a supporter category (monitor on a desk, pillow on a bed).

Objects whose box bottom is above 0.5 m (:data:`loc3r.synthrooms.freespace.BLOCKING_MAX_BOTTOM`) do not
block walking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np


class Texture(IntEnum):
    """Procedural surface patterns of the renderer (:mod:`loc3r.synthrooms.render`)."""

    PLAIN = 0
    TILES = 1  # floor tiles: checker + grout lines
    WOOD = 2  # planks / grain stripes
    FABRIC = 3  # fine cell noise
    WALL = 4  # large, faint blotches
    SCREEN = 5  # dark glossy gradient
    GLASS = 6  # bright sky gradient


class Placement(StrEnum):
    WALL = "wall"
    WALL_MOUNTED = "wall_mounted"
    FREE = "free"
    AROUND = "around"
    ON_TOP = "on_top"


# fmt: off
#: Named colours (sRGB 0..255). Names are what generated text uses ("the green sofa").
COLORS: dict[str, tuple[int, int, int]] = {
    "white": (232, 232, 226), "black": (38, 38, 40), "gray": (128, 128, 132), "brown": (120, 78, 45),
    "beige": (214, 194, 158), "red": (182, 42, 40), "green": (58, 138, 64), "blue": (46, 78, 168),
    "yellow": (222, 190, 52), "orange": (222, 122, 40), "pink": (222, 142, 170), "purple": (118, 62, 150),
    "teal": (40, 140, 140),
}
# fmt: on


@dataclass(frozen=True)
class Part:
    """One primitive of an object, in the object-local frame (metres).

    ``kind`` is ``"box"`` (axis-aligned in the local frame, from ``lo`` to ``hi``) or ``"cylinder"``
    (vertical, inscribed in the ``lo``..``hi`` box). The colour is ``shade * object colour`` unless
    ``color`` is given.
    """

    kind: str
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    shade: float = 1.0
    color: tuple[int, int, int] | None = None
    texture: Texture = Texture.PLAIN


Builder = Callable[[float, float, float, np.random.Generator], list[Part]]


@dataclass(frozen=True)
class Category:
    """A category of the vocabulary.

    ``size_min`` / ``size_max``: ranges of (width, depth, height) in metres, sampled uniformly;
    ``placements``: allowed placements with their relative probabilities; ``supporters``: categories it
    may stand on (``ON_TOP``); ``mount_z``: range of the box bottom for ``WALL_MOUNTED``;
    ``on_top_size``: alternative size ranges used when the object stands on a supporter (a table lamp
    is smaller than a floor lamp); ``max_per_scene``: cap on the count in one scene.
    """

    name: str
    size_min: tuple[float, float, float]
    size_max: tuple[float, float, float]
    colors: tuple[str, ...]
    placements: dict[Placement, float]
    builder: Builder
    texture: Texture = Texture.PLAIN
    supporters: tuple[str, ...] = ()
    mount_z: tuple[float, float] = (0.0, 0.0)
    on_top_size: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    max_per_scene: int = 4
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def sample_size(self, rng: np.random.Generator, on_top: bool = False) -> np.ndarray:
        lo, hi = self.on_top_size if (on_top and self.on_top_size) else (self.size_min, self.size_max)
        return rng.uniform(np.asarray(lo), np.asarray(hi))


# --- Builders. Each returns parts inside [-w/2, w/2] x [-d/2, d/2] x [0, h]. ---


def _box(x0: float, y0: float, z0: float, x1: float, y1: float, z1: float, **kw) -> Part:
    return Part("box", (x0, y0, z0), (x1, y1, z1), **kw)


def _cyl(x0: float, y0: float, z0: float, x1: float, y1: float, z1: float, **kw) -> Part:
    return Part("cylinder", (x0, y0, z0), (x1, y1, z1), **kw)


def _framed(w: float, y0: float, y1: float, z0: float, z1: float, frame: float, **kw) -> Part:
    """The panel inside a frame of width ``frame`` on the face ``y0..y1`` of a part ``w`` wide from ``z0`` to ``z1``
    (screens, glass, boards)."""
    return _box(-w / 2 + frame, y0, z0 + frame, w / 2 - frame, y1, z1 - frame, **kw)


def _legs(w: float, d: float, z1: float, t: float, shade: float = 0.55, inset: float = 0.0) -> list[Part]:
    """Four square legs of thickness ``t`` at the corners, from the floor up to ``z1``."""
    xs = (-w / 2 + inset, w / 2 - inset - t)
    ys = (-d / 2 + inset, d / 2 - inset - t)
    return [_box(x, y, 0.0, x + t, y + t, z1, shade=shade) for x in xs for y in ys]


def build_bed(w, d, h, rng):
    frame_h = 0.45 * h
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, frame_h, shade=0.55, texture=Texture.WOOD),
        _box(-w / 2 + 0.03, -d / 2 + 0.02, frame_h, w / 2 - 0.03, d / 2 - 0.02, h, texture=Texture.FABRIC),
    ]


def build_sofa(w, d, h, rng):
    seat_h, arm = 0.5 * h, min(0.18, w / 8)
    back_d = min(0.22, d / 3)
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, seat_h, texture=Texture.FABRIC),
        _box(-w / 2, -d / 2, seat_h, w / 2, -d / 2 + back_d, h, shade=0.9, texture=Texture.FABRIC),
        _box(-w / 2, -d / 2 + back_d, seat_h, -w / 2 + arm, d / 2, 0.72 * h, shade=0.85, texture=Texture.FABRIC),
        _box(w / 2 - arm, -d / 2 + back_d, seat_h, w / 2, d / 2, 0.72 * h, shade=0.85, texture=Texture.FABRIC),
    ]


def build_armchair(w, d, h, rng):
    return build_sofa(w, d, h, rng)


def build_chair(w, d, h, rng):
    seat_z, t = 0.52 * h, 0.035
    return [
        *_legs(w, d, seat_z - 0.04, t),
        _box(-w / 2, -d / 2, seat_z - 0.04, w / 2, d / 2, seat_z, texture=Texture.WOOD),
        _box(-w / 2, -d / 2, seat_z, w / 2, -d / 2 + 0.05, h, shade=0.9),
    ]


def build_stool(w, d, h, rng):
    t = 0.03
    return [*_legs(w, d, h - 0.05, t, inset=0.03), _cyl(-w / 2, -d / 2, h - 0.05, w / 2, d / 2, h)]


def build_table(w, d, h, rng):
    top = 0.04
    return [
        _box(-w / 2, -d / 2, h - top, w / 2, d / 2, h, texture=Texture.WOOD),
        *_legs(w, d, h - top, 0.05, inset=0.04),
    ]


def build_desk(w, d, h, rng):
    top, side = 0.035, 0.04
    return [
        _box(-w / 2, -d / 2, h - top, w / 2, d / 2, h, texture=Texture.WOOD),
        _box(-w / 2, -d / 2, 0, -w / 2 + side, d / 2, h - top, shade=0.8),
        _box(w / 2 - 0.42, -d / 2, 0, w / 2, d / 2, h - top, shade=0.85),  # drawer block
        _box(w / 2 - 0.40, d / 2 - 0.005, h - 0.2, w / 2 - 0.02, d / 2, h - 0.19, shade=0.5),  # drawer line
    ]


def build_cabinet(w, d, h, rng):
    # door gap line and handles on the front face (inside the box: the body is inset by 1 cm at the front)
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h, texture=Texture.WOOD)]
    parts.append(_box(-0.006, d / 2 - 0.01, 0.04, 0.006, d / 2, h - 0.04, shade=0.4))
    parts.append(_box(-0.05, d / 2 - 0.01, h * 0.55, -0.03, d / 2, h * 0.75, shade=0.35))
    parts.append(_box(0.03, d / 2 - 0.01, h * 0.55, 0.05, d / 2, h * 0.75, shade=0.35))
    return parts


def build_wardrobe(w, d, h, rng):
    """Tall two-door closet on a dark plinth under a cornice, with a mirror panel and long vertical bar handles:
    a silhouette and front that a cabinet (low, short handles) or a door (in the wall, one panel) do not have."""
    plinth, cornice = 0.08, 0.06
    parts = [
        _box(-w / 2 + 0.02, -d / 2, 0, w / 2 - 0.02, d / 2 - 0.03, plinth, shade=0.3),
        _box(-w / 2, -d / 2, plinth, w / 2, d / 2 - 0.01, h - cornice, texture=Texture.WOOD),
        _box(-w / 2, -d / 2, h - cornice, w / 2, d / 2, h, shade=0.6),
        _box(-0.008, d / 2 - 0.01, plinth + 0.03, 0.008, d / 2, h - cornice - 0.03, shade=0.3),
        _box(-0.07, d / 2 - 0.01, 0.35 * h, -0.05, d / 2, 0.75 * h, color=(200, 200, 195)),
        _box(0.05, d / 2 - 0.01, 0.35 * h, 0.07, d / 2, 0.75 * h, color=(200, 200, 195)),
    ]
    # a mirror on one door: a bright glass panel
    x0 = -w / 2 + 0.08 if rng.random() < 0.5 else 0.12
    parts.append(
        _box(
            x0, d / 2 - 0.005, 0.25 * h, x0 + w / 2 - 0.2, d / 2, 0.85 * h, color=(205, 225, 235), texture=Texture.GLASS
        )
    )
    return parts


def build_dresser(w, d, h, rng):
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h, texture=Texture.WOOD)]
    n = 3
    for k in range(1, n):
        z = h * k / n
        parts.append(_box(-w / 2 + 0.02, d / 2 - 0.01, z - 0.006, w / 2 - 0.02, d / 2, z + 0.006, shade=0.45))
    for k in range(n):
        z = h * (k + 0.5) / n
        parts.append(_box(-0.08, d / 2 - 0.01, z - 0.015, 0.08, d / 2, z + 0.015, shade=0.35))
    return parts


def build_nightstand(w, d, h, rng):
    return build_dresser(w, d, h, rng)[:1] + [
        _box(-w / 2 + 0.03, d / 2 - 0.01, h * 0.55, w / 2 - 0.03, d / 2, h * 0.57, shade=0.45),
        _box(-0.04, d / 2 - 0.01, h * 0.72, 0.04, d / 2, h * 0.76, shade=0.35),
    ]


_BOOK_COLORS = ((170, 40, 40), (40, 70, 150), (50, 120, 60), (210, 180, 60), (90, 60, 120), (220, 220, 210))


def build_bookshelf(w, d, h, rng):
    t = 0.025
    parts = [
        _box(-w / 2, -d / 2, 0, -w / 2 + t, d / 2, h, texture=Texture.WOOD),
        _box(w / 2 - t, -d / 2, 0, w / 2, d / 2, h, texture=Texture.WOOD),
        _box(-w / 2 + t, -d / 2, 0, w / 2 - t, -d / 2 + 0.015, h, shade=0.7),
        _box(-w / 2 + t, -d / 2, h - t, w / 2 - t, d / 2, h, texture=Texture.WOOD),
    ]
    n_shelves = max(3, int(h / 0.38))
    gap = h / n_shelves
    for k in range(n_shelves):
        z0 = k * gap
        parts.append(_box(-w / 2 + t, -d / 2 + 0.015, z0, w / 2 - t, d / 2, z0 + t, texture=Texture.WOOD))
        # a row of books on this shelf
        x = -w / 2 + t + 0.01
        while True:
            bw = float(rng.uniform(0.025, 0.06))
            if x + bw > w / 2 - t - 0.01:
                break
            if rng.random() < 0.8:
                bh = float(rng.uniform(0.55, 0.85)) * (gap - t)
                color = _BOOK_COLORS[int(rng.integers(len(_BOOK_COLORS)))]
                bd = min(d - 0.04, float(rng.uniform(0.16, 0.24)))
                parts.append(_box(x, -d / 2 + 0.015, z0 + t, x + bw, -d / 2 + 0.015 + bd, z0 + t + bh, color=color))
            x += bw + 0.003
    return parts


def build_tv(w, d, h, rng):
    bezel = 0.02
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.004, h, shade=1.0),
        _framed(w, d / 2 - 0.004, d / 2, 0, h, bezel, color=(20, 24, 30), texture=Texture.SCREEN),
    ]


def build_monitor(w, d, h, rng):
    screen_d, bezel = 0.03, 0.012
    base_h = 0.12 * h
    return [
        _box(-0.12 * w, -d / 2, 0, 0.12 * w, d / 2, 0.015, shade=0.8),  # foot
        _box(-0.03, -0.02, 0.015, 0.03, 0.0, base_h + 0.05, shade=0.8),  # neck
        _box(-w / 2, -screen_d / 2, base_h, w / 2, screen_d / 2 - 0.004, h),
        _framed(w, screen_d / 2 - 0.004, screen_d / 2, base_h, h, bezel, color=(18, 22, 28), texture=Texture.SCREEN),
    ]


def build_laptop(w, d, h, rng):
    base_t = 0.02
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, base_t),
        _box(-w / 2, -d / 2, base_t, w / 2, -d / 2 + 0.012, h, shade=0.9),
        _box(
            -w / 2 + 0.015,
            -d / 2 + 0.012,
            base_t + 0.015,
            w / 2 - 0.015,
            -d / 2 + 0.016,
            h - 0.012,
            color=(20, 26, 34),
            texture=Texture.SCREEN,
        ),
    ]


def build_lamp(w, d, h, rng):
    shade_h = min(0.35 * h, 0.4)
    pole = max(0.02, 0.08 * w)
    return [
        _cyl(-w * 0.35, -d * 0.35, 0, w * 0.35, d * 0.35, 0.03, shade=0.5),
        _cyl(-pole / 2, -pole / 2, 0.03, pole / 2, pole / 2, h - shade_h, shade=0.45),
        _cyl(-w / 2, -d / 2, h - shade_h, w / 2, d / 2, h, texture=Texture.FABRIC),
    ]


def build_plant(w, d, h, rng):
    pot_h = 0.3 * h
    return [
        _cyl(-w * 0.3, -d * 0.3, 0, w * 0.3, d * 0.3, pot_h, color=(150, 80, 50)),
        _cyl(-w / 2, -d / 2, pot_h, w / 2, d / 2, 0.75 * h, texture=Texture.FABRIC),
        _cyl(-w * 0.32, -d * 0.32, 0.75 * h, w * 0.32, d * 0.32, h, shade=0.85, texture=Texture.FABRIC),
    ]


def build_cardboard_box(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, h),
        _box(-w / 2, -0.025, h - 0.002, w / 2, 0.025, h, shade=1.2),  # tape strip (lies on the top face)
    ]


def build_fridge(w, d, h, rng):
    split = 0.62 * h
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h),
        _box(-w / 2 + 0.01, d / 2 - 0.01, split - 0.006, w / 2 - 0.01, d / 2, split + 0.006, shade=0.5),
        _box(w / 2 - 0.08, d / 2 - 0.01, split + 0.1, w / 2 - 0.06, d / 2, split + 0.45, shade=0.4),
        _box(w / 2 - 0.08, d / 2 - 0.01, split - 0.35, w / 2 - 0.06, d / 2, split - 0.1, shade=0.4),
    ]


def build_sink(w, d, h, rng):
    counter = 0.04
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, h - counter, shade=0.8, texture=Texture.WOOD),
        _box(-w / 2, -d / 2, h - counter, w / 2, -0.22 * d, h),
        _box(-w / 2, 0.3 * d, h - counter, w / 2, d / 2, h),
        _box(-w / 2, -0.22 * d, h - counter, -0.3 * w, 0.3 * d, h),
        _box(0.3 * w, -0.22 * d, h - counter, w / 2, 0.3 * d, h),
        _box(-0.3 * w, -0.22 * d, h - counter - 0.01, 0.3 * w, 0.3 * d, h - counter, color=(150, 155, 160)),
    ]


def build_toilet(w, d, h, rng):
    tank_d = 0.22 * d
    seat_h = 0.52 * h
    return [
        _box(-w / 2, -d / 2, 0.45 * h, w / 2, -d / 2 + tank_d, h),
        _cyl(-w * 0.35, -d / 2 + tank_d, 0, w * 0.35, d / 2 - 0.1 * d, seat_h - 0.04, shade=0.95),
        _cyl(-w / 2, -d / 2 + tank_d * 0.6, seat_h - 0.04, w / 2, d / 2, seat_h, shade=0.9),
        _box(-w * 0.3, -d / 2, 0, w * 0.3, -d / 2 + tank_d, 0.45 * h, shade=0.95),
    ]


def build_bathtub(w, d, h, rng):
    rim = 0.07
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, 0.3 * h),
        _box(-w / 2, -d / 2, 0.3 * h, w / 2, -d / 2 + rim, h),
        _box(-w / 2, d / 2 - rim, 0.3 * h, w / 2, d / 2, h),
        _box(-w / 2, -d / 2 + rim, 0.3 * h, -w / 2 + rim, d / 2 - rim, h),
        _box(w / 2 - rim, -d / 2 + rim, 0.3 * h, w / 2, d / 2 - rim, h),
        _box(-w / 2 + rim, -d / 2 + rim, 0.3 * h, w / 2 - rim, d / 2 - rim, 0.3 * h + 0.01, color=(170, 200, 215)),
    ]


def build_door(w, d, h, rng):
    frame = 0.05
    return [
        _box(-w / 2, -d / 2, 0, -w / 2 + frame, d / 2, h, shade=0.7),
        _box(w / 2 - frame, -d / 2, 0, w / 2, d / 2, h, shade=0.7),
        _box(-w / 2 + frame, -d / 2, h - frame, w / 2 - frame, d / 2, h, shade=0.7),
        _box(-w / 2 + frame, -d / 2, 0, w / 2 - frame, d / 2 - 0.012, h - frame, texture=Texture.WOOD),
        _box(w / 2 - frame - 0.14, d / 2 - 0.012, 0.95, w / 2 - frame - 0.05, d / 2, 1.0, color=(190, 190, 180)),
    ]


def build_window(w, d, h, rng):
    frame = 0.05
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, frame),
        _box(-w / 2, -d / 2, h - frame, w / 2, d / 2, h),
        _box(-w / 2, -d / 2, frame, -w / 2 + frame, d / 2, h - frame),
        _box(w / 2 - frame, -d / 2, frame, w / 2, d / 2, h - frame),
        _box(-0.015, -d / 2 + 0.005, frame, 0.015, d / 2, h - frame),
        _framed(w, -d / 2, -d / 2 + 0.01, 0, h, frame, color=(165, 205, 235), texture=Texture.GLASS),
    ]


def build_trash_bin(w, d, h, rng):
    return [_cyl(-w / 2, -d / 2, 0, w / 2, d / 2, h - 0.03), _cyl(-w / 2, -d / 2, h - 0.03, w / 2, d / 2, h, shade=0.7)]


def build_pillow(w, d, h, rng):
    return [_box(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.FABRIC)]


def build_radiator(w, d, h, rng):
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.02, h)]
    n = max(4, int(w / 0.08))
    for k in range(n):
        x = -w / 2 + (k + 0.5) * w / n
        parts.append(_box(x - 0.015, d / 2 - 0.02, 0.05, x + 0.015, d / 2, h - 0.05, shade=0.9))
    return parts


def build_microwave(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.005, h),
        _box(
            -w / 2 + 0.03,
            d / 2 - 0.005,
            0.04,
            w / 2 - 0.14,
            d / 2,
            h - 0.04,
            color=(25, 28, 32),
            texture=Texture.SCREEN,
        ),
    ]


def build_backpack(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.06, h * 0.95, texture=Texture.FABRIC),
        _box(-w * 0.38, d / 2 - 0.06, 0.05, w * 0.38, d / 2, h * 0.5, shade=0.85, texture=Texture.FABRIC),
    ]


def build_whiteboard(w, d, h, rng):
    frame = 0.025
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.003, h, color=(160, 160, 165)),
        _framed(w, d / 2 - 0.003, d / 2, 0, h, frame, color=(245, 245, 245)),
    ]


def build_picture(w, d, h, rng):
    frame = 0.03
    art = tuple(int(c) for c in rng.integers(40, 230, size=3))
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.003, h),
        _framed(w, d / 2 - 0.003, d / 2, 0, h, frame, color=art, texture=Texture.FABRIC),
    ]


def build_washing_machine(w, d, h, rng):
    r = 0.3 * min(w, h)
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h),
        _box(-r, d / 2 - 0.01, 0.45 * h - r, r, d / 2, 0.45 * h + r, color=(40, 45, 55), texture=Texture.SCREEN),
    ]


_W, _WM, _F, _A, _T = Placement.WALL, Placement.WALL_MOUNTED, Placement.FREE, Placement.AROUND, Placement.ON_TOP
_WOODS = ("brown", "beige", "white", "black")
_FABRICS = ("red", "green", "blue", "gray", "beige", "yellow", "orange", "purple", "pink", "teal")


def _c(name, size_min, size_max, colors, placements, builder, **kw) -> Category:
    return Category(name, size_min, size_max, tuple(colors), dict(placements), builder, **kw)


# fmt: off
#: The vocabulary (>= 20 categories, the ScanNet / VSI-Bench names where they exist).
CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in [
        _c("bed", (1.4, 1.95, 0.45), (1.9, 2.2, 0.6), ("white", "blue", "gray", "beige", "pink", "green"), {_W: 1},
           build_bed, max_per_scene=2, aliases=("double bed", "single bed")),
        _c("sofa", (1.6, 0.8, 0.75), (2.4, 1.0, 0.95), _FABRICS, {_W: 0.8, _F: 0.2}, build_sofa, max_per_scene=2,
           aliases=("couch", "sofa bed")),
        _c("armchair", (0.75, 0.75, 0.75), (0.95, 0.9, 0.95), _FABRICS, {_F: 0.6, _W: 0.4}, build_armchair,
           max_per_scene=3, aliases=("sofa chair", "arm chair")),
        _c("chair", (0.42, 0.45, 0.8), (0.55, 0.55, 1.0), _WOODS + ("red", "blue", "green"), {_A: 0.8, _F: 0.2},
           build_chair, max_per_scene=6, aliases=("office chair", "dining chair")),
        _c("stool", (0.34, 0.34, 0.45), (0.42, 0.42, 0.7), _WOODS + ("red",), {_A: 0.5, _F: 0.5}, build_stool),
        _c("table", (0.9, 0.7, 0.72), (1.8, 1.0, 0.78), _WOODS, {_F: 1}, build_table, max_per_scene=2,
           aliases=("dining table", "coffee table", "kitchen table")),
        _c("desk", (1.0, 0.55, 0.72), (1.6, 0.75, 0.76), _WOODS, {_W: 1}, build_desk, max_per_scene=2),
        _c("cabinet", (0.6, 0.4, 0.7), (1.2, 0.6, 1.0), _WOODS + ("gray",), {_W: 1}, build_cabinet,
           max_per_scene=3, aliases=("kitchen cabinet", "kitchen cabinets", "file cabinet", "tv stand")),
        _c("nightstand", (0.4, 0.35, 0.45), (0.55, 0.45, 0.6), _WOODS, {_W: 1}, build_nightstand,
           max_per_scene=2, aliases=("night stand", "bedside table")),
        _c("dresser", (1.0, 0.45, 0.8), (1.6, 0.55, 1.0), _WOODS, {_W: 1}, build_dresser,
           max_per_scene=1, aliases=("chest of drawers",)),
        _c("wardrobe", (1.0, 0.55, 1.9), (2.0, 0.65, 2.2), ("white", "beige", "gray", "blue", "brown"), {_W: 1},
           build_wardrobe, max_per_scene=1, aliases=("closet", "wardrobe closet")),
        _c("bookshelf", (0.8, 0.3, 1.5), (1.2, 0.4, 2.0), _WOODS, {_W: 1}, build_bookshelf, max_per_scene=2,
           aliases=("bookcase", "shelf", "bookshelves")),
        _c("tv", (0.9, 0.06, 0.52), (1.4, 0.1, 0.8), ("black", "gray"), {_WM: 0.7, _T: 0.3}, build_tv,
           supporters=("cabinet", "dresser"), mount_z=(1.0, 1.3), max_per_scene=1, aliases=("television",)),
        _c("monitor", (0.5, 0.18, 0.35), (0.7, 0.25, 0.5), ("black", "gray", "white"), {_T: 1}, build_monitor,
           supporters=("desk", "table"), max_per_scene=2, aliases=("computer monitor", "screen")),
        _c("laptop", (0.3, 0.22, 0.2), (0.38, 0.26, 0.25), ("gray", "black", "white"), {_T: 1}, build_laptop,
           supporters=("desk", "table", "bed"), max_per_scene=2),
        _c("lamp", (0.3, 0.3, 1.4), (0.45, 0.45, 1.8), ("white", "beige", "yellow", "black", "red"), {_F: 0.4, _T: 0.6},
           build_lamp, supporters=("nightstand", "desk", "dresser", "table"),
           on_top_size=((0.2, 0.2, 0.35), (0.3, 0.3, 0.55)), max_per_scene=3,
           aliases=("floor lamp", "table lamp", "desk lamp")),
        _c("plant", (0.35, 0.35, 0.6), (0.6, 0.6, 1.4), ("green",), {_F: 0.6, _T: 0.4}, build_plant,
           supporters=("table", "desk", "cabinet", "dresser", "nightstand"),
           on_top_size=((0.15, 0.15, 0.25), (0.25, 0.25, 0.4)), max_per_scene=3,
           aliases=("potted plant", "flower pot")),
        _c("box", (0.3, 0.3, 0.25), (0.6, 0.5, 0.5), ("brown", "beige", "white"), {_F: 0.6, _T: 0.4},
           build_cardboard_box, supporters=("table", "cabinet", "dresser", "desk"),
           on_top_size=((0.2, 0.15, 0.1), (0.35, 0.3, 0.25)), aliases=("boxes", "cardboard box", "storage box")),
        _c("fridge", (0.6, 0.6, 1.6), (0.8, 0.75, 1.9), ("white", "gray", "black"), {_W: 1}, build_fridge,
           max_per_scene=1, aliases=("refrigerator", "mini fridge")),
        _c("sink", (0.5, 0.45, 0.85), (0.9, 0.6, 0.95), ("white", "gray"), {_W: 1}, build_sink, max_per_scene=2,
           aliases=("bathroom sink", "kitchen sink")),
        _c("toilet", (0.38, 0.65, 0.75), (0.45, 0.75, 0.85), ("white",), {_W: 1}, build_toilet, max_per_scene=1),
        _c("bathtub", (1.5, 0.7, 0.5), (1.8, 0.8, 0.6), ("white",), {_W: 1}, build_bathtub, max_per_scene=1,
           aliases=("bath tub", "tub")),
        _c("door", (0.8, 0.04, 2.0), (1.0, 0.05, 2.1), ("white", "brown", "beige", "gray"), {_WM: 1}, build_door,
           mount_z=(0.0, 0.0), max_per_scene=2, aliases=("doors", "doorframe")),
        _c("window", (0.8, 0.04, 1.0), (1.6, 0.06, 1.3), ("white", "black", "gray"), {_WM: 1}, build_window,
           mount_z=(0.8, 1.0), max_per_scene=3, aliases=("windows",)),
        _c("trash bin", (0.25, 0.25, 0.35), (0.4, 0.4, 0.6), ("gray", "black", "blue", "green", "white"),
           {_F: 0.5, _W: 0.5}, build_trash_bin, max_per_scene=2, aliases=("trash can", "garbage bin", "recycling bin")),
        _c("pillow", (0.45, 0.3, 0.1), (0.65, 0.4, 0.18), ("white", "blue", "red", "yellow", "green", "pink"), {_T: 1},
           build_pillow, supporters=("bed",), max_per_scene=4, aliases=("pillows", "cushion")),
        _c("radiator", (0.6, 0.08, 0.5), (1.2, 0.12, 0.7), ("white", "gray"), {_W: 1}, build_radiator, max_per_scene=2,
           aliases=("heater",)),
        _c("microwave", (0.45, 0.35, 0.26), (0.55, 0.4, 0.32), ("white", "black", "gray"), {_T: 1}, build_microwave,
           supporters=("cabinet", "table", "dresser"), max_per_scene=1),
        _c("backpack", (0.3, 0.18, 0.4), (0.35, 0.25, 0.5), ("red", "blue", "black", "green", "orange", "purple"),
           {_F: 0.6, _W: 0.4}, build_backpack, max_per_scene=2, aliases=("bag",)),
        _c("whiteboard", (1.2, 0.03, 0.9), (2.0, 0.04, 1.2), ("white",), {_WM: 1}, build_whiteboard, mount_z=(0.8, 1.0),
           max_per_scene=1, aliases=("white board", "board")),
        _c("picture", (0.4, 0.03, 0.3), (0.9, 0.04, 0.7), ("black", "brown", "white", "gray"), {_WM: 1}, build_picture,
           mount_z=(1.2, 1.6), max_per_scene=3, aliases=("painting", "poster", "picture frame")),
        _c("washing machine", (0.58, 0.58, 0.82), (0.62, 0.62, 0.88), ("white", "gray"), {_W: 1}, build_washing_machine,
           max_per_scene=1, aliases=("washer", "washing machines")),
    ]
}
# fmt: on

#: Other names for our categories (ScanNet / VSI-Bench labels) -> canonical name.
CATEGORY_ALIASES: dict[str, str] = {alias: c.name for c in CATEGORIES.values() for alias in c.aliases}
