"""VSI-Bench loader: parquet / JSON records, PyAV decoding of uniform frames, undecodable videos."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loc3r.benchmarks.vsibench.reader import VSIBenchDataset, load_vsibench
from loc3r.data.schema import SampleError
from loc3r.data.video import LoadReport, count_video_frames, decode_video, uniform_indices

ROWS = [
    {
        "id": 1,
        "dataset": "scannet",
        "scene_name": "scene0011_00",
        "question_type": "object_counting",
        "question": "How many chair(s) are in this room?",
        "options": None,
        "ground_truth": "4",
    },
    {
        "id": 2,
        "dataset": "arkitscenes",
        "scene_name": "41069025",
        "question_type": "object_rel_direction_easy",
        "question": "Is the sofa left or right of the table?",
        "options": ["A. left", "B. right"],
        "ground_truth": "A",
    },
    {
        "id": 3,
        "dataset": "scannet",
        "scene_name": "scene0011_00",
        "question_type": "room_size_estimation",
        "question": "What is the size of this room (in square meters)?",
        "options": None,
        "ground_truth": "21.3",
    },
]


def write_video(path: Path, num_frames: int, size: tuple[int, int] = (48, 64)) -> None:
    """An MPEG-4 video whose frame k is a flat grey of level 8 * k (recognisable after compression)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "1"}
        for k in range(num_frames):
            img = np.full((*size, 3), 8 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_parquet_records_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    records, report = load_vsibench(tmp_path)
    assert report.ok and [r.id for r in records] == ["1", "2", "3"]
    assert records[0].options is None and records[1].options == ["A. left", "B. right"]
    assert records[1].video_path("/videos") == Path("/videos/arkitscenes/41069025.mp4")
    kept, report = load_vsibench(path, question_types=["object_counting"])
    assert [r.question_type for r in kept] == ["object_counting"] and report.skips["question_type_filtered"] == 2


def test_json_and_jsonl_with_bad_rows(tmp_path: Path) -> None:
    bad = dict(ROWS[0], id=9, dataset="matterport")
    missing = {k: v for k, v in ROWS[1].items() if k != "question"}
    (tmp_path / "vsi.json").write_text(json.dumps([ROWS[0], bad, missing]))
    records, report = load_vsibench(tmp_path / "vsi.json")
    assert [r.id for r in records] == ["1"]
    assert [(e.record, e.field) for e in report.errors] == [("id=9", "dataset"), ("id=2", "question")]
    (tmp_path / "vsi.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert len(load_vsibench(tmp_path / "vsi.jsonl")[0]) == 3
    with pytest.raises(SampleError, match="id=9.*dataset"):
        load_vsibench(tmp_path / "vsi.json", strict=True)


def test_decode_uniform_frames(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_video(video, 25)
    assert count_video_frames(video) == 25
    clip = decode_video(video, 6, size=(24, 32))
    np.testing.assert_array_equal(clip.indices, uniform_indices(25, 6))
    assert clip.frames.shape == (6, 24, 32, 3) and clip.frames.dtype == np.uint8
    with av.open(str(video)) as container:  # independent full decode: each frame is the one asked for
        every = [f.reformat(width=32, height=24, format="rgb24").to_ndarray() for f in container.decode(video=0)]
    np.testing.assert_array_equal(clip.frames, np.stack([every[i] for i in clip.indices]))
    levels = clip.frames.reshape(6, -1).mean(axis=1)
    assert np.all(np.diff(levels) > 20)  # and they are distinct, in order
    assert clip.num_source_frames == 25 and clip.fps == pytest.approx(10.0)


def test_dataset_samples_and_undecodable_video(tmp_path: Path) -> None:
    write_video(tmp_path / "videos" / "scannet" / "scene0011_00.mp4", 12)
    broken = tmp_path / "videos" / "arkitscenes" / "41069025.mp4"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (tmp_path / "vsi.json").write_text(json.dumps(ROWS))
    records, _ = load_vsibench(tmp_path / "vsi.json")
    dataset = VSIBenchDataset(records, tmp_path / "videos", num_frames=4, image_size=(16, 16))
    samples = list(dataset.samples())
    assert [s.sample_id for s in samples] == ["vsibench-1", "vsibench-3"]
    sample = samples[1]
    assert sample.task == "vsibench" and sample.answer == "21.3" and sample.options is None
    assert sample.poses is None and sample.points is None and sample.agent_position is None
    assert sample.frames.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(sample.frame_indices, uniform_indices(12, 4))
    assert sample.meta["question_type"] == "room_size_estimation"
    (entry,) = dataset.report.errors
    assert entry.kind == "undecodable_video" and entry.file == str(broken)
    assert entry.record == "id=2" and entry.field == "video"
    strict = VSIBenchDataset(records, tmp_path / "videos", num_frames=4, report=LoadReport(strict=True))
    with pytest.raises(SampleError, match="41069025.mp4"):
        strict[1]


def test_synthrooms_records_load_through_the_same_loader(tmp_path: Path) -> None:
    """The SynthRooms writer's ``vsibench/<split>.jsonl`` (``dataset: "synthrooms"``) loads with videos at
    ``vsibench/synthrooms/<scene>.mp4``; an unknown source is still rejected."""
    from loc3r.benchmarks.vsibench.reader import VSIBENCH_SOURCES
    from loc3r.synthrooms.writer import DATASET_NAME, SynthSettings, generate_dataset

    assert DATASET_NAME in VSIBENCH_SOURCES
    settings = SynthSettings(
        num_scenes=2, frames=4, width=32, height=32, seed=5, situations_per_scene=1, vsi_questions_per_type=1
    )
    out = tmp_path / "synth"
    assert not generate_dataset(out, settings, workers=1, progress=False).failed
    split = next(s for s in ("train", "val", "test") if (out / "vsibench" / f"{s}.jsonl").read_text().strip())
    records, report = load_vsibench(out / "vsibench" / f"{split}.jsonl", strict=True)
    assert report.ok and records and {r.dataset for r in records} == {"synthrooms"}
    assert all(r.video_path(out / "vsibench").is_file() for r in records)
    sample = VSIBenchDataset(records[:1], out / "vsibench", num_frames=2, image_size=(16, 16))[0]
    assert sample.frames.shape == (2, 16, 16, 3) and sample.meta["dataset"] == "synthrooms"
