"""Categories of real room layouts beyond the generator's vocabulary (VSI-Bench ``meta_info`` files).

The public VSI-Bench ``meta_info`` validation files (ScanNet 88 rooms, ScanNet++ 50, ARKitScenes 150) use 65
categories. The random-room generator's vocabulary (:data:`loc3r.synthrooms.catalog.CATEGORIES`, 32 categories) is
kept as it is — its category set and random draws are part of every seed, and a shipped pretrained model was
trained on it — so the remaining categories live here, in :data:`EXTRA_CATEGORIES`, used only when a layout file
names them (``loc3r synth --layouts``). Synonyms of the generator's categories (refrigerator → fridge, trash can →
trash bin, washer → washing machine, heater → radiator, closet → wardrobe, cushion → pillow, table lamp → lamp) are
aliases in the catalog; the extra categories' own synonyms are here.

Each category gets a category-typical mesh from primitives (a stove's burners, a keyboard's key rows, an oven's
window, a guitar's body and neck, ...), every part inside the object's box (the catalog's object-local frame:
front = local +y, bottom at z = 0). A category that neither vocabulary knows renders as a plain box
(:func:`plain_box_category`), with a warning from the layout reader (an error with ``strict``).

:func:`canonical_category` / :func:`get_category` look up both vocabularies (layout files and rendering); the
generator draws from the catalog's own table (:data:`~loc3r.synthrooms.catalog.CATEGORIES`).
"""

from __future__ import annotations

import numpy as np

from loc3r.synthrooms.catalog import (
    CATEGORIES,
    CATEGORY_ALIASES,
    Category,
    Part,
    Placement,
    Texture,
    _box,
    _c,
    _cyl,
    _framed,
    _legs,
)

_W, _WM, _F, _T = Placement.WALL, Placement.WALL_MOUNTED, Placement.FREE, Placement.ON_TOP
_NEUTRAL = ("white", "black", "gray", "beige", "brown")
_FABRIC = ("red", "green", "blue", "gray", "beige", "yellow", "pink", "white")


def _front_panel(w: float, d: float, z0: float, z1: float, inset: float = 0.03, **kw) -> Part:
    return _box(-w / 2 + inset, d / 2 - 0.006, z0, w / 2 - inset, d / 2, z1, **kw)


def build_ceiling_light(w, d, h, rng):
    return [
        _cyl(-w * 0.08, -d * 0.08, 0.6 * h, w * 0.08, d * 0.08, h, shade=0.6),
        _cyl(-w / 2, -d / 2, 0, w / 2, d / 2, 0.6 * h, color=(250, 246, 225), texture=Texture.GLASS),
    ]


def build_keyboard(w, d, h, rng):
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2, 0.6 * h, shade=0.8)]
    rows, cols = 4, max(6, int(w / 0.03))
    for r in range(rows):
        y0 = -d / 2 + 0.1 * d + r * 0.8 * d / rows
        for c in range(cols):
            x0 = -w / 2 + 0.03 * w + c * 0.94 * w / cols
            parts.append(_box(x0, y0, 0.6 * h, x0 + 0.75 * 0.94 * w / cols, y0 + 0.6 * 0.8 * d / rows, h, shade=1.1))
    return parts


def build_computer_tower(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.006, h),
        _front_panel(w, d, 0.05 * h, 0.95 * h, inset=0.01, shade=0.5),
        _box(-0.01, d / 2 - 0.008, 0.85 * h, 0.01, d / 2, 0.87 * h, color=(60, 160, 255)),
    ]


def build_computer_mouse(w, d, h, rng):
    return [_cyl(-w / 2, -d / 2, 0, w / 2, d / 2, h), _box(-0.004, 0.0, 0.8 * h, 0.004, d / 2 * 0.9, h, shade=0.5)]


