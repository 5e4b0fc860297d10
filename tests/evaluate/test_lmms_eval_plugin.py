"""The lmms-eval plugin (``loc3r.integrations.lmms_eval``) through lmms-eval's real evaluator.

SynthRooms files in the real formats (SQA3D question/annotation pair + ScanNet SensReader scans, ScanQA and MSQA
files derived from them, VSI-Bench records + mp4) and a tiny saved checkpoint; the ``loc3r`` model found through
the ``lmms_eval.models`` entry point, the ``loc3r_*`` tasks through ``include_path``, run by
``lmms_eval.evaluator.simple_evaluate``. Checked: same predictions and same scores as ``loc3r eval --config`` with
the same configs; lmms-eval's logged predictions re-scored by ``loc3r score`` give its numbers; the localization
JSON response; lmms-eval's own ``vsibench`` task runs the model; bad input is named.
Skipped (with the reason) where lmms-eval is not installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, save_tiny_checkpoint
from loc3r.cli import main

try:  # the plugin needs lmms-eval's evaluator importable (CI installs it: Makefile, target install)
    import lmms_eval.evaluator  # noqa: F401

    LMMS_ERROR = None
except Exception as err:  # any import failure of the optional dependency means: skip, saying why
    LMMS_ERROR = f"lmms-eval is not importable ({type(err).__name__}: {err}); `make install` installs it"

pytestmark = pytest.mark.skipif(LMMS_ERROR is not None, reason=LMMS_ERROR or "")

CORPUS = [
    "I am standing in the room. Answer the question using a single word or phrase.",
    "What is on my left? the sofa the chair the table yes no left right",
    "Answer with the option's letter from the given choices directly. A. B. C. D.",
    "Please answer the question using a single word or phrase. 0 1 2 3 4 5 6 7 8 9",
]
TASKS = {
    "loc3r_sqa3d": "sqa3d",
    "loc3r_sqa3d_localization": "sqa3d_localization",
    "loc3r_scanqa": "scanqa",
    "loc3r_msqa": "msqa",
}
KEYS = {
    "sqa3d": ("em@1", "em-r", "em@1/what"),
    "sqa3d_localization": ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "median_pos_err_m"),
    "scanqa": ("em@1", "bleu-1", "bleu-4", "rouge-l", "cider", "meteor"),
    "msqa": ("em@1", "em-r", "cider", "rouge-l"),
}
PREDICTIONS = {
    "sqa3d": "sqa3d_predictions.json",
    "sqa3d_localization": "sqa3d_localization_predictions.json",
    "scanqa": "scanqa_predictions.json",
    "msqa": "msqa_predictions.json",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1-room SynthRooms set, ScanQA / MSQA files in their released layouts, a tiny checkpoint, loc3r eval configs
    like configs/paper/eval/*.yaml on that data."""
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("lmms")
    synth = root / "synth"
    generate_dataset(
        synth,
        SynthSettings(num_scenes=1, seed=2, frames=4, width=32, height=32, situations_per_scene=3,
                      questions_per_situation=2, vsi_questions_per_type=1, val_fraction=0.0, test_fraction=0.0,
                      novel_view=False),
        progress=False,
    )  # fmt: skip
    sqa = synth / "sqa3d"
    questions = json.loads((sqa / "v1_balanced_questions_train_scannetv2.json").read_text())["questions"]
    annotations = json.loads((sqa / "v1_balanced_sqa_annotations_train_scannetv2.json").read_text())["annotations"]
    answers = {a["question_id"]: a for a in annotations}
    (root / "scanqa").mkdir()
    scanqa = [{"question_id": f"val-{q['scene_id']}-{k}", "scene_id": q["scene_id"], "question": q["question"],
               "answers": [a["answer"] for a in answers[q["question_id"]]["answers"]], "object_ids": [],
               "object_names": []} for k, q in enumerate(questions)]  # fmt: skip
    (root / "scanqa" / "ScanQA_v1.0_val.json").write_text(json.dumps(scanqa))
    msqa: dict[str, Any] = {}
    for k, q in enumerate(questions):
        ann = answers[q["question_id"]]
        yaw = 2 * math.atan2(ann["rotation"]["_z"], ann["rotation"]["_w"])
        msqa.setdefault(q["scene_id"], {"response": []})["response"].append(
            {"Q": q["question"], "A": [a["answer"] for a in ann["answers"]], "query_type": "qa_4_directions",
             "type": ann["question_type"], "situation": q["situation"],
             "location": [ann["position"][c] for c in "xyz"], "orientation": [math.cos(yaw), math.sin(yaw), 0.0],
             "mode": "txt", "index": k}
        )  # fmt: skip
    (root / "msqa.json").write_text(json.dumps(msqa))
    ckpt = save_tiny_checkpoint(root / "ckpt", CORPUS, layout_objective=True, situation_objective=True)

    scans = str(synth / "scans")
    data = {
        "sqa3d": {"kind": "sqa3d", "root": str(sqa), "split": "train",
                  "options": {"scannet_root": scans, "convention": "loc3r_world", "points_size": None}},
        "scanqa": {"kind": "scanqa", "root": str(root / "scanqa"), "split": "val",
                   "options": {"scannet_root": scans, "points_size": None}},
        "msqa": {"kind": "msqa", "root": str(root / "msqa.json"), "split": "test",
                 "options": {"scannet_root": scans, "points_size": None}},
    }  # fmt: skip
    data["sqa3d_localization"] = data["sqa3d"]
    configs = root / "configs"
    configs.mkdir()
    for benchmark in TASKS.values():
        paper = yaml.safe_load((REPO / "configs" / "paper" / "eval" / f"{benchmark}.yaml").read_text())
        cfg = {k: paper[k] for k in ("benchmark", "prompt", "generation") if k in paper}
        if "generation" in cfg:
            cfg["generation"] = {**cfg["generation"], "max_new_tokens": 3}
        cfg.update(checkpoint=str(ckpt), output_dir=str(root / "eval" / benchmark), data=data[benchmark],
                   num_frames=4, batch_size=2)  # fmt: skip
        (configs / f"{benchmark}.yaml").write_text(yaml.safe_dump(cfg))
    return {"root": root, "synth": synth, "ckpt": ckpt, "configs": configs}


