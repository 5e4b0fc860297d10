"""SQA3D (situated QA + localization) in the loc3r world frame, and back to SQA3D's convention.

Files (DESIGN.md §4): ``v1_balanced_questions_{split}_scannetv2.json`` (``questions[]``) and
``v1_balanced_sqa_annotations_{split}_scannetv2.json`` (``annotations[]``), joined by ``question_id``;
the localization task's ``v1_situations_{split}_scannetv2.json`` + ``v1_localization_annotations_{split}
_scannetv2.json`` (joined by ``situation_id``) or the single-file ``v1_balanced_localization_{split}
_scannetv2.json``.

SQA3D's pose convention — what we verified and where
----------------------------------------------------
The notes of peer projects disagree, so the convention below was established from SQA3D's own code
first, then cross-checked with two peer loaders and with the released records:

1. ``SilongYong/SQA3D utils/visualize_data.py`` (the authors' visualiser of an annotation): loads the
   **raw** ``<scene>_vh_clean_2.ply`` (not axis-aligned), translates it by ``-bs_center`` with
   ``bs_center = (max(v) + min(v)) / 2`` over the mesh vertices, then draws the agent as an arrow whose
   head points to **local -x** (a +z cone rotated by ``[[0,0,-1],[0,1,0],[1,0,0]]`` and moved to
   ``x = -0.15``), rotated by ``R.from_quat([_x, _y, _z, _w])`` (scipy, **xyzw**) and translated to
   ``(position.x, position.y, 0)``.
2. ``SilongYong/SQA3D ScanQA/lib/sepdataset.py`` (the authors' training loader): ``bs_center`` is the
   same bounding-box centre of the raw ``<scene>_vert.npy`` vertices; ``coord = position + bs_center``
   is then multiplied by the full 4x4 ``axisAlignment`` of ``<scene>.txt``; the rotation becomes
   ``A[:3, :3] @ R(q)``. ``utils/localization_metric.py`` reads quaternions as xyzw, takes the yaw as
   ``as_rotvec()[-1]`` and ignores z in the position error; ``assets/dataset.md`` shows ``z = 0`` and a
   pure-yaw quaternion (``_w = cos 0.1, _z = sin 0.1``); ``assets/localization.md``: "rotate the agent
   as described by rotation, then translate by position", unit metre.
3. ``MSR3D/MSR3D data/datasets/scannet.py`` ``transform_situation`` (from the SQA3D/MSQA group):
   ``pos' = A[:3,:3] pos + centre`` with the centre of the *axis-aligned* point cloud's bounding box,
   ``ori' = A[:3,:3] R(q)``, and a commented ``orientation = [-1, 0, 0] @ A[:3,:3].T`` — facing -x.
4. A LEO-derived loader (``data/datasets.py`` ``LeoSQA3D.align_situation`` of an embodied-generalist
   fork): ``pos @ A.T + center`` (centre of the aligned cloud) and ``ori = -ori  # SQA3D annotation
   corresponds to the opposite orientation`` — i.e. LEO's downstream code reads +x as forward and has to
   flip, which again means the annotation's forward is -x. (The official embodied-generalist loader at
   the stored commit does not convert the pose at all.)
5. The released records (``tests/fixtures/sqa3d``, 124 test questions of scene0015_00 / scene0025_00):
   every ``position.z`` is 0, every quaternion is a unit pure-yaw quaternion (``_x = _y = 0``), and the 25
   distinct situation texts each map to exactly one pose.

Where the sources disagree is the centre: the official code uses the bbox centre of the **raw** mesh
(before alignment); LEO/MSR3D use the bbox centre of the **aligned** cloud, which differs whenever the
alignment rotation is not a multiple of 90° (a bounding box does not rotate with the points). We follow
the official code, i.e. the frame in which the annotation tool worked:

    p_raw   = position + c_raw              (c_raw: bbox centre of the raw _vh_clean_2.ply vertices)
    f_raw   = R(q) @ (-1, 0, 0)             (agent forward; R from the xyzw quaternion)
    p_world = A @ [p_raw; 1],  f_world = A[:3, :3] @ f_raw,  yaw = atan2(f_world.y, f_world.x)

``A`` is the scene's ``axisAlignment`` (identity when the scene has none), the same matrix
:class:`loc3r.data.scannet.ScanNetScene` applies to the camera poses, so agent and cameras share one
frame. ``position.z = 0`` puts the agent at the height of the raw bbox centre; z is not used by the BEV
targets nor by the official metric. The inverse (:func:`world_to_sqa3d`) returns a pure-yaw quaternion
``(0, 0, sin(psi/2), cos(psi/2))`` with ``psi = atan2(f_raw) + pi``, for writing predictions that the
official localization script scores.

``c_raw`` comes from a scene-meta JSON the user prepares once (:class:`~loc3r.data.scannet.SceneMetaTable`,
``loc3r.data.scannet.build_scene_meta``), or is computed with trimesh from
``<scans_root>/<scene>/<scene>_vh_clean_2.ply`` when the ScanNet ``scans/`` folder is given. When neither
is available the records still load (QA works without a pose) but their agent pose is None and the
report names the scene, the file it looked for and the field ``position``.

``convention="loc3r_world"`` reads SynthRooms' SQA3D-format files: ``position`` is already in our world
(z = 0) and ``rotation`` is the rotation about +z by the agent's world yaw, agent facing local **+x**.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from loc3r.core.geometry import anchor_frame, wrap_angle
from loc3r.core.io import read_json
from loc3r.data.builders import (
    SceneRecordsDataset,
    cached_or_frame_source,
    log_report,
    report_bad_record,
    scene_meta_table,
    text_field,
)
from loc3r.data.scannet import ScanNetClip, ScanNetFrameSource, SceneMetaTable
from loc3r.data.schema import REFERENT_ROLES, ClipSample, SampleError
from loc3r.data.video import LoadReport, iter_json_records

Convention = Literal["sqa3d", "loc3r_world"]
_LOCAL_FORWARD = {"sqa3d": np.array([-1.0, 0.0, 0.0]), "loc3r_world": np.array([1.0, 0.0, 0.0])}


# --------------------------------------------------------------------------------------------------
# Pose conversion (pure functions)
# --------------------------------------------------------------------------------------------------


def quaternion_xyzw_to_matrix(q: Sequence[float] | np.ndarray, where: str = "rotation") -> np.ndarray:
    """3x3 rotation of a quaternion stored ``(x, y, z, w)`` (scipy / three.js order), normalised first."""
    q = np.asarray(q, dtype=np.float64).reshape(4)  # 4 finite numbers: the reader checked them (_rotation_array)
    norm = float(np.linalg.norm(q))
    if norm < 1e-8:
        raise SampleError(f"{where}: zero quaternion")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def yaw_quaternion_xyzw(yaw: float) -> np.ndarray:
    """Quaternion ``(0, 0, sin(yaw/2), cos(yaw/2))`` of the rotation about +z by ``yaw`` (w >= 0)."""
    yaw = float(wrap_angle(yaw))
    return np.array([0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)])


def sqa3d_to_raw(
    position: Sequence[float] | np.ndarray,
    rotation_xyzw: Sequence[float] | np.ndarray,
    *,
    convention: Convention = "sqa3d",
    mesh_bbox_center: Sequence[float] | np.ndarray | None = None,
    where: str = "record",
) -> tuple[np.ndarray, np.ndarray]:
    """SQA3D pose -> ``(p_raw (3,), forward_raw (3,))`` in the frame the camera poses are stored in.

    ``convention="sqa3d"``: ``p_raw = position + c_raw`` (raw ScanNet mesh frame), forward = ``R(q)(-x)``.
    ``convention="loc3r_world"``: ``p_raw = position``, forward = ``R(q)(+x)``.
    The forward is projected on the floor plane and normalised; a vertical forward is an error.
    """
    pos = np.asarray(position, dtype=np.float64).reshape(3)  # validated by the reader (_position_array)
    rot = quaternion_xyzw_to_matrix(rotation_xyzw, f"{where}: field 'rotation'")
    forward = rot @ _LOCAL_FORWARD[convention]
    forward[2] = 0.0
    norm = float(np.hypot(forward[0], forward[1]))
    if norm < 1e-6:
        raise SampleError(f"{where}: field 'rotation' makes the agent face straight up or down")
    forward /= norm
    if convention == "sqa3d":
        if mesh_bbox_center is None:
            raise SampleError(f"{where}: field 'position' needs the scene's raw mesh bbox centre (mesh_bbox_center)")
        pos = pos + np.asarray(mesh_bbox_center, dtype=np.float64).reshape(3)
    return pos, forward


def raw_to_world(
    p_raw: np.ndarray, forward_raw: np.ndarray, axis_alignment: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Apply the scene's axis alignment: ``p_world = A [p; 1]``, ``yaw = atan2`` of ``A[:3,:3] f``."""
    a = np.eye(4) if axis_alignment is None else np.asarray(axis_alignment, dtype=np.float64)
    p_world = a[:3, :3] @ np.asarray(p_raw, dtype=np.float64) + a[:3, 3]
    f_world = a[:3, :3] @ np.asarray(forward_raw, dtype=np.float64)
    return p_world, float(wrap_angle(math.atan2(f_world[1], f_world[0])))


