"""loc3r at the width it is meant for: real 7B/8B configurations, full-width CPU checks and the GPU check driver.

Two modes, one table each.

``cpu`` — full-width checks on the CPU. The REAL configurations (``configs/backbones/NAME/config.json``) of
LLaVA-Video-7B-Qwen2, Qwen2.5-VL-7B and Qwen3-VL-8B are built with ``--blocks`` blocks per tower and per LLM at full
width, in bfloat16 with random weights, and run forward + backward at ``--frames`` frames of ``--size`` px, for two
variants of the same weights (seeded): ``base`` (plain fine-tuning: no heads, no ``<Pos> <Ori>``, no camera tokens)
and ``loc3r`` (layout + situation objectives with the paper's weights + the camera prior from device poses).
Printed per variant: parameters (heads' share), FLOPs of forward + backward (``torch.utils.flop_counter``),
median step time, peak live tensor memory of the step (profiler allocation events), and ``predict`` latency
(prefill + 4 greedy tokens). Then the extrapolation to full depth: FLOPs per LLM layer and per vision block are
read from the counter's module hierarchy, ``F_full = F + (n_llm - b) F_layer + (n_vis - b) F_block``, and time is
scaled by ``F_full / F`` (time proportional to FLOPs at fixed width — an assumption, stated in the table). Memory at
full depth: :mod:`loc3r.train.memory`'s estimate of the paper recipe (32 frames at 384, full fine-tune of the LLM,
frozen tower, gradient checkpointing) for both variants. To fit ~8 GB of RAM the embeddings and the LM head are
frozen (their gradients are the same for both variants) and no optimizer step is taken (AdamW's cost is
proportional to the trained parameters, whose heads' share is printed). Qwen3-VL's DeepStack taps are moved to the
kept vision blocks (``[0 .. b-1]``) so their cost is in the step.

``gpu`` — the GPU check (``benchmarks/gpu_check.sh``): a full-depth model of a real config with random weights on
``cuda`` in bf16, sdpa (or flash) attention, gradient checkpointing, ``--frames`` frames at ``--size``, a few steps
of the real recipe (AdamW; ``--finetune lora`` for 7B, ``full`` for 2B): step time, MFU (model FLOPs from the
counter / step time / ``--peak-tflops``), peak memory (``torch.cuda.max_memory_allocated``) vs the dry-run
estimate, objectives' overhead (base vs loc3r) and inference latency base vs loc3r. ``--cpu-smoke`` runs the same
code path on the CPU with a tiny depth and small frames (a test that the script works, not a measurement).

Run::

    nice -n 15 python benchmarks/bench_scale.py cpu                              # 3 x 7B/8B width, 2 blocks, 8 frames
    nice -n 15 python benchmarks/bench_scale.py cpu --models qwen3_vl_8b --blocks 1
    python benchmarks/bench_scale.py gpu --config configs/backbones/qwen2_5_vl_7b --finetune lora
    python benchmarks/bench_scale.py gpu --config configs/backbones/qwen3_vl_2b --finetune full --cpu-smoke
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_objectives import make_clips, peak_tensor_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "base": {"layout_objective": False, "situation_objective": False},
    "loc3r": {"layout_objective": True, "situation_objective": True, "camera_prior": "poses"},
}
DEPTH_KEY = {
    "qwen2_5_vl": "depth",
    "qwen3_vl": "depth",
    "llava_onevision": "num_hidden_layers",
    "smolvlm": "num_hidden_layers",
}
HEADS = ("layout_head", "position_head", "orientation_head", "camera_projector")


def overrides_for(config_dir: Path, blocks: int | None) -> tuple[str, dict]:
    """``(backbone, config overrides)``: ``blocks`` LLM layers and vision blocks (None = full depth)."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    backbone, config = Loc3rForConditionalGeneration.load_backbone_config(config_dir)
    if blocks is None:
        return backbone, {}
    vision = {DEPTH_KEY[backbone]: blocks}
    if backbone == "qwen3_vl":
        vision["deepstack_visual_indexes"] = list(
            range(min(blocks, len(config.vision_config.deepstack_visual_indexes)))
        )
    return backbone, {"text_config": {"num_hidden_layers": blocks}, "vision_config": vision}


def build(config_dir: Path, blocks: int | None, variant: str, device: str, attn: str, seed: int = 0):
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    backbone, overrides = overrides_for(config_dir, blocks)
    tokenizer = build_tiny_tokenizer(["How far is the door from me?", "1.5 meters."], 512, backbone)
    with torch.device(device):
        model = Loc3rForConditionalGeneration.from_backbone_config(
            config_dir,
            tokenizer,
            overrides=overrides,
            dtype=torch.bfloat16,
            attn_implementation=attn,
            seed=seed,
            **VARIANTS[variant],
        )
    model.freeze_vision_tower()
    return model


