"""VSI-Bench (visual-spatial questions on plain videos) as :class:`~loc3r.data.schema.ClipSample`.

Records (DESIGN.md §4): ``{id, dataset (scannet | scannetpp | arkitscenes | synthrooms), scene_name, question_type,
question, options (list "A. ..." or null), ground_truth}``, read from the Hugging Face release's
``test-00000-of-00001.parquet`` (pyarrow), or from a JSON list / JSON-lines file with the same fields
(e.g. VSI-style training data, or ``vsibench/<split>.jsonl`` of a SynthRooms set, whose records say
``dataset: "synthrooms"``). The video of a record is ``<video_root>/<dataset>/<scene_name>.mp4``,
decoded with PyAV; ``T`` frames are sampled uniformly over the whole video
(:func:`~loc3r.data.video.uniform_indices`).

VSI-Bench's videos have no camera poses or depth: from the mp4, samples carry ``poses=None`` and
``points=None``, so the layout loss is off for them. **Posed scans** (the paper computes layout targets "from the
depth maps and camera poses provided by the datasets"): when the user has the posed scan of a record's scene —
ScanNet's SensReader export, or ScanNet++ / ARKitScenes frames converted to the same layout
(``color/ depth/ pose/ intrinsic/``) — ``scans={dataset: frame source}`` (``loc3r prepare vsibench --scan-root
scannet=DIR``, or the dataset option ``scan_roots``) makes the sample take its ``T`` frames from the scan instead:

* frame policy: ``T`` frames uniformly over the scan's frames with a valid pose (the SQA3D / ScanQA policy,
  :meth:`~loc3r.data.scannet.ScanNetScene.load_clip`), their world poses and per-pixel world points → layout
  targets and camera features (``meta["frames_from"] = "scan"``);
* difference from the mp4 frames: VSI-Bench's mp4 is a re-encoded, time-subsampled copy of the same capture, and
  the mp4 policy samples uniformly over all of its frames; the scan policy samples over the (typically denser)
  sensor stream and skips frames whose pose is invalid, at the scan's own colour resolution. Both cover the whole
  capture uniformly, so the two clips show the same room from near-identical viewpoints, but not pixel-identical
  frames. Evaluation (VSI-Bench test) always uses the mp4 (no scan is needed at test time);
* a record whose scene has no scan, or whose scan has fewer valid poses than ``T``, keeps the mp4 frames (no layout
  target); the reason is counted in the report (``vsi_without_scan``).

Units of the numerical answers: distances in m, object size in cm (longest side), room size in m².
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loc3r.data.builders import frame_source, log_report, parse_size, read_record_rows, report_bad_record
from loc3r.data.cache import check_cache_settings, clip_path, read_scannet_clip, read_video_clip, scan_key, video_key
from loc3r.data.scannet import ScanNetClip
from loc3r.data.schema import ClipSample, SampleError
from loc3r.data.video import LoadReport, VideoClip, decode_video, frame_problems_meta

VSIBENCH_DATASETS = ("scannet", "scannetpp", "arkitscenes")
"""The source datasets of the real VSI-Bench release."""
VSIBENCH_SOURCES = (*VSIBENCH_DATASETS, "synthrooms")
"""Accepted values of a record's ``dataset`` field: the real sources plus our SynthRooms generator
(``loc3r.synthrooms.writer.DATASET_NAME``; spelled out here so that reading records does not import the
generator)."""
_REQUIRED = ("id", "dataset", "scene_name", "question_type", "question", "ground_truth")


@dataclass
class VSIBenchRecord:
    id: str
    dataset: str
    scene_name: str
    question_type: str
    question: str
    options: list[str] | None
    ground_truth: str

    def video_path(self, video_root: str | Path) -> Path:
        return Path(video_root) / self.dataset / f"{self.scene_name}.mp4"


def load_vsibench(
    path: str | Path,
    *,
    question_types: Sequence[str] | None = None,
    strict: bool = False,
    report: LoadReport | None = None,
) -> tuple[list[VSIBenchRecord], LoadReport]:
    """Load VSI-Bench records (a file, or a folder holding ``test-00000-of-00001.parquet``).

    ``question_types`` keeps only those types. Malformed rows are reported with file, record and field.
    """
    report = report if report is not None else LoadReport("vsibench", strict=strict)
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("test-*.parquet")) or sorted(path.glob("*.parquet"))
        if not candidates:
            raise SampleError(f"{path}: no VSI-Bench parquet file (test-00000-of-00001.parquet) in this folder")
        path = candidates[0]
    records: list[VSIBenchRecord] = []
    for index, row in enumerate(read_record_rows(path, "VSI-Bench")):
        record = f"row {index}"
        try:
            if not isinstance(row, dict):
                raise SampleError(f"{path} {record}: row must be an object")
            if row.get("id") is not None:
                record = f"id={row['id']}"
            for key in _REQUIRED:
                value = row.get(key)
                if value is None or (isinstance(value, str) and not value.strip() and key != "ground_truth"):
                    raise SampleError(f"{path} {record}: field {key!r} is missing or empty")
            dataset = str(row["dataset"])
            if dataset not in VSIBENCH_SOURCES:
                raise SampleError(
                    f"{path} {record}: field 'dataset' must be one of {VSIBENCH_SOURCES}, got {dataset!r}"
                )
            options = row.get("options")
            if options is not None:
                if not isinstance(options, list | tuple) or not all(isinstance(o, str) for o in options):
                    raise SampleError(f"{path} {record}: field 'options' must be a list of strings or null")
                options = list(options)
        except SampleError as err:
            report_bad_record(report, err, path, record)
            continue
        if question_types is not None and row["question_type"] not in question_types:
            report.skip("question_type_filtered")
            continue
        records.append(
            VSIBenchRecord(
                id=str(row["id"]),
                dataset=dataset,
                scene_name=str(row["scene_name"]),
                question_type=str(row["question_type"]),
                question=str(row["question"]),
                options=options,
                ground_truth=str(row["ground_truth"]),
            )
        )
    report.count("records_loaded", len(records))
    return records, report


def vsi_clip_sample(
    record: VSIBenchRecord,
    sample_id: str,
    task: str,
    frames: Any,
    frame_indices: Any,
    poses: Any = None,
    points: Any = None,
    meta: dict[str, Any] | None = None,
) -> ClipSample:
    """A VSI-format record on its clip's frames (and, from a posed scan, poses + layout points) as a validated
    :class:`ClipSample`: the one place that maps the record's question / options / answer onto a sample, for real
    VSI-Bench (video or scan frames) and SynthRooms' VSI-style set alike."""
    return ClipSample(
        sample_id=sample_id,
        scene_id=record.scene_name,
        task=task,
        frames=frames,
        question=record.question,
        answer=record.ground_truth,
        answers=[record.ground_truth],
        options=None if record.options is None else list(record.options),
        poses=poses,
        points=points,
        frame_indices=frame_indices,
        meta={"id": record.id, "dataset": record.dataset, "question_type": record.question_type, **(meta or {})},
    ).validate()


