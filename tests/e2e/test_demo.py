"""Smoke version of ``loc3r demo`` (tiny budget): results.json structure, the table, BEV pictures, eval CLI
shards + merge on the trained checkpoint, and the demo YAML configs agree with the variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from loc3r.apps.demo import DEFAULT, METRICS, SMOKE, VARIANTS, format_results_table, run_demo


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    payload = run_demo(out, SMOKE, print_fn=lines.append)
    return out, payload, lines


def test_results_structure(smoke: tuple[Path, dict, list[str]]) -> None:
    out, payload, _ = smoke
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk.keys() == payload.keys()
    for variant in SMOKE.variants:
        splits = on_disk[variant]
        assert {"test", "novel_view"} <= set(splits)
        assert any(s.startswith("test/objects") for s in splits)  # complexity bins
        for metric in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "em", "overall", "sec_per_query"):
            assert metric in splits["test"], (variant, metric)
            assert 0.0 <= splits["test"][metric] <= (100.0 if metric != "sec_per_query" else 60.0)
    assert {"test", "novel_view"} <= set(on_disk["chance"])
    info = on_disk["_info"]
    assert info["settings"]["variants"] == list(SMOKE.variants)
    assert "localization_prompt" in info["task_settings"]
    # held-out rooms are not in the training split
    index = json.loads((out / "synthrooms" / "synthrooms.json").read_text())
    train_rooms = {index["scenes"][s]["room_id"] for s in index["splits"]["train"]}
    test_rooms = {index["scenes"][s]["room_id"] for s in index["splits"]["test"] + index["splits"]["test_novel_view"]}
    assert train_rooms.isdisjoint(test_rooms)


def test_variants_side_by_side_give_the_serial_numbers(smoke: tuple[Path, dict, list[str]], tmp_path: Path) -> None:
    """SMOKE runs its variants in a pool of processes (``parallel`` 2); one after another in this process gives the
    same scores: where a variant ran changes nothing but the wall time."""
    import dataclasses

    _, parallel_payload, _ = smoke
    assert SMOKE.parallel == 2 and parallel_payload["_info"]["parallel"] == 2
    serial = run_demo(tmp_path / "serial", dataclasses.replace(SMOKE, parallel=1), print_fn=lambda line: None)
    assert serial["_info"]["parallel"] == 1
    for variant in SMOKE.variants:
        for split, scores in serial[variant].items():
            other = parallel_payload[variant][split]
            for metric, value in scores.items():
                if metric != "sec_per_query":
                    assert value == pytest.approx(other[metric], abs=1e-9), (variant, split, metric)


def test_table_and_pictures(smoke: tuple[Path, dict, list[str]]) -> None:
    out, payload, lines = smoke
    text = "\n".join(lines)
    assert "| variant | split | Acc@0.5m" in text and "| chance | test |" in text
    for variant in SMOKE.variants:
        assert f"| {variant} | test |" in text and f"| {variant} | novel_view |" in text
    pngs = list((out / "bev").glob("*.png"))
    assert len(pngs) >= len(SMOKE.variants)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # the pictures colour layout points by their source frame: loc3r's records carry one frame per layout point
    lines_of = (out / "runs" / "loc3r-seed0" / "predictions.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines_of]
    loc = [r for r in records if r["set"] == "loc"]
    assert loc and all(len(r["layout_frame"]) == len(r["layout_bev"]) for r in loc)
    assert all(r["layout_frame"] == sorted(r["layout_frame"]) and r["layout_frame"][0] == 0 for r in loc)
    table = format_results_table({"variants": {"v": {"test": {m: 1.0 for m in METRICS}}}, "chance": {}})
    assert table.count("\n") == 2


def test_eval_cli_shards_merge_equal_single(smoke: tuple[Path, dict, list[str]], tmp_path: Path) -> None:
    from loc3r.cli import main

    out, _, _ = smoke
    model = out / "runs" / "loc3r-seed0" / "final"
    data = out / "synthrooms"
    config = REPO / "configs" / "synth" / "eval" / "test.yaml"
    common = ["eval", "--config", str(config), "--set", f"checkpoint={model}", "--set", f"data.root={data}"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    for i in range(2):
        assert main([*common, "--shard", f"{i}/2", "--out", str(tmp_path / "two")]) == 0
    shards = sorted((tmp_path / "two").glob("predictions-shard*.jsonl"))
    assert main([*common, "--merge", *map(str, shards), "--out", str(tmp_path / "two")]) == 0
    one = json.loads((tmp_path / "one" / "scores.json").read_text())["test"]
    two = json.loads((tmp_path / "two" / "scores.json").read_text())["test"]
    for key in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "em", "overall"):
        assert one[key] == pytest.approx(two[key]), key
    # the demo evaluates with the same runner and config: the CLI with the demo's batch and subset gives its records
    argv = [*common, "--batch-size", str(SMOKE.eval_batch_size), "--set", f"num_frames={SMOKE.frames}"]
    assert set(SMOKE.max_eval.values()) == {4}
    assert main([*argv, "--max-samples", "4", "--out", str(tmp_path / "as_demo")]) == 0
    ignore = ("seconds",)
    cli = (tmp_path / "as_demo" / "predictions-shard0of1.jsonl").read_text().splitlines()
    demo = (model.parent / "predictions.jsonl").read_text().splitlines()
    demo_test = [r for r in map(json.loads, demo) if r["split"] == "test"]
    assert [{k: v for k, v in r.items() if k not in ignore} for r in map(json.loads, cli)] == [
        {k: v for k, v in r.items() if k not in ignore} for r in demo_test
    ]
    nope = [*common[:3], "--set", f"checkpoint={tmp_path / 'nope'}", "--set", f"data.root={data}"]
    assert main([*nope, "--out", str(tmp_path)]) == 2


def test_demo_configs_match_variants() -> None:
    for variant, flags in VARIANTS.items():
        cfg = yaml.safe_load((REPO / "configs" / "demo" / f"{variant}.yaml").read_text())
        loc3r = cfg["model"]["loc3r"]
        assert {k: loc3r[k] for k in flags} == flags, variant
        if flags["situation_objective"]:
            assert loc3r["situation_loss_weight"] == DEFAULT.situation_loss_weight
        if flags["layout_objective"]:
            assert loc3r["bev_loss_weight"] == DEFAULT.bev_loss_weight
        assert cfg["train"]["max_steps"] == DEFAULT.steps


def test_unknown_variant_is_an_error(tmp_path: Path) -> None:
    import dataclasses

    with pytest.raises(ValueError, match="unknown demo variant"):
        run_demo(tmp_path, dataclasses.replace(SMOKE, variants=("nope",)))


def test_ablation_order_is_reported_either_way() -> None:
    from loc3r.apps.demo import ablation_order

    results = {
        "situation_only": {"test": {"acc@1.0m": 20.0}, "novel_view": {"acc@1.0m": 30.0}},
        "loc3r": {"test": {"acc@1.0m": 25.0, "acc@1.0m_std": 1.5}, "novel_view": {"acc@1.0m": 28.0}},
        "loc3r_camera": {"test": {"acc@1.0m": 40.0}, "novel_view": {"acc@1.0m": 35.0}},
    }
    test_line, novel_line = ablation_order(results)
    assert test_line.endswith("holds") and "loc3r 25.0 ± 1.5" in test_line
    assert novel_line.endswith("does NOT hold")
    assert ablation_order({"loc3r": results["loc3r"]}) == []


def test_demo_configs_are_exactly_what_the_demo_trains() -> None:
    """configs/demo/<variant>.yaml is the recipe loc3r demo builds for that variant (data root and output dir aside)."""
    from loc3r.apps.demo import _recipe
    from loc3r.apps.pretrained_base import BASE_DIR
    from loc3r.train.config import config_to_dict, load_config

    for variant in VARIANTS:
        written = config_to_dict(load_config(REPO / "configs" / "demo" / f"{variant}.yaml"))
        built = config_to_dict(
            _recipe(Path("data/synthrooms_demo"), Path(f"runs/demo_{variant}"), variant, DEFAULT, 0, BASE_DIR)
        )
        assert Path(written["model"].pop("pretrained_dir")).resolve() == BASE_DIR.resolve(), variant
        built["model"].pop("pretrained_dir")
        assert written == built, variant


def test_resume_reads_back_finished_variants_and_finishes_the_rest(tmp_path: Path) -> None:
    """An interrupted demo continues with ``resume``: a finished variant is read back (not re-run), one killed after
    its last checkpoint finishes from it, and the scores equal the uninterrupted run's. Without ``resume`` the
    output directory is refused with a message that names the flag; with other settings, resuming is refused."""
    import dataclasses

    from loc3r.train.checkpointing import CheckpointError

    settings = dataclasses.replace(SMOKE, parallel=1, save_every=1, pictures=0)
    out = tmp_path / "demo"
    first = run_demo(out, settings, print_fn=lambda line: None)
    finished = out / "runs" / "lm_only-seed0" / "result.json"
    stamp = finished.stat().st_mtime_ns
    # loc3r "killed" during its evaluation: its checkpoint of the last step is there, its result is not
    (out / "runs" / "loc3r-seed0" / "result.json").unlink()
    with pytest.raises(CheckpointError, match="--resume"):
        run_demo(out, settings, print_fn=lambda line: None)
    resumed = run_demo(out, settings, print_fn=lambda line: None, resume=True)
    assert finished.stat().st_mtime_ns == stamp  # read back, not trained again
    assert (out / "runs" / "loc3r-seed0" / "result.json").is_file()
    for variant in settings.variants:
        for split, scores in first[variant].items():
            for metric, value in scores.items():
                if metric != "sec_per_query":
                    assert resumed[variant][split][metric] == pytest.approx(value, abs=1e-9), (variant, split, metric)
    with pytest.raises((ValueError, CheckpointError)):  # other settings: refused, never mixed
        run_demo(out, dataclasses.replace(settings, lr=5e-4), print_fn=lambda line: None, resume=True)
