"""ScanNet ``.sens`` files read directly, frame by frame (no SensReader export step).

The format (ScanNet's ``SensReader``, ``sensorData.h``; little-endian)::

    uint32   version (= 4)
    uint64   n, then n bytes: sensor name
    float32  intrinsic_color[16], extrinsic_color[16], intrinsic_depth[16], extrinsic_depth[16]   (4x4, row-major)
    int32    color compression (-1 unknown, 0 raw, 1 png, 2 jpeg), depth compression (-1, 0 raw_ushort,
             1 zlib_ushort, 2 occi_ushort)
    uint32   color width, color height, depth width, depth height
    float32  depth shift (raw depth units per metre, 1000 = millimetres)
    uint64   number of frames, then per frame:
        float32 camera_to_world[16]   uint64 timestamp_color, timestamp_depth, color_size, depth_size
        color_size bytes (a JPEG in ScanNet)   depth_size bytes (zlib-deflated uint16 [depth_h, depth_w])
    (IMU frames follow; not read)

Streaming: opening a file reads the header and walks the frame headers once, seeking over the image bytes (96
bytes read per frame), so a 2 GB scan costs a few milliseconds and no memory; a clip decodes only its ``T`` frames.

Conventions: the poses are ScanNet's camera-to-world with OpenCV axes in the raw mesh frame, kept as they are, and
the scene's ``axisAlignment`` (``<scene>.txt`` next to the ``.sens`` in ScanNet's ``scans/<scene>/``, or the scene
meta table) is applied exactly as for the SensReader export (:class:`~loc3r.data.scannet.ScanNetScene`), so a
``.sens`` scan and its export give the same world points. Frames whose pose has ``-inf``/NaN entries are skipped and
counted (``skipped[invalid_pose]``, example ``<file> frame <i>``). A **truncated** file (it ends inside a frame the
header announces) is an error naming the file, the first incomplete frame and the part that is cut
(``frame header``, ``color`` or ``depth``); the complete frames before it are used.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loc3r.data.capture_base import CaptureScene, FrameFiles, decode_rgb_bytes
from loc3r.data.scannet import _EXTRINSIC_TOL, SceneMetaTable
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
_FRAME_HEADER = struct.Struct("<16f4Q")


@dataclass(frozen=True)
class SensHeader:
    """The fixed part of a ``.sens`` file (module docstring)."""

    version: int
    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str
    depth_compression: str
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int


class SensFile:
    """Random access to the frames of a ``.sens`` file after one pass over the frame headers.

    Attributes: ``header``, ``poses [N, 4, 4] float64`` (as stored: ScanNet camera-to-world, raw frame, ``-inf``
    rows kept), ``num_complete`` (frames whose bytes are all present), ``truncation`` (None, or ``(frame, part,
    message)`` of the first incomplete frame).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            size = os.path.getsize(self.path)
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as err:
            raise SampleError(f"{self.path}: .sens file is missing") from err
        except OSError as err:
            raise SampleError(f"{self.path}: cannot read .sens file ({err})") from err
        with fh:
            self.header = self._read_header(fh)
            n = self.header.num_frames
            poses, color, depth = [], [], []
            self.truncation: tuple[int, str, str] | None = None
            for i in range(n):
                raw = fh.read(_FRAME_HEADER.size)
                if len(raw) < _FRAME_HEADER.size:
                    self._truncated(i, "frame header", n, size)
                    break
                values = _FRAME_HEADER.unpack(raw)
                c_size, d_size = int(values[18]), int(values[19])
                c_off = fh.tell()
                if c_off + c_size > size:
                    self._truncated(i, "color", n, size)
                    break
                if c_off + c_size + d_size > size:
                    self._truncated(i, "depth", n, size)
                    break
                poses.append(np.asarray(values[:16], dtype=np.float64).reshape(4, 4))
                color.append((c_off, c_size))
                depth.append((c_off + c_size, d_size))
                fh.seek(c_size + d_size, os.SEEK_CUR)
        self.poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
        self._color = color
        self._depth = depth
        self.num_complete = len(poses)

    def _truncated(self, frame: int, part: str, n: int, size: int) -> None:
        message = (
            f"{self.path}: truncated .sens file: the header announces {n} frames but the file ({size} bytes) ends "
            f"inside frame {frame} (field {part!r}); the {frame} complete frames before it are used"
        )
        self.truncation = (frame, part, message)

    def _read_header(self, fh) -> SensHeader:  # noqa: ANN001 - a binary file object
        def take(fmt: str, what: str) -> tuple:
            n = struct.calcsize(fmt)
            data = fh.read(n)
            if len(data) < n:
                raise SampleError(f"{self.path}: truncated .sens header (file ends in field {what!r})")
            return struct.unpack(fmt, data)

        (version,) = take("<I", "version")
        if version != SENS_VERSION:
            raise SampleError(f"{self.path}: field 'version' is {version}, expected {SENS_VERSION} (not a .sens file?)")
        (name_len,) = take("<Q", "sensor_name")
        if name_len > 4096:
            raise SampleError(f"{self.path}: field 'sensor_name' claims {name_len} bytes (corrupt header)")
        name = fh.read(name_len)
        mats = [np.asarray(take("<16f", f), dtype=np.float64).reshape(4, 4) for f in
                ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth")]  # fmt: skip
        c_type, d_type = take("<2i", "compression")
        if c_type not in COLOR_COMPRESSION or d_type not in DEPTH_COMPRESSION:
            raise SampleError(f"{self.path}: unknown compression types (color {c_type}, depth {d_type})")
        cw, ch, dw, dh = take("<4I", "image sizes")
        (shift,) = take("<f", "depth_shift")
        (num_frames,) = take("<Q", "num_frames")
        if not (np.isfinite(shift) and shift > 0):
            raise SampleError(f"{self.path}: field 'depth_shift' must be a positive number, got {shift}")
        return SensHeader(
            version, name.decode("utf-8", "replace"), *mats, COLOR_COMPRESSION[c_type], DEPTH_COMPRESSION[d_type],
            int(cw), int(ch), int(dw), int(dh), float(shift), int(num_frames),
        )  # fmt: skip

    def _bytes(self, span: tuple[int, int]) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(span[0])
            return fh.read(span[1])

    def read_color(self, i: int, size: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
        """Frame ``i``'s colour image (resized to ``size`` (h, w) when given) and its native (h, w)."""
        where = f"{self.path} frame {i} (field 'color')"
        data = self._bytes(self._color[i])
        kind = self.header.color_compression
        if kind in ("jpeg", "png"):
            return decode_rgb_bytes(data, size, where)
        if kind == "raw":
            h, w = self.header.color_height, self.header.color_width
            if len(data) != h * w * 3:
                raise SampleError(f"{where}: raw colour has {len(data)} bytes, expected {h}x{w}x3")
            from loc3r.data.video import resize_rgb

            return resize_rgb(np.frombuffer(data, np.uint8).reshape(h, w, 3).copy(), size), (h, w)
        raise SampleError(f"{where}: colour compression {kind!r} is not supported (jpeg, png or raw)")

    def read_depth(self, i: int) -> np.ndarray:
        """Frame ``i``'s depth as ``[depth_h, depth_w] uint16`` raw units (``/ depth_shift`` = metres, 0 = none)."""
        where = f"{self.path} frame {i} (field 'depth')"
        data = self._bytes(self._depth[i])
        kind = self.header.depth_compression
        if kind == "zlib_ushort":
            try:
                data = zlib.decompress(data)
            except zlib.error as err:
                raise SampleError(f"{where}: cannot inflate zlib depth ({err})") from err
        elif kind != "raw_ushort":
            raise SampleError(f"{where}: depth compression {kind!r} is not supported (zlib_ushort or raw_ushort)")
        h, w = self.header.depth_height, self.header.depth_width
        if len(data) != h * w * 2:
            raise SampleError(f"{where}: depth has {len(data)} bytes, expected {h}x{w} uint16 = {h * w * 2}")
        return np.frombuffer(data, dtype="<u2").reshape(h, w).astype(np.uint16)


def find_sens(scene_dir: Path, scene_id: str) -> Path | None:
    """``<scene_dir>/<scene_id>.sens``, else the folder's only ``*.sens`` file, else None."""
    own = scene_dir / f"{scene_id}.sens"
    if own.is_file():
        return own
    found = sorted(scene_dir.glob("*.sens"))
    return found[0] if len(found) == 1 else None


class SensScene(CaptureScene):
    """A ScanNet scan read from its ``.sens`` file (``scans/<scene>/<scene>.sens``) in the world frame.

    Args:
        path: the scene folder (holding ``<scene_id>.sens``) or the ``.sens`` file itself.
        scene_id: defaults to the file's stem.
        axis_alignment, scene_meta, scans_root: as :class:`~loc3r.data.scannet.ScanNetScene` (``"auto"`` reads
            ``<scene_id>.txt`` next to the file first, ScanNet's own place for it).
        report: :class:`LoadReport` to fill.
    """

    layout_name = "sens"

    def __init__(
        self,
        path: str | Path,
        scene_id: str | None = None,
        *,
        axis_alignment: np.ndarray | str | None = "auto",
        scene_meta: SceneMetaTable | None = None,
        scans_root: str | Path | None = None,
        report: LoadReport | None = None,
    ) -> None:
        path = Path(path)
        if path.suffix == ".sens" and not path.is_dir():
            scene_dir, scene_id = path.parent, scene_id or path.stem
            sens_path: Path | None = path
        else:
            scene_dir, scene_id = path, scene_id or path.name
            sens_path = find_sens(path, scene_id) if path.is_dir() else None
        self._setup(scene_dir, scene_id, report)
        if sens_path is None:
            raise SampleError(f"{scene_dir}: scene {self.scene_id!r} has no .sens file ({self.scene_id}.sens)")
        self.sens = SensFile(sens_path)
        head = self.sens.header
        self.depth_scale = head.depth_shift
        for name in ("intrinsic_color", "intrinsic_depth"):
            k = getattr(head, name)[:3, :3]
            if not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
                raise SampleError(
                    f"{sens_path}: field {name!r}: focal lengths must be finite and > 0, got {k.tolist()}"
                )
        for name in ("extrinsic_color", "extrinsic_depth"):
            ext = getattr(head, name)
            # ScanNet writes identity extrinsics (or leaves them unset, all zeros / -inf, in some scans)
            if np.isfinite(ext).all() and ext.any() and not np.allclose(ext, np.eye(4), atol=_EXTRINSIC_TOL):
                raise SampleError(
                    f"{sens_path}: field {name!r}: non-identity camera extrinsics are not supported (ScanNet's are "
                    "identity; poses are taken as the depth/colour camera's)"
                )
        self.color_intrinsic = head.intrinsic_color[:3, :3].copy()
        self.depth_intrinsic = head.intrinsic_depth[:3, :3].copy()
        self.axis_alignment, self.axis_aligned, self.axis_alignment_source = self._resolve_alignment(
            axis_alignment, scene_meta, scans_root
        )
        if self.sens.truncation is not None:
            frame, part, message = self.sens.truncation
            self.report.error(
                "truncated_file", message, file=sens_path, record=f"{self.scene_id} frame {frame}", field=part
            )
        self._set_frames([FrameFiles(i, sens_path, sens_path, sens_path) for i in range(self.sens.num_complete)])

    def _raw_pose(self, files: FrameFiles) -> tuple[np.ndarray, str, Path, str]:
        where, record = f"{self.sens.path} frame {files.frame_id}", f"{self.scene_id} frame {files.frame_id}"
        return self.sens.poses[files.frame_id], where, self.sens.path, record

    def _read_color(
        self, files: FrameFiles, image_size: tuple[int, int] | None, record: str
    ) -> tuple[np.ndarray, tuple[int, int]]:
        return self.sens.read_color(files.frame_id, image_size)

    def _read_depth(self, files: FrameFiles, record: str) -> np.ndarray:
        return self.sens.read_depth(files.frame_id)