@dataclass
class VSIBenchDataset:
    """VSI-Bench records + videos -> :class:`ClipSample` (task ``"vsibench"``, no poses / points).

    Decoded clips are cached per video (several questions share a scene video).
    """

    records: Sequence[VSIBenchRecord]
    video_root: str | Path
    num_frames: int = 32
    image_size: tuple[int, int] | None = None
    report: LoadReport = None  # type: ignore[assignment]  # set by __post_init__
    task: str = "vsibench"
    cache_size: int = 2
    #: source dataset -> frame source of its posed scans (``clip(scene_id)``, e.g. ScanNetFrameSource)
    scans: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.report is None:
            self.report = LoadReport("vsibench videos")
        self._cache: dict[Path, Any] = {}
        self._failed: dict[Path, str] = {}
        self._no_scan: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self.records)

    def _clip(self, record: VSIBenchRecord) -> Any:
        path = record.video_path(self.video_root)
        if path in self._cache:
            return self._cache[path]
        if path in self._failed:
            raise SampleError(self._failed[path])
        try:
            clip = decode_video(path, self.num_frames, self.image_size, record=f"id={record.id}")
        except SampleError as err:
            self._failed[path] = str(err)
            kind = "missing_file" if not path.is_file() else "undecodable_video"
            self.report.error(kind, str(err), file=path, record=f"id={record.id}", field="video")  # raises if strict
            raise
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[path] = clip
        return clip

    def _scan_clip(self, record: VSIBenchRecord) -> Any | None:
        """The clip of the record's scene from its posed scan, or None (then the mp4 is used)."""
        source = (self.scans or {}).get(record.dataset)
        if source is None:
            return None
        key = (record.dataset, record.scene_name)
        if key in self._no_scan:
            return None
        try:
            clip = source.clip(record.scene_name)
        except SampleError:
            clip = None
        # fewer valid poses than T would repeat frames: keep the mp4 (as `loc3r prepare` does)
        if clip is None or getattr(clip, "num_valid_frames", self.num_frames) < self.num_frames:
            self._no_scan.add(key)
            self.report.skip("vsi_without_scan", f"{record.dataset}/{record.scene_name}")
            return None
        return clip

    def __getitem__(self, index: int) -> ClipSample:
        record = self.records[index]
        scan = self._scan_clip(record)
        if scan is not None:
            return vsi_clip_sample(
                record, f"vsibench-{record.id}", self.task, scan.frames, scan.frame_ids,
                poses=scan.poses, points=scan.points,
                meta={"frames_from": "scan", **frame_problems_meta(getattr(scan, "meta", None))},
            )  # fmt: skip
        clip = self._clip(record)
        return vsi_clip_sample(
            record, f"vsibench-{record.id}", self.task, clip.frames, clip.indices,
            meta={
                "num_source_frames": clip.num_source_frames,
                "fps": clip.fps,
                **frame_problems_meta({"frame_problems": clip.problems}),
                "frames_from": "video",
            },
        )  # fmt: skip

    def samples(self) -> Iterator[ClipSample]:
        """All samples grouped by video; undecodable videos are skipped and reported."""
        order = sorted(range(len(self.records)), key=lambda i: (self.records[i].dataset, self.records[i].scene_name, i))
        for i in order:
            try:
                yield self[i]
            except SampleError:
                if self.report.strict:
                    raise
                self.report.skip("sample_without_video", self.records[i].id)


