"""Where a ``loc3r demo`` fine-tuning step's time goes (issue 20 part 5).

One training step of the demo's recipe (the shipped base, tower frozen, batch 8 of the demo's SynthRooms train split)
split into: building the batch (frame loading + the processor), the frozen vision tower (no grad), the rest of the
forward (projector, LLM, heads, losses), the backward and the optimizer step. Median of ``--repeats`` steps after one
warm-up, one torch thread (as ``loc3r demo`` runs each variant).

    python benchmarks/demo_step_profile.py --data runs/demo/synthrooms [--variant loc3r] [--vision-input pixels]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from loc3r.apps.demo import DEFAULT, VARIANTS
from loc3r.apps.pretrained_base import BASE_DIR
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.spec import DatasetSpec
from loc3r.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a loc3r demo SynthRooms folder (OUT/synthrooms)")
    parser.add_argument("--variant", default="loc3r", choices=list(VARIANTS))
    parser.add_argument("--vision-input", default="pixels", choices=["pixels", "oracle_objects"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    flags = dict(VARIANTS[args.variant])
    if flags["situation_objective"]:
        flags.update(situation_head=DEFAULT.situation_head, anchor_loss_weight=DEFAULT.anchor_loss_weight)
    model = load_model(BASE_DIR, objectives={"vision_input": args.vision_input, **flags}, dtype=torch.float32)
    model.freeze_vision_tower()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    processor = model.build_processor()
    data = build_synth(DatasetSpec(kind="synth", root=args.data, split="train"), num_frames=DEFAULT.frames)
    stride = max(1, len(data) // (DEFAULT.batch_size * (args.repeats + 1)))
    parts: dict[str, list[float]] = {k: [] for k in ("batch", "tower", "forward_rest", "backward", "optimizer")}
    for step in range(args.repeats + 1):
        t0 = time.perf_counter()
        first = step * DEFAULT.batch_size * stride
        batch = processor([data[(first + i * stride) % len(data)] for i in range(DEFAULT.batch_size)])
        t1 = time.perf_counter()
        with torch.no_grad():
            if args.vision_input == "pixels":
                model.adapter.encode_video_features(
                    model.vlm, {k: batch[k] for k in ("pixel_values_videos", "video_grid_thw")}
                )
        t2 = time.perf_counter()
        out = model(**batch)
        t3 = time.perf_counter()
        optimizer.zero_grad()
        out.loss.backward()
        t4 = time.perf_counter()
        optimizer.step()
        t5 = time.perf_counter()
        if step == 0:
            continue  # warm-up
        forward = t3 - t2
        parts["batch"].append(t1 - t0)
        parts["tower"].append(t2 - t1)
        parts["forward_rest"].append(forward - (t2 - t1))  # the forward runs the tower again inside
        parts["backward"].append(t4 - t3)
        parts["optimizer"].append(t5 - t4)
    medians = {k: statistics.median(v) for k, v in parts.items()}
    total = sum(medians.values())
    print(f"# {args.variant}, vision {args.vision_input}, batch {DEFAULT.batch_size}, 1 thread, {args.repeats} steps")
    print("| part | median s | share |")
    print("|---|---|---|")
    for k, v in medians.items():
        print(f"| {k} | {v:.3f} | {100 * v / total:.0f} % |")
    print(f"| step | {total:.3f} | 100 % |")


if __name__ == "__main__":
    main()
