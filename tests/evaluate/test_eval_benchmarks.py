"""``loc3r eval --config`` on the real benchmarks' on-disk formats (SQA3D QA + localization, ScanQA, VSI-Bench,
MSQA) with a tiny saved checkpoint: end to end per benchmark, the predictions re-scored by ``loc3r score``,
the exact SQA3D localization round trip (ground truth -> SQA3D file -> 100 %), shards + merge == one run,
lm_only refused for localization, bad input named with exit code 2, and every pinned paper config accepted
up to the (absent) checkpoint.

Data: a 1-room SynthRooms set (``generate_dataset``) gives the ScanNet SensReader-style scan, the SQA3D file
pair and the VSI-Bench records + mp4. ScanQA and MSQA files are derived from its SQA3D records into those
benchmarks' released layouts (``ScanQA_v1.0_<split>.json`` list; MSQA ``{scene: {"response": [...]}}``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import REPO, save_tiny_checkpoint
from loc3r.cli import main

CORPUS = [
    "I am standing in the room. Answer the question using a single word or phrase.",
    "What is on my left? the sofa the chair the table yes no left right",
    "Answer with the option's letter from the given choices directly. A. B. C. D.",
    "Please answer the question using a single word or phrase. 0 1 2 3 4 5 6 7 8 9",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("bench")
    synth = root / "synth"
    generate_dataset(
        synth,
        SynthSettings(num_scenes=1, seed=2, frames=4, width=32, height=32, situations_per_scene=4,
                      questions_per_situation=2, vsi_questions_per_type=1, val_fraction=0.0, test_fraction=0.0,
                      novel_view=False),
        progress=False,
    )  # fmt: skip
    questions = json.loads((synth / "sqa3d" / "v1_balanced_questions_train_scannetv2.json").read_text())["questions"]
    annotations = json.loads((synth / "sqa3d" / "v1_balanced_sqa_annotations_train_scannetv2.json").read_text())
    answers = {a["question_id"]: a for a in annotations["annotations"]}
    # the tests need >= 2 situations and both VSI answer kinds; say so if a generator change takes them away
    assert len({q["situation"] for q in questions}) >= 2, "SynthRooms gave < 2 situations for this seed: pick another"
    # ScanQA's released layout: a JSON list of {question_id, scene_id, question, answers, object_ids, object_names}
    scanqa = root / "scanqa"
    scanqa.mkdir()
    (scanqa / "ScanQA_v1.0_val.json").write_text(
        json.dumps(
            [
                {
                    "question_id": f"val-{q['scene_id']}-{k}",
                    "scene_id": q["scene_id"],
                    "question": q["question"],
                    "answers": [a["answer"] for a in answers[q["question_id"]]["answers"]],
                    "object_ids": [],
                    "object_names": [],
                }
                for k, q in enumerate(questions)
            ]
        )
    )
    # MSQA's released layout: {scene_id: {"response": [{Q, A, query_type, type, situation, location, orientation}]}}
    msqa: dict[str, Any] = {}
    for k, q in enumerate(questions):
        ann = answers[q["question_id"]]
        yaw = 2 * math.atan2(ann["rotation"]["_z"], ann["rotation"]["_w"])
        msqa.setdefault(q["scene_id"], {"response": []})["response"].append(
            {
                "Q": q["question"],
                "A": [a["answer"] for a in ann["answers"]],
                "query_type": "qa_4_directions",
                "type": ann["question_type"],
                "situation": q["situation"],
                "location": [ann["position"]["x"], ann["position"]["y"], ann["position"]["z"]],
                "orientation": [math.cos(yaw), math.sin(yaw), 0.0],
                "mode": "txt",
                "index": k,
            }
        )
    (root / "msqa_scannet_test.json").write_text(json.dumps(msqa))
    return {"root": root, "synth": synth, "scanqa": scanqa, "msqa": root / "msqa_scannet_test.json"}


def _save_tiny(path: Path, **flags: object) -> Path:
    return save_tiny_checkpoint(path, CORPUS, **flags)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {
        "loc3r": _save_tiny(root / "loc3r", layout_objective=True, situation_objective=True),
        "lm_only": _save_tiny(root / "lm_only", layout_objective=False, situation_objective=False),
    }


def _data_spec(benchmark: str, data: dict[str, Path]) -> dict[str, Any]:
    synth = data["synth"]
    scans = str(synth / "scans")
    if benchmark in ("sqa3d", "sqa3d_localization"):
        options = {"scannet_root": scans, "convention": "loc3r_world", "points_size": None}
        return {"kind": "sqa3d", "root": str(synth / "sqa3d"), "split": "train", "options": options}
    if benchmark == "scanqa":
        return {"kind": "scanqa", "root": str(data["scanqa"]), "split": "val",
                "options": {"scannet_root": scans, "points_size": None}}  # fmt: skip
    if benchmark == "beacon3d":
        return {"kind": "scanqa", "root": str(synth / "beacon3d" / "train" / "synthrooms_qa.json"), "split": "val",
                "options": {"scannet_root": scans, "points_size": None}}  # fmt: skip
    if benchmark == "vsibench":
        return {"kind": "vsibench", "root": str(synth / "vsibench" / "train.jsonl"), "split": "test",
                "options": {"video_root": str(synth / "vsibench")}}  # fmt: skip
    return {"kind": "msqa", "root": str(data["msqa"]), "split": "test",
            "options": {"scannet_root": scans, "points_size": None}}  # fmt: skip


def _config(tmp: Path, benchmark: str, data: dict[str, Path], checkpoint: Path, **extra: Any) -> Path:
    """A config like configs/paper/eval/<benchmark>.yaml (same prompts / decoding) on the tiny data."""
    paper = yaml.safe_load((REPO / "configs" / "paper" / "eval" / f"{benchmark}.yaml").read_text())
    cfg = {
        **{k: paper[k] for k in ("benchmark", "prompt", "generation") if k in paper},
        "checkpoint": str(checkpoint),
        "output_dir": str(tmp / f"out-{benchmark}"),
        "data": _data_spec(benchmark, data),
        "num_frames": 4,
        "batch_size": 2,
        **extra,
    }
    if "generation" in cfg:
        cfg["generation"] = {**cfg["generation"], "max_new_tokens": 3}
    path = tmp / f"{benchmark}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _score_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


RESCORE = {
    "sqa3d": lambda out, data: ["sqa3d-qa", "--annotations",
                                str(data["synth"] / "sqa3d" / "v1_balanced_sqa_annotations_train_scannetv2.json"),
                                "--questions",
                                str(data["synth"] / "sqa3d" / "v1_balanced_questions_train_scannetv2.json"),
                                "--predictions", str(out / "sqa3d_predictions.json")],
    "sqa3d_localization": lambda out, data: [
        "sqa3d-loc", "--annotations",
        str(data["synth"] / "sqa3d" / "v1_balanced_sqa_annotations_train_scannetv2.json"),
        "--questions", str(data["synth"] / "sqa3d" / "v1_balanced_questions_train_scannetv2.json"),
        "--predictions", str(out / "sqa3d_localization_predictions.json")],
    "scanqa": lambda out, data: ["scanqa", "--references", str(data["scanqa"] / "ScanQA_v1.0_val.json"),
                                 "--predictions", str(out / "scanqa_predictions.json")],
    "vsibench": lambda out, data: ["vsibench", "--predictions", str(out / "vsibench_predictions.jsonl")],
    "beacon3d": lambda out, data: ["beacon3d", "--metadata",
                                   str(data["synth"] / "beacon3d" / "train" / "metadata_synthrooms_qa.json"),
                                   "--predictions", str(out / "beacon3d_predictions.json")],
    "msqa": lambda out, data: ["scanqa", "--references", str(out / "msqa_references.json"),
                               "--predictions", str(out / "msqa_predictions.json")],
}  # fmt: skip
KEYS = {
    "sqa3d": ("em@1", "em-r", "n"),
    "sqa3d_localization": ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "n"),
    "scanqa": ("em@1", "bleu-1", "bleu-4", "meteor", "rouge-l", "cider"),
    "vsibench": ("overall", "object_abs_distance", "object_rel_direction", "object_rel_distance", "n"),
    "msqa": ("em@1", "em-r", "cider", "rouge-l"),
    "beacon3d": ("overall_case", "overall_object", "appearance", "spatial", "em", "n"),
}


@pytest.mark.parametrize("benchmark", ["sqa3d", "sqa3d_localization", "scanqa", "vsibench", "msqa", "beacon3d"])
def test_benchmark_end_to_end_and_rescored(
    benchmark: str, data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, benchmark, data, ckpt["loc3r"])
    assert main(["eval", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / f"out-{benchmark}"
    scores = json.loads((out / "scores.json").read_text())
    for key in KEYS[benchmark]:
        assert key in scores, key
    # the exact settings are printed with the scores
    for text in (str(config), str(ckpt["loc3r"]), "4 uniformly sampled", "greedy", "rescore"):
        assert text in printed, text
    settings = json.loads((out / "settings.json").read_text())
    assert settings["samples"] == scores.get("n_questions", scores["n"]) and not settings["subset"]
    # the protocol is printed before anything is predicted, and kept inside scores.json
    assert printed.index("protocol of this run") < printed.index("+-")
    protocol = scores["settings"]
    assert protocol == settings
    assert protocol["frames"] == "4 uniformly sampled" and "linspace" in protocol["sampling"]
    assert protocol["resolution"].startswith("aspect kept") and protocol["backbone"] == "qwen2_5_vl"
    assert protocol["chat_template"].startswith("qwen2_5_vl/") and protocol["metric_version"].startswith(benchmark)
    for key in ("resolution", "chat_template", "metric_version", "sampling"):
        assert f"  {key}: " in printed[: printed.index("+-")], key
    if benchmark == "beacon3d":  # every ScanQA-format record was asked; the metadata counts each object's 3
        assert scores["n"] == 3 * scores["n_objects"] and scores["missing"] == 0
    if benchmark != "sqa3d_localization":
        suffix = yaml.safe_load(config.read_text())["prompt"]
        assert repr(suffix.get("multiple_choice_suffix") or suffix["suffix"]) in printed
    # ``loc3r score`` accepts the predictions file and gives the same numbers
    no_meteor = ["--no-meteor"] if benchmark in ("scanqa", "msqa") else []  # one Java start per test is enough
    rescored = _score_json(capsys, ["score", *RESCORE[benchmark](out, data), *no_meteor, "--json"])
    for key in KEYS[benchmark]:
        if key != "meteor" or not no_meteor:
            assert rescored[key] == pytest.approx(scores[key]), key
    if benchmark == "sqa3d_localization":
        assert all(math.isfinite(scores[k]) for k in ("acc@0.5m", "acc@30deg", "median_pos_err_m"))
        assert scores["missing"] == 0 and scores["unit"] == "situation"
        # one head prediction per situation (the heads come before the question), shared by its questions
        qfile = data["synth"] / "sqa3d" / "v1_balanced_questions_train_scannetv2.json"
        situation = {q["question_id"]: q["situation"] for q in json.loads(qfile.read_text())["questions"]}
        poses: dict[str, set[str]] = {}
        for row in json.loads((out / "sqa3d_localization_predictions.json").read_text()):
            poses.setdefault(situation[row["question_id"]], set()).add(json.dumps(row["position"]))
        assert len(poses) == len(set(situation.values())) > 1 and all(len(v) == 1 for v in poses.values())
        assert len({next(iter(v)) for v in poses.values()}) > 1


def test_vsibench_prompts_follow_question_type(data: dict[str, Path]) -> None:
    from loc3r.benchmarks.vsibench.reader import VSIBenchDataset, load_vsibench
    from loc3r.evaluate.tasks import get_task, load_eval_config

    config = load_eval_config(REPO / "configs" / "paper" / "eval" / "vsibench.yaml")
    records, _ = load_vsibench(data["synth"] / "vsibench" / "train.jsonl")
    dataset = VSIBenchDataset(records, data["synth"] / "vsibench", num_frames=4)
    task = get_task("vsibench")
    seen = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        prompted = task.build_prompt(sample, config)
        assert prompted.options is None and prompted.frames is sample.frames
        lines = prompted.question.split("\n")
        assert lines[0] == sample.question.strip()
        if sample.options:
            assert lines[1:-1] == [o.strip() for o in sample.options]
            assert lines[-1] == config.prompt.multiple_choice_suffix
            seen.add("mc")
        else:
            assert lines == [sample.question.strip(), config.prompt.numerical_suffix]
            seen.add("na")
        assert sample.question == records[i].question  # the dataset's sample is not modified
    assert seen == {"mc", "na"}


def test_sqa3d_localization_ground_truth_round_trip_is_exact(
    data: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sample's ground-truth BEV pose -> the task's SQA3D record -> ``loc3r score sqa3d-loc``: 100 % everywhere."""
    from loc3r.benchmarks.sqa3d.task import sqa3d_pose_record
    from loc3r.data.registry import build_dataset
    from loc3r.data.spec import DatasetSpec
    from loc3r.data.text_localization import bev_ground_truth

    dataset = build_dataset(DatasetSpec.model_validate(_data_spec("sqa3d", data)), num_frames=4)
    ann_path = data["synth"] / "sqa3d" / "v1_balanced_sqa_annotations_train_scannetv2.json"
    official = {a["question_id"]: a for a in json.loads(ann_path.read_text())["annotations"]}
    rows = []
    for i in range(len(dataset)):
        sample = dataset[i]
        xy, yaw = bev_ground_truth(sample)
        rec = sqa3d_pose_record(sample, xy, yaw)
        ann = official[sample.meta["question_id"]]
        for k in "xy":
            assert rec["position"][k] == pytest.approx(ann["position"][k], abs=1e-9)
        rows.append({"question_id": sample.meta["question_id"], **rec})
    pred = tmp_path / "gt.json"
    pred.write_text(json.dumps(rows))
    scores = _score_json(capsys, ["score", "sqa3d-loc", "--annotations", str(ann_path), "--predictions", str(pred),
                                  "--json"])  # fmt: skip
    assert scores["n_questions"] == len(official) and scores["missing"] == 0
    for key in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"):
        assert scores[key] == 100.0, key
    assert scores["median_pos_err_m"] < 1e-9 and scores["median_ori_err_deg"] < 1e-6


