"""How big can the CPU base be? Training-step throughput of candidate loc3r-tiny sizes (issue 9).

    python benchmarks/bench_base_size.py [--data DIR] [--threads 1] [--repeats 3]

Builds each candidate (the real Qwen2.5-VL class at tiny size, recognition objective on, as in
``configs/base/loc3r_tiny.yaml``), runs full training steps (forward, backward, AdamW) on a batch of 8 pretraining
clips of 8 frames at 112x112, and prints parameters, LLM vision tokens per clip and clips/s (median of ``--repeats``
steps after one warm-up step). ``--data`` is a SynthRooms directory rendered with 8 frames (generated if absent).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

CANDIDATES = {
    "A: patch 14, tower 4 x 128, LLM 4 x 192": (
        14,
        {"depth": 4, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "fullatt_block_indexes": [1, 3]},
        {"hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 6},
    ),
    "B: patch 8, tower 4 x 128, LLM 4 x 192": (
        8,
        {"depth": 4, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "fullatt_block_indexes": [1, 3]},
        {"hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 6},
    ),
    "C: patch 8, tower 6 x 192, LLM 4 x 256": (
        8,
        {"depth": 6, "hidden_size": 192, "intermediate_size": 384, "num_heads": 6, "fullatt_block_indexes": [2, 5]},
        {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 8},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/loc3r_bench_base_size"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer
    from loc3r.synthrooms.pretraining import SynthPretrainDataset, recognition_classes
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    if not (args.data / "synthrooms.json").is_file():
        settings = SynthSettings(
            num_scenes=4, frames=8, width=112, height=112, seed=1000, min_objects=5, max_objects=24,
            min_side=2.5, max_side=7.5, val_fraction=0.0, test_fraction=0.0, novel_view=False,
            situations_per_scene=0, vsi_questions_per_type=0, write_video=False,
        )  # fmt: skip
        generate_dataset(args.data, settings, progress=False)
    dataset = SynthPretrainDataset(args.data, "train", 8)
    tokenizer = build_tiny_tokenizer(dataset.texts(), 1024, "qwen2_5_vl")
    samples = [dataset[i % len(dataset)] for i in range(8)]
    print(f"# batch 8 x 8 frames 112x112, {args.threads} torch thread(s), median of {args.repeats} steps")
    print("| candidate | tower params | total params | LLM vision tokens / clip | step (s) | clips/s |")
    print("|---|---|---|---|---|---|")
    for name, (patch, vision, text) in CANDIDATES.items():
        model = Loc3rForConditionalGeneration.tiny(
            "qwen2_5_vl",
            tokenizer,
            vlm_overrides={
                "vision_config": {**vision, "patch_size": patch},
                "text_config": {**text, "num_key_value_heads": 2},
            },
            layout_objective=False,
            situation_objective=False,
            recognition_objective=True,
            recognition_classes=recognition_classes(),
        )
        factor = patch * 2
        model.preprocessing.update(min_pixels=factor * factor, max_pixels=64 * factor * factor)
        batch = model.build_processor("train")(samples)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        times = []
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - start)
        step = statistics.median(times[1:])
        tower = sum(p.numel() for p in model.vlm.model.visual.parameters())
        total = sum(p.numel() for p in model.parameters())
        tokens = int((batch["input_ids"] == model.video_token_id).sum()) // len(samples)
        print(f"| {name} | {tower / 1e6:.2f} M | {total / 1e6:.2f} M | {tokens} | {step:.3f} | {8 / step:.1f} |")


if __name__ == "__main__":
    main()