def build_printer(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.04, h),
        _box(-w * 0.35, d / 2 - 0.04, 0.15 * h, w * 0.35, d / 2, 0.25 * h, shade=0.6),
        _box(-w * 0.3, -d / 2, h * 0.98, w * 0.3, d * 0.1, h, color=(240, 240, 235)),
    ]


def build_stove(w, d, h, rng):
    top = 0.95 * h
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2, top), _front_panel(w, d, 0.1 * h, 0.7 * h, color=(30, 30, 35))]
    r = 0.18 * min(w, d)
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * w / 4, sy * d / 4
            parts.append(_cyl(cx - r, cy - r, top, cx + r, cy + r, h, color=(25, 25, 25)))
    return parts


def build_telephone(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, 0.55 * h),
        _box(-w / 2, -d / 2, 0.55 * h, w / 2, -d / 2 + 0.35 * d, h, shade=0.8),
    ]


def build_mirror(w, d, h, rng):
    frame = min(0.03, w / 10, h / 10)
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.004, h),
        _framed(w, d / 2 - 0.004, d / 2, 0, h, frame, color=(205, 225, 235), texture=Texture.GLASS),
    ]


def build_towel(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.FABRIC),
        _box(-w / 2, -d / 2, 0.08 * h, w / 2, d / 2, 0.12 * h, shade=0.8, texture=Texture.FABRIC),
    ]


def build_fireplace(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.02, 0.9 * h),
        _box(-w / 2, -d / 2, 0.9 * h, w / 2, d / 2, h, shade=0.7, texture=Texture.WOOD),
        _box(-w * 0.3, d / 2 - 0.03, 0.05 * h, w * 0.3, d / 2 - 0.02, 0.6 * h, color=(20, 18, 16)),
    ]


def build_cup(w, d, h, rng):
    return [_cyl(-w / 2, -d / 2, 0, w / 2, d / 2, 0.97 * h), _cyl(-w * 0.4, -d * 0.4, 0.97 * h, w * 0.4, d * 0.4, h,
                                                                 shade=0.4)]  # fmt: skip


def build_shoes(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, -0.05 * w, d / 2, h * 0.7),
        _box(-w / 2, -d / 2, 0, -0.05 * w, -d / 6, h, shade=0.9),
        _box(0.05 * w, -d / 2, 0, w / 2, d / 2, h * 0.7),
        _box(0.05 * w, -d / 2, 0, w / 2, -d / 6, h, shade=0.9),
    ]


def build_counter(w, d, h, rng):
    top = max(0.03, 0.05 * h)
    parts = [
        _box(-w / 2, -d / 2, 0.08, w / 2, d / 2 - 0.03, h - top),
        _box(-w / 2 + 0.02, -d / 2, 0, w / 2 - 0.02, d / 2 - 0.08, 0.08, shade=0.35),
        _box(-w / 2, -d / 2, h - top, w / 2, d / 2, h, color=(200, 195, 185), texture=Texture.TILES),
    ]
    n = max(1, int(round(w / 0.6)))
    for k in range(n):
        x0 = -w / 2 + k * w / n + 0.02
        x1 = x0 + w / n - 0.04
        parts.append(_box(x0, d / 2 - 0.03, 0.12, x1, d / 2 - 0.02, h - top - 0.04, shade=0.9, texture=Texture.WOOD))
    return parts


def build_crate(w, d, h, rng):
    parts = []
    n = 4
    for k in range(n):
        z0 = k * h / n
        parts.append(_box(-w / 2, -d / 2, z0, w / 2, d / 2, z0 + 0.7 * h / n, texture=Texture.WOOD))
    parts.append(_box(-w / 2 + 0.02, -d / 2 + 0.02, 0, w / 2 - 0.02, d / 2 - 0.02, h, shade=0.4))
    return parts


def build_power_strip(w, d, h, rng):
    parts = [_box(-w / 2, -d / 2, 0, w / 2, d / 2, 0.8 * h)]
    n = max(2, int(w / 0.05))
    for k in range(n):
        x = -w / 2 + (k + 0.5) * w / n
        parts.append(_box(x - 0.01, -d * 0.25, 0.8 * h, x + 0.01, d * 0.25, h, shade=0.3))
    return parts