def depth_of(model) -> tuple[int, int]:
    cfg = model.config.vlm_config
    vc = cfg.vision_config
    return int(cfg.get_text_config().num_hidden_layers), int(getattr(vc, "depth", None) or vc.num_hidden_layers)


def count_flops(model, batch) -> tuple[float, float, float, float]:
    """``(total, heads, one LLM layer, one vision block)`` FLOPs of forward + backward."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=None)
    with counter:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    total = float(counter.get_total_flops())
    per_module = {k: float(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    heads = sum(v for k, v in per_module.items() if k.split(".")[-1] in HEADS and k.count(".") == 1)
    layer = max(
        (
            v
            for k, v in per_module.items()
            if k.endswith("language_model.layers.0") or k.endswith("text_model.layers.0")
        ),
        default=0.0,
    )
    block = max(
        (
            v
            for k, v in per_module.items()
            if k.endswith("visual.blocks.0")
            or k.endswith("vision_tower.vision_model.encoder.layers.0")
            or k.endswith("vision_model.encoder.layers.0")
        ),
        default=0.0,
    )
    return total, heads, layer, block


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(model, batch, repeats: int, device: str, optimizer=None) -> list[float]:
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = model(**batch)
        out.loss.backward()
        if optimizer is not None:
            optimizer.step()
        model.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def time_predict(model, batch, repeats: int, device: str, new_tokens: int = 4) -> list[float]:
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        model.predict(batch, max_new_tokens=new_tokens)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------------------------------------------------------ cpu mode
def cpu_child(args: argparse.Namespace) -> None:
    """(fresh process) one model x one variant at full width with ``args.blocks`` blocks; prints a JSON line."""
    torch.manual_seed(0)
    config_dir = ROOT / "configs" / "backbones" / args.model
    model = build(config_dir, args.blocks, args.variant, "cpu", "sdpa")
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        module.weight.requires_grad_(False)  # RAM: same for both variants (see the module docstring)
    batch = dict(model.build_processor()(make_clips(1, args.frames, args.size)))
    eval_batch = model.build_processor(mode="eval")(make_clips(1, args.frames, args.size))
    params = sum(p.numel() for p in model.parameters())
    heads = sum(
        p.numel() for name in HEADS if getattr(model, name) is not None for p in getattr(model, name).parameters()
    )
    t0 = time.perf_counter()
    flops, head_flops, layer_flops, block_flops = count_flops(model, batch)
    if args.flops_only:  # one counted forward + backward (its wall time, not a benchmark); no timing passes
        step, peak, infer = time.perf_counter() - t0, float("nan"), float("nan")
    else:
        time_steps(model, batch, 1, "cpu")  # warm-up
        step = statistics.median(time_steps(model, batch, args.repeats, "cpu"))
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
        peak = peak_tensor_mb(model, batch, optimizer)
        model.eval()
        infer = statistics.median(time_predict(model, eval_batch, args.repeats, "cpu"))
    n_llm, n_vis = depth_of(model)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    print(
        json.dumps(
            dict(
                model=args.model,
                variant=args.variant,
                params=params,
                heads=heads,
                flops=flops,
                head_flops=head_flops,
                layer_flops=layer_flops,
                block_flops=block_flops,
                step_s=step,
                peak_mb=peak,
                infer_s=infer,
                seq=int(batch["input_ids"].shape[1]),
                rss_hwm_mb=hwm,
                blocks=args.blocks,
            )
        )
    )


def full_depth(row: dict, n_llm: int, n_vis: int) -> tuple[float, float]:
    """``(FLOPs, step s)`` extrapolated to full depth (time proportional to FLOPs)."""
    b = row["blocks"]
    flops = row["flops"] + (n_llm - b) * row["layer_flops"] + (n_vis - b) * row["block_flops"]
    return flops, row["step_s"] * flops / row["flops"]


def memory_share(model_name: str) -> tuple[float, float]:
    """Estimated full-depth training memory (GiB) of the paper recipe, base and loc3r (meta device, no RAM)."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer
    from loc3r.train.memory import estimate_training_memory

    config_dir = ROOT / "configs" / "backbones" / model_name
    backbone, _ = overrides_for(config_dir, None)
    tok = build_tiny_tokenizer(["x"], 300, backbone)
    out = []
    for variant in ("base", "loc3r"):
        with torch.device("meta"):
            model = Loc3rForConditionalGeneration.from_backbone_config(
                config_dir, tok, dtype=torch.bfloat16, **VARIANTS[variant]
            )
        est = estimate_training_memory(
            model,
            finetune="full",
            freeze_vision_tower=True,
            gradient_checkpointing=True,
            weight_dtype=torch.float32,
            mixed_precision="bf16",
            frames=32,
            image_size=384,
        )
        out.append(est.total_bytes / 2**30)
    return out[0], out[1]