class CachedVSIBenchDataset(VSIBenchDataset):
    """:class:`~loc3r.benchmarks.vsibench.reader.VSIBenchDataset` reading prepared video clips instead of decoding.

    ``video_root`` is the cache directory; ``__getitem__`` (prompt, options, answer, meta) is inherited, so a
    prepared sample equals the decoded one.
    """

    def __post_init__(self) -> None:
        check_cache_settings(self.video_root, self.num_frames)
        super().__post_init__()

    def _scan_clip(self, record: VSIBenchRecord) -> ScanNetClip | None:
        """The prepared scan clip of the record's scene, when ``loc3r prepare`` took one (else None)."""
        path = clip_path(self.video_root, scan_key(record.dataset, record.scene_name))
        if not path.is_file():
            return None
        return read_scannet_clip(path)

    def _clip(self, record: VSIBenchRecord) -> VideoClip:
        path = clip_path(self.video_root, video_key(record.dataset, record.scene_name))
        try:
            return read_video_clip(path)
        except SampleError as err:
            kind = "missing_file" if not path.is_file() else "bad_clip"
            self.report.error(kind, str(err), file=path, record=f"id={record.id}", field="video")  # raises if strict
            raise


def build_vsibench(
    spec: Any,
    num_frames: int,
    video_root: str | None = None,
    question_types: list[str] | None = None,
    image_size: Any = None,
    strict: bool = False,
    cache: str | None = None,
    scan_roots: dict[str, str] | None = None,
    points_size: Any = (96, 128),
) -> Any:
    """VSI-Bench records (``root``: a JSON/parquet file or folder) with videos under ``video_root``
    (``<dataset>/<scene_name>.mp4``); the videos have no poses. ``scan_roots`` ``{dataset: DIR}``: records whose
    scene has a posed scan ``DIR/<scene_name>/`` take their frames from it (layout targets; see
    this module's docstring); a prepared cache holds those scan clips already (``loc3r prepare --scan-root``)."""
    records, report = load_vsibench(spec.root, question_types=question_types, strict=strict)
    log_report(report, f"vsibench ({spec.root})")
    if cache is not None:
        from loc3r.data.video import LoadReport

        return CachedVSIBenchDataset(
            records, Path(cache), num_frames=num_frames, report=LoadReport("vsibench prepared clips", strict=strict)
        )
    root = Path(video_root) if video_root is not None else Path(spec.root)
    if root.is_file():
        root = root.parent
    scans = {  # posed scans of any capture format, as a scan dataset's frames
        name: frame_source(Path(folder), num_frames, image_size, points_size, None, None, strict)
        for name, folder in (scan_roots or {}).items()
    }
    return VSIBenchDataset(
        records, root, num_frames=num_frames, image_size=parse_size(image_size, "image_size"), scans=scans or None
    )


DATASET_KINDS = {"vsibench": build_vsibench}