def sqa3d_to_world(
    position: Sequence[float] | np.ndarray | dict[str, float],
    rotation: Sequence[float] | np.ndarray | dict[str, float],
    *,
    axis_alignment: np.ndarray | None = None,
    mesh_bbox_center: Sequence[float] | np.ndarray | None = None,
    convention: Convention = "sqa3d",
    where: str = "record",
) -> tuple[np.ndarray, float]:
    """SQA3D ``position`` / ``rotation`` (dicts as on disk, or xyz / xyzw arrays) -> world ``(p, yaw)``."""
    pos = _position_array(position, where)
    rot = _rotation_array(rotation, where)
    p_raw, f_raw = sqa3d_to_raw(pos, rot, convention=convention, mesh_bbox_center=mesh_bbox_center, where=where)
    return raw_to_world(p_raw, f_raw, axis_alignment)


def world_to_sqa3d(
    position_world: Sequence[float] | np.ndarray,
    yaw_world: float,
    *,
    axis_alignment: np.ndarray | None = None,
    mesh_bbox_center: Sequence[float] | np.ndarray | None = None,
    convention: Convention = "sqa3d",
) -> tuple[dict[str, float], dict[str, float]]:
    """World position + yaw -> SQA3D ``({"x","y","z"}, {"_x","_y","_z","_w"})``, the inverse of
    :func:`sqa3d_to_world` (exact for SQA3D's own records: z comes back as 0).

    A 2-D position (a BEV prediction mapped to the world) gets the files' ``z = 0`` (axis alignments
    are rotations about z, so x and y do not depend on it); the official metric ignores z anyway.
    """
    a = np.eye(4) if axis_alignment is None else np.asarray(axis_alignment, dtype=np.float64)
    a_inv = np.linalg.inv(a)
    p = np.asarray(position_world, dtype=np.float64).reshape(-1)
    planar = p.shape == (2,)
    if planar:
        p = np.array([p[0], p[1], 0.0])
    if p.shape != (3,) or not np.isfinite(p).all():
        raise SampleError(f"world_to_sqa3d: position must be 2 or 3 finite numbers, got {p.tolist()}")
    p_raw = a_inv[:3, :3] @ p + a_inv[:3, 3]
    f_world = np.array([math.cos(yaw_world), math.sin(yaw_world), 0.0])
    f_raw = a_inv[:3, :3] @ f_world
    psi = math.atan2(f_raw[1], f_raw[0])
    if convention == "sqa3d":
        if mesh_bbox_center is None:
            raise SampleError("world_to_sqa3d: convention 'sqa3d' needs the scene's mesh_bbox_center")
        p_raw = p_raw - np.asarray(mesh_bbox_center, dtype=np.float64).reshape(3)
        psi += math.pi  # the agent faces local -x: R_z(psi) (-1, 0, 0) = f_raw
    q = yaw_quaternion_xyzw(psi)
    position = {"x": float(p_raw[0]), "y": float(p_raw[1]), "z": 0.0 if planar else float(p_raw[2])}
    rotation = {"_x": float(q[0]), "_y": float(q[1]), "_z": float(q[2]), "_w": float(q[3])}
    return position, rotation


