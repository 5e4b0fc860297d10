"""``loc3r eval --config`` on stand-in files in the real formats of VSI-Bench-debiased, ViewSpatial-Bench and
VSI-SUPER (recall, count, streaming count through ``loc3r stream``'s session) with a tiny saved checkpoint; the
prediction files re-scored by ``loc3r score``; the readers' errors named.

Stand-ins: VSI-Bench-debiased = SynthRooms' VSI-Bench records + mp4 with the release's extra ``pruned`` field;
ViewSpatial-Bench = the release layout (``eval/ViewSpatial-Bench.json`` + ``ViewSpatial-Bench/scannetv2_val/<scene>/
original_images/<n>.jpg`` and ``ViewSpatial-Bench/val2017/<id>.jpg``) made of SynthRooms frames; VSI-SUPER = the HF
records (``video_path``, ``type`` / ``split``, ``query_times``, ``answers``) on small generated mp4 files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import yaml

from conftest import REPO, save_tiny_checkpoint
from loc3r.cli import main

CORPUS = [
    "These are frames of a video. How many chairs are there? Please answer the question using a single word or phrase.",
    "Question: Choices: Reply only to the corresponding option. Answer: front back left right",
    "Answer with the option's letter from the given choices directly. Options: A. B. C. D.",
    "0 1 2 3 4 5 6 7 8 9",
]


def _video(path: Path, seconds: int, fps: int = 2, size: tuple[int, int] = (32, 32)) -> Path:
    """An MPEG-4 video of ``seconds`` s at ``fps``; frame k is a flat grey of level 10 * k."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for k in range(seconds * fps):
            img = np.full((*size, 3), (10 * k) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("spatial")
    synth = root / "synth"
    generate_dataset(
        synth,
        SynthSettings(num_scenes=1, seed=2, frames=4, width=32, height=32, situations_per_scene=1,
                      questions_per_situation=1, vsi_questions_per_type=1, val_fraction=0.0, test_fraction=0.0,
                      novel_view=False),
        progress=False,
    )  # fmt: skip
    # VSI-Bench-debiased: VSI-Bench's records (+ the release's 'pruned' flag) and videos
    rows = [json.loads(line) for line in (synth / "vsibench" / "train.jsonl").read_text().splitlines()]
    (synth / "vsibench" / "debiased.jsonl").write_text("".join(json.dumps({**r, "pruned": False}) + "\n" for r in rows))
    # ViewSpatial-Bench release layout from the scan's colour frames
    vs = root / "viewspatial"
    scene = sorted(p for p in (synth / "scans").iterdir() if p.is_dir())[0]
    colors = sorted((scene / "color").glob("*.jpg"), key=lambda p: int(p.stem))
    images = vs / "ViewSpatial-Bench" / "scannetv2_val" / scene.name / "original_images"
    images.mkdir(parents=True)
    for c in colors:
        shutil.copy(c, images / c.name)
    (vs / "ViewSpatial-Bench" / "val2017").mkdir()
    shutil.copy(colors[0], vs / "ViewSpatial-Bench" / "val2017" / "000000009400.jpg")
    rel = f"ViewSpatial-Bench/scannetv2_val/{scene.name}/original_images"
    records = [
        {"question_type": "Camera perspective - Relative Direction", "image_path": [f"{rel}/{colors[0].name}"],
         "question": "Where is the sofa in relation to the table?", "answer": "A. right",
         "choices": "A. right\nB. front-up\nC. back-left\nD. front"},
        {"question_type": "Person perspective - Object View Orientation",
         "image_path": ["ViewSpatial-Bench/val2017/000000009400.jpg"],
         "question": "Imagine you're the man in this image - which direction are you facing?", "answer": "C. left",
         "choices": "A. back-right\nB. back\nC. left\nD. front"},
        {"question_type": "Person perspective - Scene Simulation Relative Direction",
         "image_path": [f"{rel}/{c.name}" for c in colors],
         "question": "If you stand at the door facing the sink, where is the box?", "answer": "B. front",
         "choices": "A. right\nB. front\nC. back-left\nD. back-right"},
    ]  # fmt: skip
    (vs / "eval").mkdir()
    (vs / "eval" / "ViewSpatial-Bench.json").write_text(json.dumps(records, indent=2))
    # VSI-SUPER: Recall and Count (regular + streaming) records on generated videos
    sup = root / "vsisuper"
    _video(sup / "recall" / "10mins" / "00000000.mp4", seconds=3)
    _video(sup / "count" / "10mins" / "00000000.mp4", seconds=5)
    recall = [{"video_path": "10mins/00000000.mp4", "question": "Which order did the teddy bear appear in?",
               "options": ["A. bed, sofa", "B. sofa, bed", "C. desk, bed", "D. bed, desk"], "answer": "B",
               "type": "10mins"}]  # fmt: skip
    (sup / "recall" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recall))
    count = [
        {"video_path": "10mins/00000000.mp4", "question": "How many different chair(s) are there in the video?",
         "answer": 3.0, "split": "10mins", "query_times": None, "answers": None},
        {"video_path": "10mins/00000000.mp4", "question": "How many different chair(s) are there in the video?",
         "answer": None, "split": "10mins_streaming", "query_times": [1, 4], "answers": [1.0, 3.0]},
    ]  # fmt: skip
    (sup / "count" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in count))
    ckpt = save_tiny_checkpoint(root / "ckpt", CORPUS, layout_objective=True, situation_objective=True)
    return {"root": root, "synth": synth, "viewspatial": vs, "vsisuper": sup, "ckpt": ckpt}


