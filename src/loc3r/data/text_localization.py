"""Situated localization as text: the pose-text format and the text-localization dataset (SynthRooms kind
``synth_loc_text``, :mod:`loc3r.benchmarks.synthrooms.reader`).

A plain fine-tuned VLM (``lm_only``) has no ``<Pos>``/``<Ori>`` heads, so it answers the localization question
with text coordinates in the clip's BEV anchor frame, ``"x 1.2 y -0.4 yaw 90"`` (metres, metres, degrees,
:func:`format_pose_text`), parsed back with :func:`parse_pose_text` — what a stock VLM would have to do. An
unparsable answer is a missing prediction (wrong at every threshold). Every variant trains on the same
samples (:class:`TextLocalizationDataset`: one per situation); models with situation heads also get the usual
pose targets from the sample's agent pose.

BEV anchor frame: the first frame's camera (:func:`loc3r.core.geometry.anchor_frame`); rigid, so localization
errors measured in it equal world-frame errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from loc3r.core.geometry import anchor_frame, wrap_angle
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import frame_problems_meta

#: The pinned localization question (after the situation text).
LOC_QUESTION = "Where am I? Answer x y in metres and yaw in degrees."
LOC_TASK = "synth_loc_text"

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_POSE_RE = re.compile(rf"x\s*=?\s*{_NUMBER}\s+y\s*=?\s*{_NUMBER}\s+yaw\s*=?\s*{_NUMBER}", re.IGNORECASE)


def format_pose_text(xy: Sequence[float] | np.ndarray, yaw: float) -> str:
    """``"x 1.2 y -0.4 yaw 90"``: BEV metres to 0.1 m, yaw in whole degrees in [-180, 180).

    Why 0.1 m / 1°: finer than the 0.5 m / 15° accuracy thresholds, short enough for a tiny tokenizer.
    """
    x, y = (float(v) for v in np.asarray(xy, dtype=np.float64)[:2])
    deg = int(round(np.degrees(float(wrap_angle(yaw)))))
    if deg == 180:
        deg = -180
    return f"x {x:.1f} y {y:.1f} yaw {deg}"


def parse_pose_text(text: str | None) -> tuple[np.ndarray, float] | None:
    """Inverse of :func:`format_pose_text` (also accepts ``x=1.2 y=-0.4 yaw=90``): ``(xy [2], yaw radians)``
    or None when the text holds no such triple (a missing prediction)."""
    if not text:
        return None
    match = _POSE_RE.search(text)
    if match is None:
        return None
    x, y, deg = (float(v) for v in match.groups())
    if not np.isfinite([x, y, deg]).all():
        return None
    return np.array([x, y]), float(np.radians(deg))


def bev_ground_truth(sample: ClipSample) -> tuple[np.ndarray, float]:
    """The agent's BEV ``(xy [2], yaw)`` in the clip's anchor frame (first frame's pose)."""
    where = f"sample {sample.sample_id!r} (scene {sample.scene_id!r})"
    if sample.poses is None:
        raise SampleError(f"{where}: field 'poses' is needed for the BEV anchor frame")
    if sample.agent_position is None or sample.agent_yaw is None:
        raise SampleError(f"{where}: fields 'agent_position'/'agent_yaw' are needed for localization")
    anchor = anchor_frame(np.asarray(sample.poses)[0], f"{where}: poses[0]")
    xy = anchor.points_to_bev(np.asarray(sample.agent_position, dtype=np.float64)[None])[0, :2]
    return xy, float(anchor.yaw_to_bev(float(sample.agent_yaw)))


class TextLocalizationDataset(Dataset):
    """One localization sample per distinct (scene, situation) of a situated dataset.

    The answer is the agent's BEV pose as text (:func:`format_pose_text`), so every variant — including a
    plain fine-tuned VLM — is trained with the same samples; the situation heads (when on) get their usual
    pose targets from ``agent_position``/``agent_yaw``. ``records`` exposes the base records (texts for the
    tiny tokenizer; the digits and ``x y yaw`` are in its fixed corpus).
    """

    def __init__(self, base: Any) -> None:
        self.base = base
        records = getattr(base, "records", None)
        if records is None:
            raise SampleError("TextLocalizationDataset needs a situated dataset exposing 'records'")
        seen: dict[tuple[str, str], int] = {}
        for i, record in enumerate(records):
            seen.setdefault((str(record.scene_id), str(record.situation)), i)
        self.indices = list(seen.values())
        self.records = [records[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> ClipSample:
        sample = self.base[self.indices[index]]
        xy, yaw = bev_ground_truth(sample)
        answer = format_pose_text(xy, yaw)
        situation_key = sample.meta.get("question_id", self.indices[index])
        return ClipSample(
            sample_id=f"loc-{sample.scene_id}-{situation_key}",
            scene_id=sample.scene_id,
            task=LOC_TASK,
            frames=sample.frames,
            question=LOC_QUESTION,
            answer=answer,
            answers=[answer],
            situation_text=sample.situation_text,
            agent_position=sample.agent_position,
            agent_yaw=sample.agent_yaw,
            poses=sample.poses,
            points=sample.points,
            camera_features=sample.camera_features,
            frame_indices=sample.frame_indices,
            pixel_instances=sample.pixel_instances,
            referents=sample.referents,
            instance_names=sample.instance_names,
            meta={
                "bev_xy": xy.tolist(),
                "bev_yaw": yaw,
                "source_sample": sample.sample_id,
                **frame_problems_meta(sample.meta),
            },
        ).validate()