@pytest.fixture(scope="module")
def no_meteor() -> Any:
    """METEOR's JVM costs ~15 s per call on the loaded CI machine: both sides report it unavailable here (the same
    ``loc3r.evaluate.qa`` path; ``meteor`` is then ``nan`` in lmms-eval and ``null`` in scores.json)."""
    mp = pytest.MonkeyPatch()
    mp.setattr("loc3r.evaluate.qa.java_available", lambda: (False, "METEOR skipped by the test"))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def lmms_run(setup: dict[str, Path], no_meteor: None) -> dict[str, Any]:
    """The four loc3r tasks through lmms-eval's evaluator, with the entry-point model (one run, module scope)."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from loc3r.integrations.lmms_eval import TASKS_DIR

    mp = pytest.MonkeyPatch()
    mp.setenv("LOC3R_EVAL_CONFIGS", str(setup["configs"]))
    mp.setenv("LMMS_EVAL_DATASETS_CACHE", str(setup["root"] / "hf_datasets"))
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    try:
        results = simple_evaluate(
            model="loc3r",
            model_args=f"pretrained={setup['ckpt']},num_frames=4",
            tasks=list(TASKS),
            task_manager=TaskManager("WARNING", include_path=str(TASKS_DIR), include_defaults=False),  # 7 s less
            batch_size=2,
            gen_kwargs="max_new_tokens=3",
            log_samples=True,
            bootstrap_iters=0,
            process_docs_parallel=1,
        )
    finally:
        mp.undo()
    assert results is not None
    return results


@pytest.fixture(scope="module")
def loc3r_runs(setup: dict[str, Path], no_meteor: None) -> dict[str, Path]:
    """``loc3r eval --config`` on the same configs: {benchmark: output dir}."""
    out = {}
    for benchmark in TASKS.values():
        assert main(["eval", "--config", str(setup["configs"] / f"{benchmark}.yaml")]) == 0
        out[benchmark] = setup["root"] / "eval" / benchmark
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == pytest.approx(b, abs=1e-6)  # scores.json keeps 9 decimals


def test_scores_and_predictions_equal_loc3r_eval(
    lmms_run: dict[str, Any], loc3r_runs: dict[str, Path], setup: dict[str, Path]
) -> None:
    for task, benchmark in TASKS.items():
        ours = lmms_run["results"][task]
        theirs = json.loads((loc3r_runs[benchmark] / "scores.json").read_text())
        for key in KEYS[benchmark]:
            expected = theirs[key] if theirs.get(key) is not None else math.nan
            assert _same(ours[f"{key},none"], expected), (task, key, ours[f"{key},none"], expected)
        # the same predictions, sample by sample (same clip, prompt, decoding and batching path)
        samples = lmms_run["samples"][task]
        loc3r_rows = json.loads((loc3r_runs[benchmark] / PREDICTIONS[benchmark]).read_text())
        by_id = {json.dumps(r["question_id"]): r for r in loc3r_rows}
        assert len(samples) == len(by_id) > 3
        for s in samples:
            response, row = s["filtered_resps"][0], by_id[s["doc"]["question_id"]]
            if benchmark == "sqa3d_localization":
                record = json.loads(response)
                assert record["question_id"] == row["question_id"]
                for part in ("position", "rotation"):
                    for k, v in row[part].items():
                        assert record[part][k] == pytest.approx(v, abs=1e-4), (part, k)  # batching noise
                assert len(record["position_bev"]) == 2 and math.isfinite(record["yaw_bev"])
            else:
                assert response == row["answer"], (task, s["doc"]["question_id"])
    # the localization really varies per situation (not a constant answer that would match trivially)
    loc = lmms_run["samples"]["loc3r_sqa3d_localization"]
    poses = {json.loads(s["filtered_resps"][0])["position"]["x"] for s in loc}
    assert len(poses) > 1


def test_lmms_predictions_rescored_by_loc3r_score(
    lmms_run: dict[str, Any], setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lmms-eval's logged responses, written as ``loc3r score`` files, score what lmms-eval reported."""
    sqa = setup["synth"] / "sqa3d"
    ann = str(sqa / "v1_balanced_sqa_annotations_train_scannetv2.json")
    qs = str(sqa / "v1_balanced_questions_train_scannetv2.json")
    qa = [{"question_id": json.loads(s["doc"]["question_id"]), "answer": s["filtered_resps"][0]}
          for s in lmms_run["samples"]["loc3r_sqa3d"]]  # fmt: skip
    loc = [json.loads(s["filtered_resps"][0]) for s in lmms_run["samples"]["loc3r_sqa3d_localization"]]
    loc = [{k: r[k] for k in ("question_id", "position", "rotation")} for r in loc]
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    (tmp_path / "loc.json").write_text(json.dumps(loc))
    for argv, task, keys in (
        (["sqa3d-qa", "--annotations", ann, "--questions", qs, "--predictions", str(tmp_path / "qa.json")],
         "loc3r_sqa3d", ("em@1", "em-r")),
        (["sqa3d-loc", "--annotations", ann, "--questions", qs, "--predictions", str(tmp_path / "loc.json")],
         "loc3r_sqa3d_localization", ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")),
    ):  # fmt: skip
        capsys.readouterr()
        assert main(["score", *argv, "--json"]) == 0
        rescored = json.loads(capsys.readouterr().out)
        for key in keys:
            assert rescored[key] == pytest.approx(lmms_run["results"][task][f"{key},none"]), (task, key)


def test_limit_scores_a_subset_like_loc3r(lmms_run: dict[str, Any], setup: dict[str, Path]) -> None:
    """``--limit``: the references are restricted to the scored documents (as ``loc3r eval`` does for
    ``max_samples``), so a subset's EM is over that subset only."""
    from loc3r.integrations.lmms_eval.scoring import process_results, score_records

    samples = lmms_run["samples"]["loc3r_sqa3d"][:2]
    records = [process_results(s["doc"], s["filtered_resps"])["em@1"] for s in samples]
    scores = score_records(records)
    assert scores["n"] == 2 and scores["missing"] == 0
    # a response that is not a pose record counts as a missing (wrong) localization, never a crash
    doc = lmms_run["samples"]["loc3r_sqa3d_localization"][0]["doc"]
    assert process_results(doc, ["the sofa"])["acc@0.5m"]["missing"] is True


def test_vsibench_through_lmms_evals_own_task(setup: dict[str, Path], tmp_path: Path) -> None:
    """lmms-eval's own ``vsibench`` task (its prompt, its scoring) with the loc3r model, on SynthRooms' VSI-Bench
    records and videos (the HF dataset replaced by the local records file; videos where the task looks for them)."""
    import lmms_eval.tasks as lmms_tasks
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    upstream = Path(lmms_tasks.__file__).parent / "vsibench" / "_default_template_yaml"
    hf_home = tmp_path / "hf"
    (hf_home / "vsibench").mkdir(parents=True)
    (hf_home / "vsibench" / "synthrooms").symlink_to(setup["synth"] / "vsibench" / "synthrooms")
    task_dir = tmp_path / "vsi_tasks"
    task_dir.mkdir()
    (task_dir / "vsibench_synth.yaml").write_text(yaml.safe_dump({
        "task": "vsibench_synth", "include": str(upstream), "dataset_path": "json", "test_split": "test",
        "dataset_kwargs": {"data_files": {"test": str(setup["synth"] / "vsibench" / "train.jsonl")}},
    }))  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HOME", str(hf_home))
    mp.setenv("LMMS_EVAL_DATASETS_CACHE", str(setup["root"] / "hf_datasets"))
    try:
        results = simple_evaluate(
            model="loc3r", model_args=f"pretrained={setup['ckpt']},num_frames=4", tasks=["vsibench_synth"],
            task_manager=TaskManager("WARNING", include_path=str(task_dir), include_defaults=False), batch_size=2,
            gen_kwargs="max_new_tokens=3", log_samples=True, bootstrap_iters=0, process_docs_parallel=1,
        )  # fmt: skip
    finally:
        mp.undo()
    samples = results["samples"]["vsibench_synth"]
    records = [json.loads(line) for line in (setup["synth"] / "vsibench" / "train.jsonl").read_text().splitlines()]
    assert len(samples) == len(records) > 3
    assert all(isinstance(s["filtered_resps"][0], str) for s in samples)
    overall = results["results"]["vsibench_synth"]["vsibench_overall,none"]
    assert 0.0 <= overall <= 1.0  # lmms-eval's own scale (fractions); loc3r score vsibench reports percent


def test_bad_input_is_named(setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lmms_eval.models import get_model

    from loc3r.core.errors import ConfigError
    from loc3r.integrations.lmms_eval.docs import build_docs

    model_class = get_model("loc3r")
    with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
        model_class.create_from_arg_string(f"pretrained={tmp_path / 'no_such_checkpoint'}")
    with pytest.raises(ConfigError, match="pretrained=CHECKPOINT_DIR"):
        model_class.create_from_arg_string("")
    with pytest.raises(ConfigError, match="unknown loc3r lmms-eval task 'loc3r_nope'"):
        build_docs("loc3r_nope")
    monkeypatch.setenv("LOC3R_EVAL_CONFIGS", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"scanqa\.yaml.*LOC3R_EVAL_CONFIGS"):
        build_docs("loc3r_scanqa")
    # a config of another benchmark under a task's name
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "scanqa.yaml").write_text((setup["configs"] / "sqa3d.yaml").read_text())
    with pytest.raises(ConfigError, match="needs 'scanqa'"):
        build_docs("loc3r_scanqa")


def test_wrapper_exits_non_zero_when_a_run_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lmms-eval logs a failed run and exits 0; ``python -m loc3r.integrations.lmms_eval run`` exits 2 (issue 22)."""
    from loc3r.integrations.lmms_eval.__main__ import main as plugin_main

    assert plugin_main([]) == 0 and capsys.readouterr().out.strip().endswith("benchmarks")
    missing = tmp_path / "no_such_checkpoint"
    code = plugin_main(["run", "--model", "loc3r", "--model_args", f"pretrained={missing}", "--tasks", "loc3r_sqa3d",
                        "--output_path", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "loc3r lmms-eval: error: 1 run(s) failed" in err and "no_such_checkpoint" in err
