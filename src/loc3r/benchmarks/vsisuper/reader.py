"""VSI-SUPER (Cambrian-S) records: VSR (spatial recall) and VSC (counting, regular and streaming), as
:class:`ClipSample`.

Release formats (HF ``nyu-visionx/VSI-SUPER-Recall`` and ``nyu-visionx/VSI-SUPER-Count``, as their dataset cards
and the Cambrian-S / lmms-eval tasks read them); files are parquet, JSON lists or JSON Lines:

* **Recall** (``mode: recall``): ``{video_path: "10mins/00000000.mp4", question, options: ["A. ...", ...],
  answer: "B", type: "10mins"}``;
* **Count** (``mode: count``): ``{video_path, question, answer: 27.0, split: "10mins", query_times: null, answers:
  null}``; **streaming** (``mode: count_streaming``): the same with ``split: "10mins_streaming"``, ``query_times``
  (seconds from the start of the video at which the running count is asked: Cambrian-S samples the video at 1 fps
  and asks after frame index ``t``) and ``answers`` (the count at each of those times).

A Count file holds both kinds; ``mode`` keeps the records of its kind (regular: no ``query_times``; streaming: a
list) and ``splits`` (e.g. ``["10mins"]``) the durations asked for, as the upstream per-duration tasks do. Videos:
``<video_root>/<video_path>`` (default ``video_root``: the records file's folder). Records have no ids: the id is
the record's index in the file.

Frames: ``num_frames`` uniformly over the whole video (:func:`~loc3r.data.video.decode_video`) for recall and
regular counting. A streaming sample carries only the first frame (``meta["streamed"] = True``): its frames are
read by the streaming driver (:mod:`loc3r.apps.stream_eval`, ``loc3r stream``'s :class:`~loc3r.apps.stream.LiveSession`)
at 1 fps up to each query time, never all at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loc3r.data.builders import log_report, parse_size, read_record_rows
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import LoadReport, decode_video, frame_problems_meta

MODES = ("recall", "count", "count_streaming")


@dataclass
class VSISuperRecord:
    id: str
    mode: str
    video_path: str
    question: str
    split: str
    answer: str | float | None = None
    options: list[str] | None = None
    query_times: list[float] | None = None
    answers: list[float] | None = field(default=None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _parse(row: Any, index: int, mode: str) -> VSISuperRecord | str:
    """The record of a row, or the problem (``"field 'x' ..."``)."""
    if not isinstance(row, dict):
        return "record must be an object"
    for key in ("video_path", "question"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return f"field {key!r} is missing or empty"
    if mode == "recall":
        options = row.get("options")
        if not isinstance(options, list | tuple) or not options or not all(isinstance(o, str) for o in options):
            return "field 'options' must be a non-empty list of strings"
        answer = row.get("answer")
        letters = {o.strip()[:1].upper() for o in options}
        if not isinstance(answer, str) or answer.strip().upper() not in letters:
            return f"field 'answer' must be one of the option letters {sorted(letters)}, got {answer!r}"
        return VSISuperRecord(str(index), mode, row["video_path"], row["question"], str(row.get("type") or ""),
                              answer=answer.strip(), options=list(options))  # fmt: skip
    split = str(row.get("split") or "")
    if mode == "count":
        if _number(row.get("answer")) is None:
            return f"field 'answer' must be a count >= 0, got {row.get('answer')!r}"
        return VSISuperRecord(str(index), mode, row["video_path"], row["question"], split, answer=float(row["answer"]))
    times, answers = row.get("query_times"), row.get("answers")
    if not isinstance(times, list | tuple) or not times or any(_number(t) is None for t in times):
        return f"field 'query_times' must be a non-empty list of seconds >= 0, got {times!r}"
    if list(times) != sorted(times):
        return "field 'query_times' must be increasing"
    if not isinstance(answers, list | tuple) or len(answers) != len(times) or any(_number(a) is None for a in answers):
        return f"field 'answers' must hold one count >= 0 per query time ({len(times)}), got {answers!r}"
    return VSISuperRecord(str(index), mode, row["video_path"], row["question"], split,
                          query_times=[float(t) for t in times], answers=[float(a) for a in answers])  # fmt: skip


def load_vsisuper(
    path: str | Path,
    mode: str,
    *,
    splits: Sequence[str] | None = None,
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[VSISuperRecord], LoadReport]:
    """The records of ``mode`` (recall / count / count_streaming) in a VSI-SUPER file, optionally of some
    ``splits`` (durations); a malformed record is reported naming file, record and field (an error when
    ``strict``) and left out."""
    if mode not in MODES:
        raise SampleError(f"VSI-SUPER mode must be one of {MODES}, got {mode!r}")
    report = report if report is not None else LoadReport(f"vsisuper {mode}", strict=strict)
    path = Path(path)
    records: list[VSISuperRecord] = []
    for index, row in enumerate(read_record_rows(path, "VSI-SUPER")):
        if (
            mode != "recall"
            and isinstance(row, dict)
            and (row.get("query_times") is not None) != (mode == "count_streaming")
        ):
            report.skip("other_count_mode")
            continue
        parsed = _parse(row, index, mode)
        if isinstance(parsed, str):
            name = parsed.split("'")[1] if "'" in parsed else None
            report.error("bad_record", f"{path} record {index}: {parsed}", file=path, record=index, field=name)
            continue
        if splits is not None and parsed.split not in splits:
            report.skip("split_filtered")
            continue
        records.append(parsed)
    report.count("records_loaded", len(records))
    return records, report


@dataclass
class VSISuperDataset:
    """VSI-SUPER records + videos -> :class:`ClipSample` (task ``"vsisuper_<mode>"``; see the module docstring)."""

    records: Sequence[VSISuperRecord]
    video_root: str | Path
    num_frames: int = 32
    image_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def video(self, record: VSISuperRecord) -> Path:
        return Path(self.video_root) / record.video_path

    def __getitem__(self, index: int) -> ClipSample:
        record = self.records[index]
        streamed = record.mode == "count_streaming"
        clip = decode_video(self.video(record), 1 if streamed else self.num_frames, self.image_size,
                            record=f"record {record.id}")  # fmt: skip
        answer = f"{record.answer:g}" if isinstance(record.answer, float) else record.answer  # counts: "27"
        return ClipSample(
            sample_id=f"vsisuper_{record.mode}-{record.id}",
            scene_id=Path(record.video_path).stem,
            task=f"vsisuper_{record.mode}",
            frames=clip.frames,
            question=record.question,
            answer=None if answer is None else str(answer),
            answers=[] if answer is None else [str(answer)],
            options=None if record.options is None else list(record.options),
            frame_indices=clip.indices,
            meta={
                "id": record.id,
                "mode": record.mode,
                "split": record.split,
                "video_path": str(self.video(record)),
                "streamed": streamed,
                "query_times": record.query_times,
                "answers": record.answers,
                "num_source_frames": clip.num_source_frames,
                "fps": clip.fps,
                **frame_problems_meta({"frame_problems": clip.problems}),
            },
        ).validate()


def build_vsisuper(
    spec: Any,
    num_frames: int,
    mode: str = "recall",
    video_root: str | None = None,
    splits: list[str] | None = None,
    image_size: Any = None,
    strict: bool = False,
    stream_select: str = "last",
) -> VSISuperDataset:
    """The ``vsisuper`` dataset kind: ``root`` = a VSI-SUPER record file, ``mode`` recall / count /
    count_streaming, videos under ``video_root`` (default: the file's folder). ``stream_select`` (streaming only)
    is the window rule of the streamed session (``"last"`` or ``"coverage"``, read by the evaluation task)."""
    if stream_select not in ("last", "coverage"):
        raise SampleError(f"option 'stream_select' must be 'last' or 'coverage', got {stream_select!r}")
    records, report = load_vsisuper(spec.root, mode, splits=splits, strict=strict)
    log_report(report, f"vsisuper {mode} ({spec.root})")
    root = Path(video_root) if video_root is not None else Path(spec.root).parent
    return VSISuperDataset(records, root, num_frames=num_frames, image_size=parse_size(image_size, "image_size"))


DATASET_KINDS = {"vsisuper": build_vsisuper}
