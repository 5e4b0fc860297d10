"""Training throughput (samples/s) of each demo variant through the real training recipe, on CPU.

Unlike ``bench_objectives.py`` (one in-memory batch, model step only), this measures what a user of
``loc3r train`` gets: SynthRooms clips read from disk (JPEG + depth PNG -> world points), the processor
(tokenisation, layout / situation targets, M-RoPE positions), forward, backward and AdamW, through
Accelerate, with logging. Evaluation and checkpoint time is excluded (the recipe's ``train/samples_per_s``
counts training steps only).

Variants (``model.loc3r`` of the recipe, tiny Qwen2.5-VL from scratch, same data and seed):

* ``lm_only`` — plain fine-tuning (no layout, no situation heads or tokens)
* ``situation_only`` — ``<Pos> <Ori>`` + situation heads
* ``cue_injection`` — situation heads + depth-derived 3D cues added to the vision tokens
* ``loc3r`` — layout + situation objectives
* ``loc3r_camera`` — loc3r + camera prior from poses

Timing: variants interleaved round by round (machine-load drift hits all alike); per round the median of
the per-step samples/s after ``--warmup`` steps; the table reports the median over rounds.

Run::

    python benchmarks/bench_train.py                     # 8 frames 64x64, batch 4, 20 steps, 3 rounds
    python benchmarks/bench_train.py --frames 16 --size 112 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

VARIANTS: dict[str, dict] = {
    "lm_only": {"layout_objective": False, "situation_objective": False},
    "situation_only": {"layout_objective": False, "situation_objective": True},
    "cue_injection": {"layout_objective": False, "situation_objective": True, "cue_injection": True},
    "loc3r": {"layout_objective": True, "situation_objective": True},
    "loc3r_camera": {"layout_objective": True, "situation_objective": True, "camera_prior": "poses"},
}


def make_data(root: Path, frames: int, size: int, scenes: int) -> Path:
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    generate_dataset(
        root,
        SynthSettings(num_scenes=scenes, frames=frames, width=size, height=size, write_video=False),
        progress=False,
    )
    return root


def recipe(data: Path, out: Path, variant: dict, args: argparse.Namespace):
    from loc3r.train.config import config_from_dict

    return config_from_dict(
        {
            "seed": 0,
            "output_dir": str(out),
            "model": {
                "backbone": args.backbone,
                "init": "tiny",
                "tiny": {"vocab_size": 512},
                "loc3r": variant,
                "freeze_vision_tower": False,
            },
            "data": {
                "train": [{"kind": "synth", "root": str(data), "split": "train"}],
                "num_frames": args.frames,
                "num_workers": args.workers,
            },
            "optim": {"lr": 1e-3, "warmup_steps": 5},
            "train": {
                "max_steps": args.steps,
                "batch_size": args.batch,
                "log_every": 1,
                "progress_bar": False,
                "save_final_model": False,
            },
        },
        source="bench_train",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="qwen2_5_vl")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--data", type=Path, default=None, help="existing SynthRooms directory (else generated)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()

    import logging

    import torch

    from loc3r.train.recipe import train

    logging.getLogger("loc3r").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        data = args.data or make_data(tmp / "synth", args.frames, args.size, args.scenes)
        per_variant: dict[str, list[float]] = {v: [] for v in args.variants}
        wall: dict[str, list[float]] = {v: [] for v in args.variants}
        for r in range(args.rounds):
            for name in args.variants:
                out = tmp / f"{name}-{r}"
                start = time.perf_counter()
                train(recipe(data, out, VARIANTS[name], args))
                wall[name].append(time.perf_counter() - start)
                rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
                rates = [row["train/samples_per_s"] for row in rows if row["step"] > args.warmup]
                per_variant[name].append(statistics.median(rates))
                shutil.rmtree(out, ignore_errors=True)
        base = statistics.median(per_variant[args.variants[0]])
        print(
            f"# bench_train: {args.backbone} tiny, {args.frames} frames {args.size}x{args.size}, batch {args.batch}, "
            f"{args.steps} steps ({args.warmup} warm-up), {args.rounds} rounds, data workers {args.workers}, "
            f"torch {torch.__version__} threads {torch.get_num_threads()}, {platform.machine()} "
            f"{os.cpu_count()} cpus, {date.today()}"
        )
        print("| variant | samples/s (median) | min..max over rounds | relative to first | run wall s (median) |")
        print("|---|---|---|---|---|")
        for name in args.variants:
            vals = per_variant[name]
            med = statistics.median(vals)
            print(
                f"| {name} | {med:.1f} | {min(vals):.1f}..{max(vals):.1f} | {med / base:.2f} | "
                f"{statistics.median(wall[name]):.1f} |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