def build_exhaust_fan(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h, shade=0.9),
        _cyl(-w * 0.4, d / 2 - 0.01, 0.1 * h, w * 0.4, d / 2, 0.9 * h, shade=0.4),
    ]


def build_clock(w, d, h, rng):
    return [
        _cyl(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.004, h),
        _box(-0.005, d / 2 - 0.004, 0.5 * h, 0.005, d / 2, 0.85 * h, color=(20, 20, 20)),
        _box(-0.005, d / 2 - 0.004, 0.45 * h, 0.3 * w, d / 2, 0.55 * h, color=(20, 20, 20)),
    ]


def build_bucket(w, d, h, rng):
    return [_cyl(-w / 2, -d / 2, 0, w / 2, d / 2, 0.85 * h), _box(-w / 2, -0.01, 0.85 * h, w / 2, 0.01, h, shade=0.5)]


def build_basket(w, d, h, rng):
    return [
        _cyl(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.FABRIC),
        _cyl(-w * 0.42, -d * 0.42, 0.9 * h, w * 0.42, d * 0.42, h, shade=0.45),
    ]


def build_blanket(w, d, h, rng):
    return [_box(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.FABRIC)]


def build_dishwasher(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h),
        _front_panel(w, d, 0.1 * h, 0.9 * h, shade=0.85),
        _box(-w * 0.3, d / 2 - 0.012, 0.82 * h, w * 0.3, d / 2, 0.86 * h, color=(70, 70, 75)),
    ]


def build_suitcase(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0.04, w / 2, d / 2, 0.88 * h),
        _box(-w * 0.2, -0.015, 0.88 * h, w * 0.2, 0.015, h, shade=0.3),
        _cyl(-w / 2, -d / 2, 0, -w / 2 + 0.05, -d / 2 + 0.05, 0.04, color=(20, 20, 20)),
        _cyl(w / 2 - 0.05, -d / 2, 0, w / 2, -d / 2 + 0.05, 0.04, color=(20, 20, 20)),
    ]


def build_kettle(w, d, h, rng):
    return [
        _cyl(-w * 0.35, -d / 2, 0, w * 0.35, d / 2, 0.8 * h),
        _box(w * 0.35, -0.02, 0.4 * h, w / 2, 0.02, 0.65 * h, shade=0.8),
        _box(-w / 2, -0.015, 0.3 * h, -w * 0.35, 0.015, h, shade=0.5),
    ]


def build_fan(w, d, h, rng):
    r = min(w, d) / 2
    return [
        _cyl(-r, -r, 0, r, r, 0.04 * h, shade=0.5),
        _cyl(-0.02, -0.02, 0.04 * h, 0.02, 0.02, 0.7 * h, shade=0.6),
        _cyl(-w / 2, d / 2 - 0.12, 0.6 * h, w / 2, d / 2, h),
    ]


def build_coat_hanger(w, d, h, rng):
    r = min(w, d) / 2
    return [
        _cyl(-r, -r, 0, r, r, 0.03 * h, shade=0.5),
        _cyl(-0.02, -0.02, 0, 0.02, 0.02, h, texture=Texture.WOOD),
        _box(-w / 2, -0.015, 0.9 * h, w / 2, 0.015, 0.93 * h, texture=Texture.WOOD),
        _box(-0.015, -d / 2, 0.85 * h, 0.015, d / 2, 0.88 * h, texture=Texture.WOOD),
    ]


def build_cutting_board(w, d, h, rng):
    return [_box(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.WOOD)]


def build_pan(w, d, h, rng):
    body = 0.65 * min(w, d)
    return [
        _cyl(-w / 2, -body / 2, 0, -w / 2 + body, body / 2, h, color=(40, 40, 42)),
        _box(-w / 2 + body, -0.015, 0.6 * h, w / 2, 0.015, h, shade=0.4),
    ]