def cpu_main(args: argparse.Namespace) -> None:
    rows = []
    for name in args.models:
        for variant in VARIANTS:
            cmd = [
                sys.executable,
                __file__,
                "cpu",
                "--child",
                "--model",
                name,
                "--variant",
                variant,
                "--blocks",
                str(args.blocks),
                "--frames",
                str(args.frames),
                "--size",
                str(args.size),
                "--repeats",
                str(args.repeats),
            ]
            if args.flops_only:
                cmd.append("--flops-only")
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            )
            if proc.returncode != 0:
                raise SystemExit(f"{name}/{variant} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(
                f"  done {name}/{variant}: step {rows[-1]['step_s']:.1f} s, RSS peak {rows[-1]['rss_hwm_mb']:.0f} MB",
                flush=True,
            )
    print(
        f"\nloc3r at full width on CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} thread(s), torch {torch.__version__}, {date.today()}): {args.blocks} block(s) per tower and "
        f"LLM, bf16, {args.frames} frames at {args.size}, forward + backward, median of {args.repeats}"
    )
    head = (
        f"{'model':<22}{'variant':<8}{'seq':>6}{'params B':>10}{'heads %':>9}{'GFLOP':>9}{'heads %F':>9}"
        f"{'step s':>8}{'peak MB':>9}{'RSS MB':>8}{'predict s':>10}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['model']:<22}{r['variant']:<8}{r['seq']:>6}{r['params'] / 1e9:>10.3f}"
            f"{100 * r['heads'] / r['params']:>9.3f}"
            f"{r['flops'] / 1e9:>9.0f}{100 * r['head_flops'] / r['flops']:>9.3f}{r['step_s']:>8.2f}{r['peak_mb']:>9.0f}"
            f"{r['rss_hwm_mb']:>8.0f}{r['infer_s']:>10.2f}"
        )
    print(
        "\nextrapolated to full depth (time proportional to FLOPs at fixed width; memory: the dry-run estimate of the "
        "paper recipe, 32 frames at 384, full fine-tune, fp32 master weights + bf16, checkpointing)"
    )
    print(
        f"{'model':<22}{'base TFLOP':>11}{'loc3r TFLOP':>12}{'step +%':>9}{'FLOP +%':>9}"
        f"{'memory +%':>10}{'predict x':>10}"
    )
    for name in args.models:
        base, loc = (next(r for r in rows if r["model"] == name and r["variant"] == v) for v in ("base", "loc3r"))
        from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

        _, cfg = Loc3rForConditionalGeneration.load_backbone_config(ROOT / "configs" / "backbones" / name)
        vc = cfg.vision_config
        n_llm, n_vis = cfg.get_text_config().num_hidden_layers, getattr(vc, "depth", None) or vc.num_hidden_layers
        fb, tb = full_depth(base, n_llm, n_vis)
        fl, tl = full_depth(loc, n_llm, n_vis)
        # inference: prefill dominated; scale the measured latencies the same way
        ib, il = base["infer_s"] * fb / base["flops"], loc["infer_s"] * fl / loc["flops"]
        mb, ml = memory_share(name)
        print(
            f"{name:<22}{fb / 1e12:>11.1f}{fl / 1e12:>12.1f}{100 * (tl / tb - 1):>9.2f}{100 * (fl / fb - 1):>9.2f}"
            f"{100 * (ml / mb - 1):>10.3f}{il / ib:>10.3f}"
        )
    print("targets at 7B: objectives <= 2 % of step time, <= 1 % of memory; inference with device poses <= 1.05x")