def sqa3d_to_bev(
    position: Sequence[float] | np.ndarray | dict[str, float],
    rotation: Sequence[float] | np.ndarray | dict[str, float],
    first_pose: np.ndarray,
    *,
    axis_alignment: np.ndarray | None = None,
    mesh_bbox_center: Sequence[float] | np.ndarray | None = None,
    convention: Convention = "sqa3d",
) -> tuple[np.ndarray, float]:
    """SQA3D pose -> the clip's BEV anchor frame ``(xy (2,), yaw)``; ``first_pose`` is the clip's first
    camera-to-world pose in the world frame defined by ``axis_alignment``."""
    position_world, yaw_world = sqa3d_to_world(
        position, rotation, axis_alignment=axis_alignment, mesh_bbox_center=mesh_bbox_center, convention=convention
    )
    frame = anchor_frame(first_pose)
    return frame.points_to_bev(position_world)[:2], float(frame.yaw_to_bev(yaw_world))


def bev_to_sqa3d(
    xy_bev: Sequence[float] | np.ndarray,
    yaw_bev: float,
    first_pose: np.ndarray,
    *,
    axis_alignment: np.ndarray | None = None,
    mesh_bbox_center: Sequence[float] | np.ndarray | None = None,
    convention: Convention = "sqa3d",
) -> tuple[dict[str, float], dict[str, float]]:
    """A BEV prediction of the model -> SQA3D ``position`` / ``rotation`` dicts for the official metric.

    BEV -> world uses the first frame's pose (rotation about z + translation, no scale, DESIGN.md §2),
    then :func:`world_to_sqa3d`. ``first_pose`` and ``axis_alignment`` are the clip's (``ClipSample.poses[0]``
    and ``ClipSample.meta["axis_alignment"]``).
    """
    frame = anchor_frame(first_pose)
    xy = np.asarray(xy_bev, dtype=np.float64).reshape(-1)[:2]
    position_world = frame.points_to_world(xy)[:2]
    yaw_world = float(frame.yaw_to_world(yaw_bev))
    return world_to_sqa3d(
        position_world,
        yaw_world,
        axis_alignment=axis_alignment,
        mesh_bbox_center=mesh_bbox_center,
        convention=convention,
    )


