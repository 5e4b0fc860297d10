"""ScanNet++ scenes (iPhone and DSLR) in the loc3r world frame — the one place ScanNet++ is converted.

Files of a scene ``<root>/<scene_id>/`` read here (the ScanNet++ release and its toolkit's outputs)::

    iphone/rgb.mkv                      the iPhone video (or iphone/rgb/frame_NNNNNN.jpg extracted by the toolkit)
    iphone/depth.bin                    LiDAR depth (or iphone/depth/frame_NNNNNN.png, uint16 mm, extracted)
    iphone/pose_intrinsic_imu.json      {"frame_NNNNNN": {"intrinsic" 3x3, "aligned_pose" 4x4, "timestamp", ...}}
    iphone/colmap/images.txt            COLMAP poses of the registered iPhone frames (optional)
    dslr/undistorted_images/<name>      DSLR images undistorted by the toolkit (dslr/undistort.py)
    dslr/nerfstudio/transforms_undistorted.json   their PINHOLE intrinsics fl_x, fl_y, cx, cy, w, h
    dslr/colmap/images.txt              COLMAP poses of the DSLR images
    dslr/render_depth/<stem>.png        optional depth rendered from the laser-scan mesh (uint16 mm); without it a
                                        DSLR clip has no world points (``skipped[no_depth]``)

``depth.bin`` comes in the two encodings the toolkit's ``prepare_iphone_data.py`` reads: per frame (``uint32`` little
endian byte count, then an LZ4 block of ``uint16`` millimetres, or a raw-deflate block of ``float32`` metres), or one
raw-deflate stream of ``float32`` metres for the whole video (frames of ``depth_size``, ScanNet++'s 192x256). Both are
read frame by frame: the per-frame file is indexed by walking the byte counts, the stream is inflated incrementally
and only the frames a clip needs are kept. The video is decoded once, front to back, keeping only those frames.

Conventions (DESIGN.md §3): ScanNet++'s ``aligned_pose`` is camera-to-world with OpenCV camera axes in the scene's
aligned frame (the laser-scan mesh ``mesh_aligned_0.05.ply``: metres, z up) — the toolkit's ``arkit_pcl.py``
back-projects ``K^-1 (u, v, 1) z`` with it as is — so it is loc3r's convention unchanged. COLMAP's ``images.txt`` stores
world-to-camera ``QW QX QY QZ TX TY TZ`` (OpenCV axes, the same aligned frame): the camera-to-world pose is its
inverse. The iPhone intrinsic is for the RGB video; the depth map (256x192) has the same field of view, so its
intrinsic is the RGB one scaled by the size ratio. Poses with ``-inf``/NaN are skipped (``skipped[invalid_pose]``);
a malformed JSON entry or COLMAP line is an error naming the file, the frame / line and the field.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from loc3r.core.io import read_json, read_text
from loc3r.data.capture_base import CaptureScene, FrameFiles, scaled_intrinsic
from loc3r.data.scannet import ScanNetClip
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, read_depth_png, resize_rgb

#: (height, width) of ScanNet++'s iPhone depth maps (the whole-video ``depth.bin`` stream has no size of its own)
SCANNETPP_DEPTH_SIZE = (192, 256)
_FRAME_PREFIX = "frame_"
_MAX_DEPTH_BYTES = 4096 * 4096 * 2  # bound of one decoded depth frame (a corrupt block cannot take all memory)


# ------------------------------------------------------------------------------------------------ small formats


def lz4_block_decompress(data: bytes, max_size: int) -> bytes:
    """Decode one LZ4 *block* (the LZ4 block format: sequences of a token, literal length, literals, a 2-byte
    little-endian match offset and match length) of at most ``max_size`` bytes. Uses the ``lz4`` package when it is
    installed; this pure-Python decoder otherwise. Raises ``ValueError`` on a malformed block."""
    try:
        import lz4.block  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        try:
            return lz4.block.decompress(data, uncompressed_size=max_size)
        except Exception as err:  # lz4.block.LZ4BlockError
            raise ValueError(str(err)) from err
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        token = data[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            lit, i = _lz4_extend(data, i, lit, "literal length")
        if i + lit > n:
            raise ValueError("LZ4 block ends inside its literals")
        out += data[i : i + lit]
        i += lit
        if i >= n:
            break  # the last sequence has literals only
        if i + 2 > n:
            raise ValueError("LZ4 block ends inside a match offset")
        offset = data[i] | (data[i + 1] << 8)
        i += 2
        if offset == 0 or offset > len(out):
            raise ValueError(f"LZ4 match offset {offset} outside the decoded data")
        length = (token & 15) + 4
        if (token & 15) == 15:
            length, i = _lz4_extend(data, i, length, "match length")
        start = len(out) - offset
        if length <= offset:
            out += out[start : start + length]
        else:  # overlapping copy: repeats the last `offset` bytes
            for k in range(length):
                out.append(out[start + k])
        if len(out) > max_size:
            raise ValueError(f"LZ4 block decodes to more than {max_size} bytes")
    if len(out) > max_size:
        raise ValueError(f"LZ4 block decodes to more than {max_size} bytes")
    return bytes(out)


def _lz4_extend(data: bytes, i: int, value: int, what: str) -> tuple[int, int]:
    """Add the 255-continued extra bytes of an LZ4 length at ``data[i:]``; returns ``(length, next index)``."""
    while True:
        if i >= len(data):
            raise ValueError(f"LZ4 block ends inside a {what}")
        b = data[i]
        i += 1
        value += b
        if b != 255:
            return value, i


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion ``(w, x, y, z)`` (COLMAP's order; normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def read_colmap_images(path: str | Path) -> dict[str, np.ndarray]:
    """COLMAP ``images.txt`` -> ``{image name: 4x4 camera-to-world}`` (OpenCV axes; the file holds world-to-camera).

    Each image takes two lines (``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME``, then its 2-D points); ``#`` lines are
    comments. A malformed image line raises :class:`SampleError` naming the file, the line and the field. A
    non-finite entry gives a non-finite pose (skipped later as ``invalid_pose``)."""
    path = Path(path)
    text = read_text(path, "COLMAP images file")
    lines = [(k + 1, line) for k, line in enumerate(text.splitlines()) if not line.startswith("#")]
    out: dict[str, np.ndarray] = {}
    for j in range(0, len(lines), 2):
        number, line = lines[j]
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 10:
            raise SampleError(f"{path}: line {number}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, "
                              f"got {len(tokens)} fields")  # fmt: skip
        try:
            q = np.array([float(v) for v in tokens[1:5]])
            t = np.array([float(v) for v in tokens[5:8]])
        except ValueError as err:
            raise SampleError(f"{path}: line {number}: field 'QW QX QY QZ TX TY TZ' is not numeric ({err})") from err
        name = " ".join(tokens[9:])
        pose = np.full((4, 4), np.nan)
        if np.isfinite(q).all() and np.isfinite(t).all() and np.linalg.norm(q) > 0:
            w2c = np.eye(4)
            w2c[:3, :3] = matrix_from_quaternion(q)
            w2c[:3, 3] = t
            pose = np.linalg.inv(w2c)
        out[name] = pose
    return out


def _frame_number(name: str) -> int | None:
    stem = Path(name).stem
    if stem.startswith(_FRAME_PREFIX) and stem[len(_FRAME_PREFIX) :].isdigit():
        return int(stem[len(_FRAME_PREFIX) :])
    return None


class IPhoneDepth:
    """Frame-by-frame access to ``iphone/depth.bin`` (module docstring): ``read(k)`` -> ``[h, w] uint16`` mm."""

    def __init__(self, path: Path, aspect: float, depth_size: tuple[int, int] = SCANNETPP_DEPTH_SIZE) -> None:
        self.path = path
        self.aspect = aspect  # width / height of the colour images (the depth maps have the same)
        self.depth_size = depth_size
        try:
            self.file_size = os.path.getsize(path)
            with open(path, "rb") as fh:
                head = fh.read(4)
        except OSError as err:
            raise SampleError(f"{path}: depth file is missing or unreadable ({err})") from err
        self.per_frame = False
        self._offsets: list[tuple[int, int]] | None = None
        self._stream: Any = None
        if len(head) == 4:
            (first,) = struct.unpack("<I", head)
            if 0 < first <= self.file_size - 4:
                try:
                    self._decode_block(self._read_span((4, first)))
                    self.per_frame = True
                except ValueError:
                    self.per_frame = False

    def _read_span(self, span: tuple[int, int]) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(span[0])
            return fh.read(span[1])

    def _index(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            offsets = []
            with open(self.path, "rb") as fh:
                pos = 0
                while pos + 4 <= self.file_size:
                    fh.seek(pos)
                    (size,) = struct.unpack("<I", fh.read(4))
                    if pos + 4 + size > self.file_size:
                        break  # a truncated last frame: reported when it is asked for
                    offsets.append((pos + 4, size))
                    pos += 4 + size
            self._offsets = offsets
        return self._offsets

    def _shape(self, pixels: int) -> tuple[int, int]:
        w = int(round(np.sqrt(pixels * self.aspect)))
        if w <= 0 or pixels % w:
            raise ValueError(f"{pixels} depth pixels do not form an image of the colour's aspect {self.aspect:.4f}")
        return pixels // w, w

    def _decode_block(self, data: bytes) -> np.ndarray:
        """A per-frame block, tried in the toolkit's order: LZ4 of uint16 mm, else raw deflate of float32 metres."""
        try:
            raw = lz4_block_decompress(data, _MAX_DEPTH_BYTES)
            if len(raw) % 2 == 0:
                return np.frombuffer(raw, dtype="<u2").reshape(self._shape(len(raw) // 2)).astype(np.uint16)
        except ValueError:
            pass
        try:
            raw = zlib.decompress(data, wbits=-zlib.MAX_WBITS)
        except zlib.error as err:
            raise ValueError("neither an LZ4 block of uint16 depth nor a deflate block of float32 depth") from err
        if len(raw) % 4:
            raise ValueError(f"deflate block of {len(raw)} bytes is not float32 depth")
        metres = np.frombuffer(raw, dtype="<f4")
        return (metres * 1000.0).astype(np.uint16).reshape(self._shape(metres.size))

    def read(self, k: int) -> np.ndarray:
        where = f"{self.path} frame {k} (field 'depth')"
        if self.per_frame:
            offsets = self._index()
            if k >= len(offsets):
                raise SampleError(f"{where}: depth.bin holds {len(offsets)} complete frames (truncated or short)")
            try:
                return self._decode_block(self._read_span(offsets[k]))
            except ValueError as err:
                raise SampleError(f"{where}: cannot decode depth block ({err})") from err
        return self._read_stream(k, where)

    def _read_stream(self, k: int, where: str) -> np.ndarray:
        """Frame ``k`` of the whole-video raw-deflate stream, inflated incrementally (one pass for ascending k)."""
        h, w = self.depth_size
        frame_bytes = h * w * 4
        if self._stream is None or self._stream[1] > k * frame_bytes:
            self._stream = [zlib.decompressobj(wbits=-zlib.MAX_WBITS), 0, b"", 0]  # inflater, pos, buffer, file pos
        inflater, pos, buf, fpos = self._stream
        start, end = k * frame_bytes, (k + 1) * frame_bytes
        with open(self.path, "rb") as fh:
            while pos + len(buf) < end:
                fh.seek(fpos)
                chunk = fh.read(1 << 20)
                fpos += len(chunk)
                try:
                    data = inflater.decompress(chunk) if chunk else inflater.flush()
                except zlib.error as err:
                    raise SampleError(f"{where}: cannot inflate depth.bin ({err})") from err
                buf += data
                if len(buf) > 2 * frame_bytes:  # keep memory bounded: drop bytes before the frame
                    drop = min(len(buf), max(0, start - pos))
                    buf, pos = buf[drop:], pos + drop
                if not chunk and not data:
                    raise SampleError(f"{where}: depth.bin ends before frame {k} ({(pos + len(buf)) // frame_bytes} "
                                      f"frames of {w}x{h})")  # fmt: skip
        frame = buf[start - pos : end - pos]
        self._stream = [inflater, pos, buf, fpos]
        return (np.frombuffer(frame, dtype="<f4").reshape(h, w) * 1000.0).astype(np.uint16)


class _VideoFrames:
    """The frames of ``rgb.mkv`` decoded front to back (re-opened only when an earlier frame is asked for)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container: Any = None
        self._iter: Any = None
        self._next = 0
        try:
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                self.size = (int(stream.codec_context.height), int(stream.codec_context.width))
        except FileNotFoundError as err:
            raise SampleError(f"{path}: video file is missing") from err
        except Exception as err:  # PyAV raises its own error types for corrupt files
            raise SampleError(f"{path}: cannot open video ({err})") from err

    def read(self, k: int, size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
        import av

        where = f"{self.path} frame {k} (field 'color')"
        try:
            if self._iter is None or k < self._next:
                self.close()
                self._container = av.open(str(self.path))
                self._iter = self._container.decode(video=0)
                self._next = 0
            for frame in self._iter:
                index = self._next
                self._next += 1
                if index == k:
                    rgb = frame.to_ndarray(format="rgb24")
                    return resize_rgb(rgb, size), (rgb.shape[0], rgb.shape[1])
        except Exception as err:  # noqa: BLE001 - a decoder error of a corrupt video
            raise SampleError(f"{where}: cannot decode video ({err})") from err
        raise SampleError(f"{where}: the video has only {self._next} frames")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._iter = None, None


# ------------------------------------------------------------------------------------------------ the scene


class ScanNetppScene(CaptureScene):
    """One ScanNet++ scene read with one of its cameras, in the world frame (module docstring).

    Args:
        scene_dir: ``<data>/<scene_id>`` (holding ``iphone/`` and / or ``dslr/``).
        camera: ``"iphone"`` (video + LiDAR depth: layout targets) or ``"dslr"`` (undistorted images; depth only
            from ``dslr/render_depth``).
        pose_source: iPhone poses from ``"arkit"`` (``pose_intrinsic_imu.json``'s ``aligned_pose``, every frame),
            ``"colmap"`` (``iphone/colmap/images.txt``, the registered frames) or ``"auto"`` (ARKit when the JSON has
            poses). The DSLR's come from COLMAP.
        depth_size: (h, w) of the frames of a whole-video ``depth.bin`` stream.
    """

    layout_name = "scannetpp"

    def __init__(
        self,
        scene_dir: str | Path,
        scene_id: str | None = None,
        *,
        camera: Literal["iphone", "dslr"] = "iphone",
        pose_source: Literal["auto", "arkit", "colmap"] = "auto",
        depth_size: tuple[int, int] = SCANNETPP_DEPTH_SIZE,
        report: LoadReport | None = None,
    ) -> None:
        self._setup(Path(scene_dir), scene_id, report)
        if camera not in ("iphone", "dslr"):
            raise ValueError(f"camera must be 'iphone' or 'dslr', got {camera!r}")
        self.camera = camera
        self.layout = f"scannetpp_{camera}"
        self._raw_poses: dict[int, tuple[np.ndarray, Path, str]] = {}
        self._video: _VideoFrames | None = None
        self._depth_bin: IPhoneDepth | None = None
        self.has_depth = True
        if camera == "iphone":
            self._init_iphone(pose_source, depth_size)
        else:
            self._init_dslr()

    # -- iPhone ------------------------------------------------------------------------------------

    def _init_iphone(self, pose_source: str, depth_size: tuple[int, int]) -> None:
        folder = self.scene_dir / "iphone"
        if not folder.is_dir():
            raise SampleError(f"{self.scene_dir}: ScanNet++ scene {self.scene_id!r} has no iphone/ folder")
        meta_path = folder / "pose_intrinsic_imu.json"
        meta = read_json(meta_path, "ScanNet++ pose/intrinsic file")
        if not isinstance(meta, dict) or not meta:
            raise SampleError(f"{meta_path}: expected an object of frame_NNNNNN -> {{intrinsic, aligned_pose, ...}}")
        intrinsics: dict[int, np.ndarray] = {}
        arkit: dict[int, np.ndarray] = {}
        for key, entry in meta.items():
            number = _frame_number(key)
            if number is None:
                raise SampleError(f"{meta_path}: key {key!r} is not a frame name frame_NNNNNN")
            where = f"{meta_path}: frame {key!r}"
            if not isinstance(entry, dict):
                raise SampleError(f"{where}: entry must be an object")
            intrinsics[number] = _matrix(entry.get("intrinsic"), (3, 3), f"{where}, field 'intrinsic'", finite=True)
            if entry.get("aligned_pose") is not None:
                arkit[number] = _matrix(entry["aligned_pose"], (4, 4), f"{where}, field 'aligned_pose'")
        colmap_path = folder / "colmap" / "images.txt"
        if pose_source == "auto":
            pose_source = "arkit" if arkit else "colmap"
        if pose_source == "arkit":
            if not arkit:
                raise SampleError(f"{meta_path}: no frame has field 'aligned_pose' (use the COLMAP poses)")
            self._raw_poses = {k: (p, meta_path, f"frame_{k:06d}") for k, p in arkit.items()}
        elif pose_source == "colmap":
            for name, pose in read_colmap_images(colmap_path).items():
                number = _frame_number(name)
                if number is None:
                    raise SampleError(f"{colmap_path}: image {name!r} is not an iPhone frame name frame_NNNNNN.jpg")
                self._raw_poses[number] = (pose, colmap_path, name)
        else:
            raise ValueError(f"pose_source must be 'auto', 'arkit' or 'colmap', got {pose_source!r}")
        self.pose_source = pose_source
        rgb_dir, video = folder / "rgb", folder / "rgb.mkv"
        depth_dir, depth_bin = folder / "depth", folder / "depth.bin"
        if rgb_dir.is_dir():
            self._rgb_dir: Path | None = rgb_dir
            first = rgb_dir / f"frame_{min(intrinsics):06d}.jpg"
            try:
                with Image.open(first) as img:
                    color_size = (int(img.size[1]), int(img.size[0]))
            except OSError as err:
                raise SampleError(f"{first}: cannot read the first iPhone frame ({err})") from err
        elif video.is_file():
            self._rgb_dir = None
            self._video = _VideoFrames(video)
            color_size = self._video.size
        else:
            raise SampleError(f"{folder}: no iPhone colour (rgb.mkv or rgb/frame_NNNNNN.jpg)")
        aspect = color_size[1] / color_size[0]
        if depth_dir.is_dir():
            self._depth_dir: Path | None = depth_dir
            first_depth = read_depth_png(depth_dir / f"frame_{min(intrinsics):06d}.png")
            depth_hw = tuple(first_depth.shape)
        elif depth_bin.is_file():
            self._depth_dir = None
            self._depth_bin = IPhoneDepth(depth_bin, aspect, depth_size)
            depth_hw = tuple(self._depth_bin.read(min(intrinsics)).shape)
        else:
            raise SampleError(f"{folder}: no iPhone depth (depth.bin or depth/frame_NNNNNN.png)")
        for number, k in intrinsics.items():
            self._intrinsics[number] = (k, scaled_intrinsic(k, color_size, depth_hw))  # type: ignore[arg-type]
        files = []
        for number in sorted(set(self._raw_poses) & set(intrinsics)):
            color = (self._rgb_dir / f"frame_{number:06d}.jpg") if self._rgb_dir else video
            depth = (self._depth_dir / f"frame_{number:06d}.png") if self._depth_dir else depth_bin
            pose_file = self._raw_poses[number][1]
            files.append(FrameFiles(number, color, depth, pose_file))
        missing = sorted(set(self._raw_poses) - set(intrinsics))
        if missing:
            message = f"{meta_path}: frames {missing[:5]} have a pose but no intrinsic"
            record = f"{self.scene_id} frame {missing[0]}"
            self.report.error("missing_intrinsic", message, file=meta_path, record=record, field="intrinsic")
        self._set_frames(files)
        self.color_intrinsic, self.depth_intrinsic = self._intrinsics[files[0].frame_id]

    # -- DSLR --------------------------------------------------------------------------------------

    def _init_dslr(self) -> None:
        folder = self.scene_dir / "dslr"
        if not folder.is_dir():
            raise SampleError(f"{self.scene_dir}: ScanNet++ scene {self.scene_id!r} has no dslr/ folder")
        tpath = folder / "nerfstudio" / "transforms_undistorted.json"
        tr = read_json(tpath, "ScanNet++ undistorted transforms file")
        try:
            fx, fy, cx, cy = (float(tr[key]) for key in ("fl_x", "fl_y", "cx", "cy"))
        except (KeyError, TypeError, ValueError) as err:
            raise SampleError(f"{tpath}: fields 'fl_x', 'fl_y', 'cx', 'cy' must be numbers ({err!r})") from err
        if tr.get("camera_model", "PINHOLE") != "PINHOLE":
            raise SampleError(f"{tpath}: field 'camera_model' is {tr.get('camera_model')!r}; the undistorted images "
                              "are PINHOLE (run the ScanNet++ toolkit's dslr/undistort.py)")  # fmt: skip
        k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        if not np.isfinite(k).all() or fx <= 0 or fy <= 0:
            raise SampleError(f"{tpath}: invalid intrinsics fl_x={fx}, fl_y={fy}")
        colmap_path = folder / "colmap" / "images.txt"
        poses = read_colmap_images(colmap_path)
        images = folder / "undistorted_images"
        depth_dir = folder / "render_depth"
        self.has_depth = depth_dir.is_dir()
        files = []
        for number, name in enumerate(sorted(poses)):
            self._raw_poses[number] = (poses[name], colmap_path, name)
            files.append(FrameFiles(number, images / name, depth_dir / f"{Path(name).stem}.png", colmap_path))
        self._set_frames(files)
        self.color_intrinsic = k
        self.depth_intrinsic = k
        if self.has_depth:
            first = next((f.depth for f in files if f.depth.is_file()), None)
            size = (int(tr.get("h", 0)), int(tr.get("w", 0)))
            if first is not None and min(size) > 0:
                self.depth_intrinsic = scaled_intrinsic(k, size, read_depth_png(first).shape)  # type: ignore[arg-type]

    # -- reading -----------------------------------------------------------------------------------

    def _raw_pose(self, files: FrameFiles) -> tuple[np.ndarray, str, Path, str]:
        raw, path, name = self._raw_poses[files.frame_id]
        return raw, f"{path} {name}", path, f"{self.scene_id} {self.camera} {name}"

    def _read_color(
        self, files: FrameFiles, image_size: tuple[int, int] | None, record: str
    ) -> tuple[np.ndarray, tuple[int, int]]:
        if self._video is not None:  # rgb.mkv, decoded once front to back
            return self._video.read(files.frame_id, image_size)
        return super()._read_color(files, image_size, record)

    def _read_depth(self, files: FrameFiles, record: str) -> np.ndarray:
        if self._depth_bin is not None:
            return self._depth_bin.read(files.frame_id)
        return super()._read_depth(files, record)

    def load_clip(
        self,
        num_frames: int,
        image_size: tuple[int, int] | None = None,
        points_size: tuple[int, int] | None = (96, 128),
        max_depth: float = 10.0,
    ) -> ScanNetClip:
        """:meth:`ScanNetScene.load_clip <loc3r.data.scannet.ScanNetScene.load_clip>`; a DSLR scene without
        ``render_depth`` gives no world points (counted as ``skipped[no_depth]``)."""
        if points_size is not None and not self.has_depth:
            self.report.skip("no_depth", f"{self.scene_dir / 'dslr' / 'render_depth'}")
            points_size = None
        try:
            return super().load_clip(num_frames, image_size, points_size, max_depth)
        finally:
            if self._video is not None:
                self._video.close()


def _matrix(value: Any, shape: tuple[int, int], where: str, finite: bool = False) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError) as err:
        raise SampleError(f"{where}: expected a {shape[0]}x{shape[1]} matrix of numbers") from err
    if finite and not np.isfinite(arr).all():
        raise SampleError(f"{where}: non-finite entries")
    return arr