# ------------------------------------------------------------------------------------------------------ gpu mode
def gpu_main(args: argparse.Namespace) -> None:
    device = "cpu" if args.cpu_smoke else "cuda"
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("bench_scale.py gpu: no CUDA device (use --cpu-smoke to test the script on the CPU)")
    blocks = 1 if args.cpu_smoke else None
    config_dir = Path(args.config)
    results = {}
    for variant in ("base", "loc3r"):
        torch.manual_seed(0)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = build(config_dir, blocks, variant, device, args.attn)
        if args.finetune == "lora":
            from loc3r.train.builders import apply_finetuning
            from loc3r.train.config import ModelConfig

            model = apply_finetuning(model, ModelConfig(backbone=model.config.backbone, finetune="lora"))
        model.gradient_checkpointing_enable()
        model.train()
        clips = make_clips(1, args.frames, args.size)
        from peft import PeftModel

        inner = model.get_base_model() if isinstance(model, PeftModel) else model
        batch = inner.build_processor()(clips).to(device)
        eval_batch = inner.build_processor(mode="eval")(clips).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5)
        flops, head_flops, _, _ = count_flops(model, dict(batch))
        times = time_steps(model, dict(batch), args.steps, device, optimizer)
        step = statistics.median(times[1:] if len(times) > 1 else times)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        model.eval()
        infer = statistics.median(time_predict(inner, eval_batch, 3, device))
        results[variant] = dict(
            seq=int(batch["input_ids"].shape[1]),
            step=step,
            flops=flops,
            head_flops=head_flops,
            peak=peak,
            infer=infer,
            trained=sum(p.numel() for p in params),
            params=sum(p.numel() for p in model.parameters()),
        )
        del model, optimizer, batch, eval_batch
        gc.collect()
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU smoke run (not a measurement)"
    print(
        f"\nloc3r GPU check: {config_dir.name} ({args.finetune}), {name}, torch {torch.__version__}, {date.today()}, "
        f"bf16, attention {args.attn}, gradient checkpointing, {args.frames} frames at {args.size}, "
        f"median of {args.steps} steps (first dropped)"
    )
    print(
        f"{'variant':<8}{'seq':>7}{'params B':>10}{'trained M':>11}{'step s':>8}{'TFLOP':>8}{'MFU %':>7}"
        f"{'peak GiB':>9}{'predict s':>10}"
    )
    for variant, r in results.items():
        mfu = 100 * r["flops"] / r["step"] / (args.peak_tflops * 1e12)
        print(
            f"{variant:<8}{r['seq']:>7}{r['params'] / 1e9:>10.3f}{r['trained'] / 1e6:>11.1f}{r['step']:>8.3f}"
            f"{r['flops'] / 1e12:>8.2f}{mfu:>7.1f}{r['peak']:>9.2f}{r['infer']:>10.3f}"
        )
    b, l = results["base"], results["loc3r"]
    print(
        f"objectives' overhead: step +{100 * (l['step'] / b['step'] - 1):.2f} %, "
        f"FLOPs +{100 * (l['flops'] / b['flops'] - 1):.2f} %, "
        f"peak memory +{100 * (l['peak'] / b['peak'] - 1):.2f} %, inference x{l['infer'] / b['infer']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    cpu = sub.add_parser("cpu")
    cpu.add_argument("--models", nargs="+", default=["llava_video_7b_qwen2", "qwen2_5_vl_7b", "qwen3_vl_8b"])
    cpu.add_argument("--blocks", type=int, default=2)
    cpu.add_argument("--frames", type=int, default=8)
    cpu.add_argument("--size", type=int, default=384)
    cpu.add_argument("--repeats", type=int, default=3)
    cpu.add_argument("--threads", type=int, default=1)
    cpu.add_argument(
        "--flops-only", action="store_true", help="count FLOPs and RSS only (one pass per variant; no timings)"
    )
    cpu.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    cpu.add_argument("--model", help=argparse.SUPPRESS)
    cpu.add_argument("--variant", help=argparse.SUPPRESS)
    gpu = sub.add_parser("gpu")
    gpu.add_argument("--config", required=True, help="configs/backbones/NAME")
    gpu.add_argument("--finetune", choices=["full", "lora"], default="lora")
    gpu.add_argument("--frames", type=int, default=32)
    gpu.add_argument("--size", type=int, default=384)
    gpu.add_argument("--steps", type=int, default=4)
    gpu.add_argument("--attn", default="sdpa")
    gpu.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200 SXM: 989)")
    gpu.add_argument("--cpu-smoke", action="store_true", help="tiny depth and frames on the CPU: tests the script")
    args = parser.parse_args()
    if args.mode == "cpu":
        cpu_child(args) if args.child else cpu_main(args)
    else:
        if args.cpu_smoke:
            args.frames, args.size, args.steps = min(args.frames, 4), min(args.size, 64), min(args.steps, 2)
        gpu_main(args)


if __name__ == "__main__":
    main()