DATA = {
    "vsibench_debiased": lambda d: {"kind": "vsibench", "root": str(d["synth"] / "vsibench" / "debiased.jsonl"),
                                    "split": "test", "options": {"video_root": str(d["synth"] / "vsibench")}},
    "viewspatial": lambda d: {"kind": "viewspatial", "root": str(d["viewspatial"] / "eval" / "ViewSpatial-Bench.json"),
                              "split": "test"},
    "vsisuper_recall": lambda d: {"kind": "vsisuper", "root": str(d["vsisuper"] / "recall" / "test.jsonl"),
                                  "split": "test", "options": {"mode": "recall"}},
    "vsisuper_count": lambda d: {"kind": "vsisuper", "root": str(d["vsisuper"] / "count" / "test.jsonl"),
                                 "split": "test", "options": {"mode": "count"}},
    "vsisuper_count_streaming": lambda d: {"kind": "vsisuper", "root": str(d["vsisuper"] / "count" / "test.jsonl"),
                                           "split": "test", "options": {"mode": "count_streaming",
                                                                        "stream_select": "last"}},
}  # fmt: skip
SCORE = {
    "vsibench_debiased": ("vsibench-debiased", "vsibench_debiased_predictions.jsonl", ("overall", "n")),
    "viewspatial": ("viewspatial", "viewspatial_predictions.jsonl",
                    ("overall", "camera_perspective_relative_direction",
                     "person_perspective_scene_simulation_relative_direction", "n")),
    "vsisuper_recall": ("vsisuper-recall", "vsisuper_recall_predictions.jsonl", ("accuracy", "accuracy/10mins", "n")),
    "vsisuper_count": ("vsisuper-count", "vsisuper_count_predictions.jsonl", ("mra", "mra/10mins", "n")),
    "vsisuper_count_streaming": ("vsisuper-count-streaming", "vsisuper_count_streaming_predictions.jsonl",
                                 ("mra", "mra_video_mean", "mra/10mins_streaming", "n", "n_queries")),
}  # fmt: skip


def _config(tmp: Path, benchmark: str, data: dict[str, Path], num_frames: int = 4) -> Path:
    """A config like configs/paper/eval/<benchmark>.yaml (same prompts / decoding) on the stand-in files."""
    paper = yaml.safe_load((REPO / "configs" / "paper" / "eval" / f"{benchmark}.yaml").read_text())
    cfg = {k: paper[k] for k in ("benchmark", "prompt", "generation")}
    cfg["generation"] = {**cfg["generation"], "max_new_tokens": 3}
    cfg.update(checkpoint=str(data["ckpt"]), output_dir=str(tmp / f"out-{benchmark}"), data=DATA[benchmark](data),
               num_frames=num_frames, batch_size=2)  # fmt: skip
    path = tmp / f"{benchmark}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("benchmark", list(SCORE))
