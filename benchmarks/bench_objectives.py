"""Cost of loc3r's objectives: (a) plain LM fine-tuning vs (b) layout + situation objectives, same model and batch.

Both variants are the same ``Loc3rForConditionalGeneration`` of the same HF class with the same random weights
(seeded) and the same clips; (a) switches the layout and situation objectives off (no heads, no ``<Pos> <Ori>``
tokens), (b) switches both on with the paper's weights. Optionally (c) adds the camera prior from poses.

A step is forward + backward + AdamW step on one batch. Timing: variants are interleaved round by round in one
process (so machine-load drift hits all of them alike); the median step time over all rounds is reported.

Memory on CPU (tracemalloc cannot see torch's allocator), three measures:

* ``step peak MB`` — the peak of live tensor memory during one step (activations, gradients, temporaries),
  reconstructed from the PyTorch profiler's allocation events (``profile_memory=True``): the CPU analogue of
  ``torch.cuda.max_memory_allocated`` minus what existed before the step.
* ``params+AdamW MB`` — what exists before the step: parameters and optimizer states (the heads' share is far
  larger on a tiny model than on a 7B one, where they are ~0.3% of the parameters).
  ``total peak MB`` = step peak + params+AdamW, the analogue of a GPU's peak allocated memory.
* ``RSS growth MB`` — resident-set high-water mark (``VmHWM``) of a FRESH process per variant, minus its value after
  the model and batch were built (so the Python/torch libraries are not counted). Coarse (allocator caching).

Run::

    python benchmarks/bench_objectives.py                       # tiny Qwen2.5-VL, 16 frames 112x112, batch 2
    python benchmarks/bench_objectives.py --backbone llava_onevision
    python benchmarks/bench_objectives.py --hidden 256 --layers 4  # a wider LLM
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date

import numpy as np
import torch

VARIANTS = {
    "lm_only": {"layout_objective": False, "situation_objective": False},
    "objectives": {"layout_objective": True, "situation_objective": True},
    "objectives+camera": {"layout_objective": True, "situation_objective": True, "camera_prior": "poses"},
}


def _pose(position: np.ndarray, yaw: float) -> np.ndarray:
    forward = np.array([np.cos(yaw), np.sin(yaw), -0.2])
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(forward, right), forward, position
    return pose


def make_clips(batch: int, frames: int, size: int, seed: int = 0) -> list:
    """Random-texture clips with consistent poses and per-pixel points (every target present)."""
    from loc3r.data.schema import ClipSample

    rng = np.random.default_rng(seed)
    clips = []
    for b in range(batch):
        poses = np.stack([_pose(np.array([0.1 * t, 0.05 * b, 1.5]), 0.2 * t + b) for t in range(frames)])
        points = rng.uniform(-3, 3, (frames, size // 4, size // 4, 3)).astype(np.float32)
        points[..., 2] = np.abs(points[..., 2])
        clips.append(
            ClipSample(
                sample_id=f"bench-{b}",
                scene_id="bench",
                task="bench",
                frames=rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
                question="How far is the door from me?",
                answer="1.5 meters.",
                situation_text="I am sitting on the bed facing the window.",
                agent_position=np.array([1.0, -0.5, 0.0]),
                agent_yaw=2.0,
                poses=poses,
                points=points,
            )
        )
    return clips


def build(args: argparse.Namespace, variant: str):
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(
        ["I am sitting on the bed facing the window. How far is the door? 1.5 meters."] * 4, 512, args.backbone
    )
    overrides = {}
    if args.hidden or args.layers:
        text = {}
        if args.hidden:
            text.update(hidden_size=args.hidden, intermediate_size=2 * args.hidden)
            if args.backbone == "qwen2_5_vl":  # keep mrope_section = head_dim / 2 (4 heads)
                half = args.hidden // 4 // 2
                t = half // 4
                text["rope_parameters"] = {
                    "rope_type": "default",
                    "mrope_section": [t, (half - t) // 2, half - t - (half - t) // 2],
                    "rope_theta": 10000.0,
                }
        if args.layers:
            text["num_hidden_layers"] = args.layers
        overrides["text_config"] = text
    model = Loc3rForConditionalGeneration.tiny(
        args.backbone, tokenizer, seed=0, vlm_overrides=overrides, **VARIANTS[variant]
    )
    model.train()
    batch = model.build_processor()(make_clips(args.batch, args.frames, args.size))
    # foreach: the multi-tensor AdamW that is the default on GPUs (on CPU torch defaults to a per-tensor loop)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, foreach=True)
    return model, batch, optimizer


def step(model, batch, optimizer) -> float:
    t0 = time.perf_counter()
    out = model(**batch)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    return time.perf_counter() - t0


def peak_tensor_mb(model, batch, optimizer) -> float:
    """Peak live tensor memory during one step, from the profiler's allocation events (see module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    optimizer.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(model, batch, optimizer)
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    total = peak = 0
    for _, delta in events:
        total += delta
        peak = max(peak, total)
    return peak / 2**20