def _official_sqa3d(data: dict[str, Path], tmp: Path) -> tuple[Path, Path]:
    """The SynthRooms SQA3D pair rewritten in SQA3D's own convention (positions relative to a raw-mesh bbox
    centre, agent facing local -x) + a scene-meta JSON giving that centre and a non-trivial axis alignment,
    as for a real ScanNet scene (the scan's poses are the "raw" frame; the alignment rotates them)."""
    from loc3r.benchmarks.sqa3d.reader import world_to_sqa3d

    src = data["synth"] / "sqa3d"
    official = tmp / "sqa3d_official"
    official.mkdir()
    questions = json.loads((src / "v1_balanced_questions_train_scannetv2.json").read_text())
    annotations = json.loads((src / "v1_balanced_sqa_annotations_train_scannetv2.json").read_text())
    centre = [1.3, -0.7, 1.1]
    for ann in annotations["annotations"]:
        yaw = 2 * math.atan2(ann["rotation"]["_z"], ann["rotation"]["_w"])
        p = [ann["position"][k] for k in "xyz"]
        ann["position"], ann["rotation"] = world_to_sqa3d(p, yaw, mesh_bbox_center=centre)
    (official / "v1_balanced_questions_train_scannetv2.json").write_text(json.dumps(questions))
    (official / "v1_balanced_sqa_annotations_train_scannetv2.json").write_text(json.dumps(annotations))
    c, s = math.cos(0.7), math.sin(0.7)
    align = [c, -s, 0, 0.4, s, c, 0, -2.0, 0, 0, 1, 0.05, 0, 0, 0, 1]
    scenes = {q["scene_id"]: {"axis_alignment": align, "mesh_bbox_center": centre} for q in questions["questions"]}
    meta = tmp / "scene_meta.json"
    meta.write_text(json.dumps({"format": "loc3r.scene_meta.v1", "scenes": scenes}))
    return official, meta


