"""``benchmarks/gpu_check.sh --cpu-smoke``: the GPU check's whole code path (real-config builder, LoRA and full
fine-tuning, gradient checkpointing, FLOP counting, AdamW steps, predict, the report) on a tiny Qwen3-VL config on
the CPU. It checks that the script works; it measures nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY_QWEN3_VL = {
    "model_type": "qwen3_vl",
    "text_config": {
        "vocab_size": 1000,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5e6,
            "mrope_section": [4, 2, 2],
            "mrope_interleaved": True,
        },
    },
    "vision_config": {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "patch_size": 16,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0, 1],
    },
}


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_smoke(tmp_path):
    # the shipped tiny config (issue 22: --cpu-smoke used to need SMOKE_CONFIG pointing at a config not shipped)
    shipped = json.loads((ROOT / "benchmarks" / "tiny_qwen3_vl" / "config.json").read_text())
    assert {k: v for k, v in shipped.items() if k != "_source"} == TINY_QWEN3_VL
    env = {k: v for k, v in os.environ.items() if k != "SMOKE_CONFIG"}
    env.update(PY=sys.executable, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu-smoke"],
        cwd=tmp_path,  # from any directory (the script goes to the repository root itself)
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("loc3r GPU check: tiny_qwen3_vl") == 2 and "(lora)" in out and "(full)" in out
    assert "CPU smoke run (not a measurement)" in out
    for variant in ("base", "loc3r"):
        rows = re.findall(rf"^{variant}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, flags=re.M)
        assert len(rows) == 2 and all(float(r[3]) > 0 for r in rows)  # a step time for both recipes
    assert len(re.findall(r"objectives' overhead: step [+-]", out)) == 2
