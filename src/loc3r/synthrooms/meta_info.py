"""Scene layouts in the VSI-Bench ``meta_info`` format: read (-> SceneLayout) and write (SceneLayout ->).

The format (DESIGN.md §4) is one JSON object ``{scene_id: entry}``; an entry has

* ``room_size``: floor area in m²; ``room_center``: ``[x, y, z]`` (newer files);
* ``object_counts``: ``{category: n}``;
* ``object_bbox``: ``{category: [box, ...]}`` with ``box = {"centroid": [3], "axesLengths": [3],
  "normalizedAxes": [9], "min": [3], "max": [3]}`` — ``normalizedAxes`` holds the box's three unit axes
  row-major (axis ``i`` is ``normalizedAxes[3 i : 3 i + 3]``, with full extent ``axesLengths[i]``);
  ``min``/``max`` are the axis-aligned bounds of the box.

SynthRooms writes the standard keys plus a few **extensions** that real files lack (readers of real
VSI-Bench files ignore them): per entry ``floor_polygon`` (``[[x, y], ...]`` counter-clockwise),
``room_height`` (m) and ``generator`` (``"synthrooms"``); per box ``instance_id`` (the id in
``instance/<i>.png``), ``color`` (sRGB) and ``color_name``. Our boxes' axes are
``(cos yaw, sin yaw, 0), (-sin yaw, cos yaw, 0), (0, 0, 1)`` with lengths = ``SceneObject.size``.

Reading (:func:`layout_from_entry`, :func:`load_meta_info`) accepts real files too:

* categories are mapped to the SynthRooms vocabulary (aliases such as ``couch`` -> ``sofa``, see
  :data:`~loc3r.synthrooms.catalog.CATEGORY_ALIASES`) and to the layout-only categories of
  :mod:`loc3r.synthrooms.vocabulary` (the full vocabulary of the public VSI-Bench files, with synonyms such as
  refrigerator/fridge, trash can/trash bin, washer/washing machine); a category neither knows becomes a plain
  box with a warning (an error with ``strict``);
* gravity alignment: when the box's axis closest to world z is within 20 deg of it, that axis is the height
  axis and the first of the other two gives the yaw (lengths from ``axesLengths``); a box tilted further (25 %
  of the real ScanNet boxes are fitted to points and tilted) is made gravity-aligned: its footprint is the
  minimum-area rectangle of its 8 corners' horizontal projection (width, depth, yaw) and its height the corners'
  vertical extent;
* without ``floor_polygon`` the room is a rectangle of area ``room_size`` (when given) centred on ``room_center``
  (else on the objects' centre), oriented and proportioned like the minimum-area rectangle around the objects'
  footprints; real boxes fitted to scan points may reach a little past it (the room size is the file's, not
  enlarged to contain them). Without ``room_size`` the rectangle encloses every footprint plus 0.3 m. Without
  ``room_height`` the height is ``max(2.5, highest box top + 0.2)``. The floor is put at z = 0 wherever the file
  has it: everything is shifted by the lowest box bottom (real scans put the floor at any height);
* instance ids come from ``instance_id`` when present, else 1..N in file order.

Every error is a :class:`LayoutError` naming the file, the scene, and the object (category + index) and
field: degenerate box (an extent <= 1 mm, e.g. zero size, axes not unit / orthogonal), NaN/inf, ``min`` > ``max``,
an object outside the given floor polygon (a warning unless ``strict``) or above
``room_height`` (and, with ``strict``, an unknown category or a
count in ``object_counts`` that does not match ``object_bbox`` — real files have such counts: a warning
otherwise). :func:`load_meta_info` skips a bad scene with a warning and goes on, unless ``strict``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import MultiPoint, Polygon

from loc3r.core.io import write_json
from loc3r.data.schema import SampleError, SceneLayout, SceneObject
from loc3r.synthrooms.catalog import CATEGORIES, COLORS
from loc3r.synthrooms.vocabulary import canonical_category, get_category

_MAX_TILT_DEG = 20.0


class LayoutError(SampleError):
    """A layout (meta_info) file or entry is malformed; the message names file, scene, object and field."""


def box_axes(yaw: float) -> np.ndarray:
    """The three unit axes (rows) of a gravity-aligned box with ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _round(values: np.ndarray | list[float], nd: int = 6) -> list[float]:
    return [round(float(v), nd) for v in np.asarray(values, dtype=np.float64).ravel()]


