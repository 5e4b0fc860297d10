"""SynthRooms scans written in the raw capture formats of ScanNet, ScanNet++ and ARKitScenes.

``loc3r synth --format F`` writes each scan's frames in format ``F`` instead of the SensReader export (the
default, ``sensreader``, is unchanged). The rest of a scan folder (``instance/``, ``video.mp4``, ``meta_info.json``,
``sqa3d.json``, ...) is the same for every format. Each writer follows the public format its reader reads
(the format notes are in :mod:`loc3r.data.scannet_sens`, :mod:`loc3r.data.scannetpp` and
:mod:`loc3r.data.arkitscenes`), from SynthRooms' exact frames: camera-to-world poses with OpenCV axes in the
z-up, metric world, one pinhole ``K`` shared by colour and depth, z-depth in metres. So every reader is tested
end to end against exact ground truth: its world points must land on the generated objects.

=============  =====================================================================================
format         files of ``scans/<scene_id>/``
=============  =====================================================================================
scannet-sens   ``<scene_id>.sens`` (JPEG colour, zlib uint16 mm depth, camera-to-world float32 poses)
scannetpp      ``iphone/rgb.mkv`` (H.264), ``iphone/depth.bin`` (per frame: uint32 size + LZ4 block of uint16
               mm), ``iphone/pose_intrinsic_imu.json`` (``aligned_pose``, ``intrinsic``, ``timestamp``),
               ``iphone/colmap/{cameras,images}.txt``; ``dslr/undistorted_images/DSC*.JPG``,
               ``dslr/nerfstudio/transforms_undistorted.json``, ``dslr/colmap/{cameras,images}.txt``,
               ``dslr/render_depth/DSC*.png`` (uint16 mm)
arkitscenes    ``lowres_wide/<id>_<t>.png``, ``lowres_depth/<id>_<t>.png`` (uint16 mm),
               ``lowres_wide_intrinsics/<id>_<t>.pincam``, ``lowres_wide.traj`` (t, axis-angle, translation of
               world-to-camera), ``<id>`` = the scene id, ``t`` = 10 frames per second
=============  =====================================================================================
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from loc3r.data.scannet import _as_4x4

DEFAULT_FORMAT = "sensreader"
FORMATS = (DEFAULT_FORMAT, "scannet-sens", "scannetpp", "arkitscenes")
ARKIT_T0 = 6845.706  # first timestamp of an ARKitScenes-style scan (seconds; any value works)
ARKIT_DT = 0.1  # lowres_wide is recorded at 10 fps


def depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """Depth in metres as uint16 millimetres, 0 = no measurement (NaN, <= 0 or beyond the uint16 range)."""
    d = np.asarray(depth_m)  # in its own dtype: the same millimetres as the SensReader export's PNGs
    with np.errstate(invalid="ignore"):
        raw = np.where(np.isfinite(d) & (d > 0), np.round(d * 1000.0), 0.0)
    raw[raw > 65535] = 0  # beyond the uint16 range: no measurement (as the SensReader export writes it)
    return raw.astype(np.uint16)


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ ScanNet .sens


def write_sens(
    path: str | Path,
    colors: np.ndarray,
    depths_m: np.ndarray,
    poses: np.ndarray,
    intrinsic: np.ndarray,
    depth_intrinsic: np.ndarray | None = None,
    jpeg_quality: int = 92,
) -> Path:
    """A ScanNet ``.sens`` file (version 4, JPEG colour, zlib uint16 millimetre depth, depth shift 1000); poses are
    written as given (rows of ``-inf`` allowed, as real ScanNet has them)."""
    path = Path(path)
    colors = np.asarray(colors)
    depths = [depth_mm(d) for d in depths_m]
    n, h, w = colors.shape[:3]
    dh, dw = depths[0].shape if depths else (h, w)
    k_depth = intrinsic if depth_intrinsic is None else depth_intrinsic
    name = b"SynthRooms"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IQ", 4, len(name)) + name)
        for mat in (_as_4x4(intrinsic), np.eye(4), _as_4x4(k_depth), np.eye(4)):
            fh.write(struct.pack("<16f", *np.asarray(mat, dtype=np.float64).reshape(-1)))
        fh.write(struct.pack("<2i4IfQ", 2, 1, w, h, dw, dh, 1000.0, n))
        for i in range(n):
            color = _jpeg(colors[i], jpeg_quality)
            depth = zlib.compress(depths[i].astype("<u2").tobytes())
            pose = np.asarray(poses[i], dtype=np.float64).reshape(-1)
            fh.write(struct.pack("<16f4Q", *pose, i, i, len(color), len(depth)))
            fh.write(color)
            fh.write(depth)
    return path


# ------------------------------------------------------------------------------------------------ ScanNet++


def lz4_literal_block(data: bytes) -> bytes:
    """``data`` as one valid LZ4 block made of a single literal run (no matches; LZ4's block format allows it:
    the last sequence of a block is literals only). Real ScanNet++ blocks have matches; the reader decodes both."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    out = bytearray([0xF0])
    rest = n - 15
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out) + data