def _vector(value: Any, where: str, field: str, keys: tuple[str, ...], names: str = "") -> np.ndarray:
    """A pose field as a finite vector: a dict with ``keys`` (as on disk) or a sequence of ``len(keys)`` numbers."""
    if isinstance(value, dict):
        try:
            value = [value[k] for k in keys]
        except KeyError as err:
            raise SampleError(f"{where}: field '{field}' lacks key {err}") from err
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise SampleError(f"{where}: field '{field}' is not numeric ({value!r})") from err
    if arr.shape != (len(keys),) or not np.isfinite(arr).all():
        raise SampleError(f"{where}: field '{field}' must be {len(keys)} finite numbers{names}, got {value!r}")
    return arr


def _position_array(value: Any, where: str) -> np.ndarray:
    return _vector(value, where, "position", ("x", "y", "z"))


def _rotation_array(value: Any, where: str) -> np.ndarray:
    return _vector(value, where, "rotation", ("_x", "_y", "_z", "_w"), " (_x, _y, _z, _w)")


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass
class SQA3DRecord:
    """One SQA3D question joined with its annotation.

    ``position`` / ``rotation`` are the file's values (SQA3D convention, rotation xyzw);
    ``position_raw`` / ``forward_raw`` the agent in the frame of the scene's stored camera poses (None when
    the conversion was impossible, see the report). :meth:`agent_world` applies the clip's axis alignment.
    """

    question_id: int
    scene_id: str
    situation: str
    alternative_situations: list[str]
    question: str
    answers: list[str]
    question_type: str
    answer_type: str
    position: np.ndarray
    rotation: np.ndarray
    position_raw: np.ndarray | None
    forward_raw: np.ndarray | None
    convention: str = "sqa3d"
    mesh_bbox_center: np.ndarray | None = None
    #: SynthRooms extension (``anchor_instances`` / ``faced_instances`` / ``left_instances`` ... of the annotation):
    #: the ids the situation names by role, for the anchor supervision of the pointer heads; None in real SQA3D files
    referents: dict[str, list[int]] | None = None

    def agent_world(self, axis_alignment: np.ndarray | None) -> tuple[np.ndarray | None, float | None]:
        """Agent position and yaw in the world frame defined by ``axis_alignment`` (raw -> world)."""
        if self.position_raw is None or self.forward_raw is None:
            return None, None
        return raw_to_world(self.position_raw, self.forward_raw, axis_alignment)


@dataclass
class SQA3DSituationRecord:
    """One situation of the SQA3D localization task (no question)."""

    situation_id: int
    scene_id: str
    situation: str
    alternative_situations: list[str]
    position: np.ndarray
    rotation: np.ndarray
    position_raw: np.ndarray | None
    forward_raw: np.ndarray | None
    convention: str = "sqa3d"
    mesh_bbox_center: np.ndarray | None = None
    augmented: bool | None = None

    agent_world = SQA3DRecord.agent_world


