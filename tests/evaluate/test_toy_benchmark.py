"""Adding a benchmark is one new folder (issue 21, CONTRIBUTING.md "Adding a benchmark"): a toy benchmark folder with a
reader (one dataset kind), a metric, a task and a ``loc3r score`` entry, put on ``loc3r.benchmarks.__path__`` in a
fresh process, is found by the product's discovery code — ``build_dataset``, the task registry (an evaluation config
``benchmark: toy`` validates) and ``loc3r score toy`` — and no file of the package is touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO

#: the toy benchmark, file by file (what CONTRIBUTING.md walks through)
TOY = {
    "__init__.py": '"""Toy: one question per line of a JSON Lines file, scored by exact match (a test benchmark)."""\n',
    "reader.py": '''"""Toy records ``{id, question, answer}`` (JSON Lines) -> ClipSample (a blank clip)."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from loc3r.core.io import read_jsonl
from loc3r.data.schema import ClipSample


@dataclass
class ToyDataset:
    records: list[dict[str, Any]]
    num_frames: int

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> ClipSample:
        r = self.records[index]
        frames = np.zeros((self.num_frames, 8, 8, 3), dtype=np.uint8)
        return ClipSample(sample_id=f"toy-{r['id']}", scene_id="toy", task="toy", frames=frames,
                          question=r["question"], answer=r["answer"], answers=[r["answer"]], meta={"id": r["id"]})


def build_toy(spec: Any, num_frames: int) -> ToyDataset:
    return ToyDataset(list(read_jsonl(spec.root)), num_frames)


DATASET_KINDS = {"toy": build_toy}
''',
    "metric.py": '''"""Toy metric: exact-match accuracy (x100)."""


def score_toy(records, source="predictions"):
    hits = [str(r["prediction"]).strip().lower() == str(r["answer"]).strip().lower() for r in records]
    return {"accuracy": 100.0 * sum(hits) / len(hits), "n": len(hits)}
''',
    "task.py": '''"""Toy task: the question, the record ``{id, answer, prediction}``, exact-match accuracy."""

from loc3r.evaluate.task import JsonlTask


class ToyTask(JsonlTask):
    name = "toy"
    title = "Toy benchmark"
    metric = "exact match, case-insensitive, x100"
    data_kinds = ("toy",)
    predictions_file = "toy_predictions.jsonl"
    score_command = "toy"
    fields = ("id", "answer", "prediction")
    scorer = "loc3r.benchmarks.toy.metric:score_toy"

    def record(self, sample, prediction):
        return {"id": sample.meta["id"], "answer": sample.answer, "prediction": prediction.answer}


TASKS = {"toy": ToyTask}
''',
    "score.py": '''"""``loc3r score toy --predictions P.jsonl``."""


def register(benchmarks):
    from loc3r.evaluate.report import add_predictions_command

    add_predictions_command(benchmarks, "toy", "toy", "Toy benchmark (accuracy)", "records {id, answer, prediction}")
''',
}

CHECK = """
import json, sys
from types import SimpleNamespace
import loc3r.benchmarks
loc3r.benchmarks.__path__.append(sys.argv[1])  # the one step: the new folder is on the package's path
from loc3r.benchmarks import benchmark_modules, benchmark_names
from loc3r.cli import main
from loc3r.data.registry import available_kinds, build_dataset
from loc3r.evaluate.tasks import load_eval_config
from loc3r.evaluate.tasks import get_task, task_names

root, config, predictions = sys.argv[2:5]
spec = SimpleNamespace(kind="toy", root=root, split="test", options={}, max_samples=None)
dataset = build_dataset(spec, num_frames=2)
sample = dataset[1]
config = load_eval_config(config)
task = get_task(config.benchmark)
task.check_config(config, "toy.yaml")
record = task.record(sample, SimpleNamespace(answer="blue"))
code = main(["score", "toy", "--predictions", predictions, "--json"])
print(json.dumps({"names": benchmark_names(), "task_modules": benchmark_modules("task"), "kinds": available_kinds(),
                  "tasks": task_names(), "n": len(dataset), "question": sample.question, "record": record,
                  "benchmark": config.benchmark, "title": task.title, "code": code}))
"""


def _tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (bytecode caches left out)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_a_toy_benchmark_is_one_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "extra_benchmarks" / "toy"
    folder.mkdir(parents=True)
    for name, text in TOY.items():
        (folder / name).write_text(text)
    data = tmp_path / "toy.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "question": f"colour {i}?", "answer": "blue"}) + "\n" for i in range(3))
    )
    config = tmp_path / "toy.yaml"
    config.write_text(
        f"benchmark: toy\ncheckpoint: {tmp_path / 'ckpt'}\noutput_dir: {tmp_path / 'out'}\n"
        f"data: {{kind: toy, root: {data}, split: test}}\nnum_frames: 2\n"
    )
    predictions = tmp_path / "toy_predictions.jsonl"
    rows = [{"id": 0, "answer": "blue", "prediction": "Blue"}, {"id": 1, "answer": "blue", "prediction": "red"}]
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    package = REPO / "src" / "loc3r"
    before, toy_before = _tree_digest(package), _tree_digest(tmp_path / "extra_benchmarks")

    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(folder.parent), str(data), str(config), str(predictions)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    *score_lines, last = result.stdout.strip().splitlines()
    found = json.loads(last)
    assert "toy" in found["names"] and "loc3r.benchmarks.toy.task" in found["task_modules"]
    assert "toy" in found["kinds"] and "toy" in found["tasks"]
    assert found["n"] == 3 and found["question"] == "colour 1?"
    assert found["benchmark"] == "toy" and found["title"] == "Toy benchmark"
    assert found["record"] == {"id": 1, "answer": "blue", "prediction": "blue"}
    assert found["code"] == 0 and json.loads("\n".join(score_lines)) == {"accuracy": 50.0, "n": 2}
    # nothing outside the new folder was written: the package is byte-identical, the folder holds only its files
    assert _tree_digest(package) == before
    assert _tree_digest(tmp_path / "extra_benchmarks") == toy_before
