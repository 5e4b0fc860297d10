"""Triangle geometry of a SynthRooms scene (room shell + objects) with per-triangle render attributes.

:func:`build_scene_mesh` turns a :class:`~loc3r.data.schema.SceneLayout` into a :class:`SceneMesh`: flat
arrays over triangles (``F``) that the renderer gathers by the ray hit's primitive id:

* ``triangles [F, 3, 3]`` world coordinates (float64), ``normals [F, 3]`` unit face normals;
* ``colors [F, 3]`` base albedo in [0, 1], ``texture [F]`` a :class:`~loc3r.synthrooms.catalog.Texture`;
* ``instance [F]`` uint16: the object's ``instance_id`` (>= 1), or 0 for the room shell (floor, walls,
  ceiling) — the same id that goes into ``instance/<i>.png``;
* ``tex_origin / tex_u / tex_v [F, 3]``: a per-triangle texture frame; a hit point P has texture
  coordinates ``((P - o) . u, (P - o) . v)`` in metres, so patterns are glued to the surfaces (they
  move with the object, and a wall's pattern runs along the wall).

Objects are built from the catalog's primitives (:mod:`trimesh.creation` boxes and cylinders) in the
object-local frame, then rotated by ``yaw`` about z and translated so the local origin lands on the
centre of the box's bottom face; every vertex lies inside the object's box.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import trimesh

from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms.catalog import Category, Part, Texture
from loc3r.synthrooms.vocabulary import get_category, plain_box_category

_CYLINDER_SECTIONS = 16


@dataclass(frozen=True)
class RoomStyle:
    """Colours and textures of the room shell."""

    floor_color: tuple[int, int, int]
    floor_texture: Texture
    wall_color: tuple[int, int, int]
    ceiling_color: tuple[int, int, int] = (240, 240, 236)

    @staticmethod
    def sample(rng: np.random.Generator) -> RoomStyle:
        floors = [
            ((150, 105, 65), Texture.WOOD),
            ((185, 150, 110), Texture.WOOD),
            ((120, 120, 118), Texture.TILES),
            ((205, 205, 198), Texture.TILES),
            ((105, 90, 120), Texture.FABRIC),
            ((140, 60, 55), Texture.FABRIC),
        ]
        walls = [(225, 222, 212), (215, 200, 175), (185, 205, 220), (190, 212, 185), (200, 200, 205), (230, 205, 190)]
        floor = floors[int(rng.integers(len(floors)))]
        wall = walls[int(rng.integers(len(walls)))]
        return RoomStyle(floor_color=floor[0], floor_texture=floor[1], wall_color=wall)

    @staticmethod
    def for_scene(scene_id: str) -> RoomStyle:
        """The deterministic default style of a scene id (used when no style is given)."""
        return RoomStyle.sample(np.random.default_rng(zlib.crc32(scene_id.encode("utf-8"))))


@dataclass
class SceneMesh:
    """Flat per-triangle arrays (see the module docstring)."""

    triangles: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    texture: np.ndarray
    instance: np.ndarray
    tex_origin: np.ndarray
    tex_u: np.ndarray
    tex_v: np.ndarray


def triangulate_polygon(polygon: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation of a simple counter-clockwise polygon ``[K, 2]`` -> indices ``[K-2, 3]``."""
    pts = np.asarray(polygon, dtype=np.float64)
    idx = list(range(len(pts)))
    tris: list[tuple[int, int, int]] = []

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    guard = 0
    while len(idx) > 3:
        guard += 1
        if guard > 10 * len(pts) ** 2:
            raise ValueError("triangulate_polygon: polygon is not simple / counter-clockwise")
        n = len(idx)
        for k in range(n):
            i0, i1, i2 = idx[(k - 1) % n], idx[k], idx[(k + 1) % n]
            a, b, c = pts[i0], pts[i1], pts[i2]
            if cross(a, b, c) <= 1e-12:  # reflex or degenerate corner
                continue
            inside = False
            for j in idx:
                if j in (i0, i1, i2):
                    continue
                p = pts[j]
                if cross(a, b, p) >= 0 and cross(b, c, p) >= 0 and cross(c, a, p) >= 0:
                    inside = True
                    break
            if not inside:
                tris.append((i0, i1, i2))
                del idx[k]
                break
    tris.append((idx[0], idx[1], idx[2]))
    return np.asarray(tris, dtype=np.int64)


def _part_mesh(part: Part) -> trimesh.Trimesh:
    lo, hi = np.asarray(part.lo, dtype=np.float64), np.asarray(part.hi, dtype=np.float64)
    if part.kind == "box":
        return trimesh.creation.box(bounds=np.stack([lo, hi]))
    if part.kind == "cylinder":
        cyl = trimesh.creation.cylinder(radius=1.0, height=1.0, sections=_CYLINDER_SECTIONS)
        verts = cyl.vertices.copy()  # centred at the origin, z in [-0.5, 0.5]
        verts[:, 0] *= (hi[0] - lo[0]) / 2
        verts[:, 1] *= (hi[1] - lo[1]) / 2
        verts[:, 2] = (verts[:, 2] + 0.5) * (hi[2] - lo[2])
        verts += np.array([(hi[0] + lo[0]) / 2, (hi[1] + lo[1]) / 2, lo[2]])
        return trimesh.Trimesh(vertices=verts, faces=cyl.faces, process=False)
    raise ValueError(f"unknown part kind {part.kind!r}")


