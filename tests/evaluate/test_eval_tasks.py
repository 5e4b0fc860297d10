"""One evaluation path (issue 10 part 2): the task registry is the one list of benchmark names, ``loc3r score``
prints each task's metric definition, the SynthRooms split configs are what the demo evaluates, and the former
SynthRooms-mode flags say which config keys replaced them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO
from loc3r.cli import main
from loc3r.core.config import ConfigError

SYNTH_CONFIGS = sorted((REPO / "configs" / "synth" / "eval").glob("*.yaml"))


def test_registry_is_the_one_list_of_benchmarks() -> None:
    from loc3r.evaluate.task import Task
    from loc3r.evaluate.tasks import get_task, load_eval_config, task_names

    TASK_NAMES = task_names()
    for name in TASK_NAMES:
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name and task.metric, name
        for part in task.parts():
            assert part.name in TASK_NAMES, (name, part.name)
    # every paper config names a registered task; an unregistered name is refused by the config itself
    for path in sorted((REPO / "configs" / "paper" / "eval").glob("*.yaml")):
        assert load_eval_config(path).benchmark in TASK_NAMES
    with pytest.raises(ConfigError, match="benchmark"):
        load_eval_config(REPO / "configs" / "paper" / "eval" / "sqa3d.yaml", ["benchmark=scanrefer"])
    with pytest.raises(ConfigError, match="unknown benchmark"):
        get_task("scanrefer")
    # a task reads the samples of its own data kinds (checked once, with the config; its record() trusts the reader)
    config = load_eval_config(REPO / "configs" / "paper" / "eval" / "vsibench.yaml", ["data.kind=scanqa"])
    with pytest.raises(
        ConfigError, match=r"vsibench.yaml: benchmark 'vsibench' needs data of kind 'vsibench'.*data\.kind"
    ):
        get_task("vsibench").check_config(config, "vsibench.yaml")


def test_score_subcommands_are_the_tasks_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each ``loc3r score`` sub-command belongs to exactly one task, and prints that task's definition and title."""
    from loc3r.cli import build_parser
    from loc3r.evaluate.tasks import get_task, task_names

    commands = [get_task(n).score_command for n in task_names() if get_task(n).score_command]
    assert len(commands) == len(set(commands))
    parser = build_parser()._subparsers._group_actions[0].choices["score"]
    score = next(a for a in parser._actions if a.dest == "benchmark")
    assert set(score.choices) == set(commands)
    record = {"id": 0, "dataset": "scannet", "scene_name": "s", "question_type": "object_counting",
              "question": "How many chairs?", "options": None, "ground_truth": "4", "prediction": "4"}  # fmt: skip
    path = tmp_path / "vsi.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert main(["score", "vsibench", "--predictions", str(path)]) == 0
    out = capsys.readouterr().out
    task = get_task("vsibench")
    assert task.title in out and task.metric[:60] in out


@pytest.mark.parametrize("path", SYNTH_CONFIGS, ids=lambda p: p.stem)
def test_synth_configs_are_what_the_demo_evaluates(path: Path) -> None:
    """configs/synth/eval/<split>.yaml + --set == the config the demo builds for that split (same runner input)."""
    from loc3r.benchmarks.synthrooms.task import synth_eval_config
    from loc3r.evaluate.tasks import load_eval_config

    overrides = ["checkpoint=runs/v/final", "data.root=data/s", "output_dir=out", "num_frames=6", "batch_size=16",
                 "max_samples={synth_localization: 4, synth_qa: 4, synth_vsi: 4}"]  # fmt: skip
    written = load_eval_config(path, overrides)
    built = synth_eval_config("runs/v/final", "data/s", path.stem, 6, "out", 16, {"loc": 4, "qa": 4, "vsi": 4})
    assert written == built
    plain = load_eval_config(path)
    assert plain.benchmark == "synthrooms" and plain.num_frames is None and plain.data.split == path.stem


def test_synth_group_parts_and_limits() -> None:
    from loc3r.benchmarks.synthrooms.task import SYNTH_SETS, synth_eval_config
    from loc3r.evaluate.runner import _limits
    from loc3r.evaluate.tasks import get_task

    group = get_task("synthrooms")
    parts = group.parts()
    assert [(p.set_name, p.name) for p in parts] == list(SYNTH_SETS.items())
    assert group.scores_by_split and all(p.whole_shard for p in parts)
    config = synth_eval_config("c", "d", "test", 4, "o", max_samples={"loc": 3})
    assert _limits(config, parts, "x") == {"synth_localization": 3, "synth_qa": None, "synth_vsi": None}
    assert set(_limits(config.model_copy(update={"max_samples": 5}), parts, "x").values()) == {5}
    with pytest.raises(ConfigError, match="sqa3d"):
        _limits(config.model_copy(update={"max_samples": {"sqa3d": 2}}), parts, "x")


def test_former_synth_flags_name_the_keys_that_replaced_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", "--model", "runs/x/final", "--data", "data/s", "--split", "val", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("loc3r eval: error: --model, --data, --split")
    for text in ("configs/synth/eval/<split>.yaml", "--set checkpoint=", "--set data.root=", "--set data.split="):
        assert text in err, text
    assert main(["eval", "--out", str(tmp_path)]) == 2
    assert "--config is required" in capsys.readouterr().err
    config = REPO / "configs" / "synth" / "eval" / "test.yaml"
    assert main(["eval", "--config", str(config), "--set", "data.roots=x"]) == 2
    assert "unknown key 'data.roots'" in capsys.readouterr().err
    assert main(["eval", "--config", str(config), "--set", "num_frames=0"]) == 2
    assert "num_frames" in capsys.readouterr().err
    # the SynthRooms configs reach the (absent) checkpoint like the paper configs
    assert main(["eval", "--config", str(config)]) == 2
    assert "runs/x/final: checkpoint directory does not exist" in capsys.readouterr().err