def static_mb(model, optimizer) -> float:
    """Parameters + optimizer state tensors (AdamW: 2 moments per trainable parameter), in MB."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    for state in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total / 2**20


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(args: argparse.Namespace) -> None:
    """(fresh process) build one variant, then report the RSS high-water growth over ``args.steps`` steps."""
    model, batch, optimizer = build(args, args.rss_child)
    base = _vm_hwm_mb()
    for _ in range(args.steps):
        step(model, batch, optimizer)
    print(json.dumps({"rss_mb": _vm_hwm_mb() - base}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="qwen2_5_vl", choices=["qwen2_5_vl", "llava_onevision"])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = least noisy)")
    parser.add_argument("--hidden", type=int, default=0, help="override the LLM width")
    parser.add_argument("--layers", type=int, default=0, help="override the LLM depth")
    parser.add_argument("--variants", default="lm_only,objectives,objectives+camera")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(args)
        return

    names = args.variants.split(",")
    built = {name: build(args, name) for name in names}
    for name in names:
        for _ in range(args.warmup):
            step(*built[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            times[name].extend(step(*built[name]) for _ in range(args.steps))
    tensor_mb = {name: statistics.median(peak_tensor_mb(*built[name]) for _ in range(3)) for name in names}
    fixed_mb = {name: static_mb(built[name][0], built[name][2]) for name in names}
    rss_mb = {}
    for name in names:
        cmd = [sys.executable, __file__, "--rss-child", name, "--backbone", args.backbone, "--frames", str(args.frames)]
        cmd += ["--size", str(args.size), "--batch", str(args.batch), "--steps", "5", "--threads", str(args.threads)]
        cmd += ["--hidden", str(args.hidden), "--layers", str(args.layers)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rss_mb[name] = json.loads(out.stdout.strip().splitlines()[-1])["rss_mb"]

    model, batch, _ = built[names[0]]
    text_cfg = model.config.vlm_config.get_text_config()
    n_vision = int((batch["input_ids"] == model.video_token_id).sum())
    print(
        f"# bench_objectives  {date.today()}  {platform.processor() or platform.machine()}  "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s)"
    )
    print(
        f"# backbone {args.backbone} (tiny, LLM width {text_cfg.hidden_size}, {text_cfg.num_hidden_layers} layers), "
        f"batch {args.batch} x {args.frames} frames {args.size}x{args.size}, {n_vision} vision tokens, "
        f"{args.rounds} rounds x {args.steps} steps (median)"
    )
    base = names[0]
    print(
        "| variant | step ms (median) | time ratio | step peak MB | step ratio | params+AdamW MB | "
        "total peak MB | total ratio | RSS growth MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    base_ms = 1000 * statistics.median(times[base])
    base_total = tensor_mb[base] + fixed_mb[base]
    for name in names:
        ms = 1000 * statistics.median(times[name])
        total = tensor_mb[name] + fixed_mb[name]
        print(
            f"| {name} | {ms:.1f} | {ms / base_ms:.3f} | {tensor_mb[name]:.1f} | "
            f"{tensor_mb[name] / tensor_mb[base]:.3f} | {fixed_mb[name]:.1f} | {total:.1f} | "
            f"{total / base_total:.3f} | {rss_mb[name]:.1f} |"
        )


if __name__ == "__main__":
    main()