def _category(name: str) -> Category:
    """The object's category; a name no vocabulary knows (a user's layout file) renders as a plain box."""
    try:
        return get_category(name)
    except KeyError:
        return plain_box_category(name)


def object_parts(obj: SceneObject) -> list[Part]:
    """The catalog primitives of ``obj`` (deterministic from the object's id, size and category)."""
    cat = _category(obj.category)
    w, d, h = (float(v) for v in obj.size)
    seed = zlib.crc32(f"{obj.category}/{obj.instance_id}/{w:.4f}/{d:.4f}/{h:.4f}".encode())
    return cat.builder(w, d, h, np.random.default_rng(seed))


class _Builder:
    def __init__(self) -> None:
        self.tris: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []
        self.textures: list[np.ndarray] = []
        self.instances: list[np.ndarray] = []
        self.origins: list[np.ndarray] = []
        self.frames_u: list[np.ndarray] = []
        self.frames_v: list[np.ndarray] = []

    def add(
        self, tris: np.ndarray, color: np.ndarray, texture: int, instance: int, origin: np.ndarray, horiz_u: np.ndarray
    ) -> None:
        """Add triangles ``[n, 3, 3]``; texture frames: ``horiz_u`` on horizontal faces, along the face on others."""
        n = len(tris)
        normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        horizontal = np.abs(normals[:, 2]) > 0.7
        up = np.array([0.0, 0.0, 1.0])
        side_u = np.cross(up, normals)
        side_u /= np.maximum(np.linalg.norm(side_u, axis=1, keepdims=True), 1e-12)
        hu = np.broadcast_to(horiz_u, (n, 3))
        hv = np.broadcast_to(np.cross(up, horiz_u), (n, 3))
        self.tris.append(tris)
        self.colors.append(np.broadcast_to(color, (n, 3)))
        self.textures.append(np.full(n, int(texture), dtype=np.uint8))
        self.instances.append(np.full(n, instance, dtype=np.uint16))
        self.origins.append(np.broadcast_to(origin, (n, 3)))
        self.frames_u.append(np.where(horizontal[:, None], hu, side_u))
        self.frames_v.append(np.where(horizontal[:, None], hv, np.broadcast_to(up, (n, 3))))

    def build(self) -> SceneMesh:
        tris = np.concatenate(self.tris).astype(np.float64)
        normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        return SceneMesh(
            triangles=tris,
            normals=normals.astype(np.float32),
            colors=np.concatenate(self.colors).astype(np.float32),
            texture=np.concatenate(self.textures),
            instance=np.concatenate(self.instances),
            tex_origin=np.concatenate(self.origins).astype(np.float32),
            tex_u=np.concatenate(self.frames_u).astype(np.float32),
            tex_v=np.concatenate(self.frames_v).astype(np.float32),
        )


def _srgb_to_linear(rgb: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def build_scene_mesh(layout: SceneLayout, style: RoomStyle | None = None) -> SceneMesh:
    """Room shell (floor, walls, ceiling; instance 0) + every object's primitives (its instance id)."""
    style = style or RoomStyle.for_scene(layout.scene_id)
    b = _Builder()
    poly = np.asarray(layout.floor_polygon, dtype=np.float64)
    height = float(layout.height)
    tri_idx = triangulate_polygon(poly)
    floor = np.concatenate([poly[tri_idx], np.zeros((len(tri_idx), 3, 1))], axis=2)
    ex = np.array([1.0, 0.0, 0.0])
    b.add(floor, _srgb_to_linear(style.floor_color), style.floor_texture, 0, np.zeros(3), ex)
    ceiling = floor[:, ::-1].copy()
    ceiling[..., 2] = height
    b.add(ceiling, _srgb_to_linear(style.ceiling_color), Texture.PLAIN, 0, np.zeros(3), ex)
    wall_tris = []
    for i in range(len(poly)):
        p0, p1 = poly[i], poly[(i + 1) % len(poly)]
        a, c = np.array([*p0, 0.0]), np.array([*p1, 0.0])
        a2, c2 = a + [0, 0, height], c + [0, 0, height]
        wall_tris += [np.stack([a, c, c2]), np.stack([a, c2, a2])]
    b.add(np.asarray(wall_tris), _srgb_to_linear(style.wall_color), Texture.WALL, 0, np.zeros(3), ex)

    for obj in layout.objects:
        cat = _category(obj.category)
        base = _srgb_to_linear(obj.color)
        c, s = np.cos(obj.yaw), np.sin(obj.yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        origin = np.asarray(obj.center, dtype=np.float64) - np.array([0.0, 0.0, obj.size[2] / 2])
        for part in object_parts(obj):
            mesh = _part_mesh(part)
            tris = mesh.vertices[mesh.faces] @ rot.T + origin
            color = _srgb_to_linear(part.color) if part.color is not None else np.clip(base * part.shade, 0, 1)
            # a plain part of the object's own colour takes the category's texture
            texture = cat.texture if part.color is None and part.texture == Texture.PLAIN else part.texture
            b.add(tris, color, texture, obj.instance_id, origin, rot[:, 0])
    return b.build()
