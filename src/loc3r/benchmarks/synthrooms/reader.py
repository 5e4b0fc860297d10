"""The SynthRooms benchmark's reader: a ``loc3r synth`` output directory as datasets (kinds ``synth``,
``synth_pretrain``, ``synth_loc_text``).

The world generator that writes such a directory is :mod:`loc3r.synthrooms` (layout of the directory in
:mod:`loc3r.synthrooms.writer`); this module only reads it, with the SQA3D and VSI-Bench loaders (SynthRooms
writes its situations and questions in their formats, poses already in loc3r's world frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from loc3r.data.builders import EmptySplitError, cached_or_frame_source, log_report
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.text_localization import TextLocalizationDataset
from loc3r.data.video import frame_problems_meta


class SynthVSIDataset(Dataset):
    """SynthRooms' VSI-Bench-style records on the scan's posed frames (task ``"synth_vsi"``).

    Unlike real VSI-Bench (video only), a SynthRooms scan has exact poses and depth, so these samples
    carry the layout targets too; the question / options / answer are the records' own.
    """

    def __init__(self, records: Sequence[Any], frames: Any, task: str = "synth_vsi") -> None:
        self.records, self.frames, self.task = list(records), frames, task

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        from loc3r.benchmarks.vsibench.reader import vsi_clip_sample

        record = self.records[index]
        clip = self.frames.clip(record.scene_name)
        sample = vsi_clip_sample(
            record, f"{self.task}-{record.id}", self.task, clip.frames, clip.frame_ids,
            poses=clip.poses, points=clip.points, meta=frame_problems_meta(clip.meta),
        )  # fmt: skip
        if hasattr(self.frames, "instance_masks"):  # SynthRooms scans: for the oracle-objects diagnostic input
            sample.pixel_instances = self.frames.instance_masks(record.scene_name, clip)
            if sample.pixel_instances is not None:
                sample.instance_names = self.frames.instance_names(record.scene_name)
        return sample


SYNTH_TASKS = ("situated", "vsi")


def synth_vsi_records(path: Path, strict: bool = True) -> list[Any]:
    """SynthRooms' VSI-Bench-style JSONL records (``dataset: "synthrooms"``), read by the VSI-Bench loader
    (:func:`loc3r.benchmarks.vsibench.reader.load_vsibench`), so both sources get the same validation. A malformed
    record raises a :class:`SampleError` naming file, record and field when ``strict``, else it is
    skipped and the loader report is logged."""
    from loc3r.benchmarks.vsibench.reader import load_vsibench

    records, report = load_vsibench(path, strict=strict)
    log_report(report, f"synth vsi ({path})")
    return records


def build_synth(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = SYNTH_TASKS,
    image_size: Any = None,
    points_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
) -> Dataset:
    """A SynthRooms directory (``loc3r synth --out DIR``; layout in :mod:`loc3r.synthrooms.writer`).

    ``tasks``: ``situated`` = the SQA3D-format situations + questions of the split (poses in our world
    frame, read with ``convention="loc3r_world"``, task ``synth_situated``), ``vsi`` = the VSI-Bench-style
    records of the split on the scan's posed frames (task ``synth_vsi``). Splits: ``train``, ``val``,
    ``test``, ``test_novel_view``. ``points_size`` defaults to the rendered resolution.
    """
    from torch.utils.data import ConcatDataset

    from loc3r.benchmarks.sqa3d.reader import SQA3DDataset, load_sqa3d
    from loc3r.synthrooms.writer import read_index

    root = Path(spec.root)
    unknown = sorted(set(tasks) - set(SYNTH_TASKS))
    if unknown or not tasks:
        raise SampleError(f"dataset synth at {root}: option 'tasks' must be a non-empty subset of {SYNTH_TASKS}")
    try:
        index = read_index(root)
    except (OSError, ValueError, RuntimeError) as err:
        raise SampleError(f"dataset synth at {root}: not a SynthRooms directory ({err})") from err
    if spec.split not in index.get("splits", {}):
        raise SampleError(f"dataset synth at {root}: no split {spec.split!r} (has {sorted(index['splits'])})")
    scenes = index["splits"][spec.split]
    if points_size is None and scenes:
        first = index["scenes"][scenes[0]]
        points_size = (int(first["height"]), int(first["width"]))
    # SynthRooms clips are small (8 frames of 112 px: ~1.5 MB with their points): keep a split's clips decoded, so a
    # fine-tuning run decodes each JPEG / depth PNG once instead of once per sample
    frames = cached_or_frame_source(
        cache, str(root / "scans"), "synth", spec, num_frames, image_size, points_size, None, None, strict, 256
    )
    parts: list[Dataset] = []
    if "situated" in tasks:
        records, report = load_sqa3d(root / "sqa3d", spec.split, convention="loc3r_world", strict=strict)
        log_report(report, f"synth situated {spec.split} ({root})")
        if records:
            parts.append(SQA3DDataset(records, frames, task="synth_situated", instance_masks=True))
    if "vsi" in tasks:
        records = synth_vsi_records(root / "vsibench" / f"{spec.split}.jsonl", strict=strict)
        if records:
            parts.append(SynthVSIDataset(records, frames))
    if not parts:
        raise EmptySplitError(f"dataset synth at {root}: split {spec.split!r} has no samples for tasks {list(tasks)}")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def build_synth_pretrain(
    spec: Any,
    num_frames: int,
    tasks: Sequence[str] = ("objects", "presence", "count", "color", "caption"),
    recognition_labels: bool = True,
) -> Dataset:
    """SynthRooms recognition pretraining tasks with no spatial supervision (:mod:`loc3r.synthrooms.pretraining`):
    object listing in order of appearance, presence, counting, colour, captions, and per-pixel category labels for
    the recognition objective."""
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    return SynthPretrainDataset(spec.root, spec.split, num_frames, tuple(tasks), recognition_labels)


def build_synth_loc_text(spec: Any, num_frames: int, strict: bool = False) -> Dataset:
    """Dataset kind ``synth_loc_text`` (a recipe's ``data.train[*].kind``): the situations of a SynthRooms split
    as text-coordinate localization samples (see :class:`TextLocalizationDataset`)."""
    base = build_synth(spec, num_frames=num_frames, tasks=("situated",), strict=strict)
    return TextLocalizationDataset(base)


DATASET_KINDS = {
    "synth": build_synth,
    "synth_pretrain": build_synth_pretrain,
    "synth_loc_text": build_synth_loc_text,
}
