"""What the raw-capture readers share: a :class:`~loc3r.data.scannet.ScanNetScene` whose frames come from another
on-disk format.

The readers of :mod:`loc3r.data.scannet_sens` (ScanNet ``.sens``), :mod:`loc3r.data.scannetpp` (ScanNet++ iPhone /
DSLR) and :mod:`loc3r.data.arkitscenes` (ARKitScenes ``lowres_wide``) subclass :class:`CaptureScene`. Each one only
says how to list its frames, read a frame's colour / depth and read its poses and intrinsics (converted to loc3r's
one convention, DESIGN.md §3, in that reader); everything else is ScanNet's, unchanged: the pose check
(``-inf``/NaN poses skipped and counted as ``skipped[invalid_pose]``, non-rigid ones reported with file, record and
field), the uniform frame sampling over the valid frames, the re-sampling around unreadable frames and frames of
another size, and the world points from depth + pose on the colour grid (the layout targets' source)
(:meth:`~loc3r.data.scannet.ScanNetScene.load_clip`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from loc3r.data.scannet import ScanNetScene, _FrameFiles
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, resize_rgb

FrameFiles = _FrameFiles


def decode_rgb_bytes(data: bytes, size: tuple[int, int] | None, where: str) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an encoded image (JPEG / PNG) held in memory; ``(rgb resized to size, native (height, width))``.

    A truncated or corrupt image raises :class:`SampleError` naming ``where`` (never a half-grey picture)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            native = (int(img.size[1]), int(img.size[0]))
            if size is not None and img.format == "JPEG":
                img.draft("RGB", (int(size[1]), int(size[0])))
            img.load()
            rgb = img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise SampleError(f"{where}: cannot decode image ({err})") from err
    return resize_rgb(np.asarray(rgb, dtype=np.uint8), size), native


def scaled_intrinsic(k: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """``k`` of images of ``from_size`` (height, width) for the same camera at ``to_size``: pixel coordinates
    scale by ``W'/W`` and ``H'/H`` (pixel centres at +0.5 both before and after)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return np.diag([sx, sy, 1.0]) @ np.asarray(k, dtype=np.float64)


class CaptureScene(ScanNetScene):
    """Base of the raw-capture readers (module docstring). Subclasses call :meth:`_setup` from ``__init__`` and
    implement :meth:`_raw_pose` (checked by :meth:`_read_poses`) and, where the frames are not plain JPEG / depth PNG
    files, :meth:`_read_color` / :meth:`_read_depth`."""

    #: name of the format (``ScanNetClip.layout``)
    layout_name = "capture"

    def _setup(self, scene_dir: Path, scene_id: str | None, report: LoadReport | None) -> None:
        self.scene_dir = Path(scene_dir)
        self.scene_id = scene_id or self.scene_dir.name
        self.report = report if report is not None else LoadReport(f"{self.layout_name} {self.scene_id}")
        if not self.scene_dir.is_dir():
            raise SampleError(f"{self.scene_dir}: scene folder of {self.scene_id!r} is missing")
        self.layout = self.layout_name
        self.depth_scale = 1000.0
        # the readers' poses are already in the world frame (z up, metres): no axis alignment on top
        self.axis_alignment, self.axis_aligned, self.axis_alignment_source = np.eye(4), True, self.layout_name
        self._intrinsics: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def capture(self) -> dict[str, Any] | None:
        return None  # a video (the still-image / rig scans are SynthRooms' SensReader exports only)

    def frame_intrinsics(self, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        return self._intrinsics.get(frame_id, (self.color_intrinsic, self.depth_intrinsic))