def test_end_to_end_and_rescored(
    benchmark: str, data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, benchmark, data)
    assert main(["eval", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / f"out-{benchmark}"
    scores = json.loads((out / "scores.json").read_text())
    command, file, keys = SCORE[benchmark]
    for key in keys:
        assert key in scores, key
    assert scores["n_skipped"] == 0, scores["skipped"]
    for text in (str(config), "greedy", f"loc3r score {command}"):
        assert text in printed, text
    capsys.readouterr()
    assert main(["score", command, "--predictions", str(out / file), "--json"]) == 0
    rescored = json.loads(capsys.readouterr().out)
    for key in keys:
        assert rescored[key] == pytest.approx(scores[key]), key
    rows = [json.loads(line) for line in (out / file).read_text().splitlines()]
    if benchmark == "viewspatial":
        assert len(rows) == 3 and {r["question_type"] for r in rows} >= {"Camera perspective - Relative Direction"}
    if benchmark == "vsisuper_count_streaming":  # one streamed answer per query time, parsed into a count or null
        (row,) = rows
        assert row["query_times"] == [1, 4] and len(row["responses"]) == 2 and len(row["prediction"]) == 2
        assert "loc3r stream LiveSession" in printed


def test_prompts_are_the_official_ones(data: dict[str, Path], tmp_path: Path) -> None:
    from loc3r.data.registry import build_dataset
    from loc3r.evaluate.tasks import get_task, load_eval_config

    config = load_eval_config(_config(tmp_path, "viewspatial", data))
    sample = build_dataset(config.data, 4)[2]
    assert sample.frames.shape[0] == 4  # the Scene Simulation record's 4 frames, in order
    text = get_task("viewspatial").build_prompt(sample, config).question
    assert text == ("Question: If you stand at the door facing the sink, where is the box?\n"
                    "Choices: A. right\nB. front\nC. back-left\nD. back-right\n"
                    "Reply only to the corresponding option.\nAnswer:")  # fmt: skip
    config = load_eval_config(_config(tmp_path, "vsisuper_recall", data))
    sample = build_dataset(config.data, 4)[0]
    assert get_task("vsisuper_recall").build_prompt(sample, config).question == (
        "Which order did the teddy bear appear in?\nOptions:\nA. bed, sofa\nB. sofa, bed\nC. desk, bed\nD. bed, desk\n"
        "Answer with the option's letter from the given choices directly."
    )
    config = load_eval_config(_config(tmp_path, "vsisuper_count", data))
    sample = build_dataset(config.data, 4)[0]
    assert get_task("vsisuper_count").build_prompt(sample, config).question == (
        "These are frames of a video.\nHow many different chair(s) are there in the video?\n"
        "Please answer the question using a single word or phrase."
    )


def test_streaming_windows_follow_the_query_times(data: dict[str, Path]) -> None:
    """The driver pushes 1 frame per second into loc3r stream's session and answers right after the frame of each
    query second, from a window of at most T frames ending there."""
    from loc3r.apps.stream_eval import frames_per_second, stream_answers
    from loc3r.model.loading import load_model

    video = data["vsisuper"] / "count" / "10mins" / "00000000.mp4"
    seconds = [s for s, _ in frames_per_second(video)]
    assert seconds == [0, 1, 2, 3, 4]  # 5 s at 2 fps -> one frame per second
    model = load_model(data["ckpt"])
    out = stream_answers(model, video, "How many chairs are there?", [1, 3.5], num_frames=2, max_new_tokens=2)
    assert out.times == [1.0, 3.5] and len(out.answers) == 2
    assert out.windows == [(0, 1), (2, 3)]  # window of 2 ending at second 1, then at second 3 (3.5 -> frame 3)
    from loc3r.data.schema import SampleError

    with pytest.raises(SampleError, match=r"ends at 4 s, before query time\(s\) \[9.0\]"):
        stream_answers(model, video, "How many chairs are there?", [9], num_frames=2, max_new_tokens=1)


def test_bad_records_and_configs_are_named(data: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    from loc3r.benchmarks.viewspatial.reader import load_viewspatial
    from loc3r.benchmarks.vsisuper.reader import load_vsisuper
    from loc3r.data.schema import SampleError

    bad = tmp_path / "vs.json"
    bad.write_text(json.dumps([{"question_type": "x", "image_path": [], "question": "q", "answer": "A. a",
                                "choices": "A. a"}]))  # fmt: skip
    with pytest.raises(SampleError, match=r"vs\.json record 0: field 'image_path'"):
        load_viewspatial(bad, strict=True)
    bad.write_text(json.dumps([{"video_path": "v.mp4", "question": "q", "answer": None, "split": "10mins_streaming",
                                "query_times": [5, 2], "answers": [1, 2]}]))  # fmt: skip
    with pytest.raises(SampleError, match="record 0: field 'query_times' must be increasing"):
        load_vsisuper(bad, "count_streaming", strict=True)
    records, report = load_vsisuper(bad, "count")  # the regular mode skips streaming records, counted
    assert records == [] and report.skips["other_count_mode"] == 1
    bad.write_text(json.dumps([{"video_path": "v.mp4", "question": "q", "options": ["A. x", "B. y"], "answer": "E"}]))
    with pytest.raises(SampleError, match=r"field 'answer' must be one of the option letters \['A', 'B'\]"):
        load_vsisuper(bad, "recall", strict=True)
    # a config whose data mode does not match the benchmark is refused, naming both
    config = _config(tmp_path, "vsisuper_count", data)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["options"]["mode"] = "recall"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(config)]) == 2
    assert "options.mode 'count'" in capsys.readouterr().err
    # the runner refuses a streamed benchmark without a driver (demo / scripts): named, not a crash
    from loc3r.core.config import ConfigError
    from loc3r.evaluate.runner import evaluate
    from loc3r.evaluate.tasks import load_eval_config
    from loc3r.model.loading import load_model

    streaming = load_eval_config(_config(tmp_path, "vsisuper_count_streaming", data))
    with pytest.raises(ConfigError, match="streams its videos through loc3r stream"):
        evaluate(load_model(data["ckpt"]), streaming, progress=False)


LMMS_TASKS = {
    "loc3r_vsibench_debiased": ("vsibench_debiased", "overall"),
    "loc3r_viewspatial": ("viewspatial", "overall"),
    "loc3r_vsisuper_recall": ("vsisuper_recall", "accuracy"),
    "loc3r_vsisuper_count": ("vsisuper_count", "mra"),
}


def test_lmms_eval_tasks_load_and_score_like_loc3r_eval(data: dict[str, Path], tmp_path: Path) -> None:
    """The plugin's task YAMLs load in lmms-eval 0.7.3, run the loc3r model through its evaluator, and give the
    scores of ``loc3r eval --config`` on the same configs (the same loc3r task scores both)."""
    pytest.importorskip("lmms_eval.evaluator", reason="lmms-eval is not installed (`make install` installs it)")
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from loc3r.integrations.lmms_eval import TASKS_DIR

    configs = tmp_path / "configs"
    configs.mkdir()
    expected = {}
    for task, (benchmark, metric) in LMMS_TASKS.items():
        config = _config(tmp_path, benchmark, data)
        shutil.copy(config, configs / f"{benchmark}.yaml")
        assert main(["eval", "--config", str(config)]) == 0
        expected[task] = json.loads((tmp_path / f"out-{benchmark}" / "scores.json").read_text())[metric]
    manager = TaskManager("WARNING", include_path=str(TASKS_DIR), include_defaults=False)
    assert set(LMMS_TASKS) <= set(manager.all_tasks)
    mp = pytest.MonkeyPatch()
    mp.setenv("LOC3R_EVAL_CONFIGS", str(configs))
    mp.setenv("LMMS_EVAL_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    try:
        results = simple_evaluate(
            model="loc3r", model_args=f"pretrained={data['ckpt']},num_frames=4", tasks=list(LMMS_TASKS),
            task_manager=manager, batch_size=2, gen_kwargs="max_new_tokens=3", log_samples=True, bootstrap_iters=0,
            process_docs_parallel=1,
        )  # fmt: skip
    finally:
        mp.undo()
    assert results is not None
    for task, (_, metric) in LMMS_TASKS.items():
        assert results["results"][task][f"{metric},none"] == pytest.approx(expected[task], abs=1e-6), task