def build_bowl(w, d, h, rng):
    return [
        _cyl(-w * 0.3, -d * 0.3, 0, w * 0.3, d * 0.3, 0.3 * h),
        _cyl(-w / 2, -d / 2, 0.3 * h, w / 2, d / 2, h),
        _cyl(-w * 0.4, -d * 0.4, 0.9 * h, w * 0.4, d * 0.4, h, shade=0.6),
    ]


def build_headphones(w, d, h, rng):
    return [
        _box(-w / 2, -d * 0.2, 0.85 * h, w / 2, d * 0.2, h),
        _cyl(-w / 2, -d / 2, 0, -w / 2 + 0.3 * w, d / 2, 0.5 * h, shade=0.6),
        _cyl(w / 2 - 0.3 * w, -d / 2, 0, w / 2, d / 2, 0.5 * h, shade=0.6),
    ]


def build_shoe_rack(w, d, h, rng):
    parts = [*_legs(w, d, h, 0.025)]
    for k in range(3):
        z = (k + 0.5) * h / 3
        parts.append(_box(-w / 2, -d / 2, z - 0.015, w / 2, d / 2, z + 0.015, texture=Texture.WOOD))
    return parts


def build_oven(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2 - 0.01, h),
        _front_panel(w, d, 0.15 * h, 0.75 * h, inset=0.06, color=(20, 22, 26), texture=Texture.SCREEN),
        _box(-w * 0.35, d / 2 - 0.012, 0.8 * h, w * 0.35, d / 2, 0.84 * h, color=(170, 170, 175)),
    ]


def build_mattress(w, d, h, rng):
    return [
        _box(-w / 2, -d / 2, 0, w / 2, d / 2, h, texture=Texture.FABRIC),
        _box(-w / 2, -d / 2, 0.45 * h, w / 2, d / 2, 0.55 * h, shade=0.8, texture=Texture.FABRIC),
    ]


def build_guitar(w, d, h, rng):
    """Upright against a wall: the body at the bottom, the neck above (w x h is the guitar's face)."""
    return [
        _cyl(-w / 2, -d / 2, 0, w / 2, d / 2, 0.45 * h, texture=Texture.WOOD),
        _box(-0.03, -d * 0.3, 0.45 * h, 0.03, d * 0.3, 0.92 * h, shade=0.4),
        _box(-0.05, -d * 0.3, 0.92 * h, 0.05, d * 0.3, h, shade=0.3),
        _cyl(-0.06, d / 2 - 0.01, 0.2 * h, 0.06, d / 2, 0.32 * h, color=(20, 15, 10)),
    ]


def build_piano(w, d, h, rng):
    key_z = 0.62 * h
    return [
        _box(-w / 2, -d / 2, 0, w / 2, -d / 2 + 0.55 * d, h, texture=Texture.WOOD),
        _box(-w / 2, -d / 2 + 0.55 * d, key_z - 0.06, w / 2, d / 2, key_z, texture=Texture.WOOD),
        _box(-w / 2 + 0.05, -d / 2 + 0.55 * d, key_z, w / 2 - 0.05, d / 2, key_z + 0.02, color=(240, 240, 232)),
        _box(-w / 2 + 0.02, -d / 2 + 0.55 * d, 0, -w / 2 + 0.06, d / 2, key_z - 0.06, shade=0.7),
        _box(w / 2 - 0.06, -d / 2 + 0.55 * d, 0, w / 2 - 0.02, d / 2, key_z - 0.06, shade=0.7),
    ]


def build_paper_bag(w, d, h, rng):
    return [_box(-w / 2, -d / 2, 0, w / 2, d / 2, 0.97 * h),
            _box(-w * 0.45, -d * 0.45, 0.97 * h, w * 0.45, d * 0.45, h, shade=0.5)]  # fmt: skip