def _obj_bounds(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    corners_xy = obj.corners_xy()
    z0, z1 = obj.center[2] - obj.size[2] / 2, obj.center[2] + obj.size[2] / 2
    lo = np.array([corners_xy[:, 0].min(), corners_xy[:, 1].min(), z0])
    hi = np.array([corners_xy[:, 0].max(), corners_xy[:, 1].max(), z1])
    return lo, hi


def layout_to_entry(layout: SceneLayout) -> dict[str, Any]:
    """One scene's ``meta_info`` entry (standard keys + SynthRooms extensions, see module docstring)."""
    poly = np.asarray(layout.floor_polygon, dtype=np.float64)
    room = Polygon(poly)
    centre = room.centroid
    counts: dict[str, int] = {}
    boxes: dict[str, list[dict[str, Any]]] = {}
    for obj in layout.objects:
        lo, hi = _obj_bounds(obj)
        counts[obj.category] = counts.get(obj.category, 0) + 1
        boxes.setdefault(obj.category, []).append(
            {
                "centroid": _round(obj.center),
                "axesLengths": _round(obj.size),
                "normalizedAxes": _round(box_axes(obj.yaw)),
                "min": _round(lo),
                "max": _round(hi),
                "instance_id": int(obj.instance_id),
                "color": [int(c) for c in obj.color],
                "color_name": obj.color_name,
            }
        )
    return {
        "room_size": round(float(room.area), 4),
        "room_center": _round([centre.x, centre.y, layout.height / 2]),
        "object_counts": counts,
        "object_bbox": boxes,
        "floor_polygon": [_round(p) for p in poly],
        "room_height": round(float(layout.height), 6),
        "generator": "synthrooms",
    }


def layouts_to_meta_info(layouts: list[SceneLayout]) -> dict[str, dict[str, Any]]:
    """``{scene_id: entry}`` for several layouts (the on-disk format)."""
    return {layout.scene_id: layout_to_entry(layout) for layout in layouts}


def save_meta_info(path: str | os.PathLike, layouts: list[SceneLayout] | dict[str, Any]) -> None:
    """Write a meta_info JSON file atomically (temp file + ``os.replace``)."""
    data = layouts if isinstance(layouts, dict) else layouts_to_meta_info(layouts)
    write_json(path, data, indent=1)


def _vec(where: str, box: dict[str, Any], key: str, n: int, required: bool = True) -> np.ndarray | None:
    if key not in box:
        if required:
            raise LayoutError(f"{where}: missing field {key!r}")
        return None
    try:
        arr = np.asarray(box[key], dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise LayoutError(f"{where}: field {key!r} is not a list of numbers ({box[key]!r})") from err
    if arr.shape != (n,):
        raise LayoutError(f"{where}: field {key!r} must have {n} numbers, got {arr.size}")
    if not np.isfinite(arr).all():
        raise LayoutError(f"{where}: field {key!r} has non-finite values (NaN/inf): {arr.tolist()}")
    return arr


def _parse_box(where: str, box: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """-> (centre, size (w, d, h), yaw) of a gravity-aligned box."""
    if not isinstance(box, dict):
        raise LayoutError(f"{where}: expected a box object, got {type(box).__name__}")
    centroid = _vec(where, box, "centroid", 3)
    lengths = _vec(where, box, "axesLengths", 3)
    axes = _vec(where, box, "normalizedAxes", 9).reshape(3, 3)
    lo = _vec(where, box, "min", 3, required=False)
    hi = _vec(where, box, "max", 3, required=False)
    if (lengths <= 1e-3).any():
        raise LayoutError(f"{where}: degenerate box, field 'axesLengths' must all be > 1 mm, got {lengths.tolist()}")
    norms = np.linalg.norm(axes, axis=1)
    if np.abs(norms - 1.0).max() > 1e-2:
        raise LayoutError(
            f"{where}: degenerate box, 'normalizedAxes' rows are not unit vectors (norms {np.round(norms, 4).tolist()})"
        )
    gram = axes @ axes.T
    if np.abs(gram - np.eye(3)).max() > 2e-2:
        raise LayoutError(f"{where}: degenerate box, 'normalizedAxes' are not orthogonal")
    if lo is not None and hi is not None:
        if (lo > hi + 1e-9).any():
            raise LayoutError(f"{where}: field 'min' {lo.tolist()} exceeds 'max' {hi.tolist()}")
        if ((centroid < lo - 0.02) | (centroid > hi + 0.02)).any():
            raise LayoutError(f"{where}: 'centroid' {centroid.tolist()} lies outside 'min'/'max'")
    up = int(np.argmax(np.abs(axes[:, 2])))
    tilt = math.degrees(math.acos(min(1.0, abs(float(axes[up, 2])))))
    if tilt > _MAX_TILT_DEG:
        return _gravity_aligned(centroid, lengths, axes)
    first, second = [k for k in range(3) if k != up]
    yaw = math.atan2(axes[first, 1], axes[first, 0])
    size = np.array([lengths[first], lengths[second], lengths[up]])
    return centroid, size, float(yaw)


def _gravity_aligned(
    centroid: np.ndarray, lengths: np.ndarray, axes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """A tilted box as a gravity-aligned one: footprint = minimum-area rectangle of the horizontal projection of
    its 8 corners, height = their vertical extent (see the module docstring)."""
    signs = np.array([[i, j, k] for i in (-0.5, 0.5) for j in (-0.5, 0.5) for k in (-0.5, 0.5)])
    corners = centroid + (signs * lengths) @ axes
    rect = MultiPoint([tuple(p) for p in corners[:, :2]]).minimum_rotated_rectangle
    pts = np.asarray(rect.exterior.coords)[:4] if isinstance(rect, Polygon) else None
    z_lo, z_hi = float(corners[:, 2].min()), float(corners[:, 2].max())
    if pts is None:  # a degenerate projection (a line): fall back to its axis-aligned bounds
        lo, hi = corners[:, :2].min(0), corners[:, :2].max(0)
        pts = np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]])
    e0, e1 = pts[1] - pts[0], pts[2] - pts[1]
    size = np.array([max(float(np.linalg.norm(e0)), 0.01), max(float(np.linalg.norm(e1)), 0.01), z_hi - z_lo])
    centre = np.array([*pts.mean(axis=0), (z_lo + z_hi) / 2])
    return centre, size, float(math.atan2(e0[1], e0[0]))


def _palette(category: str) -> tuple[str, ...]:
    try:
        return get_category(category).colors
    except KeyError:
        return ("gray",)


def _parse_color(where: str, box: dict[str, Any], category: str, index: int) -> tuple[tuple[int, int, int], str]:
    name = box.get("color_name")
    color = box.get("color")
    if color is not None:
        try:
            rgb = tuple(int(c) for c in color)
        except (TypeError, ValueError) as err:
            raise LayoutError(f"{where}: field 'color' must be 3 integers 0..255, got {color!r}") from err
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise LayoutError(f"{where}: field 'color' must be 3 integers 0..255, got {color!r}")
        return rgb, str(name or "")
    if isinstance(name, str) and name in COLORS:
        return COLORS[name], name
    palette = _palette(category)
    fallback = palette[index % len(palette)]
    return COLORS[fallback], fallback


def _objects(
    here: str, bboxes: dict, counts: dict | None, strict: bool, warnings: list[str] | None
) -> list[SceneObject]:
    """The entry's boxes as objects with their instance ids (given for every box, or numbered from 1)."""
    objects: list[SceneObject] = []
    explicit_ids: list[int | None] = []
    for raw_cat, boxes in bboxes.items():
        cat = canonical_category(raw_cat)
        if cat is None:
            what = f"object {raw_cat!r}[0]" if isinstance(boxes, list) and boxes else f"object_bbox[{raw_cat!r}]"
            message = f"{here}: {what}: unknown category {raw_cat!r}"
            if strict:
                raise LayoutError(f"{message} (known: {', '.join(sorted(CATEGORIES))} and the layout vocabulary)")
            if warnings is not None:
                warnings.append(f"{message}: rendered as a plain box")
            cat = " ".join(str(raw_cat).strip().lower().replace("_", " ").split()) or "object"
        if not isinstance(boxes, list):
            raise LayoutError(f"{here}: object_bbox[{raw_cat!r}] must be a list of boxes")
        if counts is not None and raw_cat in counts and int(counts[raw_cat]) != len(boxes):
            # real VSI-Bench files do this (ScanNet val: 11 of 88 scenes): the boxes are rendered, the count is
            # the file's (its questions' answers come from it), so this is a warning unless strict
            message = f"{here}: object_counts[{raw_cat!r}] = {counts[raw_cat]} but object_bbox has {len(boxes)} boxes"
            if strict:
                raise LayoutError(message)
            if warnings is not None:
                warnings.append(f"{message}: every box is rendered")
        for k, box in enumerate(boxes):
            where = f"{here}: object {raw_cat!r}[{k}]"
            centre, size, yaw = _parse_box(where, box)
            color, color_name = _parse_color(where, box, cat, k)
            iid = box.get("instance_id")
            if iid is not None and (not isinstance(iid, int) or isinstance(iid, bool) or iid < 1):
                raise LayoutError(f"{where}: field 'instance_id' must be an integer >= 1, got {iid!r}")
            explicit_ids.append(iid)
            objects.append(SceneObject(cat, 0, centre, size, yaw, color, color_name))
    if counts is not None:
        missing = [c for c in counts if c not in bboxes and int(counts[c]) > 0]
        if missing:
            raise LayoutError(f"{here}: object_counts lists {missing} but object_bbox has no boxes for them")
    # instance ids
    if any(i is not None for i in explicit_ids):
        if any(i is None for i in explicit_ids) or len(set(explicit_ids)) != len(explicit_ids):
            raise LayoutError(f"{here}: 'instance_id' must be given for every box and be unique")
        for obj, iid in zip(objects, explicit_ids, strict=True):
            obj.instance_id = int(iid)
    else:
        for k, obj in enumerate(objects):
            obj.instance_id = k + 1
    if len(objects) > 65535:
        raise LayoutError(f"{here}: too many objects ({len(objects)}) for uint16 instance maps")

    return objects


def _floor_polygon(
    here: str, poly_raw: Any, objects: list[SceneObject], strict: bool, warnings: list[str] | None
) -> np.ndarray:
    """The given ``floor_polygon`` (counter-clockwise), checked against the boxes."""
    try:
        poly = np.asarray(poly_raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise LayoutError(f"{here}: field 'floor_polygon' must be [[x, y], ...]") from err
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.isfinite(poly).all():
        raise LayoutError(f"{here}: field 'floor_polygon' must be >= 3 finite [x, y] vertices")
    room = Polygon(poly)
    if not room.is_valid or room.area <= 0:
        raise LayoutError(f"{here}: field 'floor_polygon' is self-intersecting or degenerate")
    if not room.exterior.is_ccw:
        poly = poly[::-1].copy()
    bottoms = [o.center[2] - o.size[2] / 2 for o in objects]
    if bottoms and min(bottoms) < -0.02:
        raise LayoutError(
            f"{here}: a box reaches below the floor (z = {min(bottoms):.3f} < 0) although 'floor_polygon' is given"
        )
    tolerant = room.buffer(0.05)
    for obj in objects:
        foot = Polygon(obj.corners_xy())
        if not tolerant.contains(foot):
            # boxes fitted to real scans reach through walls (windows, doors) once the room has the file's
            # room_size; such a room is written with its polygon and must read back: a warning unless strict
            message = f"{here}: object {obj.category!r} (instance {obj.instance_id}) lies outside 'floor_polygon'"
            if strict:
                raise LayoutError(message)
            if warnings is not None:
                warnings.append(f"{message}{' in part' if foot.intersects(room) else ''}")
    return poly


def _positive(here: str, name: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError) as err:
        raise LayoutError(f"{here}: field {name!r} must be a number, got {raw!r}") from err
    if not math.isfinite(value) or value <= 0:
        raise LayoutError(f"{here}: field {name!r} must be positive and finite, got {raw!r}")
    return value


def _room_height(here: str, entry: dict, objects: list[SceneObject]) -> float:
    """The given ``room_height`` (checked against the boxes), else 0.2 m above the highest box (at least 2.5 m)."""
    top = max((o.center[2] + o.size[2] / 2 for o in objects), default=0.0)
    height_raw = entry.get("room_height")
    if height_raw is not None:
        height = _positive(here, "room_height", height_raw)
        if top > height + 0.02:
            raise LayoutError(f"{here}: a box reaches {top:.3f} m, above 'room_height' {height:.3f} m")
    else:
        height = max(2.5, top + 0.2)
    return height


def layout_from_entry(
    scene_id: str,
    entry: Any,
    source: str = "<meta_info>",
    *,
    strict: bool = False,
    warnings: list[str] | None = None,
) -> SceneLayout:
    """Build a :class:`SceneLayout` from one ``meta_info`` entry (see the module docstring for the rules).

    An unknown category renders as a plain box and a message is appended to ``warnings``; with ``strict`` it is a
    :class:`LayoutError`."""
    here = f"{source}: scene {scene_id!r}"
    if not isinstance(entry, dict):
        raise LayoutError(f"{here}: expected an object, got {type(entry).__name__}")
    bboxes = entry.get("object_bbox")
    if not isinstance(bboxes, dict):
        raise LayoutError(f"{here}: missing or invalid field 'object_bbox' (expected {{category: [boxes]}})")
    counts = entry.get("object_counts")
    if counts is not None and not isinstance(counts, dict):
        raise LayoutError(f"{here}: field 'object_counts' must be an object {{category: n}}")
    objects = _objects(here, bboxes, counts, strict, warnings)
    poly_raw = entry.get("floor_polygon")
    if poly_raw is not None:
        poly, z_shift = _floor_polygon(here, poly_raw, objects, strict, warnings), 0.0
    else:
        poly, z_shift = _infer_room(here, entry, objects)
    for obj in objects:
        obj.center = obj.center + np.array([0.0, 0.0, z_shift])
    height = _room_height(here, entry, objects)
    return SceneLayout(scene_id=str(scene_id), floor_polygon=poly, height=height, objects=objects)


def _infer_room(here: str, entry: dict[str, Any], objects: list[SceneObject]) -> tuple[np.ndarray, float]:
    """Rectangle for files without ``floor_polygon`` (real VSI-Bench files); returns (polygon, z shift)."""
    if objects:
        corners = np.concatenate([o.corners_xy() for o in objects])
        rect = MultiPoint([tuple(p) for p in corners]).minimum_rotated_rectangle
    else:
        corners, rect = np.zeros((1, 2)), None
    if isinstance(rect, Polygon) and rect.area > 1e-6:
        pts = np.asarray(rect.exterior.coords)[:4]
        e0, e1 = pts[1] - pts[0], pts[2] - pts[1]
        ext = np.array([np.linalg.norm(e0), np.linalg.norm(e1)])
        u = e0 / ext[0]
        centre = pts.mean(axis=0)
    else:
        u, ext = np.array([1.0, 0.0]), np.ptp(corners, axis=0) if len(corners) > 1 else np.zeros(2)
        centre = corners.mean(axis=0)
    v = np.array([-u[1], u[0]])
    rc = entry.get("room_center")
    if rc is not None:
        try:
            rc_arr = np.asarray(rc, dtype=np.float64).ravel()
        except (TypeError, ValueError) as err:
            raise LayoutError(f"{here}: field 'room_center' must be [x, y, z]") from err
        if rc_arr.size < 2 or not np.isfinite(rc_arr).all():
            raise LayoutError(f"{here}: field 'room_center' must be finite [x, y, z], got {rc!r}")
        centre = rc_arr[:2]
    size = entry.get("room_size")
    if size is not None:
        area = _positive(here, "room_size", size)
        # the objects' proportions (capped at 4:1) scaled to the file's area
        ext = np.maximum(ext, 0.5)
        aspect = float(np.clip(ext[0] / ext[1], 0.25, 4.0))
        half = 0.5 * np.array([math.sqrt(area * aspect), math.sqrt(area / aspect)])
    else:
        rel = (corners - centre) @ np.stack([u, v], axis=1)
        half = np.maximum(np.abs(rel).max(axis=0) + 0.3, 1.0) if len(rel) else np.array([1.5, 1.5])
    poly = np.array([centre + sx * half[0] * u + sy * half[1] * v for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    bottoms = [o.center[2] - o.size[2] / 2 for o in objects]
    z_shift = -min(bottoms) if bottoms else 0.0
    return poly, float(z_shift)


def load_meta_info(
    path: str | os.PathLike,
    scene_ids: list[str] | None = None,
    *,
    strict: bool = False,
    warnings: list[str] | None = None,
) -> list[SceneLayout]:
    """All (or the listed) scenes of a ``meta_info`` JSON file as layouts, in file order.

    A scene with a bad entry (NaN, zero size, ...) is skipped and its :class:`LayoutError` message appended to
    ``warnings`` (unknown categories: a plain box + a warning); with ``strict`` both raise. An unreadable file,
    missing requested scenes, or a file without any usable scene always raise."""
    path = Path(path)
    try:
        with open(path) as fh:
            data = json.load(fh)
    except OSError as err:
        raise LayoutError(f"{path}: cannot read layout file ({err})") from err
    except json.JSONDecodeError as err:
        raise LayoutError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: expected a JSON object {{scene_id: entry}}, got {type(data).__name__}")
    if scene_ids is not None:
        missing = [s for s in scene_ids if s not in data]
        if missing:
            raise LayoutError(f"{path}: scenes {missing} not in the file")
        keys = list(scene_ids)
    else:
        keys = list(data)
    layouts = []
    skipped: list[str] = []
    for key in keys:
        try:
            layouts.append(layout_from_entry(key, data[key], source=str(path), strict=strict, warnings=warnings))
        except LayoutError as err:
            if strict:
                raise
            skipped.append(str(err))
            if warnings is not None:
                warnings.append(f"{err} (scene skipped)")
    if not layouts:
        first = f"; the first: {skipped[0]}" if skipped else ""
        raise LayoutError(f"{path}: no usable scene (every entry is malformed{first})")
    return layouts
