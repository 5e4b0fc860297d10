"""One entry point for a posed scan folder in any format loc3r reads: :func:`open_scan`.

* ``sensreader`` / ``posed_images``: ``color/`` + ``pose/`` (SensReader export) or ``intrinsic.txt``
  (EmbodiedScan ``posed_images``) -> :class:`~loc3r.data.scannet.ScanNetScene`;
* ``scannet-sens``: ``<scene>.sens`` (ScanNet ``scans/<scene>/``) -> :class:`~loc3r.data.scannet_sens.SensScene`;
* ``scannetpp``: ``iphone/`` or ``dslr/`` -> :class:`~loc3r.data.scannetpp.ScanNetppScene`;
* ``arkitscenes``: ``lowres_wide/`` or ``lowres_wide.traj`` -> :class:`~loc3r.data.arkitscenes.ARKitScenesScene`.

The first match in this order wins.
Every reader gives the same :class:`~loc3r.data.scannet.ScanNetClip` (world poses, world points from depth + pose:
the layout targets) through the same frame validation, so ``loc3r prepare``, the training datasets (SQA3D / ScanQA /
MSQA / SynthRooms frames, VSI-style records with ``scan_roots``) and evaluation read any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loc3r.data.scannet import ScanNetFrameSource, ScanNetScene, SceneMetaTable
from loc3r.data.video import LoadReport

CAPTURE_FORMATS = ("sensreader", "scannet-sens", "scannetpp", "arkitscenes")


def detect_format(scene_dir: str | Path, scene_id: str | None = None) -> str:
    """The format of a scan folder (module table); ``"sensreader"`` when nothing else matches (its reader then
    names what is missing)."""
    d = Path(scene_dir)
    if ((d / "color").is_dir() and (d / "pose").is_dir()) or (d / "intrinsic.txt").is_file():
        return "sensreader"
    if (d / f"{scene_id or d.name}.sens").is_file() or any(d.glob("*.sens")):
        return "scannet-sens"
    if (d / "iphone").is_dir() or (d / "dslr").is_dir():
        return "scannetpp"
    if (d / "lowres_wide").is_dir() or (d / "lowres_wide.traj").is_file():
        return "arkitscenes"
    return "sensreader"


def open_scan(
    scene_dir: str | Path,
    scene_id: str | None = None,
    *,
    report: LoadReport | None = None,
    scene_meta: SceneMetaTable | None = None,
    scans_root: str | Path | None = None,
    axis_alignment: Any = "auto",
    depth_scale: float = 1000.0,
    scannetpp_camera: str = "iphone",
) -> ScanNetScene:
    """The reader of the scan folder's format (:func:`detect_format`); ScanNet options apply to ScanNet formats,
    ``scannetpp_camera`` (``iphone`` | ``dslr``) to ScanNet++."""
    fmt = detect_format(scene_dir, scene_id)
    if fmt == "scannet-sens":
        from loc3r.data.scannet_sens import SensScene

        return SensScene(scene_dir, scene_id, axis_alignment=axis_alignment, scene_meta=scene_meta,
                         scans_root=scans_root, report=report)  # fmt: skip
    if fmt == "scannetpp":
        from loc3r.data.scannetpp import ScanNetppScene

        return ScanNetppScene(scene_dir, scene_id, camera=scannetpp_camera, report=report)  # type: ignore[arg-type]
    if fmt == "arkitscenes":
        from loc3r.data.arkitscenes import ARKitScenesScene

        return ARKitScenesScene(scene_dir, scene_id, report=report)
    return ScanNetScene(scene_dir, scene_id, axis_alignment=axis_alignment, scene_meta=scene_meta,
                        scans_root=scans_root, depth_scale=depth_scale, report=report)  # fmt: skip


class CaptureFrameSource(ScanNetFrameSource):
    """:class:`~loc3r.data.scannet.ScanNetFrameSource` whose scenes may be in any format of :func:`open_scan`."""

    def __init__(self, *args: Any, scannetpp_camera: str = "iphone", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scannetpp_camera = scannetpp_camera

    def scene(self, scene_id: str) -> ScanNetScene:
        if detect_format(self.root / scene_id, scene_id) == "sensreader":
            return super().scene(scene_id)
        return open_scan(
            self.root / scene_id,
            scene_id,
            report=self.report,
            scene_meta=self.scene_meta,
            scans_root=self.scans_root,
            axis_alignment="auto" if self.use_axis_alignment else None,
            scannetpp_camera=self.scannetpp_camera,
        )