def test_sqa3d_official_convention_end_to_end(
    data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQA3D's own convention through the whole path (loader with scene meta -> sample -> task record): the
    ground truth comes back at 100 %; dropping the axis alignment on the way back would not; the CLI runs."""
    from loc3r.benchmarks.sqa3d.task import sqa3d_pose_record
    from loc3r.data.registry import build_dataset
    from loc3r.data.spec import DatasetSpec
    from loc3r.data.text_localization import bev_ground_truth

    official, meta = _official_sqa3d(data, tmp_path)
    options = {"scannet_root": str(data["synth"] / "scans"), "scene_meta": str(meta), "points_size": None}
    spec = {"kind": "sqa3d", "root": str(official), "split": "train", "options": options}
    dataset = build_dataset(DatasetSpec.model_validate(spec), num_frames=4)
    ann_path = official / "v1_balanced_sqa_annotations_train_scannetv2.json"
    rows, wrong_frame = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        assert sample.meta["convention"] == "sqa3d" and sample.meta["axis_aligned"]
        xy, yaw = bev_ground_truth(sample)
        rows.append({"question_id": sample.meta["question_id"], **sqa3d_pose_record(sample, xy, yaw)})
        unaligned = {**sample.meta, "axis_alignment": np.eye(4).reshape(-1).tolist()}
        rec = sqa3d_pose_record(dataclasses.replace(sample, meta=unaligned), xy, yaw)
        wrong_frame.append({"question_id": sample.meta["question_id"], **rec})
    for name, preds, expected in (("gt", rows, 100.0), ("wrong", wrong_frame, None)):
        (tmp_path / f"{name}.json").write_text(json.dumps(preds))
        argv = ["score", "sqa3d-loc", "--annotations", str(ann_path), "--predictions", str(tmp_path / f"{name}.json")]
        scores = _score_json(capsys, [*argv, "--json"])
        if expected is None:
            assert scores["acc@0.5m"] < 100.0
        else:
            assert [scores[k] for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")] == [expected] * 4
    cfg = yaml.safe_load(_config(tmp_path, "sqa3d_localization", data, ckpt["loc3r"]).read_text())
    cfg["data"] = spec
    path = tmp_path / "official.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(path), "--out", str(tmp_path / "ev")]) == 0
    scores = json.loads((tmp_path / "ev" / "scores.json").read_text())
    assert scores["n_questions"] == len(dataset) and scores["missing"] == 0
    assert math.isfinite(scores["median_pos_err_m"])


def test_sqa3d_convention_round_trip_on_released_records() -> None:
    """The same inverse in SQA3D's own convention (bbox-centred raw frame, agent facing -x, axis alignment) on
    the released records of tests/fixtures/sqa3d: world pose -> anchor BEV -> task record == the file."""
    from conftest import SQA3D_FIXTURES as FIXTURES
    from conftest import look_pose
    from conftest import sqa3d_meta_table as meta_table
    from loc3r.benchmarks.sqa3d.metric import score_sqa3d_localization
    from loc3r.benchmarks.sqa3d.reader import load_sqa3d
    from loc3r.benchmarks.sqa3d.task import sqa3d_pose_record
    from loc3r.core.geometry import anchor_frame
    from loc3r.data.schema import ClipSample

    table = meta_table()
    records, _ = load_sqa3d(FIXTURES, "test", scene_meta=table)
    rng = np.random.default_rng(0)
    rows = []
    for r in records:
        meta = table.get(r.scene_id)
        align = np.eye(4) if meta.axis_alignment is None else meta.axis_alignment
        position, yaw = r.agent_world(align)
        first = look_pose(rng.uniform(-4, 4, 3), rng.uniform(-math.pi, math.pi), pitch=rng.uniform(-0.5, 0.5))
        sample = ClipSample(
            sample_id=f"sqa3d-{r.question_id}", scene_id=r.scene_id, task="sqa3d",
            frames=np.zeros((1, 4, 4, 3), np.uint8), question=r.question, poses=first[None],
            meta={"question_id": r.question_id, "convention": "sqa3d", "mesh_bbox_center": r.mesh_bbox_center.tolist(),
                  "axis_alignment": align.reshape(-1).tolist()},
        ).validate()  # fmt: skip
        anchor = anchor_frame(first)
        xy = anchor.points_to_bev(position)[:2]
        rows.append({"question_id": r.question_id, **sqa3d_pose_record(sample, xy, anchor.yaw_to_bev(yaw))})
    annotations = json.loads((FIXTURES / "v1_balanced_sqa_annotations_test_scannetv2.json").read_text())
    scores = score_sqa3d_localization(annotations, rows, unit="question")
    assert scores["n"] == len(records) == 124 and scores["missing"] == 0
    assert [scores[k] for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")] == [100.0] * 4
    assert scores["median_pos_err_m"] < 1e-9 and scores["median_ori_err_deg"] < 1e-6


def test_shards_and_merge_equal_one_run(data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path) -> None:
    config = _config(tmp_path, "sqa3d", data, ckpt["loc3r"])
    assert main(["eval", "--config", str(config), "--out", str(tmp_path / "one")]) == 0
    for i in range(2):
        assert main(["eval", "--config", str(config), "--shard", f"{i}/2", "--out", str(tmp_path / "two")]) == 0
    shards = sorted((tmp_path / "two").glob("predictions-shard*.jsonl"))
    assert len(shards) == 2 and not (tmp_path / "two" / "scores.json").exists()
    assert main(["eval", "--config", str(config), "--merge", *map(str, shards), "--out", str(tmp_path / "two")]) == 0
    one = json.loads((tmp_path / "one" / "sqa3d_predictions.json").read_text())
    two = json.loads((tmp_path / "two" / "sqa3d_predictions.json").read_text())
    assert sorted(one, key=lambda r: r["question_id"]) == sorted(two, key=lambda r: r["question_id"])
    s1 = json.loads((tmp_path / "one" / "scores.json").read_text())
    s2 = json.loads((tmp_path / "two" / "scores.json").read_text())
    s1.pop("sec_per_query"), s2.pop("sec_per_query")
    p1, p2 = s1.pop("settings"), s2.pop("settings")
    assert s1 == s2
    # the merge carries the protocol the shards ran with (resolution, chat template, ...), not a blank
    for key in ("frames", "sampling", "resolution", "preprocessing", "chat_template", "prompt", "metric_version"):
        assert p1[key] == p2[key], key
    # merging the same shard twice is refused, naming the files
    assert main(["eval", "--config", str(config), "--merge", str(shards[0]), str(shards[0])]) == 2
    # so are one shard of two, and shards merged under a config with another frame count (issue 11)
    assert main(["eval", "--config", str(config), "--merge", str(shards[0]), "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "o").mkdir()
    other = _config(tmp_path / "o", "sqa3d", data, ckpt["loc3r"], num_frames=6)
    assert main(["eval", "--config", str(other), "--merge", *map(str, shards), "--out", str(tmp_path / "x")]) == 2


def test_max_samples_subset_is_rescorable(
    data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "sqa3d_localization", data, ckpt["loc3r"])
    out = tmp_path / "sub"
    assert main(["eval", "--config", str(config), "--max-samples", "3", "--out", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["n_questions"] == 3 and scores["missing"] == 0
    assert json.loads((out / "settings.json").read_text())["subset"] is True
    rescored = _score_json(capsys, ["score", "sqa3d-loc", "--annotations",
                                    str(out / "sqa3d_localization_annotations_subset.json"), "--questions",
                                    str(out / "sqa3d_localization_questions_subset.json"), "--predictions",
                                    str(out / "sqa3d_localization_predictions.json"), "--json"])  # fmt: skip
    assert rescored["acc@1.0m"] == scores["acc@1.0m"] and rescored["n"] == scores["n"]


def test_bad_inputs_are_named(
    data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # lm_only has no situation heads: localization on a real benchmark is refused, naming checkpoint + benchmark
    config = _config(tmp_path, "sqa3d_localization", data, ckpt["lm_only"])
    assert main(["eval", "--config", str(config)]) == 2
    text = capsys.readouterr().err
    assert "loc3r eval: error: " in text
    assert str(ckpt["lm_only"]) in text and "sqa3d_localization" in text and "situation heads" in text
    # the former SynthRooms-mode flags are not silently ignored next to a pinned config: the error names the key
    assert main(["eval", "--config", str(config), "--frames", "8"]) == 2
    assert "--frames" in (err := capsys.readouterr().err) and "--set num_frames=" in err
    # missing checkpoint
    assert main(["eval", "--config", str(config), "--checkpoint", str(tmp_path / "nope")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
    # missing data file
    bad = _config(tmp_path, "scanqa", data, ckpt["loc3r"])
    cfg = yaml.safe_load(bad.read_text())
    cfg["data"]["split"] = "train"  # ScanQA_v1.0_train.json does not exist
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(bad)]) == 2
    assert "ScanQA_v1.0_train.json" in capsys.readouterr().err
    # unknown benchmark / unknown key / missing config
    cfg["benchmark"] = "scanrefer"
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(bad)]) == 2
    assert "benchmark" in capsys.readouterr().err
    cfg["benchmark"], cfg["prompts"] = "scanqa", {"suffix": "x"}
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(bad)]) == 2
    assert "unknown key 'prompts'" in capsys.readouterr().err
    assert main(["eval", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err
    # sampling / beams cannot be honoured by the greedy predict(): refused, not ignored
    sampled = _config(tmp_path, "sqa3d", data, ckpt["loc3r"])
    cfg = yaml.safe_load(sampled.read_text())
    cfg["generation"]["num_beams"] = 4
    sampled.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(sampled)]) == 2
    assert "num_beams=4" in capsys.readouterr().err


def test_sqa3d_localization_three_candidates(data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path) -> None:
    """Up to 3 candidates (orientation modes, positions spread by the calibrated sigma): the head's pose is the
    first, so Acc with 3 is never below Acc with 1; the file holds the SQA3D candidates format."""
    one = _config(tmp_path, "sqa3d_localization", data, ckpt["loc3r"], output_dir=str(tmp_path / "one"))
    assert main(["eval", "--config", str(one)]) == 0
    extra = {"localization_candidates": 3, "position_sigma_temperature": 2.0, "candidate_spread": 1.5}
    three = _config(tmp_path, "sqa3d_localization", data, ckpt["loc3r"], output_dir=str(tmp_path / "three"), **extra)
    assert main(["eval", "--config", str(three)]) == 0
    rows1 = json.loads((tmp_path / "one" / "sqa3d_localization_predictions.json").read_text())
    rows3 = json.loads((tmp_path / "three" / "sqa3d_localization_predictions.json").read_text())
    assert all("candidates" not in r for r in rows1)
    assert all(len(r["candidates"]) == 3 for r in rows3)
    for r1, r3 in zip(rows1, rows3, strict=True):
        assert r3["candidates"][0]["position"] == pytest.approx(r1["position"])
        assert len({json.dumps(c["position"]) for c in r3["candidates"]}) == 3
    s1 = json.loads((tmp_path / "one" / "scores.json").read_text())
    s3 = json.loads((tmp_path / "three" / "scores.json").read_text())
    for key in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"):
        assert s3[key] >= s1[key], key


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "paper" / "eval").glob("*.yaml")), ids=lambda p: p.stem)
def test_paper_eval_configs_reach_the_checkpoint(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every pinned paper config is valid for ``--config`` up to loading its (absent) checkpoint."""
    checkpoint = yaml.safe_load(path.read_text())["checkpoint"]
    assert not (REPO / checkpoint).exists()
    assert main(["eval", "--config", str(path)]) == 2
    assert f"{checkpoint}: checkpoint directory does not exist" in capsys.readouterr().err


def test_skipped_samples_are_listed_with_their_reason(
    data: dict[str, Path], ckpt: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose video is missing is neither scored nor silently dropped: scores.json lists it (issue 11)."""
    records = [json.loads(line) for line in (data["synth"] / "vsibench" / "train.jsonl").read_text().splitlines()]
    ghost = {**records[0], "id": 999999, "scene_name": "synth09999_00"}
    jsonl = tmp_path / "vsi.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [*records, ghost]))
    config = _config(tmp_path, "vsibench", data, ckpt["loc3r"])
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["root"] = str(jsonl)
    config.write_text(yaml.safe_dump(cfg))
    assert main(["eval", "--config", str(config)]) == 0
    scores = json.loads((tmp_path / "out-vsibench" / "scores.json").read_text())
    assert scores["n_skipped"] == 1 and scores["n_input"] == len(records) + 1 == scores["n"] + 1
    (skipped,) = scores["skipped"]
    assert "synth09999_00" in skipped["reason"] and "999999" in skipped["sample_id"]
    assert "1 of" in capsys.readouterr().out
