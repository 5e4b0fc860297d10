"""Writing a SynthRooms dataset to disk in the real datasets' formats (resumable, parallel, atomic).

Output directory layout (``loc3r synth --out DIR``)
====================================================

::

    DIR/
      synthrooms.json                      index (see below) — written last; lists the finished scenes
      scans/<scene_id>/                    one video = one "scan", ScanNet SensReader export layout:
        color/<i>.jpg                      RGB, i = 0..T-1 (sRGB JPEG, quality 92)
        depth/<i>.png                      uint16 depth in millimetres, 0 = invalid (z-depth, not ray length)
        instance/<i>.png                   uint16 instance id per pixel: 0 = room shell (floor/walls/ceiling),
                                           k >= 1 = the object with instance_id k in meta_info.json
        pose/<i>.txt                       4x4 camera-to-world, OpenCV camera axes, world z up (metres)
        intrinsic/intrinsic_color.txt      4x4 (K padded), colour and depth share the camera:
        intrinsic/intrinsic_depth.txt        fx = fy, cx = W/2, cy = H/2, pixel centres at +0.5
        intrinsic/extrinsic_color.txt      4x4 identity
        intrinsic/extrinsic_depth.txt      4x4 identity
        video.mp4                          the T frames as H.264 (4 fps), unless --no-video
        meta_info.json                     {scene_id: entry}: the layout, VSI-Bench meta_info format
                                           (see loc3r.synthrooms.meta_info; exact boxes + instance ids)
        sqa3d.json                         this scene's SQA3D records {"questions": [...], "annotations": [...]}
        vsibench.json                      this scene's VSI-Bench records (no "id" yet)
        scene.json                         per-scene summary + settings fingerprint (written last in the
                                           temp dir; the directory only gets its final name when complete)
      sqa3d/v1_balanced_questions_<split>_scannetv2.json     SQA3D file pair per split (joined by
      sqa3d/v1_balanced_sqa_annotations_<split>_scannetv2.json  question_id), see "SQA3D poses" below
      sqa3d/answer_dict.json               [answer -> class, class -> answer] from the *train* answers
      vsibench/<split>.jsonl               VSI-Bench records {id, dataset: "synthrooms", scene_name,
                                           question_type, question, options, ground_truth}
      vsibench/synthrooms/<scene_id>.mp4   the videos at VSI-Bench's <dataset>/<scene_name>.mp4 (hard links)
      meta_info/synthrooms_meta_info_<split>.json   the layouts of a split, {scene_id: entry}
      beacon3d/<split>/metadata_synthrooms_qa.json  Beacon3D QA in Beacon3D's format (per object: grounding
      beacon3d/<split>/synthrooms_qa.json           texts + 3 tagged questions; ScanQA-format records;
      beacon3d/<split>/obj_id_to_class.json         instance id -> category), see loc3r.synthrooms.beacon3d

Splits (by room): ``train``, ``val``, ``test`` and ``test_novel_view``. Room ``synthNNNNN`` is rendered
as scan ``synthNNNNN_00`` with a hand-held walk; each *test* room is rendered a second time as
``synthNNNNN_01`` with a novel-viewpoint trajectory (:mod:`loc3r.synthrooms.trajectory`) — the same
room, layout and objects, so the test/test_novel_view difference is the viewpoint alone (like ScanNet's
``sceneXXXX_00``/``_01`` rescans). Layouts read from ``--layouts FILE`` keep their file keys as room id.

The index ``synthrooms.json``::

    {"format": "synthrooms", "version": 1, "loc3r_version": ..., "complete": true,
     "settings": {...generator settings...}, "fingerprint": "<sha256 of the settings>",
     "splits": {"train": [scene_id, ...], "val": [...], "test": [...], "test_novel_view": [...]},
     "scenes": {scene_id: {"split", "room_id", "trajectory", "num_frames", "width", "height",
                           "num_objects", "room_area", "num_situations", "num_sqa3d_questions",
                           "num_vsibench_questions"}},
     "failed": {scene_id: "error message"}, "files": {...relative paths...}}

SQA3D poses (our files differ from real SQA3D here!)
----------------------------------------------------
``position {x, y, z}`` is in **our world frame** (metres, z = 0 on the floor, the frame of
``pose/<i>.txt`` and ``meta_info.json``); ``rotation {_x, _y, _z, _w}`` is the quaternion of the rotation
about +z by the agent's world yaw θ: ``(0, 0, sin(θ/2), cos(θ/2))``, and the agent faces that rotation's
**local +x** axis. Real SQA3D stores positions in a bounding-box-centred raw-mesh frame with the agent
facing local -x; the SQA3D loader reads our files with ``convention="loc3r_world"``.

Resumability and atomicity
--------------------------
Each scan is written into ``scans/.tmp.<scene_id>.<pid>`` and renamed to ``scans/<scene_id>`` with
``os.replace`` only when every file is written (``--fsync`` also flushes them to disk first), so a
killed run or a full disk never leaves a directory that looks finished; leftover ``.tmp.*`` directories
are deleted by the next run. A re-run skips scans whose ``scene.json`` carries the same settings
fingerprint and refuses (:class:`DatasetError`) to mix settings in one directory. One run at a time per
directory (an ``flock`` on ``DIR/.synthrooms.lock``). The split-level files and the index are
rebuilt from the per-scan files at the end of every run (atomically).

Determinism: every room and every scan draws from its own ``numpy.random.SeedSequence((seed, room
index[, scan]))``, so the output does not depend on ``--workers`` or on which scans were resumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from loc3r.core.geometry import camera_center
from loc3r.core.io import read_json, write_json, write_jsonl
from loc3r.data.scannet import _as_4x4
from loc3r.data.schema import SceneLayout
from loc3r.synthrooms.formats import FORMATS, depth_mm, encode_h264, write_capture

SYNTH_VERSION = 3  # 2: situations name only objects seen in the video; 3: wardrobes look like wardrobes
INDEX_NAME = "synthrooms.json"
SPLITS = ("train", "val", "test", "test_novel_view")
#: extra split name of each ``SynthSettings.extra_splits`` kind (scan numbers 2 and 3 of a test room)
EXTRA_SPLITS = {"image": "test_image", "rig": "test_rig"}
#: the camera rig of ``test_rig``: (name, yaw of the camera relative to the rig's forward direction, radians)
RIG_CAMERAS = (("front", 0.0), ("left", np.pi / 3), ("right", -np.pi / 3))
DATASET_NAME = "synthrooms"
_SCENE_FILE = "scene.json"
_LOCK_NAME = ".synthrooms.lock"
_TMP_PREFIX = ".tmp."
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_QID_STRIDE = 10_000  # question ids: (room_index * 10 + scan) * _QID_STRIDE + k


class DatasetError(RuntimeError):
    """The output directory or the generator settings are inconsistent (names the directory / scene)."""


@dataclass(frozen=True)
class SynthSettings:
    """Generator settings; everything that changes the output is part of the fingerprint."""

    num_scenes: int | None = 10  # rooms; with a layouts file: None = all of the file's rooms
    frames: int = 32
    width: int = 128
    height: int = 128
    hfov_deg: float = 60.0
    seed: int = 0
    min_objects: int = 6
    max_objects: int = 14
    min_side: float = 3.0
    max_side: float = 10.0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    novel_view: bool = True
    situations_per_scene: int = 8
    questions_per_situation: int = 4
    vsi_questions_per_type: int = 2
    layouts_file: str | None = None
    layouts_sha256: str | None = None
    shadows: bool = True
    write_video: bool = True
    jpeg_quality: int = 92
    min_visible_pixels: int = 0  # 0 = max(4, 0.2 % of the image): pixels for an object to count as seen
    category_colors: bool = False  # one colour per object category (SceneConfig.category_colors)
    #: extra test splits of the test rooms (new scans; the existing splits are generated exactly as without them):
    #: "image" -> ``test_image`` (one still image per room), "rig" -> ``test_rig`` (a front/left/right camera rig)
    extra_splits: tuple[str, ...] = ()
    #: how each scan's frames are written: "sensreader" (ScanNet's SensReader export, the default) or a raw capture
    #: format of :mod:`loc3r.synthrooms.formats` ("scannet-sens", "scannetpp", "arkitscenes")
    capture_format: str = "sensreader"
    #: how the camera films a room (``trajectory.CAMERA_POLICIES``): "walk" (hand-held walks) or "frame_objects"
    camera_policy: str = "walk"
    #: the camera holds each view for this many consecutive frames (``trajectory.sample_trajectory``): 2 makes every
    #: Qwen2.5-VL vision token (which fuses 2 consecutive frames) show one view
    hold_frames: int = 1

    def __post_init__(self) -> None:
        if self.capture_format not in FORMATS:
            raise ValueError(f"unknown capture format {self.capture_format!r}; expected one of {FORMATS}")
        if self.capture_format != "sensreader" and self.extra_splits:
            raise ValueError("the image / rig extra splits are written as SensReader exports only (format sensreader)")
        if self.camera_policy != "walk":
            from loc3r.synthrooms.trajectory import CAMERA_POLICIES

            if self.camera_policy not in CAMERA_POLICIES:
                raise ValueError(f"unknown camera policy {self.camera_policy!r}; expected one of {CAMERA_POLICIES}")
        if self.num_scenes is not None and self.num_scenes < 1:
            raise ValueError(f"num_scenes must be >= 1, got {self.num_scenes}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, got {self.frames}")
        if self.hold_frames < 1:
            raise ValueError(f"hold_frames must be >= 1, got {self.hold_frames}")
        counts = (self.situations_per_scene, self.questions_per_situation, self.vsi_questions_per_type)
        if min(counts) < 0:
            raise ValueError(f"situation / question counts must be >= 0, got {counts}")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.width}x{self.height}")
        if self.write_video and (self.width % 2 or self.height % 2):
            raise ValueError(
                f"the H.264 video needs an even image size, got {self.width}x{self.height} "
                "(use an even size or --no-video)"
            )
        if not (
            0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1
        ):
            raise ValueError(
                f"val/test fractions must be in [0, 1) and sum below 1, got {self.val_fraction}, {self.test_fraction}"
            )
        unknown = sorted(set(self.extra_splits) - set(EXTRA_SPLITS))
        if unknown:
            raise ValueError(f"unknown extra split(s) {unknown}; expected some of {sorted(EXTRA_SPLITS)}")
        if self.layouts_file is None and self.num_scenes is None:
            raise ValueError("num_scenes is required unless a layouts file is given")

    @property
    def scene_config(self):  # -> SceneConfig (import kept local: scene.py imports shapely)
        from loc3r.synthrooms.scene import SceneConfig

        return SceneConfig(
            min_objects=self.min_objects,
            max_objects=self.max_objects,
            min_side=self.min_side,
            max_side=self.max_side,
            category_colors=self.category_colors,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.extra_splits:  # keep the fingerprint of every dataset generated before extra splits existed
            out.pop("extra_splits")
        else:
            out["extra_splits"] = sorted(self.extra_splits)
        if self.capture_format == "sensreader":  # same fingerprint as before capture formats existed
            out.pop("capture_format")
        if self.camera_policy == "walk":  # and of every dataset generated before camera policies existed
            out.pop("camera_policy")
        if self.hold_frames == 1:  # and before held views existed
            out.pop("hold_frames")
        return out

    @property
    def splits(self) -> tuple[str, ...]:
        return SPLITS + tuple(EXTRA_SPLITS[k] for k in sorted(self.extra_splits))

    def fingerprint(self) -> str:
        blob = json.dumps({"version": SYNTH_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def min_pixels(self) -> int:
        return self.min_visible_pixels or max(4, int(0.002 * self.width * self.height))


@dataclass
class SceneJob:
    """One scan to write: which room, which trajectory family, which split."""

    scene_id: str
    room_id: str
    room_index: int
    scan: int  # 0 = walk, 1 = novel-view rescan
    split: str
    trajectory: str
    layout: SceneLayout | None = None  # given for layouts read from a file; generated otherwise


@dataclass
class DatasetSummary:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    index: dict[str, Any] = field(default_factory=dict)


# --- Planning ---


def _split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    if test_fraction > 0 and n >= 2:
        n_test = max(n_test, 1)
    if val_fraction > 0 and n >= 3:
        n_val = max(n_val, 1)
    while n_test + n_val >= n and n_val > 0:
        n_val -= 1
    while n_test >= n and n_test > 0:
        n_test -= 1
    return n_val, n_test


def plan_jobs(settings: SynthSettings, layouts: list[SceneLayout] | None = None) -> list[SceneJob]:
    """All scans of the dataset, in a fixed order (rooms by index; a room's walk before its rescan).

    Rooms are assigned to splits by a permutation drawn from ``seed``: the first ``test`` rooms go to test,
    the next to val, the rest to train (each non-empty split gets >= 1 room when there are enough rooms).
    """
    if layouts is not None:
        if settings.num_scenes is not None:
            layouts = layouts[: settings.num_scenes]
        room_ids = [layout.scene_id for layout in layouts]
        for rid in room_ids:
            if not _ID_RE.match(rid):
                raise DatasetError(
                    f"layout scene id {rid!r} is not usable as a directory name (letters, digits, '_', '.', '-')"
                )
        if len(set(room_ids)) != len(room_ids):
            raise DatasetError("duplicate scene ids in the layouts file")
    else:
        room_ids = [f"synth{i:05d}" for i in range(int(settings.num_scenes or 0))]
    n = len(room_ids)
    if n == 0:
        raise DatasetError("no rooms to generate")
    n_val, n_test = _split_counts(n, settings.val_fraction, settings.test_fraction)
    perm = np.random.default_rng(np.random.SeedSequence([settings.seed, 0x5A17])).permutation(n)
    split_of = {}
    for rank, i in enumerate(perm):
        split_of[int(i)] = "test" if rank < n_test else ("val" if rank < n_test + n_val else "train")
    jobs = []
    for i, rid in enumerate(room_ids):
        layout = layouts[i] if layouts is not None else None
        jobs.append(SceneJob(f"{rid}_00", rid, i, 0, split_of[i], "walk", layout))
        rescans = (settings.novel_view, "image" in settings.extra_splits, "rig" in settings.extra_splits)
        for scan, (wanted, kind) in enumerate(zip(rescans, ("novel_view", "image", "rig"), strict=True), start=1):
            if split_of[i] == "test" and wanted:
                jobs.append(SceneJob(f"{rid}_{scan:02d}", rid, i, scan, f"test_{kind}", kind, layout))
    return jobs


# --- One scan ---


def sqa3d_rotation(yaw: float) -> dict[str, float]:
    """The SQA3D-style quaternion ``{_x, _y, _z, _w}`` of the rotation about +z by ``yaw`` (agent faces its
    local +x; see the module docstring — real SQA3D's agents face local -x)."""
    return {"_x": 0.0, "_y": 0.0, "_z": float(np.sin(yaw / 2.0)), "_w": float(np.cos(yaw / 2.0))}


def _room_layout(job: SceneJob, settings: SynthSettings) -> tuple[SceneLayout, Any]:
    from loc3r.synthrooms.mesh import RoomStyle
    from loc3r.synthrooms.scene import generate_layout

    room_seq = np.random.SeedSequence([settings.seed, job.room_index])
    layout_ss, style_ss = room_seq.spawn(2)
    if job.layout is not None:
        base = job.layout
        style = RoomStyle.for_scene(job.room_id)
    else:
        base = generate_layout(job.room_id, np.random.default_rng(layout_ss), settings.scene_config)
        style = RoomStyle.sample(np.random.default_rng(style_ss))
    layout = SceneLayout(job.scene_id, np.asarray(base.floor_polygon), float(base.height), list(base.objects))
    return layout, style


@dataclass
class RenderedScene:
    """Everything of one scan before it is written."""

    layout: SceneLayout
    poses: np.ndarray  # [T, 4, 4]
    intrinsic: np.ndarray  # [3, 3]
    rgb: np.ndarray  # [T, H, W, 3] uint8
    depth: np.ndarray  # [T, H, W] float32 metres
    instance: np.ndarray  # [T, H, W] uint16
    first_seen_frame: dict[int, int]
    situations: list[Any]
    vsi_records: list[dict[str, Any]]
    capture: dict[str, Any] | None = None  # ``capture.json`` of a still image / camera rig scan (None: video)


def render_scene(job: SceneJob, settings: SynthSettings) -> RenderedScene:
    """Build the room, sample the trajectory, render every frame, generate situations and questions."""
    from loc3r.synthrooms.mesh import build_scene_mesh
    from loc3r.synthrooms.questions import generate_situations, generate_vsi_questions
    from loc3r.synthrooms.render import SceneRenderer, make_intrinsic
    from loc3r.synthrooms.trajectory import sample_trajectory

    layout, style = _room_layout(job, settings)
    traj_ss, sit_ss, vsi_ss = np.random.SeedSequence([settings.seed, job.room_index, 1 + job.scan]).spawn(3)
    capture = None
    if job.trajectory in ("image", "rig"):
        poses, capture = capture_poses(job.trajectory, layout, np.random.default_rng(traj_ss), settings.frames)
    else:
        poses = sample_trajectory(
            job.trajectory, layout, np.random.default_rng(traj_ss), settings.frames, policy=settings.camera_policy,
            hfov_deg=settings.hfov_deg, aspect=settings.width / settings.height, hold_frames=settings.hold_frames,
        ).poses  # fmt: skip
    renderer = SceneRenderer(build_scene_mesh(layout, style), shadows=settings.shadows)
    intrinsic = make_intrinsic(settings.width, settings.height, settings.hfov_deg)
    t, h, w = len(poses), settings.height, settings.width
    rgb = np.empty((t, h, w, 3), np.uint8)
    depth = np.empty((t, h, w), np.float32)
    instance = np.empty((t, h, w), np.uint16)
    for i, pose in enumerate(poses):
        if i and np.array_equal(pose, poses[i - 1]):  # a held view (hold_frames): the same image again
            rgb[i], depth[i], instance[i] = rgb[i - 1], depth[i - 1], instance[i - 1]
            continue
        frame = renderer.render(pose, intrinsic, w, h)
        rgb[i], depth[i], instance[i] = frame.rgb, frame.depth, frame.instance
    first_seen: dict[int, int] = {}
    max_id = max((o.instance_id for o in layout.objects), default=0)
    for i in range(t):
        counts = np.bincount(instance[i].ravel(), minlength=max_id + 1)
        for iid in np.flatnonzero(counts[1:] >= settings.min_pixels) + 1:  # 0 = the room shell
            first_seen.setdefault(int(iid), i)
    # only objects the video shows may be named: a situation that names an object outside the clip cannot be
    # grounded from the video (measured at 8 frames before this: only 44 % of situations had every named object
    # in view, and no variant localized above chance)
    situations = generate_situations(
        layout,
        np.random.default_rng(sit_ss),
        settings.situations_per_scene,
        settings.questions_per_situation,
        visible_instances=set(first_seen),
    )
    vsi = generate_vsi_questions(
        layout, np.random.default_rng(vsi_ss), first_seen, camera_center(poses), settings.vsi_questions_per_type
    )
    return RenderedScene(layout, poses, intrinsic, rgb, depth, instance, first_seen, situations, vsi, capture)


def rig_extrinsic(yaw: float, offset: float = 0.05) -> np.ndarray:
    """Camera-to-rig pose (OpenCV axes) of a camera turned by ``yaw`` to the left about the rig's up axis (-y of the
    OpenCV rig frame) and moved ``offset`` metres forward along its own view, as on a real multi-camera head."""
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # rotation about -y by yaw (z turns to -x = left)
    ext = np.eye(4)
    ext[:3, :3] = rot
    ext[:3, 3] = rot[:, 2] * offset
    return ext


def capture_poses(
    kind: str, layout: SceneLayout, rng: np.random.Generator, frames: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Camera poses of a still image (``kind="image"``: the middle pose of a walk) or a camera rig (``"rig"``:
    :data:`RIG_CAMERAS` mounted on a walk of ``max(1, frames // 3)`` time steps, frames interleaved per time step:
    ``t0 front, t0 left, t0 right, t1 front, ...``), and the ``capture.json`` record describing it."""
    from loc3r.synthrooms.trajectory import sample_trajectory

    if kind == "image":
        walk = sample_trajectory("walk", layout, rng, max(frames, 2)).poses
        return walk[len(walk) // 2][None], {"kind": "image"}
    steps = max(1, frames // len(RIG_CAMERAS))
    walk = sample_trajectory("walk", layout, rng, max(steps, 2)).poses[:steps]
    extrinsics = [rig_extrinsic(yaw) for _, yaw in RIG_CAMERAS]
    poses = np.stack([pose @ ext for pose in walk for ext in extrinsics])
    capture = {
        "kind": "rig",
        "steps": steps,
        "cameras": [
            {"name": name, "extrinsic": ext.tolist()} for (name, _), ext in zip(RIG_CAMERAS, extrinsics, strict=True)
        ],
    }
    return poses, capture


def _write_text_matrix(path: Path, mat: np.ndarray, fmt: str = "%.9f") -> None:
    np.savetxt(path, np.asarray(mat, dtype=np.float64), fmt=fmt)


# x264 instruction-set names of the /proc/cpuinfo flags, AVX-512 left out on purpose (see _write_video)
# fmt: off
_X264_CPU_FLAGS = (
    ("MMX2", ("sse",)), ("SSE", ("sse",)), ("SSE2", ("sse2",)), ("SSE3", ("pni",)), ("SSSE3", ("ssse3",)),
    ("SSE4.1", ("sse4_1",)), ("SSE4.2", ("sse4_2",)), ("AVX", ("avx",)), ("FMA3", ("fma",)), ("BMI1", ("bmi1",)),
    ("BMI2", ("bmi2",)), ("AVX2", ("avx2",)),
)
# fmt: on


def x264_asm_without_avx512(cpuinfo: str | None = None) -> str | None:
    """x264's ``asm=`` value listing the CPU's SIMD sets up to AVX2 (never AVX-512), or None when the CPU does
    not report AVX-512 (nothing to cap: x264's own detection is used) or its flags cannot be read."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    if not any(f.startswith("avx512") for f in flags):
        return None
    return ",".join(name for name, needs in _X264_CPU_FLAGS if all(n in flags for n in needs))


def _write_video(path: Path, frames: np.ndarray, fps: int = 4) -> None:
    """H.264 (libx264, CRF 18, yuv420p) of ``frames`` (T, H, W, 3) uint8 at ``fps``; the same frames give the same
    bytes on the same machine.

    Two sources of varying bytes are closed here:

    * x264's automatic thread count follows the CPUs the process may use (machine, cgroup, affinity), and the
      bitstream depends on it (frame-threaded motion search, the options string in the SEI): one encoder thread.
      Scenes are already encoded in parallel by the worker processes.
    * x264's AVX-512 code: on a CPU with AVX-512, encoding the same frames 60 times in one process (with other
      clips encoded in between) gave 2-4 different files (decoded pixels differ by up to 34/255), while the
      YUV planes handed to the encoder were identical every time. With x264 limited to AVX2 (``asm=`` below)
      or to plain C (``no-asm``) all 120 of 120 encodes were identical, so an AVX-512 routine reads memory whose
      content varies (outside the frame it was given). Capping at AVX2 costs no measurable speed (``no-asm``
      was 4x slower). ``tests/synth/test_video_determinism.py`` repeats the encode and compares the bytes.
    """
    options = {"crf": "18", "threads": "1"}
    asm = x264_asm_without_avx512()
    if asm is not None:
        options["x264-params"] = f"asm={asm}"
    encode_h264(path, frames, fps, options)


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(dirpath, name))
        _fsync(dirpath)


def _sqa3d_records(job: SceneJob, situations: list[Any]) -> tuple[list[dict], list[dict]]:
    questions, annotations = [], []
    k = 0
    base = (job.room_index * 10 + job.scan) * _QID_STRIDE
    for sit in situations:
        pos = np.asarray(sit.position, dtype=np.float64)
        for q in sit.questions:
            if k >= _QID_STRIDE:
                raise DatasetError(f"scene {job.scene_id!r}: more than {_QID_STRIDE} questions")
            qid = base + k
            k += 1
            questions.append(
                {
                    "scene_id": job.scene_id,
                    "situation": sit.text,
                    "alternative_situation": [],
                    "question": q.question,
                    "question_id": qid,
                }
            )
            annotations.append(
                {
                    "scene_id": job.scene_id,
                    "question_id": qid,
                    "question_type": q.question_type,
                    "answer_type": q.answer_type,
                    "answers": [{"answer": q.answer, "answer_confidence": "yes", "answer_id": 1}],
                    "position": {"x": float(pos[0]), "y": float(pos[1]), "z": float(pos[2])},
                    "rotation": sqa3d_rotation(float(sit.yaw)),
                    "referenced_instances": [int(i) for i in sit.referenced_instances],
                    "anchor_instances": [int(i) for i in sit.anchor_instances],
                    "faced_instances": [int(i) for i in sit.faced_instances],
                    **{f"{sector}_instances": [int(i) for i in ids] for sector, ids in sit.side_instances.items()},
                }
            )
    return questions, annotations


def _write_sensreader_frames(tmp: Path, scene: RenderedScene, settings: SynthSettings) -> None:
    """The scan's frames as ScanNet's SensReader export (the default format)."""
    for sub in ("color", "depth", "pose", "intrinsic"):
        (tmp / sub).mkdir(parents=True)
    for i in range(len(scene.rgb)):
        Image.fromarray(scene.rgb[i]).save(tmp / "color" / f"{i}.jpg", quality=settings.jpeg_quality)
        Image.fromarray(depth_mm(scene.depth[i])).save(tmp / "depth" / f"{i}.png")
        _write_text_matrix(tmp / "pose" / f"{i}.txt", scene.poses[i])
    for name in ("intrinsic_color", "intrinsic_depth"):
        _write_text_matrix(tmp / "intrinsic" / f"{name}.txt", _as_4x4(scene.intrinsic), fmt="%.6f")
    for name in ("extrinsic_color", "extrinsic_depth"):
        _write_text_matrix(tmp / "intrinsic" / f"{name}.txt", np.eye(4), fmt="%.6f")


def write_scene(
    job: SceneJob, settings: SynthSettings, out_dir: str | os.PathLike, fsync: bool = False
) -> dict[str, Any]:
    """Render and write one scan atomically into ``out_dir/scans/<scene_id>``; returns its summary."""
    from loc3r.synthrooms.meta_info import layout_to_entry

    scans = Path(out_dir) / "scans"
    final = scans / job.scene_id
    scene = render_scene(job, settings)
    tmp = scans / f"{_TMP_PREFIX}{job.scene_id}.{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / "instance").mkdir(parents=True)
        for i in range(len(scene.rgb)):
            Image.fromarray(scene.instance[i]).save(tmp / "instance" / f"{i}.png")
        if settings.capture_format != "sensreader":  # a raw capture format (loc3r.synthrooms.formats)
            write_capture(settings.capture_format, tmp, job.scene_id, scene.rgb, scene.depth, scene.poses,
                          scene.intrinsic, jpeg_quality=settings.jpeg_quality)  # fmt: skip
        else:
            _write_sensreader_frames(tmp, scene, settings)
        if settings.write_video:
            _write_video(tmp / "video.mp4", scene.rgb)
        if scene.capture is not None:
            write_json(tmp / "capture.json", scene.capture, indent=1)
        write_json(tmp / "meta_info.json", {job.scene_id: layout_to_entry(scene.layout)}, indent=1)
        questions, annotations = _sqa3d_records(job, scene.situations)
        write_json(tmp / "sqa3d.json", {"questions": questions, "annotations": annotations}, indent=1)
        vsi = [{"dataset": DATASET_NAME, "scene_name": job.scene_id, **r} for r in scene.vsi_records]
        write_json(tmp / "vsibench.json", vsi, indent=1)
        summary = {
            "scene_id": job.scene_id,
            "split": job.split,
            "room_id": job.room_id,
            "trajectory": job.trajectory,
            "num_frames": len(scene.rgb),
            "width": settings.width,
            "height": settings.height,
            "num_objects": len(scene.layout.objects),
            "room_area": layout_to_entry(scene.layout)["room_size"],
            "num_situations": len(scene.situations),
            "num_sqa3d_questions": len(questions),
            "num_vsibench_questions": len(vsi),
            "first_seen_frame": {str(k): v for k, v in sorted(scene.first_seen_frame.items())},
            "fingerprint": settings.fingerprint(),
            "complete": True,
        }
        write_json(tmp / _SCENE_FILE, summary, indent=1)
        if fsync:
            _fsync_tree(tmp)
        if final.exists():
            raise DatasetError(f"{final}: appeared while it was being written (two runs on one directory?)")
        os.replace(tmp, final)
        if fsync:
            _fsync(scans)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _scene_done(scans: Path, scene_id: str, fingerprint: str) -> dict[str, Any] | None:
    """The summary of a finished scan, None if absent; DatasetError if written with other settings."""
    path = scans / scene_id / _SCENE_FILE
    if not (scans / scene_id).is_dir():
        return None
    try:
        with open(path) as fh:
            summary = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(
            f"{scans / scene_id}: exists but {_SCENE_FILE} is unreadable ({err}); it was not "
            "written by this tool — remove it"
        ) from err
    if summary.get("fingerprint") != fingerprint:
        raise DatasetError(
            f"{scans / scene_id}: written with different generator settings "
            f"({summary.get('fingerprint')} != {fingerprint}); use a new --out directory"
        )
    return summary


# --- Whole dataset ---


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / _LOCK_NAME, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise DatasetError(f"{out_dir}: another 'loc3r synth' run is writing this directory") from err
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _worker(job: SceneJob, settings: SynthSettings, out_dir: str, fsync: bool) -> tuple[str, dict | None, str | None]:
    try:
        return job.scene_id, write_scene(job, settings, out_dir, fsync=fsync), None
    except Exception as err:  # reported per scene; the run continues with the others
        return job.scene_id, None, f"{type(err).__name__}: {err}"


#: The fields of a scan's ``scene.json`` that the index leaves out (it lists the others, module docstring).
_SCAN_ONLY_FIELDS = ("scene_id", "first_seen_frame", "fingerprint", "complete")


def _gather_scans(
    out_dir: Path, settings: SynthSettings, jobs: list[SceneJob], summaries: dict[str, dict]
) -> dict[str, dict[str, Any]]:
    """Per split: its scene ids and the concatenated records of its finished scans (SQA3D questions and
    annotations, VSI-Bench records, meta_info); links (or copies) the videos into ``vsibench/``."""
    scans = out_dir / "scans"
    per_split = {s: {"scenes": [], "sqa_q": [], "sqa_a": [], "vsi": [], "meta": {}} for s in settings.splits}
    video_dir = out_dir / "vsibench" / DATASET_NAME
    if settings.write_video:
        video_dir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        if job.scene_id not in summaries:
            continue
        d = scans / job.scene_id
        split = per_split[job.split]
        split["scenes"].append(job.scene_id)
        rec = read_json(d / "sqa3d.json")
        split["sqa_q"] += rec["questions"]
        split["sqa_a"] += rec["annotations"]
        split["vsi"] += read_json(d / "vsibench.json")
        split["meta"].update(read_json(d / "meta_info.json"))
        if settings.write_video:
            link = video_dir / f"{job.scene_id}.mp4"
            if not link.exists():
                try:
                    os.link(d / "video.mp4", link)
                except OSError:
                    shutil.copyfile(d / "video.mp4", link)
    return per_split


def _write_split_files(
    out_dir: Path, settings: SynthSettings, per_split: dict[str, dict[str, Any]], summaries: dict[str, dict]
) -> None:
    """The split-level files: SQA3D questions / annotations, VSI-Bench records (ids numbered across splits),
    meta_info, Beacon3D, and the SQA3D answer dictionary of the train split."""
    next_id = 0
    for split in settings.splits:
        gathered = per_split[split]
        header = {
            "info": {
                "description": "SynthRooms situated questions (SQA3D format; positions in the "
                "loc3r world frame, agent faces local +x)",
                "version": SYNTH_VERSION,
            },
            "license": "same as loc3r",
            "data_type": "synthrooms",
            "data_subtype": split,
            "task_type": "SQA3D",
        }
        questions, annotations = (
            {**header, "questions": gathered["sqa_q"]},
            {**header, "annotations": gathered["sqa_a"]},
        )
        write_json(out_dir / "sqa3d" / f"v1_balanced_questions_{split}_scannetv2.json", questions, indent=1)
        write_json(out_dir / "sqa3d" / f"v1_balanced_sqa_annotations_{split}_scannetv2.json", annotations, indent=1)
        records = [{"id": next_id + k, **r} for k, r in enumerate(gathered["vsi"])]
        write_jsonl(out_dir / "vsibench" / f"{split}.jsonl", records)
        next_id += len(records)
        write_json(out_dir / "meta_info" / f"{DATASET_NAME}_meta_info_{split}.json", gathered["meta"], indent=1)
        _write_beacon3d(out_dir / "beacon3d" / split, gathered["meta"], summaries, settings.seed)
    answers = sorted({a["answers"][0]["answer"] for a in per_split["train"]["sqa_a"]})
    answer_dict = [{a: i for i, a in enumerate(answers)}, {str(i): a for i, a in enumerate(answers)}]
    write_json(out_dir / "sqa3d" / "answer_dict.json", answer_dict, indent=1)


def _finalize(
    out_dir: Path, settings: SynthSettings, jobs: list[SceneJob], summaries: dict[str, dict], failed: dict[str, str]
) -> dict[str, Any]:
    """Rebuild the split-level files and the index from the per-scan files."""
    import loc3r

    per_split = _gather_scans(out_dir, settings, jobs, summaries)
    _write_split_files(out_dir, settings, per_split, summaries)
    scenes = {
        job.scene_id: {k: v for k, v in summaries[job.scene_id].items() if k not in _SCAN_ONLY_FIELDS}
        for job in jobs
        if job.scene_id in summaries
    }
    index = {
        "format": DATASET_NAME,
        "version": SYNTH_VERSION,
        "loc3r_version": loc3r.__version__,
        "complete": not failed and len(scenes) == len(jobs),
        "settings": settings.to_dict(),
        "fingerprint": settings.fingerprint(),
        "splits": {split: per_split[split]["scenes"] for split in settings.splits},
        "scenes": scenes,
        "failed": failed,
        "files": {
            "scans": "scans/<scene_id>",
            "sqa3d_questions": "sqa3d/v1_balanced_questions_<split>_scannetv2.json",
            "sqa3d_annotations": "sqa3d/v1_balanced_sqa_annotations_<split>_scannetv2.json",
            "sqa3d_answer_dict": "sqa3d/answer_dict.json",
            "vsibench": "vsibench/<split>.jsonl",
            "vsibench_videos": f"vsibench/{DATASET_NAME}/<scene_id>.mp4" if settings.write_video else None,
            "meta_info": f"meta_info/{DATASET_NAME}_meta_info_<split>.json",
            "beacon3d_metadata": f"beacon3d/<split>/metadata_{DATASET_NAME}_qa.json",
            "beacon3d_qa": f"beacon3d/<split>/{DATASET_NAME}_qa.json",
            "beacon3d_obj_id_to_class": "beacon3d/<split>/obj_id_to_class.json",
        },
    }
    write_json(out_dir / INDEX_NAME, index, indent=1)
    return index


def _write_beacon3d(directory: Path, meta: dict[str, Any], summaries: dict[str, dict], seed: int) -> None:
    """The split's rooms as a Beacon3D QA set in Beacon3D's file format (:mod:`loc3r.synthrooms.beacon3d`),
    naming only objects the scan's clip shows."""
    from loc3r.synthrooms.beacon3d import beacon3d_files
    from loc3r.synthrooms.meta_info import layout_from_entry

    layouts = [layout_from_entry(scene_id, entry) for scene_id, entry in meta.items()]
    visible = {scene_id: {int(k) for k in summaries.get(scene_id, {}).get("first_seen_frame", {})} for scene_id in meta}
    metadata, records, classes = beacon3d_files(layouts, seed, visible)
    write_json(directory / f"metadata_{DATASET_NAME}_qa.json", metadata, indent=1)
    write_json(directory / f"{DATASET_NAME}_qa.json", records, indent=1)
    write_json(directory / "obj_id_to_class.json", classes, indent=1)


def generate_dataset(
    out_dir: str | os.PathLike,
    settings: SynthSettings,
    workers: int = 1,
    progress: bool = True,
    fsync: bool = False,
    strict_layouts: bool = False,
    warn: Callable[[str], None] | None = None,
) -> DatasetSummary:
    """Generate (or resume) a SynthRooms dataset in ``out_dir``; see the module docstring for the layout.

    Layouts come from ``settings.layouts_file`` when set (validated up front: a bad file raises
    :class:`~loc3r.synthrooms.meta_info.LayoutError` naming the scene and object), else are generated.
    Scans run in ``workers`` processes. A scan that fails is reported in ``summary.failed`` (and in the
    index) while the others are written.
    """
    from tqdm import tqdm

    from loc3r.synthrooms.meta_info import load_meta_info

    out = Path(out_dir)
    start = time.perf_counter()
    layouts = None
    if settings.layouts_file is not None:
        # a layout file's unknown categories (plain boxes), count mismatches and bad scenes (skipped) are warnings
        # passed to ``warn``; with ``strict_layouts`` the first is a LayoutError
        warnings: list[str] = []
        layouts = load_meta_info(settings.layouts_file, strict=strict_layouts, warnings=warnings)
        for message in warnings if warn is not None else ():
            warn(message)
        digest = hashlib.sha256(Path(settings.layouts_file).read_bytes()).hexdigest()
        if settings.layouts_sha256 not in (None, digest):
            raise DatasetError(
                f"{settings.layouts_file}: content changed (sha256 {digest} != {settings.layouts_sha256})"
            )
        settings = SynthSettings(
            **{
                **settings.to_dict(),
                "layouts_sha256": digest,
                "layouts_file": str(Path(settings.layouts_file).resolve()),
            }
        )
    jobs = plan_jobs(settings, layouts)
    fingerprint = settings.fingerprint()
    summary = DatasetSummary(out_dir=out)
    with _locked(out):
        if (out / INDEX_NAME).exists():
            old = read_index(out)
            if old.get("fingerprint") != fingerprint:
                raise DatasetError(
                    f"{out}: holds a SynthRooms set made with different settings "
                    f"(fingerprint {old.get('fingerprint')} != {fingerprint}); use a new --out"
                )
        scans = out / "scans"
        scans.mkdir(parents=True, exist_ok=True)
        for leftover in scans.glob(f"{_TMP_PREFIX}*"):  # half-written scans of a killed run
            shutil.rmtree(leftover, ignore_errors=True)
        summaries: dict[str, dict] = {}
        todo = []
        for job in jobs:
            done = _scene_done(scans, job.scene_id, fingerprint)
            if done is not None:
                summaries[job.scene_id] = done
                summary.skipped.append(job.scene_id)
            else:
                todo.append(job)
        bar = tqdm(
            total=len(jobs),
            initial=len(jobs) - len(todo),
            desc="synth",
            unit="scene",
            disable=not progress,
            file=sys.stderr,
        )
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                _collect(summary, summaries, *_worker(job, settings, str(out), fsync), bar)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_worker, job, settings, str(out), fsync) for job in todo]
                for fut in as_completed(futures):
                    _collect(summary, summaries, *fut.result(), bar)
        bar.close()
        summary.index = _finalize(out, settings, jobs, summaries, summary.failed)
    summary.seconds = time.perf_counter() - start
    return summary


def _collect(
    summary: DatasetSummary, summaries: dict, scene_id: str, res: dict | None, err: str | None, bar: Any
) -> None:
    if err is not None:
        summary.failed[scene_id] = err
        bar.write(f"synth: scene {scene_id} failed: {err}")
    else:
        summaries[scene_id] = res
        summary.written.append(scene_id)
    bar.update(1)


def read_index(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``synthrooms.json`` index of a generated directory (``DatasetError`` if absent/invalid)."""
    path = Path(out_dir) / INDEX_NAME
    try:
        with open(path) as fh:
            index = json.load(fh)
    except OSError as err:
        raise DatasetError(f"{path}: no SynthRooms index ({err}); run 'loc3r synth --out {out_dir}' first") from err
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: invalid JSON ({err})") from err
    if index.get("format") != DATASET_NAME:
        raise DatasetError(f"{path}: not a SynthRooms index (format {index.get('format')!r})")
    return index
