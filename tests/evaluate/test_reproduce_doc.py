"""Every command of ``docs/reproduce.md`` runs, on tiny stand-ins, in the order the page gives them.

The stand-ins: the page's ``$SRC`` is a tiny checkpoint in LLaVA-NeXT's llava_qwen key layout with Loc3R-VLM-like head
keys (``conftest.write_llava_qwen_checkpoint``), its ``loc3r_vlm_heads.txt`` maps those heads; the benchmark data is the
1-room SynthRooms set of ``test_eval_benchmarks`` in SQA3D / ScanQA / VSI-Bench / MSQA / Beacon3D formats. The
commands run verbatim in a sandbox holding ``configs/`` — only the data spec (``--set data=...``) and the sizes (4
frames, 3 new tokens, no CUT3R root) are appended to ``loc3r eval``. Each evaluation must write the paper's metric
keys, its per-question predictions and the printed protocol.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from test_eval_benchmarks import _data_spec, data  # noqa: F401 - the module-scoped stand-in data fixture

from conftest import LLAVA_HEAD_MAP, REPO, write_llava_qwen_checkpoint
from loc3r.cli import main

DOC = REPO / "docs" / "reproduce.md"
#: the paper's figures each benchmark section reports, as keys of scores.json
PAPER_KEYS = {
    "sqa3d_localization": ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"),
    "sqa3d": ("em@1", "em-r"),
    "scanqa": ("cider", "meteor", "rouge-l"),
    "vsibench": ("overall",),
    "msqa": ("em@1", "cider"),
    "beacon3d": ("class", "appearance", "geometry", "spatial", "existence", "overall_case", "overall_object"),
}


def doc_commands() -> tuple[dict[str, str], list[str]]:
    """``(variables, loc3r command lines)`` of the page's ``bash`` blocks, in order."""
    variables: dict[str, str] = {}
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if not line:
                continue
            assignment = re.fullmatch(r"([A-Z_]+)=(\S+)", line)
            if assignment:
                variables[assignment.group(1)] = assignment.group(2)
            else:
                assert line.startswith("loc3r "), f"docs/reproduce.md: not a loc3r command: {line!r}"
                commands.append(line)
    return variables, commands


def test_doc_lists_every_benchmark_with_the_paper_figure() -> None:
    text = DOC.read_text()
    _, commands = doc_commands()
    evals = [c for c in commands if c.startswith("loc3r eval")]
    assert {re.search(r"eval/(\w+)\.yaml", c).group(1) for c in evals} == set(PAPER_KEYS)
    for figure in ("42.6", "75.9", "38.4", "63.0", "62.8", "65.0", "100.4", "19.5", "47.9", "63.2", "58.6", "23.4"):
        assert f"| {figure} |" in text or f" {figure} |" in text, figure


@pytest.mark.slow
def test_every_command_of_reproduce_md_runs(
    data: dict[str, Path],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    variables, commands = doc_commands()
    sandbox = tmp_path / "repo"
    sandbox.mkdir()
    (sandbox / "configs").symlink_to(REPO / "configs")
    monkeypatch.chdir(sandbox)
    write_llava_qwen_checkpoint(sandbox / variables["SRC"])
    (sandbox / "loc3r_vlm_heads.txt").write_text("\n".join(LLAVA_HEAD_MAP) + "\n")
    ran = []
    for line in commands:
        argv = shlex.split(re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], line))[1:]
        if argv[0] == "eval":
            config = Path(argv[argv.index("--config") + 1])
            benchmark = yaml.safe_load(config.read_text())["benchmark"]
            extra = {"data": _data_spec(benchmark, data), "num_frames": 4, "batch_size": 2, "camera_root": None}
            if "generation" in yaml.safe_load(config.read_text()):
                extra["generation.max_new_tokens"] = 3
            argv += [x for k, v in extra.items() for x in ("--set", f"{k}={json.dumps(v)}")]
            if benchmark in ("scanqa", "msqa"):
                argv += ["--set", "data.max_samples=4"]
        capsys.readouterr()
        assert main(argv) == 0, (line, capsys.readouterr().err)
        printed = capsys.readouterr().out
        ran.append(line)
        if argv[0] == "import":
            report = json.loads((Path(argv[argv.index("--out") + 1]) / "import_report.json").read_text())
            if "--map-file" in argv:  # the mapped import: every head loaded, nothing left behind
                assert report["unknown"] == [] and report["initialised"] == [] and report["mapped"]
            else:
                assert report["unknown"] and "unknown keys, NOT imported" in printed
        else:
            out = Path(argv[argv.index("--out") + 1])
            scores = json.loads((out / "scores.json").read_text())
            for key in PAPER_KEYS[benchmark]:
                assert key in scores, (benchmark, key)
            assert scores["settings"]["backbone"] == "llava_onevision"
            assert scores["settings"]["resolution"].startswith("112x112")
            assert (out / "predictions-shard0of1.jsonl").read_text().strip()  # per-question outputs
            assert printed.index("protocol of this run") < printed.index("+-")
    assert ran == commands and sum(c.startswith("loc3r eval") for c in ran) == len(PAPER_KEYS)
