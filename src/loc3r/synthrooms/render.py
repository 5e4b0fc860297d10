"""Ray-cast rendering of SynthRooms scenes with Embree (via ``embreex``, the backend of trimesh's ray module).

One :class:`SceneRenderer` per scene builds the Embree BVH **once** from the scene's
:class:`~loc3r.synthrooms.mesh.SceneMesh`; each :meth:`SceneRenderer.render` call then casts one primary
ray per pixel and returns

* ``rgb [H, W, 3] uint8`` — Lambertian shading of the hit triangle's albedo times a procedural texture
  (:class:`~loc3r.synthrooms.catalog.Texture`), with optional hard shadows from a ceiling light;
* ``depth [H, W] float32`` — **metric z-depth** (distance along the camera's optical axis, what depth
  sensors and ScanNet's depth PNGs store), 0 where no surface was hit;
* ``instance [H, W] uint16`` — the hit triangle's instance id (0 = room shell or nothing).

Camera model (the conventions of :mod:`loc3r.core.geometry`): pinhole ``K`` with pixel (row i, column j)
sampled at its centre ``(u, v) = (j + 0.5, i + 0.5)``; camera-to-world pose with OpenCV axes. The ray of a
pixel has direction ``R @ [(u - cx) / fx, (v - cy) / fy, 1]`` (not normalised), so Embree's hit distance
``t_far`` along it *is* the z-depth, and ``unproject(u, v, depth)`` of :func:`loc3r.core.geometry.unproject_pixels`
returns exactly the hit point.

Shading (linear RGB, then sRGB-encoded)::

    c = albedo * pattern(u_tex, v_tex) * (k_a + k_d * max(n . l, 0) * visible + k_h * max(n . -r, 0)) / (1 + k_f d^2)

with ``n`` the face normal turned towards the camera, ``l`` the direction to the ceiling light, ``r`` the
unit ray direction (a head-light term that keeps every visible face lit) and ``d`` the hit distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from loc3r.core.geometry import validate_pose
from loc3r.synthrooms.catalog import Texture
from loc3r.synthrooms.mesh import SceneMesh

_K_AMBIENT, _K_DIFFUSE, _K_HEAD, _K_FALLOFF = 0.28, 0.5, 0.32, 0.012
_GAIN = 1.25  # exposure
_BLOCK = 8192  # rays per block (cache-sized)
# linear -> sRGB 8 bit, as a lookup table over 4096 linear levels (finer than 8-bit sRGB steps near black)
_LUT_SIZE = 4096
_lin = np.arange(_LUT_SIZE + 1, dtype=np.float64) / _LUT_SIZE
_SRGB_LUT = (
    np.clip(np.where(_lin <= 0.0031308, 12.92 * _lin, 1.055 * np.power(_lin, 1 / 2.4) - 0.055), 0, 1) * 255 + 0.5
).astype(np.uint8)
del _lin


def make_intrinsic(width: int, height: int, hfov_deg: float = 60.0) -> np.ndarray:
    """3x3 pinhole intrinsics with square pixels, principal point at the image centre.

    ``fx = fy = (W / 2) / tan(hfov / 2)``; ``cx = W / 2``, ``cy = H / 2`` (pixel centres at +0.5, so the
    optical axis passes through the image centre exactly). ScanNet's depth camera has hfov ≈ 58°.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"make_intrinsic: width and height must be positive, got {width}x{height}")
    if not 10.0 <= hfov_deg <= 150.0:
        raise ValueError(f"make_intrinsic: hfov_deg must be in [10, 150], got {hfov_deg}")
    f = (width / 2.0) / np.tan(np.deg2rad(hfov_deg) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class RenderedFrame:
    rgb: np.ndarray  # [H, W, 3] uint8 (sRGB)
    depth: np.ndarray  # [H, W] float32 metres (z-depth), 0 = no hit
    instance: np.ndarray  # [H, W] uint16, 0 = room shell / nothing


def _hash2(i: np.ndarray, j: np.ndarray, salt: int = 0) -> np.ndarray:
    """Integer-lattice hash -> uniform [0, 1) (vectorised, deterministic)."""
    h = (i.astype(np.int64) * 374761393 + j.astype(np.int64) * 668265263 + salt * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).astype(np.float32) / np.float32(0x1000000)


def _pattern(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Multiplicative brightness pattern per hit from its texture id and texture coordinates (metres)."""
    out = np.ones(u.shape, dtype=np.float32)
    m = tex == Texture.TILES
    if m.any():
        tu, tv = u[m] / 0.5, v[m] / 0.5
        iu, iv = np.floor(tu), np.floor(tv)
        val = 0.88 + 0.12 * ((iu + iv) % 2) + 0.06 * (_hash2(iu, iv, 1) - 0.5)
        grout = ((tu - iu) < 0.04) | ((tv - iv) < 0.04)
        out[m] = np.where(grout, 0.6, val)
    m = tex == Texture.WOOD
    if m.any():
        pv = v[m] / 0.14
        k = np.floor(pv)
        seg = np.floor((u[m] + 3.0 * _hash2(k, k, 2)) / 1.1)
        val = 0.82 + 0.3 * _hash2(k, seg, 3) + 0.05 * np.sin(u[m] * 37.0 + 6.0 * _hash2(k, seg, 4))
        out[m] = np.where((pv - k) < 0.06, 0.68, val)
    m = tex == Texture.FABRIC
    if m.any():
        iu, iv = np.floor(u[m] / 0.05), np.floor(v[m] / 0.05)
        out[m] = 0.88 + 0.2 * _hash2(iu, iv, 5)
    m = tex == Texture.WALL
    if m.any():
        iu, iv = np.floor(u[m] / 0.4), np.floor(v[m] / 0.4)
        base = 0.93 + 0.07 * _hash2(iu, iv, 6)
        out[m] = np.where(v[m] < 0.1, 0.75, base)  # darker skirting board along the floor
    m = tex == Texture.SCREEN
    if m.any():
        out[m] = 0.7 + 0.9 * np.clip(np.abs(np.sin(0.8 * u[m] + 1.7 * v[m])), 0.0, 1.0)
    m = tex == Texture.GLASS
    if m.any():
        out[m] = 0.95 + 0.15 * np.sin(v[m] * 3.0)
    return out


class SceneRenderer:
    """Embree ray caster of one scene; build once, render many frames.

    Args:
        mesh: the scene geometry and per-triangle attributes.
        light: world position of the point light used for diffuse shading (default: centre of the
            ceiling, 5 cm below it, computed from the mesh bounds).
        shadows: cast one shadow ray per hit pixel towards ``light`` (about 1.6x the cost of a frame).
    """

    def __init__(self, mesh: SceneMesh, light: np.ndarray | None = None, shadows: bool = True) -> None:
        self.mesh = mesh
        self._scene = rtcore_scene.EmbreeScene()
        self._mesh_handle = TriangleMesh(self._scene, np.ascontiguousarray(mesh.triangles, dtype=np.float32))
        lo, hi = mesh.triangles.reshape(-1, 3).min(0), mesh.triangles.reshape(-1, 3).max(0)
        self.light = (
            np.asarray(light, dtype=np.float64)
            if light is not None
            else np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2] - 0.05])
        )
        self.shadows = shadows
        self._ray_cache: dict[tuple, np.ndarray] = {}
        # per-triangle attributes, as float32 for fast gathers
        self._colors = mesh.colors.astype(np.float32)
        self._normals = mesh.normals.astype(np.float32)
        self._tex_origin = mesh.tex_origin.astype(np.float32)
        self._tex_u = mesh.tex_u.astype(np.float32)
        self._tex_v = mesh.tex_v.astype(np.float32)
        self._light32 = self.light.astype(np.float32)

    def _camera_rays(self, intrinsic: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame ray directions ``[H*W, 3]`` (z = 1) and their inverse lengths, cached per camera."""
        key = (width, height, *np.round(np.asarray(intrinsic)[:2, :3].ravel(), 9))
        cached = self._ray_cache.get(key)
        if cached is None:
            fx, fy, cx, cy = intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
            v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
            rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1).reshape(-1, 3)
            cached = (rays, (1.0 / np.linalg.norm(rays, axis=1)).astype(np.float32))
            self._ray_cache[key] = cached
        return cached

    def render(self, pose: np.ndarray, intrinsic: np.ndarray, width: int, height: int) -> RenderedFrame:
        """Render the view of camera-to-world ``pose`` (OpenCV axes) with 3x3 (or 4x4) ``intrinsic``."""
        pose = validate_pose(pose, "render pose")
        intrinsic = np.asarray(intrinsic, dtype=np.float64)
        rays_cam, inv_len = self._camera_rays(intrinsic, width, height)
        dirs = (rays_cam @ pose[:3, :3].T).astype(np.float32)
        n = dirs.shape[0]
        origins = np.empty((n, 3), dtype=np.float32)
        origins[:] = pose[:3, 3]
        depth = np.zeros(n, dtype=np.float32)
        instance = np.zeros(n, dtype=np.uint16)
        rgb = np.zeros((n, 3), dtype=np.uint8)
        # blocks of rays keep every temporary cache-resident: 640x480 frames shade as fast per pixel as small ones
        for lo in range(0, n, _BLOCK):
            hi = min(n, lo + _BLOCK)
            self._render_block(origins[lo:hi], dirs[lo:hi], inv_len[lo:hi], depth[lo:hi], instance[lo:hi], rgb[lo:hi])
        return RenderedFrame(
            rgb=rgb.reshape(height, width, 3),
            depth=depth.reshape(height, width),
            instance=instance.reshape(height, width),
        )

    def first_hit_instance(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Instance id ``[N] uint16`` of the first surface each ray ``origins[i] + t dirs[i]`` (t > 0) hits, 0 for the
        room shell or nothing: the instance image without shading (what a camera policy needs to plan views)."""
        origins = np.ascontiguousarray(origins, dtype=np.float32)
        dirs = np.ascontiguousarray(dirs, dtype=np.float32)
        out = np.zeros(len(dirs), dtype=np.uint16)
        for lo in range(0, len(dirs), _BLOCK):
            hi = min(len(dirs), lo + _BLOCK)
            prim = self._scene.run(origins[lo:hi], dirs[lo:hi], output=1)["primID"]
            hit = prim >= 0
            out[lo:hi][hit] = self.mesh.instance[prim[hit]]
        return out

    def _render_block(
        self,
        origins: np.ndarray,
        dirs: np.ndarray,
        inv_len: np.ndarray,
        depth: np.ndarray,
        instance: np.ndarray,
        rgb: np.ndarray,
    ) -> None:
        """Cast and shade one block of primary rays, writing into the output views."""
        res = self._scene.run(origins, dirs, output=1)
        prim = res["primID"]
        tfar = res["tfar"]
        hit = prim >= 0
        if not hit.any():
            return
        if hit.all():
            tri, t, d, il, o = prim, tfar, dirs, inv_len, origins
            depth[:] = tfar
            instance[:] = self.mesh.instance[tri]
            rgb[:] = self._shade(tri, o + d * t[:, None], d * il[:, None], t / il)
            return
        idx = np.flatnonzero(hit)
        tri, t, d, il = prim[idx], tfar[idx], dirs[idx], inv_len[idx]
        depth[idx] = t
        instance[idx] = self.mesh.instance[tri]
        rgb[idx] = self._shade(tri, origins[idx] + d * t[:, None], d * il[:, None], t / il)

    def _shade(self, tri: np.ndarray, points: np.ndarray, rdir: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """sRGB colours of hits: triangle ids, world points, unit ray directions, distances (module formula)."""
        normals = self._normals[tri]
        facing = np.einsum("ij,ij->i", normals, rdir)
        normals *= np.where(facing > 0, np.float32(-1.0), np.float32(1.0))[:, None]  # face the camera
        head = np.abs(facing)
        to_light = self._light32 - points
        to_light_unit = to_light / np.sqrt(np.einsum("ij,ij->i", to_light, to_light))[:, None]
        diffuse = np.maximum(np.einsum("ij,ij->i", normals, to_light_unit), np.float32(0.0))
        if self.shadows:
            li = np.flatnonzero(diffuse > 0)
            if len(li):
                start = points[li] + normals[li] * np.float32(2e-3)
                occluded = self._scene.run(
                    start, self._light32 - start, dists=np.full(len(li), 0.999, np.float32), query="OCCLUDED"
                )
                diffuse[li[occluded != -1]] *= np.float32(0.25)
        light = (_K_AMBIENT + _K_DIFFUSE * diffuse + _K_HEAD * head) / (1.0 + _K_FALLOFF * dist * dist)
        rel = points - self._tex_origin[tri]
        tu = np.einsum("ij,ij->i", rel, self._tex_u[tri])
        tv = np.einsum("ij,ij->i", rel, self._tex_v[tri])
        pattern = _pattern(self.mesh.texture[tri], tu, tv)
        linear = self._colors[tri] * (pattern * light * np.float32(_GAIN))[:, None]
        return _SRGB_LUT[np.clip((linear * _LUT_SIZE).astype(np.int32), 0, _LUT_SIZE)]