#: The categories of the VSI-Bench meta_info files that the generator's vocabulary lacks (layout files only).
EXTRA_CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in [
        _c("ceiling light", (0.3, 0.3, 0.05), (0.8, 0.8, 0.2), ("white",), {_WM: 1}, build_ceiling_light,
           aliases=("ceiling lamp", "light")),
        _c("keyboard", (0.35, 0.12, 0.02), (0.48, 0.18, 0.04), ("black", "white", "gray"), {_T: 1}, build_keyboard),
        _c("computer tower", (0.18, 0.4, 0.35), (0.22, 0.5, 0.5), ("black", "gray", "white"), {_F: 1},
           build_computer_tower, aliases=("pc", "computer")),
        _c("computer mouse", (0.06, 0.1, 0.03), (0.07, 0.12, 0.04), ("black", "white", "gray"), {_T: 1},
           build_computer_mouse, aliases=("mouse",)),
        _c("printer", (0.4, 0.35, 0.2), (0.55, 0.5, 0.4), ("white", "gray", "black"), {_T: 1}, build_printer),
        _c("stove", (0.55, 0.55, 0.85), (0.8, 0.65, 0.95), ("white", "black", "gray"), {_W: 1}, build_stove,
           aliases=("cooktop", "range")),
        _c("telephone", (0.15, 0.18, 0.08), (0.22, 0.24, 0.12), ("black", "white", "gray"), {_T: 1}, build_telephone,
           aliases=("phone",)),
        _c("mirror", (0.4, 0.02, 0.5), (1.2, 0.04, 1.8), ("gray", "white", "brown", "black"), {_WM: 1}, build_mirror),
        _c("towel", (0.3, 0.03, 0.4), (0.7, 0.08, 0.9), _FABRIC, {_WM: 1}, build_towel),
        _c("fireplace", (1.0, 0.3, 0.9), (1.6, 0.6, 1.3), ("white", "gray", "brown", "black"), {_W: 1},
           build_fireplace),
        _c("cup", (0.07, 0.07, 0.08), (0.1, 0.1, 0.14), _NEUTRAL + ("red", "blue"), {_T: 1}, build_cup,
           aliases=("mug",)),
        _c("shoes", (0.2, 0.25, 0.08), (0.35, 0.33, 0.14), _NEUTRAL, {_F: 1}, build_shoes, aliases=("shoe",)),
        _c("counter", (1.0, 0.55, 0.85), (3.0, 0.7, 0.95), ("white", "beige", "gray", "brown"), {_W: 1},
           build_counter, aliases=("kitchen counter", "countertop", "kitchen cabinets")),
        _c("crate", (0.3, 0.3, 0.25), (0.6, 0.45, 0.4), ("brown", "beige"), {_F: 1}, build_crate),
        _c("power strip", (0.25, 0.05, 0.03), (0.45, 0.07, 0.05), ("white", "black"), {_F: 1}, build_power_strip),
        _c("exhaust fan", (0.25, 0.1, 0.25), (0.4, 0.2, 0.4), ("white", "gray"), {_WM: 1}, build_exhaust_fan),
        _c("clock", (0.25, 0.03, 0.25), (0.4, 0.06, 0.4), ("white", "black", "brown"), {_WM: 1}, build_clock),
        _c("bucket", (0.25, 0.25, 0.25), (0.35, 0.35, 0.4), ("blue", "red", "gray", "white"), {_F: 1}, build_bucket),
        _c("basket", (0.25, 0.25, 0.2), (0.5, 0.4, 0.4), ("beige", "brown", "white"), {_F: 1}, build_basket),
        _c("blanket", (0.8, 0.6, 0.03), (2.0, 1.8, 0.1), _FABRIC, {_T: 1}, build_blanket),
        _c("dishwasher", (0.58, 0.58, 0.82), (0.62, 0.62, 0.88), ("white", "gray", "black"), {_W: 1},
           build_dishwasher),
        _c("suitcase", (0.4, 0.22, 0.55), (0.5, 0.3, 0.8), _NEUTRAL + ("blue", "red"), {_F: 1}, build_suitcase,
           aliases=("luggage",)),
        _c("kettle", (0.18, 0.15, 0.2), (0.25, 0.2, 0.28), ("white", "black", "gray"), {_T: 1}, build_kettle),
        _c("fan", (0.3, 0.3, 0.5), (0.5, 0.5, 1.3), ("white", "black", "gray"), {_F: 1}, build_fan,
           aliases=("standing fan", "desk fan")),
        _c("coat hanger", (0.4, 0.4, 1.6), (0.6, 0.6, 1.9), ("brown", "black", "white"), {_F: 1}, build_coat_hanger,
           aliases=("coat rack",)),
        _c("cutting board", (0.25, 0.18, 0.015), (0.45, 0.3, 0.04), ("brown", "beige", "white"), {_T: 1},
           build_cutting_board),
        _c("pan", (0.35, 0.2, 0.05), (0.5, 0.3, 0.1), ("black", "gray"), {_T: 1}, build_pan, aliases=("frying pan",)),
        _c("bowl", (0.12, 0.12, 0.05), (0.25, 0.25, 0.12), _NEUTRAL, {_T: 1}, build_bowl),
        _c("headphones", (0.16, 0.08, 0.18), (0.2, 0.1, 0.22), ("black", "white", "gray"), {_T: 1},
           build_headphones, aliases=("headphone",)),
        _c("shoe rack", (0.6, 0.25, 0.4), (1.0, 0.35, 0.9), ("brown", "black", "white"), {_W: 1}, build_shoe_rack),
        _c("oven", (0.55, 0.55, 0.55), (0.65, 0.65, 0.9), ("black", "white", "gray"), {_W: 1}, build_oven),
        _c("mattress", (0.9, 1.9, 0.15), (1.8, 2.1, 0.3), ("white", "beige", "gray"), {_F: 1}, build_mattress),
        _c("guitar", (0.35, 0.1, 0.95), (0.42, 0.14, 1.05), ("brown", "black", "red"), {_W: 1}, build_guitar),
        _c("piano", (1.3, 0.55, 1.0), (1.6, 0.7, 1.3), ("black", "brown", "white"), {_W: 1}, build_piano),
        _c("paper bag", (0.2, 0.12, 0.25), (0.35, 0.2, 0.45), ("brown", "beige", "white"), {_F: 1},
           build_paper_bag),
    ]
}  # fmt: skip