def quaternion_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` of a rotation matrix (COLMAP's order), ``w >= 0``."""
    m = np.asarray(rot, dtype=np.float64)
    # Shepperd's method: pick the largest of the four squared components for stability
    t = np.trace(m)
    cands = np.array([1 + t, 1 + 2 * m[0, 0] - t, 1 + 2 * m[1, 1] - t, 1 + 2 * m[2, 2] - t])
    k = int(np.argmax(cands))
    s = np.sqrt(max(cands[k], 1e-300)) * 2  # = 4 * |component k|
    if k == 0:
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        q = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
    else:
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def _colmap_files(folder: Path, names: list[str], poses: np.ndarray, k: np.ndarray, w: int, h: int) -> None:
    """COLMAP text model: ``cameras.txt`` (one PINHOLE camera) and ``images.txt`` (world-to-camera quaternion
    ``QW QX QY QZ``, translation, camera id, name; then an empty 2-D points line)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cameras.txt").write_text(
        "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
        f"1 PINHOLE {w} {h} {k[0, 0]:.10g} {k[1, 1]:.10g} {k[0, 2]:.10g} {k[1, 2]:.10g}\n",
        encoding="utf-8",
    )
    lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for i, (name, pose) in enumerate(zip(names, poses, strict=True)):
        w2c = np.linalg.inv(np.asarray(pose, dtype=np.float64))
        q = quaternion_from_matrix(w2c[:3, :3])
        t = w2c[:3, 3]
        lines.append(f"{i + 1} " + " ".join(f"{v:.12g}" for v in (*q, *t)) + f" 1 {name}")
        lines.append("")
    (folder / "images.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "points3D.txt").write_text("# 3D point list (empty)\n", encoding="utf-8")


def encode_h264(path: Path, frames: np.ndarray, fps: int, options: dict[str, str], fmt: str | None = None) -> None:
    """Encode ``frames`` (T, H, W, 3) uint8 with libx264 (yuv420p, the given ``options``) into ``path``."""
    import av

    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_scannetpp(
    scene_dir: str | Path,
    colors: np.ndarray,
    depths_m: np.ndarray,
    poses: np.ndarray,
    intrinsic: np.ndarray,
    jpeg_quality: int = 92,
) -> Path:
    """A ScanNet++ scene (``iphone/`` and ``dslr/``; table of the module docstring). The iPhone and the DSLR both
    see SynthRooms' frames (a real scene has two cameras on two trajectories); ``aligned_pose`` and the COLMAP
    models are in the scene's z-up metric frame, like ScanNet++'s."""
    out = Path(scene_dir)
    colors = np.asarray(colors)
    n, h, w = colors.shape[:3]
    k = np.asarray(intrinsic, dtype=np.float64)
    iphone = out / "iphone"
    iphone.mkdir(parents=True, exist_ok=True)
    encode_h264(iphone / "rgb.mkv", colors, 60, {"crf": "12", "threads": "1"}, "matroska")
    with open(iphone / "depth.bin", "wb") as fh:
        for d in depths_m:
            block = lz4_literal_block(depth_mm(d).astype("<u2").tobytes())
            fh.write(struct.pack("<I", len(block)) + block)
    names = [f"frame_{i:06d}" for i in range(n)]
    meta = {
        name: {
            "timestamp": i / 60.0,
            "intrinsic": k.tolist(),
            "pose": np.asarray(pose, dtype=np.float64).tolist(),
            "aligned_pose": np.asarray(pose, dtype=np.float64).tolist(),
        }
        for i, (name, pose) in enumerate(zip(names, poses, strict=True))
    }
    (iphone / "pose_intrinsic_imu.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    _colmap_files(iphone / "colmap", [f"{name}.jpg" for name in names], poses, k, w, h)
    dslr = out / "dslr"
    images = [f"DSC{i:05d}.JPG" for i in range(n)]
    (dslr / "undistorted_images").mkdir(parents=True, exist_ok=True)
    (dslr / "render_depth").mkdir(parents=True, exist_ok=True)
    for name, rgb, d in zip(images, colors, depths_m, strict=True):
        (dslr / "undistorted_images" / name).write_bytes(_jpeg(rgb, jpeg_quality))
        Image.fromarray(depth_mm(d)).save(dslr / "render_depth" / f"{Path(name).stem}.png")
    (dslr / "nerfstudio").mkdir(parents=True, exist_ok=True)
    transforms = {"camera_model": "PINHOLE", "w": w, "h": h, "fl_x": k[0, 0], "fl_y": k[1, 1], "cx": k[0, 2],
                  "cy": k[1, 2], "k1": 0.0, "k2": 0.0, "k3": 0.0, "k4": 0.0,
                  "frames": [{"file_path": name} for name in images]}  # fmt: skip
    (dslr / "nerfstudio" / "transforms_undistorted.json").write_text(json.dumps(transforms, indent=1), "utf-8")
    _colmap_files(dslr / "colmap", images, poses, k, w, h)
    return out


# ------------------------------------------------------------------------------------------------ ARKitScenes


def rotvec_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Axis-angle vector (axis * angle, radians; OpenCV's ``Rodrigues`` of a matrix) of a rotation matrix."""
    m = np.asarray(rot, dtype=np.float64)
    cos = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
    angle = float(np.arccos(cos))
    if angle < 1e-12:
        return np.zeros(3)
    if np.pi - angle < 1e-6:  # near pi: the axis is the eigenvector of eigenvalue 1
        vals, vecs = np.linalg.eigh((m + m.T) / 2.0)
        axis = vecs[:, int(np.argmax(vals))]
        return axis / np.linalg.norm(axis) * angle
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def write_arkitscenes(
    scene_dir: str | Path,
    video_id: str,
    colors: np.ndarray,
    depths_m: np.ndarray,
    poses: np.ndarray,
    intrinsic: np.ndarray,
) -> Path:
    """An ARKitScenes ``raw`` video folder (``lowres_wide`` set; table of the module docstring). The trajectory's
    timestamps are offset by 0.4 ms from the frames' (the reader matches within ARKitScenes' tolerance)."""
    out = Path(scene_dir)
    colors = np.asarray(colors)
    n, h, w = colors.shape[:3]
    k = np.asarray(intrinsic, dtype=np.float64)
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        t = ARKIT_T0 + i * ARKIT_DT
        stem = f"{video_id}_{t:.3f}"
        Image.fromarray(np.asarray(colors[i], dtype=np.uint8)).save(out / "lowres_wide" / f"{stem}.png")
        Image.fromarray(depth_mm(depths_m[i])).save(out / "lowres_depth" / f"{stem}.png")
        (out / "lowres_wide_intrinsics" / f"{stem}.pincam").write_text(
            f"{w} {h} {k[0, 0]:.10g} {k[1, 1]:.10g} {k[0, 2]:.10g} {k[1, 2]:.10g}\n", encoding="utf-8"
        )
        pose = np.asarray(poses[i], dtype=np.float64)
        if not np.isfinite(pose).all():
            continue  # ARKitScenes has no invalid-pose marker: a frame without a trajectory entry
        w2c = np.linalg.inv(pose)
        values = (*rotvec_from_matrix(w2c[:3, :3]), *w2c[:3, 3])
        lines.append(f"{t + 0.0004:.6f} " + " ".join(f"{v:.12g}" for v in values))
    (out / "lowres_wide.traj").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def write_capture(fmt: str, scene_dir: str | Path, scene_id: str, colors: np.ndarray, depths_m: np.ndarray,
                  poses: np.ndarray, intrinsic: np.ndarray, jpeg_quality: int = 92) -> None:  # fmt: skip
    """Write one scan's frames in ``fmt`` (one of :data:`FORMATS` other than the default) into ``scene_dir``."""
    scene_dir = Path(scene_dir)
    if fmt == "scannet-sens":
        write_sens(scene_dir / f"{scene_id}.sens", colors, depths_m, poses, intrinsic, jpeg_quality=jpeg_quality)
    elif fmt == "scannetpp":
        write_scannetpp(scene_dir, colors, depths_m, poses, intrinsic, jpeg_quality=jpeg_quality)
    elif fmt == "arkitscenes":
        write_arkitscenes(scene_dir, scene_id, colors, depths_m, poses, intrinsic)
    else:
        raise ValueError(f"unknown capture format {fmt!r}; expected one of {FORMATS[1:]}")