def _referents(item: dict, where: str) -> dict[str, list[int]] | None:
    """The optional ``<role>_instances`` lists of an annotation, roles in ``REFERENT_ROLES`` (SynthRooms writes them:
    ``anchor`` / ``faced`` and the side objects by sector ``left`` / ``right`` / ``behind``)."""
    out: dict[str, list[int]] = {}
    for role in REFERENT_ROLES:
        value = item.get(f"{role}_instances")
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            raise SampleError(f"{where}: field '{role}_instances' must be a list of instance ids, got {value!r}")
        out[role] = list(value)
    return out or None


def find_sqa3d_file(root: str | Path, name: str) -> Path:
    """``root/name``, or the same name under ``balanced/``, ``sqa_task/balanced/`` or ``localization_task/``."""
    root = Path(root)
    candidates = [
        root / name,
        root / "balanced" / name,
        root / "sqa_task" / "balanced" / name,
        root / "localization_task" / name,
    ]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise SampleError(f"SQA3D file {name!r} not found (tried {tried})")


class _PoseConverter:
    """Per-scene raw-pose conversion with one error per scene that cannot be converted."""

    def __init__(
        self,
        convention: str,
        scene_meta: SceneMetaTable | None,
        scans_root: str | Path | None,
        report: LoadReport,
        source_file: Path,
    ) -> None:
        if convention not in _LOCAL_FORWARD:  # the one check: the conversions below trust it
            raise ValueError(f"unknown SQA3D convention {convention!r}; expected 'sqa3d' or 'loc3r_world'")
        self.convention = convention
        self.table = scene_meta if scene_meta is not None else SceneMetaTable(scans_root=scans_root)
        if scans_root is not None and self.table.scans_root is None:
            self.table.scans_root = Path(scans_root)
        self.report = report
        self.source_file = source_file
        self._centres: dict[str, np.ndarray | None] = {}

    def centre(self, scene_id: str, record: str) -> np.ndarray | None:
        if self.convention != "sqa3d":
            return None
        if scene_id not in self._centres:
            try:
                centre = self.table.get(scene_id).mesh_bbox_center
            except SampleError as err:
                self.report.error("bad_scene_meta", str(err), record=record, field="position")
                centre = None
            else:
                if centre is None:
                    looked = (
                        f"{self.table.scans_root / scene_id / (scene_id + '_vh_clean_2.ply')}"
                        if self.table.scans_root is not None
                        else "no scans_root given"
                    )
                    self.report.error(
                        "missing_scene_meta",
                        f"scene {scene_id}: cannot convert SQA3D positions (raw mesh bbox centre unknown: not in "
                        f"the scene meta JSON, mesh: {looked}); records of this scene load without agent pose",
                        file=self.source_file,
                        record=record,
                        field="position",
                    )
            self._centres[scene_id] = centre
        return self._centres[scene_id]

    def convert(
        self, scene_id: str, position: np.ndarray, rotation: np.ndarray, where: str, record: str
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        centre = self.centre(scene_id, record)
        if self.convention == "sqa3d" and centre is None:
            # still validate the rotation so bad values are reported
            quaternion_xyzw_to_matrix(rotation, f"{where}: field 'rotation'")
            return None, None, None
        p_raw, f_raw = sqa3d_to_raw(
            position, rotation, convention=self.convention, mesh_bbox_center=centre, where=where
        )
        return p_raw, f_raw, centre


def _situations(item: dict[str, Any], where: str) -> tuple[str, list[str]]:
    situation = text_field(item.get("situation"), where, "situation")
    alternatives = item.get("alternative_situation", [])
    if alternatives is None:
        alternatives = []
    if not isinstance(alternatives, list) or not all(isinstance(s, str) for s in alternatives):
        raise SampleError(f"{where}: field 'alternative_situation' must be a list of strings")
    return situation, list(alternatives)  # type: ignore[return-value]


def _questions_by_id(q_path: Path, report: LoadReport) -> dict[int, dict[str, Any]]:
    """The question entries of an SQA3D questions file by ``question_id`` (bad / duplicated ids reported)."""
    questions: dict[int, dict[str, Any]] = {}
    for index, item in iter_json_records(read_json(q_path, "SQA3D questions file"), q_path, "questions"):
        qid = item.get("question_id") if isinstance(item, dict) else None
        if not isinstance(qid, int):
            report.error("bad_record", f"field 'question_id' must be an integer, got {qid!r}", file=q_path,
                         record=f"questions[{index}]", field="question_id")  # fmt: skip
            continue
        if qid in questions:
            report.error("duplicate_id", "question_id appears twice", file=q_path, record=qid, field="question_id")
            continue
        questions[qid] = item
    return questions


def _qa_record(
    qid: int, item: dict[str, Any], question_item: dict[str, Any], converter: _PoseConverter, q_where: str,
    a_path: Path, record_name: str,
) -> SQA3DRecord:  # fmt: skip
    """One annotation joined with its question (a malformed field raises a :class:`SampleError` naming it)."""
    where = f"{a_path} {record_name}"
    scene_id = text_field(item.get("scene_id"), where, "scene_id")
    q_scene = question_item.get("scene_id")
    if q_scene != scene_id:
        raise SampleError(f"{where}: field 'scene_id' is {scene_id!r} but the question says {q_scene!r}")
    situation, alternatives = _situations(question_item, q_where)
    question = text_field(question_item.get("question"), q_where, "question")
    answers_raw = item.get("answers", [])
    if not isinstance(answers_raw, list):
        raise SampleError(f"{where}: field 'answers' must be a list")
    answers = []
    for k, ans in enumerate(answers_raw):
        if not isinstance(ans, dict) or not isinstance(ans.get("answer"), str):
            raise SampleError(f"{where}: field 'answers[{k}].answer' must be a string")
        answers.append(ans["answer"])
    position = _position_array(item.get("position"), where)
    rotation = _rotation_array(item.get("rotation"), where)
    p_raw, f_raw, centre = converter.convert(scene_id, position, rotation, where, record_name)  # type: ignore[arg-type]
    return SQA3DRecord(
        question_id=qid,
        scene_id=scene_id,  # type: ignore[arg-type]
        situation=situation,
        alternative_situations=alternatives,
        question=question,  # type: ignore[arg-type]
        answers=answers,
        question_type=str(item.get("question_type", "")),
        answer_type=str(item.get("answer_type", "")),
        position=position,
        rotation=rotation,
        position_raw=p_raw,
        forward_raw=f_raw,
        convention=converter.convention,
        mesh_bbox_center=centre,
        referents=_referents(item, where),
    )


def load_sqa3d(
    root: str | Path,
    split: str,
    *,
    convention: Convention = "sqa3d",
    scene_meta: SceneMetaTable | None = None,
    scans_root: str | Path | None = None,
    variant: str = "balanced",
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[SQA3DRecord], LoadReport]:
    """Load an SQA3D QA split: questions joined with annotations by ``question_id``.

    Args:
        root: folder holding the two JSON files (or ``balanced/`` / ``sqa_task/balanced/`` below it).
        split: ``train``, ``val`` or ``test``.
        convention: ``"sqa3d"`` (official files) or ``"loc3r_world"`` (SynthRooms files), see the module doc.
        scene_meta: per-scene axis alignment / mesh bbox centre (needed for ``"sqa3d"`` poses).
        scans_root: ScanNet ``scans/`` folder to compute missing bbox centres from the meshes.
        variant: file-name variant (``balanced`` as in ``v1_balanced_*``).
        strict: raise on the first bad record instead of reporting it.

    Returns ``(records, report)``. An annotation whose ``question_id`` has no question (or the
    reverse), a duplicated id or a malformed field is reported with file, record and field; the rest loads.
    """
    report = report if report is not None else LoadReport(f"sqa3d {split}", strict=strict)
    q_path = find_sqa3d_file(root, f"v1_{variant}_questions_{split}_scannetv2.json")
    a_path = find_sqa3d_file(root, f"v1_{variant}_sqa_annotations_{split}_scannetv2.json")
    questions = _questions_by_id(q_path, report)
    converter = _PoseConverter(convention, scene_meta, scans_root, report, a_path)
    records: list[SQA3DRecord] = []
    seen: set[int] = set()
    for index, item in iter_json_records(read_json(a_path, "SQA3D annotations file"), a_path, "annotations"):
        qid = item.get("question_id") if isinstance(item, dict) else None
        record_name = f"question_id={qid}" if qid is not None else f"annotations[{index}]"
        if not isinstance(qid, int):
            problem: tuple[str, str] | None = ("bad_record", f"field 'question_id' must be an integer, got {qid!r}")
        elif qid in seen:
            problem = ("duplicate_id", "annotation question_id appears twice")
        else:
            seen.add(qid)
            problem = None if qid in questions else ("orphan_annotation", f"no question with this question_id in "
                                                     f"{q_path.name}")  # fmt: skip
        if problem is not None:
            report.error(*problem, file=a_path, record=record_name, field="question_id")
            continue
        question_item = questions[qid]
        try:
            records.append(
                _qa_record(qid, item, question_item, converter, f"{q_path} {record_name}", a_path, record_name)
            )
        except SampleError as err:
            report_bad_record(report, err, a_path, record_name)
    for qid in sorted(set(questions) - seen):
        report.error(
            "missing_annotation",
            f"no annotation with this question_id in {a_path.name}",
            file=q_path,
            record=f"question_id={qid}",
            field="question_id",
        )
    report.count("records_loaded", len(records))
    report.count("records_with_pose", sum(r.position_raw is not None for r in records))
    return records, report


def load_sqa3d_localization(
    root: str | Path,
    split: str,
    *,
    convention: Convention = "sqa3d",
    scene_meta: SceneMetaTable | None = None,
    scans_root: str | Path | None = None,
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[SQA3DSituationRecord], LoadReport]:
    """Load the SQA3D localization task of a split.

    Reads ``v1_balanced_localization_{split}_scannetv2.json`` (one file, ``annotations[]`` with situation
    and pose) when present, else joins ``v1_situations_{split}_scannetv2.json`` (``situations[]``) with
    ``v1_localization_annotations_{split}_scannetv2.json`` (``annotations[]``) by ``situation_id``.
    """
    report = report if report is not None else LoadReport(f"sqa3d localization {split}", strict=strict)
    try:
        single = find_sqa3d_file(root, f"v1_balanced_localization_{split}_scannetv2.json")
    except SampleError:
        single = None
    items: list[tuple[str, dict[str, Any], dict[str, Any], Path]] = []
    if single is not None:
        for index, item in iter_json_records(read_json(single, "SQA3D localization file"), single, "annotations"):
            if not isinstance(item, dict):
                report.error("bad_record", "record must be an object", file=single, record=f"annotations[{index}]")
                continue
            items.append((f"annotations[{index}]", item, item, single))
    else:
        s_path = find_sqa3d_file(root, f"v1_situations_{split}_scannetv2.json")
        l_path = find_sqa3d_file(root, f"v1_localization_annotations_{split}_scannetv2.json")
        situations: dict[int, dict[str, Any]] = {}
        for index, item in iter_json_records(read_json(s_path, "SQA3D situations file"), s_path, "situations"):
            sid = item.get("situation_id") if isinstance(item, dict) else None
            if not isinstance(sid, int) or sid in situations:
                report.error(
                    "bad_record",
                    f"missing or duplicated situation_id {sid!r}",
                    file=s_path,
                    record=f"situations[{index}]",
                    field="situation_id",
                )
                continue
            situations[sid] = item
        for index, item in iter_json_records(read_json(l_path, "SQA3D localization file"), l_path, "annotations"):
            sid = item.get("situation_id") if isinstance(item, dict) else None
            if sid not in situations:
                report.error(
                    "orphan_annotation",
                    f"no situation with situation_id {sid!r} in {s_path.name}",
                    file=l_path,
                    record=f"annotations[{index}]",
                    field="situation_id",
                )
                continue
            items.append((f"situation_id={sid}", situations[sid], item, l_path))
    source = single if single is not None else (items[0][3] if items else Path(root))
    converter = _PoseConverter(convention, scene_meta, scans_root, report, source)
    records: list[SQA3DSituationRecord] = []
    for index, (record_name, text_item, pose_item, path) in enumerate(items):
        where = f"{path} {record_name}"
        try:
            scene_id = text_field(pose_item.get("scene_id"), where, "scene_id")
            situation, alternatives = _situations(text_item, where)
            position = _position_array(pose_item.get("position"), where)
            rotation = _rotation_array(pose_item.get("rotation"), where)
            p_raw, f_raw, centre = converter.convert(scene_id, position, rotation, where, record_name)  # type: ignore[arg-type]
        except SampleError as err:
            report_bad_record(report, err, path, record_name)
            continue
        sid = pose_item.get("situation_id", text_item.get("situation_id", index))
        records.append(
            SQA3DSituationRecord(
                situation_id=int(sid) if isinstance(sid, int) else index,
                scene_id=scene_id,  # type: ignore[arg-type]
                situation=situation,
                alternative_situations=alternatives,
                position=position,
                rotation=rotation,
                position_raw=p_raw,
                forward_raw=f_raw,
                convention=convention,
                mesh_bbox_center=centre,
                augmented=text_item.get("augmented"),
            )
        )
    report.count("records_loaded", len(records))
    return records, report


# --------------------------------------------------------------------------------------------------
# ClipSamples
# --------------------------------------------------------------------------------------------------


@dataclass
class SQA3DDataset(SceneRecordsDataset):
    """SQA3D records + the scene frames -> :class:`ClipSample` (task ``"sqa3d"``).

    ``situation_choice``: ``"main"`` uses ``situation``; an integer ``k`` uses alternative ``k - 1``
    (0 = main) when it exists. The agent pose is converted with the clip's own axis alignment, so agent
    and camera poses are always in the same frame.

    ``task`` names the source (``"sqa3d"``; ``"synth_situated"`` for SynthRooms data in the SQA3D format)
    and, unless ``id_prefix`` is given, also the sample ids: ``<prefix>-<question_id>`` for questions and
    ``<prefix>_loc-<situation_id>`` for situation-only records, so ids from two sources never collide
    in a mixed dataset.
    """

    records: Sequence[SQA3DRecord | SQA3DSituationRecord]
    frames: ScanNetFrameSource
    situation_choice: str | int = "main"
    task: str = "sqa3d"
    id_prefix: str | None = None
    #: attach the scan's instance masks (``instance/<i>.png``, SynthRooms) to samples whose record names its
    #: referents: what the anchor supervision of the pointer heads needs
    instance_masks: bool = False

    def to_sample(self, record: SQA3DRecord | SQA3DSituationRecord, clip: ScanNetClip) -> ClipSample:
        position, yaw = record.agent_world(clip.axis_alignment)
        situation = record.situation
        if isinstance(self.situation_choice, int) and self.situation_choice > 0:
            alts = record.alternative_situations
            if self.situation_choice <= len(alts):
                situation = alts[self.situation_choice - 1]
        prefix = self.task if self.id_prefix is None else self.id_prefix
        if isinstance(record, SQA3DRecord):
            sample_id, question, answers = f"{prefix}-{record.question_id}", record.question, record.answers
            extra = {"question_id": record.question_id, "question_type": record.question_type}
        else:
            sample_id, question, answers = f"{prefix}_loc-{record.situation_id}", "", []
            extra = {"situation_id": record.situation_id}
        referents = getattr(record, "referents", None)
        instances = names = None
        if self.instance_masks and hasattr(self.frames, "instance_masks"):
            instances = self.frames.instance_masks(record.scene_id, clip)
            names = self.frames.instance_names(record.scene_id) if instances is not None else None
        return self.clip_sample(
            record,
            clip,
            {
                **extra,
                "alternative_situations": list(record.alternative_situations),
                "sqa3d_position": record.position.tolist(),
                "sqa3d_rotation_xyzw": record.rotation.tolist(),
                "convention": record.convention,
                "mesh_bbox_center": None if record.mesh_bbox_center is None else record.mesh_bbox_center.tolist(),
                "axis_alignment": clip.axis_alignment.reshape(-1).tolist(),
            },
            sample_id=sample_id,
            question=question,
            answer=answers[0] if answers else None,
            answers=list(answers),
            situation_text=situation,
            agent_position=position,
            agent_yaw=yaw,
            pixel_instances=instances,
            referents=referents if instances is not None else None,
            instance_names=names,
        )


def build_sqa3d(
    spec: Any,
    num_frames: int,
    scannet_root: str | None = None,
    convention: str = "sqa3d",
    scene_meta: str | None = None,
    scans_root: str | None = None,
    image_size: Any = None,
    points_size: Any = (96, 128),
    situation_choice: str | int = "main",
    task: str = "sqa3d",
    strict: bool = False,
    cache: str | None = None,
) -> Any:
    """SQA3D QA (question + annotation files in ``root``) on ScanNet frames in ``scannet_root``.

    ``convention = "loc3r_world"`` reads SynthRooms' SQA3D-format files (poses already in our world frame).
    """
    table = scene_meta_table(scene_meta, scans_root)
    records, report = load_sqa3d(
        spec.root, spec.split, convention=convention, scene_meta=table, scans_root=scans_root, strict=strict
    )
    log_report(report, f"sqa3d {spec.split} ({spec.root})")
    frames = cached_or_frame_source(
        cache, scannet_root, "sqa3d", spec, num_frames, image_size, points_size, scene_meta, scans_root, strict
    )
    return SQA3DDataset(records, frames, situation_choice=situation_choice, task=task)


DATASET_KINDS = {"sqa3d": build_sqa3d}