#: Other names of the extra categories -> canonical name.
EXTRA_ALIASES: dict[str, str] = {alias: c.name for c in EXTRA_CATEGORIES.values() for alias in c.aliases}


def _build_plain_box(w: float, d: float, h: float, rng: np.random.Generator) -> list[Part]:
    return [_box(-w / 2, -d / 2, 0, w / 2, d / 2, h)]


def plain_box_category(name: str) -> Category:
    """A category no vocabulary knows: one plain box (the layout reader warns, or refuses it with ``strict``)."""
    return Category(name, (0.1, 0.1, 0.1), (1.0, 1.0, 1.0), ("gray",), {_F: 1.0}, _build_plain_box)


def canonical_category(name: str) -> str | None:
    """The name in either vocabulary for ``name`` (case/underscore-insensitive, aliases resolved), or ``None``."""
    key = " ".join(str(name).strip().lower().replace("_", " ").split())
    if key in CATEGORIES or key in EXTRA_CATEGORIES:
        return key
    return CATEGORY_ALIASES.get(key) or EXTRA_ALIASES.get(key)


def get_category(name: str) -> Category:
    """The :class:`Category` for ``name`` in either vocabulary; ``KeyError`` listing both otherwise."""
    key = canonical_category(name)
    if key is None:
        raise KeyError(f"unknown category {name!r}; known: {sorted(CATEGORIES) + sorted(EXTRA_CATEGORIES)}")
    return CATEGORIES[key] if key in CATEGORIES else EXTRA_CATEGORIES[key]
