"""ScanNet posed RGB-D frames in the loc3r world frame (DESIGN.md §3-4).

Two on-disk layouts of a scene are read (``layout="auto"`` detects which one):

* ``"sensreader"`` — the export of ScanNet's SensReader (``reader.py --export_*``)::

      <scene>/color/<i>.jpg   <scene>/depth/<i>.png   <scene>/pose/<i>.txt
      <scene>/intrinsic/intrinsic_color.txt   intrinsic_depth.txt   extrinsic_color.txt   extrinsic_depth.txt

* ``"posed_images"`` — EmbodiedScan's ``generate_image_scannet.py`` (used by Video-3D-LLM), one folder
  with zero-padded frame numbers (every 10th frame with ``--fast``)::

      <scene>/00000.jpg  00000.png  00000.txt  ...  intrinsic.txt  depth_intrinsic.txt

Conventions and conversions (the only place ScanNet is converted):

* Poses are 4x4 camera-to-world with OpenCV camera axes — ScanNet's own convention, kept as is.
* Depth PNGs are uint16 millimetres (``depth_scale = 1000``); 0 means "no measurement" and becomes an
  invalid (NaN) point, never a target.
* World frame: the scene's **axis-aligned** frame ``p_world = A @ p_raw`` when the scene's
  ``axisAlignment`` matrix ``A`` is known (from ``<scene>.txt`` next to the frames or in the ScanNet
  ``scans/`` folder, or from a scene-meta JSON, see :class:`SceneMetaTable`); ScanNet's ``A`` is a
  rotation about z plus a translation that puts the floor near z = 0, so z stays up. Without ``A``
  (ScanNet's test scenes) the raw mesh frame is used, which is also z-up; the clip says which
  (``ScanNetClip.axis_aligned``). The BEV anchor frame is built per clip from the first pose, so a
  rotation about z / translation of the whole world leaves all anchor-frame targets unchanged.
* Frames whose pose contains ``-inf``/NaN (real ScanNet has them) are skipped and counted
  (``skipped[invalid_pose]``); a malformed pose file (not 4 rows of 4 numbers), a non-rigid pose, a
  missing or truncated image is bad input and reported with file and field (raises when ``strict``).
* ``T`` frames are sampled uniformly over the **valid** frames (:func:`~loc3r.data.video.uniform_indices`).
* Per-pixel world points (``ClipSample.points``) are computed from depth with the **depth** intrinsics,
  on a ``points_size`` grid laid over the **colour** image, so that a cell of the points grid covers the
  same part of the picture as the matching colour pixels (this is what
  :func:`loc3r.core.geometry.pool_token_points` assumes). ScanNet registers colour to depth by assuming one
  optical centre for both cameras; we make the same assumption: a colour pixel's viewing ray
  ``((u_c - c_x^c)/f_x^c, (v_c - c_y^c)/f_y^c, 1)`` is looked up in the depth image at
  ``u_d = f_x^d x + c_x^d`` (nearest depth pixel, never interpolated across depth edges), and the point
  is that depth pixel unprojected with the depth intrinsics, ``p = z K_d^{-1} (u_d, v_d, 1)``, then moved
  to the world with the frame's pose.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from loc3r.core.geometry import GeometryError, validate_pose
from loc3r.core.io import read_json, read_text, write_json
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, read_depth_png, read_rgb_with_size, uniform_indices

Layout = Literal["auto", "sensreader", "posed_images"]
SCENE_META_FORMAT = "loc3r.scene_meta.v1"
_log = logging.getLogger("loc3r.data")
_DIGITS = re.compile(r"^\d+$")
_EXTRINSIC_TOL = 1e-4
_SCENE_META_FIELDS = ("axis_alignment", "mesh_bbox_center", "sceneverse_offset")


# --- Small file readers ---


def read_matrix_txt(path: str | Path, rows: int = 4, cols: int = 4, record: str | None = None) -> np.ndarray:
    """Read a whitespace-separated ``rows x cols`` matrix text file (ScanNet pose / intrinsic format).

    Non-finite entries (``-inf``, ``nan``) are returned as they are: the caller decides whether they
    mean "invalid frame". A wrong number of rows or columns, or a non-number, raises
    :class:`SampleError` naming the file.
    """
    path = Path(path)
    where = f"{path}" + (f" (record {record})" if record else "")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise SampleError(f"{where}: file is missing") from err
    except (OSError, UnicodeDecodeError) as err:
        raise SampleError(f"{where}: cannot read ({err})") from err
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) != rows or any(len(line) != cols for line in lines):
        shape = f"{len(lines)} rows of " + ("/".join(sorted({str(len(x)) for x in lines})) or "0")
        raise SampleError(f"{where}: expected {rows} rows of {cols} numbers, got {shape} numbers")
    try:
        return np.array([[float(v) for v in line] for line in lines], dtype=np.float64)
    except ValueError as err:
        raise SampleError(f"{where}: not a matrix of numbers ({err})") from err


def read_intrinsic(path: str | Path) -> np.ndarray:
    """Read a pinhole intrinsic matrix (4x4 as ScanNet writes it, or 3x3) and return the 3x3 ``K``."""
    path = Path(path)
    text = read_text(path, "intrinsic file")
    rows = len([line for line in text.splitlines() if line.strip()])
    mat = read_matrix_txt(path, rows=3 if rows == 3 else 4, cols=3 if rows == 3 else 4)
    k = mat[:3, :3]
    if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise SampleError(f"{path}: invalid intrinsic matrix (focal lengths must be finite and > 0): {k.tolist()}")
    return k


def read_axis_alignment(meta_txt: str | Path) -> np.ndarray | None:
    """The ``axisAlignment = a00 a01 ... a33`` matrix of a ScanNet ``<scene>.txt``, or None if absent.

    A present but malformed entry (not 16 numbers, not a rigid transform) raises :class:`SampleError`.
    """
    path = Path(meta_txt)
    for line in read_text(path, "scene meta file").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "axisAlignment":
            try:
                numbers = [float(v) for v in value.split()]
            except ValueError as err:
                raise SampleError(f"{path}: field 'axisAlignment' is not a list of numbers ({err})") from err
            if len(numbers) != 16:
                raise SampleError(f"{path}: field 'axisAlignment' must have 16 numbers, got {len(numbers)}")
            return _rigid(np.array(numbers, dtype=np.float64).reshape(4, 4), f"{path}: field 'axisAlignment'")
    return None


def _rigid(matrix: np.ndarray, where: str) -> np.ndarray:
    """``matrix`` as a rigid 4x4 transform; a :class:`SampleError` naming ``where`` if it is not one."""
    try:
        return validate_pose(matrix, where)
    except GeometryError as err:
        raise SampleError(str(err)) from err


def mesh_bbox_center(ply_path: str | Path) -> np.ndarray:
    """Centre ``(max + min) / 2`` of the axis-parallel bounding box of a mesh's vertices (raw frame).

    This is the ``bs_center`` SQA3D subtracts from ScanNet's ``<scene>_vh_clean_2.ply`` (see
    :mod:`loc3r.benchmarks.sqa3d.reader`). The mesh is loaded with trimesh and ``process=False`` so that no vertex is
    merged or dropped before the bounds are taken.
    """
    import trimesh

    path = Path(ply_path)
    if not path.is_file():
        raise SampleError(f"{path}: mesh file is missing")
    try:
        mesh = trimesh.load(str(path), process=False, force="mesh")
    except Exception as err:  # trimesh raises many types for bad files
        raise SampleError(f"{path}: cannot read mesh ({err})") from err
    vertices = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[0] == 0 or not np.isfinite(vertices).all():
        raise SampleError(f"{path}: mesh has no (finite) vertices")
    return (vertices.max(axis=0) + vertices.min(axis=0)) / 2.0


# --- Per-scene metadata (axis alignment, raw mesh bbox centre, SceneVerse offset) ---


@dataclass(frozen=True)
class SceneMeta:
    """Per-scene facts the benchmark conversions need.

    * ``axis_alignment``: ScanNet's 4x4 ``axisAlignment`` (raw mesh frame -> our world frame), None if
      the scene has none (then world = raw frame).
    * ``mesh_bbox_center``: centre of the bounding box of the raw ``<scene>_vh_clean_2.ply`` vertices
      (SQA3D's origin), None if unknown.
    * ``sceneverse_offset``: translation ``t`` with ``p_world = p_sceneverse + t`` for MSQA / SceneVerse
      coordinates (see :mod:`loc3r.benchmarks.msqa.reader`), None if unknown.
    """

    scene_id: str
    axis_alignment: np.ndarray | None = None
    mesh_bbox_center: np.ndarray | None = None
    sceneverse_offset: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _SCENE_META_FIELDS}
        return {
            name: [float(v) for v in np.asarray(value).reshape(-1)]
            for name, value in values.items()
            if value is not None
        }


def _vector(value: Any, n: int, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise SampleError(f"{where}: expected {n} numbers, got {value!r}") from err
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise SampleError(f"{where}: expected {n} finite numbers, got {value!r}")
    return arr


class SceneMetaTable:
    """Scene metadata per scene id, from a small JSON file the user prepares once, and/or from files.

    JSON format (``format`` must be ``"loc3r.scene_meta.v1"``; every field of a scene is optional)::

        {"format": "loc3r.scene_meta.v1",
         "scenes": {"scene0015_00": {"axis_alignment": [16 numbers, row-major],
                                     "mesh_bbox_center": [x, y, z],
                                     "sceneverse_offset": [x, y, z]}}}

    :func:`build_scene_meta` writes it from a ScanNet ``scans/`` folder. When ``scans_root`` is given,
    :meth:`get` fills a missing axis alignment from ``<scans_root>/<scene>/<scene>.txt`` and a missing
    bbox centre from ``<scans_root>/<scene>/<scene>_vh_clean_2.ply`` (trimesh), and caches the result.
    """

    def __init__(self, scenes: dict[str, SceneMeta] | None = None, scans_root: str | Path | None = None) -> None:
        self._scenes: dict[str, SceneMeta] = dict(scenes or {})
        self.scans_root = None if scans_root is None else Path(scans_root)
        self._resolved: set[str] = set()

    def __contains__(self, scene_id: object) -> bool:
        return scene_id in self._scenes

    def __len__(self) -> int:
        return len(self._scenes)

    def scene_ids(self) -> list[str]:
        return sorted(self._scenes)

    @classmethod
    def from_json(cls, path: str | Path, scans_root: str | Path | None = None) -> SceneMetaTable:
        path = Path(path)
        data = read_json(path, "scene meta file")
        if not isinstance(data, dict) or data.get("format") != SCENE_META_FORMAT:
            raise SampleError(f"{path}: not a scene meta file (field 'format' must be {SCENE_META_FORMAT!r})")
        scenes_raw = data.get("scenes")
        if not isinstance(scenes_raw, dict):
            raise SampleError(f"{path}: field 'scenes' must be an object of scene id -> meta")
        scenes: dict[str, SceneMeta] = {}
        for scene_id, entry in scenes_raw.items():
            where = f"{path}: scene {scene_id!r}"
            if not isinstance(entry, dict):
                raise SampleError(f"{where}: entry must be an object")
            unknown = set(entry) - set(_SCENE_META_FIELDS)
            if unknown:
                raise SampleError(f"{where}: unknown field(s) {sorted(unknown)}")
            align = None
            if entry.get("axis_alignment") is not None:
                align = _vector(entry["axis_alignment"], 16, f"{where}, field 'axis_alignment'").reshape(4, 4)
                align = _rigid(align, f"{where}, field 'axis_alignment'")
            center = entry.get("mesh_bbox_center")
            offset = entry.get("sceneverse_offset")
            scenes[scene_id] = SceneMeta(
                scene_id=scene_id,
                axis_alignment=align,
                mesh_bbox_center=None if center is None else _vector(center, 3, f"{where}, field 'mesh_bbox_center'"),
                sceneverse_offset=None if offset is None else _vector(offset, 3, f"{where}, field 'sceneverse_offset'"),
            )
        return cls(scenes, scans_root=scans_root)

    def to_json(self, path: str | Path) -> None:
        """Write the table atomically (:func:`loc3r.core.io.write_json`)."""
        payload = {"format": SCENE_META_FORMAT, "scenes": {k: self._scenes[k].to_dict() for k in sorted(self._scenes)}}
        write_json(path, payload, indent=1)

    def set(self, meta: SceneMeta) -> None:
        self._scenes[meta.scene_id] = meta

    def get(self, scene_id: str) -> SceneMeta:
        """The scene's metadata, completed from ``scans_root`` files where fields are missing.

        Never raises for a missing field: fields that cannot be found stay None and the conversion
        that needs them reports a precise error.
        """
        meta = self._scenes.get(scene_id, SceneMeta(scene_id=scene_id))
        if self.scans_root is None or scene_id in self._resolved:
            return meta
        self._resolved.add(scene_id)
        scene_dir = self.scans_root / scene_id
        align, center = meta.axis_alignment, meta.mesh_bbox_center
        if align is None and (scene_dir / f"{scene_id}.txt").is_file():
            align = read_axis_alignment(scene_dir / f"{scene_id}.txt")
        ply = scene_dir / f"{scene_id}_vh_clean_2.ply"
        if center is None and ply.is_file():
            center = mesh_bbox_center(ply)
        meta = SceneMeta(scene_id, align, center, meta.sceneverse_offset)
        self._scenes[scene_id] = meta
        return meta


def build_scene_meta(
    scans_root: str | Path,
    scene_ids: Iterable[str] | None = None,
    report: LoadReport | None = None,
) -> SceneMetaTable:
    """Scene metadata for ScanNet scenes from the official ``scans/<scene>/`` files.

    Reads ``<scene>.txt`` (axis alignment) and ``<scene>_vh_clean_2.ply`` (bbox centre) of every scene
    (or of ``scene_ids``). Missing files are reported (``report``) and leave the field empty.
    """
    scans_root = Path(scans_root)
    report = report if report is not None else LoadReport("scene_meta")
    if scene_ids is None:
        scene_ids = sorted(p.name for p in scans_root.iterdir() if p.is_dir()) if scans_root.is_dir() else []
    table = SceneMetaTable()
    for scene_id in scene_ids:
        scene_dir = scans_root / scene_id
        if not scene_dir.is_dir():
            report.error("missing_scene", "scene folder is missing", file=scene_dir, record=scene_id)
            continue
        align = center = None
        meta_txt = scene_dir / f"{scene_id}.txt"
        try:
            if not meta_txt.is_file():
                report.error("missing_file", "scene meta file is missing", file=meta_txt, record=scene_id)
            elif (align := read_axis_alignment(meta_txt)) is None:
                report.skip("no_axis_alignment", scene_id)
            ply = scene_dir / f"{scene_id}_vh_clean_2.ply"
            if ply.is_file():
                center = mesh_bbox_center(ply)
            else:
                report.error("missing_file", "mesh is missing", file=ply, record=scene_id, field="mesh_bbox_center")
        except SampleError as err:
            report.error("bad_file", str(err), record=scene_id)
        table.set(SceneMeta(scene_id, align, center))
        report.count("scenes")
    return table


# --- Depth -> world points on the colour image grid ---


def points_on_color_grid(
    depth_m: np.ndarray,
    depth_intrinsic: np.ndarray,
    color_intrinsic: np.ndarray,
    color_size: tuple[int, int],
    out_size: tuple[int, int],
    pose: np.ndarray,
    max_depth: float = 10.0,
) -> np.ndarray:
    """World points ``[h, w, 3] float32`` of a depth map on an ``out_size`` grid over the colour image (module
    docstring): cell (i, j)'s centre ``((j + 0.5) W_c / w, (i + 0.5) H_c / h)`` looks up the depth pixel
    ``(floor(v_d), floor(u_d))``, unprojected at its centre. Cells outside the depth image, or whose depth is NaN,
    <= 0 or > ``max_depth``, are NaN."""
    depth_m = np.asarray(depth_m, dtype=np.float64)
    if depth_m.ndim != 2:
        raise GeometryError(f"depth: expected an [H, W] map, got shape {depth_m.shape}")
    if not (np.isfinite(max_depth) and max_depth > 0):  # else every cell is invalid: no layout target at all
        raise GeometryError(f"max_depth must be a positive number of metres, got {max_depth!r}")
    hd, wd = depth_m.shape
    hc, wc = color_size
    h, w = out_size
    kd = np.asarray(depth_intrinsic, dtype=np.float64)
    kc = np.asarray(color_intrinsic, dtype=np.float64)
    u_c = (np.arange(w) + 0.5) * (wc / w)
    v_c = (np.arange(h) + 0.5) * (hc / h)
    u_d = kd[0, 0] * (u_c - kc[0, 2]) / kc[0, 0] + kd[0, 2]
    v_d = kd[1, 1] * (v_c - kc[1, 2]) / kc[1, 1] + kd[1, 2]
    cols = np.floor(u_d).astype(np.int64)
    rows = np.floor(v_d).astype(np.int64)
    col_ok = (cols >= 0) & (cols < wd)
    row_ok = (rows >= 0) & (rows < hd)
    z = depth_m[np.clip(rows, 0, hd - 1)[:, None], np.clip(cols, 0, wd - 1)[None, :]]
    with np.errstate(invalid="ignore"):
        valid = row_ok[:, None] & col_ok[None, :] & np.isfinite(z) & (z > 0) & (z <= max_depth)
    z = np.where(valid, z, 0.0)
    x = ((cols + 0.5 - kd[0, 2]) / kd[0, 0])[None, :] * z
    y = ((rows + 0.5 - kd[1, 2]) / kd[1, 1])[:, None] * z
    cam = np.stack([x, y, z], axis=-1)
    pose = np.asarray(pose, dtype=np.float64)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    world[~valid] = np.nan
    return world.astype(np.float32)


# --- A scene on disk ---


@dataclass
class ScanNetClip:
    """``T`` frames of a scene in the world frame (see the module docstring).

    ``color_intrinsic`` is scaled to the returned frame size; ``depth_intrinsic`` is the file's.
    """

    scene_id: str
    frames: np.ndarray  # [T, H, W, 3] uint8
    poses: np.ndarray  # [T, 4, 4] float64 camera-to-world (world frame)
    points: np.ndarray | None  # [T, h, w, 3] float32 world points, NaN = invalid
    frame_ids: np.ndarray  # [T] int64 frame numbers of the source sequence
    color_intrinsic: np.ndarray  # 3x3 for ``frames``
    depth_intrinsic: np.ndarray  # 3x3 for the depth PNGs
    axis_alignment: np.ndarray  # 4x4 raw -> world (identity when ``axis_aligned`` is False)
    axis_aligned: bool
    layout: str
    num_valid_frames: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _FrameFiles:
    frame_id: int
    color: Path
    depth: Path
    pose: Path


class ScanNetScene:
    """One exported ScanNet scene (SensReader or ``posed_images`` layout) read in the world frame.

    Args:
        scene_dir: the scene folder.
        scene_id: defaults to the folder name.
        layout: ``"auto"`` (detect), ``"sensreader"`` or ``"posed_images"``.
        axis_alignment: ``"auto"`` looks for ``<scene_dir>/<scene_id>.txt``, then the scene-meta table,
            then ``<scans_root>/<scene_id>/<scene_id>.txt``; an explicit 4x4 array is used as is; None
            forces the raw frame.
        scene_meta: optional :class:`SceneMetaTable` (axis alignment from JSON).
        scans_root: optional ScanNet ``scans/`` folder for ``<scene>.txt``.
        depth_scale: raw depth units per metre (ScanNet: 1000, i.e. millimetres).
        report: :class:`LoadReport` to fill (a fresh one otherwise, see :attr:`report`).
    """

    _poses: dict[int, np.ndarray] | None = None  # frame id -> world camera-to-world, read on first use
    _valid_ids: np.ndarray | None = None

    def __init__(
        self,
        scene_dir: str | Path,
        scene_id: str | None = None,
        *,
        layout: Layout = "auto",
        axis_alignment: np.ndarray | str | None = "auto",
        scene_meta: SceneMetaTable | None = None,
        scans_root: str | Path | None = None,
        depth_scale: float = 1000.0,
        report: LoadReport | None = None,
    ) -> None:
        self.scene_dir = Path(scene_dir)
        self.scene_id = scene_id or self.scene_dir.name
        self.report = report if report is not None else LoadReport(f"scannet {self.scene_id}")
        if not self.scene_dir.is_dir():
            raise SampleError(f"{self.scene_dir}: scene folder of {self.scene_id!r} is missing")
        self.layout = self._detect_layout() if layout == "auto" else layout
        if self.layout not in ("sensreader", "posed_images"):
            raise ValueError(f"unknown ScanNet layout {layout!r}")
        self.depth_scale = float(depth_scale)
        if self.layout == "sensreader":
            intr = self.scene_dir / "intrinsic"
            self.color_intrinsic = read_intrinsic(intr / "intrinsic_color.txt")
            self.depth_intrinsic = read_intrinsic(intr / "intrinsic_depth.txt")
            for name in ("extrinsic_color.txt", "extrinsic_depth.txt"):
                if (intr / name).is_file():
                    ext = read_matrix_txt(intr / name)
                    if not np.allclose(ext, np.eye(4), atol=_EXTRINSIC_TOL):
                        raise SampleError(
                            f"{intr / name}: non-identity camera extrinsics are not supported "
                            "(ScanNet's are identity; poses are taken as the depth/colour camera's)"
                        )
        else:
            self.color_intrinsic = read_intrinsic(self.scene_dir / "intrinsic.txt")
            self.depth_intrinsic = read_intrinsic(self.scene_dir / "depth_intrinsic.txt")
        self.axis_alignment, self.axis_aligned, self.axis_alignment_source = self._resolve_alignment(
            axis_alignment, scene_meta, scans_root
        )
        self._set_frames(self._list_frames(), " (*.jpg)")

    # -- discovery --------------------------------------------------------------------------------

    def _detect_layout(self) -> str:
        if (self.scene_dir / "color").is_dir() and (self.scene_dir / "pose").is_dir():
            return "sensreader"
        if (self.scene_dir / "intrinsic.txt").is_file() or (self.scene_dir / "depth_intrinsic.txt").is_file():
            return "posed_images"
        raise SampleError(
            f"{self.scene_dir}: unknown ScanNet export layout (expected color/ depth/ pose/ intrinsic/ folders "
            "of a SensReader export, or NNNNN.jpg/.png/.txt with intrinsic.txt of posed_images)"
        )

    def _resolve_alignment(
        self,
        axis_alignment: np.ndarray | str | None,
        scene_meta: SceneMetaTable | None,
        scans_root: str | Path | None,
    ) -> tuple[np.ndarray, bool, str]:
        if axis_alignment is None:
            return np.eye(4), False, "disabled"
        if not isinstance(axis_alignment, str):
            return _rigid(np.asarray(axis_alignment, dtype=np.float64), "axis_alignment argument"), True, "argument"
        if axis_alignment != "auto":
            raise ValueError(f"axis_alignment must be 'auto', None or a 4x4 matrix, got {axis_alignment!r}")
        local = self.scene_dir / f"{self.scene_id}.txt"
        if local.is_file() and (matrix := read_axis_alignment(local)) is not None:
            return matrix, True, str(local)
        if scene_meta is not None and (meta := scene_meta.get(self.scene_id)).axis_alignment is not None:
            return np.asarray(meta.axis_alignment, dtype=np.float64), True, "scene_meta"
        remote = None if scans_root is None else Path(scans_root) / self.scene_id / f"{self.scene_id}.txt"
        if remote is not None and remote.is_file() and (matrix := read_axis_alignment(remote)) is not None:
            return matrix, True, str(remote)
        self.report.skip("no_axis_alignment", self.scene_id)
        return np.eye(4), False, "none"

    def _list_frames(self) -> list[_FrameFiles]:
        color_dir, depth_dir, pose_dir = (self.scene_dir,) * 3
        if self.layout == "sensreader":
            color_dir, depth_dir, pose_dir = (self.scene_dir / sub for sub in ("color", "depth", "pose"))
        files: list[_FrameFiles] = []
        for entry in os.scandir(color_dir):
            stem = entry.name[:-4]
            if entry.name.endswith(".jpg") and _DIGITS.match(stem):
                files.append(_FrameFiles(int(stem), color_dir / entry.name, depth_dir / f"{stem}.png",
                                         pose_dir / f"{stem}.txt"))  # fmt: skip
        if files and pose_dir.is_dir():
            # a frame with a pose file but no colour JPEG is listed too, so that loading it names the missing file
            # (field 'color') instead of the frame silently not existing
            have = {f.frame_id for f in files}
            for entry in os.scandir(pose_dir):
                stem = entry.name[:-4]
                if entry.name.endswith(".txt") and _DIGITS.match(stem) and int(stem) not in have:
                    files.append(_FrameFiles(int(stem), color_dir / f"{stem}.jpg", depth_dir / f"{stem}.png",
                                             pose_dir / entry.name))  # fmt: skip
        return files

    def _set_frames(self, files: list[_FrameFiles], hint: str = "") -> None:
        files.sort(key=lambda f: f.frame_id)
        if not files:
            raise SampleError(f"{self.scene_dir}: scene {self.scene_id!r} has no colour frames{hint}")
        self._files = files
        self._by_id = {f.frame_id: f for f in files}

    # -- poses ------------------------------------------------------------------------------------

    @property
    def frame_ids(self) -> np.ndarray:
        """All frame numbers that have a colour image, sorted."""
        return np.array([f.frame_id for f in self._files], dtype=np.int64)

    def _raw_pose(self, files: _FrameFiles) -> tuple[np.ndarray, str, Path, str] | None:
        """One frame's pose as stored, where it was read (for messages), its file and record; None after reporting
        when it cannot be read. The raw-capture readers override it."""
        record = f"{self.scene_id} frame {files.frame_id}"
        try:
            return read_matrix_txt(files.pose, record=record), str(files.pose), files.pose, record
        except SampleError as err:
            kind = "missing_file" if not files.pose.exists() else "bad_pose_file"
            self.report.error(kind, str(err), file=files.pose, record=record, field="pose")
            return None

    def _read_poses(self) -> None:
        """The one pose check of every reader: a pose with ``-inf``/NaN entries is skipped and counted
        (``skipped[invalid_pose]``, example ``where``), a non-rigid one is an error (file, record, field ``pose``);
        a good one is kept in the world frame (axis alignment applied)."""
        poses: dict[int, np.ndarray] = {}
        self.report.count("frames_total", len(self._files))
        for files in self._files:
            found = self._raw_pose(files)
            if found is None:
                continue
            raw, where, file, record = found
            if not np.isfinite(raw).all():
                self.report.skip("invalid_pose", where)
                continue
            try:
                validate_pose(raw, where)
            except GeometryError as err:
                self.report.error("bad_pose", str(err), file=file, record=record, field="pose")
                continue
            poses[files.frame_id] = self.axis_alignment @ np.asarray(raw, dtype=np.float64)
        self._poses = poses
        self._valid_ids = np.array(sorted(poses), dtype=np.int64)
        self.report.count("frames_valid", len(poses))

    def capture(self) -> dict[str, Any] | None:
        """``capture.json`` of a still-image or camera-rig scan (written by SynthRooms' ``test_image`` /
        ``test_rig`` splits), else None (a video). Rig: ``{"kind": "rig", "steps": S, "cameras": [{"name",
        "extrinsic" (4x4 camera-to-rig)}]}`` with frames interleaved per time step (frame ``t * N + c``)."""
        path = self.scene_dir / "capture.json"
        if not path.is_file():
            return None
        data = read_json(path, "capture file")
        if not isinstance(data, dict) or data.get("kind") not in ("image", "rig"):
            raise SampleError(f"{path}: field 'kind' must be 'image' or 'rig'")
        if data["kind"] == "rig" and (not isinstance(data.get("cameras"), list) or not data["cameras"]):
            raise SampleError(f"{path}: field 'cameras' must be a non-empty list")
        return data

    def _capture_frames(self, capture: dict[str, Any], num_frames: int, valid: np.ndarray) -> np.ndarray:
        """Frames of an image scan (all of them, never repeated) or of a rig scan (whole time steps, uniformly
        sampled: ``max(1, num_frames // N)`` steps x N cameras, interleaved)."""
        ids = np.asarray(sorted(self._by_id), dtype=np.int64)
        if not set(ids.tolist()) <= set(valid.tolist()):
            missing = sorted(set(ids.tolist()) - set(valid.tolist()))
            raise SampleError(f"{self.scene_dir}: {capture['kind']} scan frame {missing[0]} has no valid pose")
        if capture["kind"] == "image":
            return ids[uniform_indices(len(ids), min(num_frames, len(ids)))]
        n = len(capture["cameras"])
        if len(ids) % n:
            raise SampleError(
                f"{self.scene_dir}: capture.json: the rig's {n} cameras disagree on the frame count "
                f"({len(ids)} frames is not a whole number of time steps of {n} cameras)"
            )
        steps = len(ids) // n
        picked = uniform_indices(steps, min(steps, max(1, num_frames // n)))
        return np.asarray([ids[t * n + c] for t in picked.tolist() for c in range(n)], dtype=np.int64)

    def valid_frame_ids(self) -> np.ndarray:
        """Frame numbers with a readable, finite, rigid pose (reads all pose files once)."""
        if self._valid_ids is None:
            self._read_poses()
        assert self._valid_ids is not None
        return self._valid_ids

    def pose(self, frame_id: int) -> np.ndarray:
        """World camera-to-world pose of a valid frame."""
        if self._poses is None:
            self._read_poses()
        assert self._poses is not None
        if frame_id not in self._poses:
            raise SampleError(f"{self.scene_dir}: frame {frame_id} has no valid pose")
        return self._poses[frame_id]

    def frame_intrinsics(self, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(colour K, depth K)`` of one frame: the scene's for ScanNet; readers of captures with per-frame
        intrinsics (ARKitScenes' ``.pincam``, ScanNet++'s ``pose_intrinsic_imu.json``) override it."""
        return self.color_intrinsic, self.depth_intrinsic

    # -- clips ------------------------------------------------------------------------------------

    def _read_frame(
        self, files: _FrameFiles, record: str, with_depth: bool, image_size: tuple[int, int] | None
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]] | None:
        """Colour (resized) and depth of one frame, and the colour file's own size; None after reporting
        when a file is missing or corrupt."""
        path, field_name = files.color, "color"
        try:
            rgb, native = self._read_color(files, image_size, record)
            path, field_name = files.depth, "depth"
            depth = self._read_depth(files, record) if with_depth else None
        except SampleError as err:
            kind = "missing_file" if not Path(path).exists() else "unreadable_image"
            self.report.error(kind, str(err), file=path, record=record, field=field_name)
            return None
        return rgb, depth, native

    def _read_color(
        self, files: _FrameFiles, image_size: tuple[int, int] | None, record: str
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """One frame's colour (resized) and its native size; raw-capture readers override where it comes from."""
        return read_rgb_with_size(files.color, image_size, record=record)

    def _read_depth(self, files: _FrameFiles, record: str) -> np.ndarray:
        """One frame's raw depth (``depth_scale`` units per metre); raw-capture readers override it too."""
        return read_depth_png(files.depth, record=record)

    def _check_sizes(self, cache: dict[int, tuple[np.ndarray, np.ndarray | None, tuple[int, int]]]) -> set[int]:
        """Frames whose colour or depth size disagrees with the scene's; each is reported (file, record, field).

        The scene's size is the most common one among the loaded frames (ties: the one whose principal point
        lies nearest the image centre) and must contain the principal point of its intrinsics; a frame of
        another size would be unprojected with intrinsics that are not its own (a half-size depth map put
        points 1.6 m off), so it is never used. A scene whose common size cannot hold its intrinsics' principal
        point raises :class:`SampleError` (the intrinsics belong to other images).
        """
        bad: set[int] = set()
        if not cache:  # no frame could be read at all: load_clip re-samples and then names the scene as unusable
            return bad
        checks = [("color", self.color_intrinsic, {f: c[2] for f, c in cache.items()}, "intrinsic_color")]
        depths = {f: tuple(c[1].shape) for f, c in cache.items() if c[1] is not None}
        if depths:
            checks.append(("depth", self.depth_intrinsic, depths, "intrinsic_depth"))
        for field_name, k, sizes, intrinsic_name in checks:
            counts = collections.Counter(sizes.values())

            def off_centre(size: tuple[int, int], k: np.ndarray = k) -> float:
                return abs(k[0, 2] - size[1] / 2) / size[1] + abs(k[1, 2] - size[0] / 2) / size[0]

            reference = min(counts, key=lambda size: (-counts[size], off_centre(size)))
            height, width = reference
            if not (0.0 < k[0, 2] < width and 0.0 < k[1, 2] < height):
                raise SampleError(
                    f"{self.scene_dir}: scene {self.scene_id!r}: {field_name} images are {width}x{height} but the "
                    f"principal point of {intrinsic_name} ({k[0, 2]:g}, {k[1, 2]:g}) lies outside them; the "
                    "intrinsics belong to images of another size"
                )
            for frame_id, size in sizes.items():
                if size == reference:
                    continue
                files = self._by_id[frame_id]
                path = files.color if field_name == "color" else files.depth
                self.report.error(
                    "frame_size",
                    f"{field_name} image is {size[1]}x{size[0]} but the scene's {field_name} images are "
                    f"{width}x{height} (the size {intrinsic_name} is for); frame skipped",
                    file=path,
                    record=f"{self.scene_id} frame {frame_id}",
                    field=field_name,
                )
                bad.add(frame_id)
        return bad

    def _choose_frames(
        self, num_frames: int, with_depth: bool, image_size: tuple[int, int] | None
    ) -> tuple[np.ndarray, int, dict[int, tuple[np.ndarray, np.ndarray | None, tuple[int, int]]]]:
        """The frame ids of the clip, the number of usable frames they were sampled from, and the loaded frames
        ``{id: (colour, depth | None, colour size)}``: sampled uniformly over the valid frames, re-sampled until
        every chosen frame reads and has the scene's sizes (see :meth:`load_clip`)."""
        valid = self.valid_frame_ids()
        bad: set[int] = set()
        cache: dict[int, tuple[np.ndarray, np.ndarray | None, tuple[int, int]]] = {}
        while True:
            candidates = np.array([f for f in valid.tolist() if f not in bad], dtype=np.int64)
            if candidates.size == 0:
                raise SampleError(
                    f"{self.scene_dir}: scene {self.scene_id!r} has no usable frame "
                    f"({len(self._files)} frames, {len(valid)} with valid poses, {len(bad)} unreadable or of "
                    "another size)"
                )
            capture = self.capture()
            if capture is not None:  # a still image / camera rig: its own frame choice, no re-sampling
                chosen = self._capture_frames(capture, num_frames, valid)
                if bad:
                    raise SampleError(f"{self.scene_dir}: frame {sorted(bad)[0]} of a {capture['kind']} scan is "
                                      "unreadable (image and rig scans are not re-sampled)")  # fmt: skip
            else:
                chosen = candidates[uniform_indices(candidates.size, num_frames)]
            new_bad = False
            for frame_id in dict.fromkeys(chosen.tolist()):
                if frame_id in cache:
                    continue
                files = self._by_id[frame_id]
                record = f"{self.scene_id} frame {frame_id}"
                loaded = self._read_frame(files, record, with_depth, image_size)
                if loaded is None:
                    bad.add(frame_id)
                    new_bad = True
                    continue
                cache[frame_id] = loaded
            wrong_size = self._check_sizes(cache)
            if wrong_size:
                bad |= wrong_size
                for frame_id in wrong_size:
                    del cache[frame_id]
                new_bad = True
            if not new_bad:
                break
        return chosen, int(candidates.size), cache

    def load_clip(
        self,
        num_frames: int,
        image_size: tuple[int, int] | None = None,
        points_size: tuple[int, int] | None = (96, 128),
        max_depth: float = 10.0,
    ) -> ScanNetClip:
        """Sample ``num_frames`` frames uniformly over the valid frames and load them.

        Args:
            num_frames: T. With fewer valid frames, frames repeat (counted as ``clips_with_repeats``).
            image_size: ``(height, width)`` of the returned colour frames; None keeps the file size.
            points_size: ``(h, w)`` grid of world points over each colour frame; None skips depth.
            max_depth: depths beyond this (metres) are invalid.

        The one frame-validation path of every reader: a bad frame (pose, file, size: :meth:`_check_sizes`) is
        reported with file, record and field and the clip re-sampled over the remaining valid frames; the clip
        lists the problems in ``clip.meta["frame_problems"]`` (copied into each sample's ``meta``); a ``strict``
        report raises at the first.
        """
        first_error = len(self.report.errors)
        chosen, num_valid, cache = self._choose_frames(num_frames, points_size is not None, image_size)
        if num_valid < num_frames:  # said, not silent: the model sees the same frames several times
            self.report.count("clips_with_repeats")
            _log.warning("%s: scene %r has %d usable frames but %d were asked for: frames repeat in its clip",
                         self.scene_dir, self.scene_id, num_valid, num_frames)  # fmt: skip
        color_size = cache[int(chosen[0])][2]
        color_intrinsic = self.frame_intrinsics(int(chosen[0]))[0]
        frames = np.stack([cache[f][0] for f in chosen.tolist()])
        poses = np.stack([self._poses[f] for f in chosen.tolist()])  # type: ignore[index]
        points = None
        if points_size is not None:
            points = np.stack(
                [
                    points_on_color_grid(
                        cache[f][1].astype(np.float64) / self.depth_scale,  # type: ignore[union-attr]
                        self.frame_intrinsics(f)[1],
                        self.frame_intrinsics(f)[0],
                        cache[f][2],
                        points_size,
                        self._poses[f],  # type: ignore[index]
                        max_depth=max_depth,
                    )
                    for f in chosen.tolist()
                ]
            )
        out_h, out_w = frames.shape[1:3]
        scale = np.diag([out_w / color_size[1], out_h / color_size[0], 1.0])
        self.report.count("clips")
        problems = [e.to_dict() for e in self.report.errors[first_error:]]
        return ScanNetClip(
            scene_id=self.scene_id,
            frames=frames,
            poses=poses,
            points=points,
            frame_ids=chosen,
            color_intrinsic=scale @ color_intrinsic,
            depth_intrinsic=self.frame_intrinsics(int(chosen[0]))[1].copy(),
            axis_alignment=self.axis_alignment.copy(),
            axis_aligned=self.axis_aligned,
            layout=self.layout,
            num_valid_frames=num_valid,
            meta={
                "axis_alignment_source": self.axis_alignment_source,
                "source_color_size": list(color_size),
                "frame_problems": problems,
            },
        )


class ScanNetFrameSource:
    """Clips of many ScanNet scenes under one root (``<root>/<scene_id>/``), with a small LRU cache.

    All questions of a scene share one clip (the same ``T`` frames, as in the paper: a fixed uniform
    sample of the scene video), so the cache makes per-question access cheap. ``use_axis_alignment=False``
    keeps every scene in its raw frame (for checks; benchmark conversions follow the clip either way).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        num_frames: int = 32,
        image_size: tuple[int, int] | None = None,
        points_size: tuple[int, int] | None = (96, 128),
        layout: Layout = "auto",
        scene_meta: SceneMetaTable | None = None,
        scans_root: str | Path | None = None,
        max_depth: float = 10.0,
        depth_scale: float = 1000.0,
        strict: bool = False,
        report: LoadReport | None = None,
        cache_size: int = 4,
        use_axis_alignment: bool = True,
    ) -> None:
        self.root = Path(root)
        self.use_axis_alignment = bool(use_axis_alignment)
        self.num_frames = int(num_frames)
        self.image_size = image_size
        self.points_size = points_size
        self.layout: Layout = layout
        self.scene_meta = scene_meta
        self.scans_root = scans_root
        self.max_depth = float(max_depth)
        self.depth_scale = float(depth_scale)
        self.report = report if report is not None else LoadReport("scannet frames", strict=strict)
        self.cache_size = int(cache_size)
        self._cache: collections.OrderedDict[str, ScanNetClip] = collections.OrderedDict()
        self._failed: dict[str, str] = {}

    def scene(self, scene_id: str) -> ScanNetScene:
        """Open a scene (raises :class:`SampleError` naming the folder when it is missing)."""
        return ScanNetScene(
            self.root / scene_id,
            scene_id,
            layout=self.layout,
            axis_alignment="auto" if self.use_axis_alignment else None,
            scene_meta=self.scene_meta,
            scans_root=self.scans_root,
            depth_scale=self.depth_scale,
            report=self.report,
        )

    def instance_masks(self, scene_id: str, clip: ScanNetClip) -> np.ndarray | None:
        """``[T, H, W] int64`` instance ids of the clip's frames from ``<scene>/instance/<frame>.png`` (SynthRooms
        writes them; 0 = no object), resized to the clip's frame size by nearest neighbour; None when the scene has
        no ``instance/`` folder. Cached with the clip."""
        cached = clip.meta.get("_instance_masks")
        if cached is not None or clip.meta.get("_instance_masks_missing"):
            return cached
        folder = self.root / scene_id / "instance"
        if not folder.is_dir():
            clip.meta["_instance_masks_missing"] = True
            return None
        height, width = clip.frames.shape[1:3]
        masks = []
        for fid in clip.frame_ids.tolist():
            path = folder / f"{int(fid)}.png"
            try:
                with Image.open(path) as im:
                    if im.size != (width, height):
                        im = im.resize((width, height), Image.NEAREST)
                    masks.append(np.asarray(im).astype(np.int64))
            except (OSError, ValueError) as err:
                raise SampleError(f"{path}: unreadable instance mask ({err})") from err
        out = np.stack(masks)
        clip.meta["_instance_masks"] = out
        return out

    def instance_names(self, scene_id: str) -> dict[int, str]:
        """Instance id -> ``"<colour name> <category>"`` from the scene's ``meta_info.json`` (SynthRooms writes
        ``instance_id`` and ``color_name`` into each VSI-Bench ``object_bbox`` entry)."""
        cache = self.__dict__.setdefault("_instance_names", {})
        if scene_id in cache:
            return cache[scene_id]
        path = self.root / scene_id / "meta_info.json"
        data = read_json(path, "scene layout")
        scene = data.get(scene_id) if isinstance(data, dict) else None
        if not isinstance(scene, dict) or not isinstance(scene.get("object_bbox"), dict):
            raise SampleError(f"{path}: field '{scene_id}.object_bbox' is missing")
        names: dict[int, str] = {}
        for category, boxes in scene["object_bbox"].items():
            for k, box in enumerate(boxes if isinstance(boxes, list) else []):
                iid = box.get("instance_id") if isinstance(box, dict) else None
                if not isinstance(iid, int):
                    raise SampleError(f"{path}: field '{scene_id}.object_bbox.{category}[{k}].instance_id' is missing")
                names[iid] = f"{box.get('color_name') or ''} {category}".strip()
        cache[scene_id] = names
        return names

    def clip(self, scene_id: str) -> ScanNetClip:
        """The scene's clip (cached). A scene that failed once fails again with the same message."""
        if scene_id in self._cache:
            self._cache.move_to_end(scene_id)
            return self._cache[scene_id]
        if scene_id in self._failed:
            raise SampleError(self._failed[scene_id])
        try:
            clip = self.scene(scene_id).load_clip(
                self.num_frames, self.image_size, self.points_size, max_depth=self.max_depth
            )
        except SampleError as err:
            self._failed[scene_id] = str(err)
            if self.report.strict and self.report.errors and str(err).endswith(self.report.errors[-1].message):
                raise  # already reported (and raised) with file / record / field
            missing = not (self.root / scene_id).is_dir()
            self.report.error(  # raises when strict
                "missing_scene" if missing else "bad_scene", str(err), file=self.root / scene_id, record=scene_id
            )
            raise
        self._cache[scene_id] = clip
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return clip


# --- Writer (SynthRooms export, tests, benchmarks) ---


def _write_matrix(path: Path, matrix: np.ndarray) -> None:
    rows = [" ".join(_fmt(v) for v in row) for row in np.asarray(matrix, dtype=np.float64)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.9g}"


_SENSREADER_FILES = (("color", "jpg"), ("depth", "png"), ("pose", "txt"))


def _as_4x4(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = k[:3, :3]
    return out


def export_scannet_scene(
    out_dir: str | Path,
    colors: Sequence[np.ndarray] | np.ndarray,
    depths_m: Sequence[np.ndarray] | np.ndarray,
    poses: Sequence[np.ndarray] | np.ndarray,
    color_intrinsic: np.ndarray,
    depth_intrinsic: np.ndarray,
    *,
    layout: Literal["sensreader", "posed_images"] = "sensreader",
    scene_id: str | None = None,
    axis_alignment: np.ndarray | None = None,
    frame_ids: Sequence[int] | None = None,
    depth_scale: float = 1000.0,
    jpeg_quality: int = 95,
) -> Path:
    """Write frames in one of the two ScanNet layouts read by :class:`ScanNetScene`.

    ``poses`` are written as given (4x4 camera-to-world in the raw frame; rows of ``-inf`` are allowed,
    as real ScanNet has them). Depths in metres are stored as uint16 ``round(d * depth_scale)`` with
    invalid (NaN, <= 0) pixels as 0. ``axis_alignment`` (raw -> aligned) goes to ``<scene_id>.txt`` in
    ScanNet's ``axisAlignment = ...`` syntax. Returns the scene folder.
    """
    out = Path(out_dir)
    scene_id = scene_id or out.name
    out.mkdir(parents=True, exist_ok=True)
    n = len(colors)
    if len(depths_m) != n or len(poses) != n:
        raise ValueError(f"export_scannet_scene: {n} colours, {len(depths_m)} depths, {len(poses)} poses")
    ids = list(range(n)) if frame_ids is None else [int(i) for i in frame_ids]
    if layout == "sensreader":
        for sub in ("color", "depth", "pose", "intrinsic"):
            (out / sub).mkdir(exist_ok=True)
        _write_matrix(out / "intrinsic" / "intrinsic_color.txt", _as_4x4(color_intrinsic))
        _write_matrix(out / "intrinsic" / "intrinsic_depth.txt", _as_4x4(depth_intrinsic))
        _write_matrix(out / "intrinsic" / "extrinsic_color.txt", np.eye(4))
        _write_matrix(out / "intrinsic" / "extrinsic_depth.txt", np.eye(4))
    elif layout == "posed_images":
        _write_matrix(out / "intrinsic.txt", _as_4x4(color_intrinsic))
        _write_matrix(out / "depth_intrinsic.txt", _as_4x4(depth_intrinsic))
    else:
        raise ValueError(f"unknown layout {layout!r}")
    for frame_id, color, depth, pose in zip(ids, colors, depths_m, poses, strict=True):
        if layout == "sensreader":
            color_path, depth_path, pose_path = (out / sub / f"{frame_id}.{ext}" for sub, ext in _SENSREADER_FILES)
        else:
            color_path, depth_path, pose_path = (out / f"{frame_id:05d}.{ext}" for ext in ("jpg", "png", "txt"))
        Image.fromarray(np.asarray(color, dtype=np.uint8)).save(color_path, quality=jpeg_quality)
        d = np.asarray(depth, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            raw = np.where(np.isfinite(d) & (d > 0), np.rint(d * depth_scale), 0.0)
        Image.fromarray(np.clip(raw, 0, 65535).astype(np.uint16)).save(depth_path)
        _write_matrix(pose_path, pose)
    if axis_alignment is not None:
        values = " ".join(_fmt(v) for v in np.asarray(axis_alignment, dtype=np.float64).reshape(-1))
        (out / f"{scene_id}.txt").write_text(f"axisAlignment = {values}\n", encoding="utf-8")
    return out
