"""Can the pointer's attention learn to pick the named objects? A diagnostic training loop (issue 20).

The demo's base with the oracle-objects input (perfect perception) and pointer heads, trained on the localization
samples of a SynthRooms directory's train split only; prints the anchor loss (``-log`` of the attention mass on the
named objects' tokens, mean of ``<Pos>`` and ``<Ori>``; about 2.6 is uniform attention on the oracle-objects input,
about 4.1 on the oracle-layout one) averaged over each 25 steps.
What is trained and by which loss is chosen, so the runs separate "the heads cannot learn it" from "the LLM's
fine-tuning moves what they read":

* ``--loss all`` (the demo's objective: CE + layout + situation + anchor) or ``anchor`` (the anchor loss alone);
* ``--train all`` (LLM + heads, the demo's full fine-tuning; the tower and the oracle's fixed position features stay
  frozen), ``heads`` (layout + pointer heads, LLM frozen) or ``pointer`` (the pointer heads only);
* ``--lr`` the LLM's learning rate (the demo's 1e-3 by default), ``--head-lr`` the heads'.

    python benchmarks/pointer_learnability.py runs/demo/synthrooms --query state --loss anchor --train pointer
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from loc3r.apps.demo import DEFAULT, resolve_base
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.spec import DatasetSpec
from loc3r.data.text_localization import TextLocalizationDataset
from loc3r.model import build_model
from loc3r.objectives.pointer import anchor_loss
from loc3r.train.config import ModelConfig

HEADS = ("pointer_head", "layout_head")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a loc3r demo / loc3r synth SynthRooms directory")
    parser.add_argument("--query", choices=["state", "text", "names"], default="state", help="pointer_query")
    parser.add_argument("--keys", choices=["final", "input"], default="final", help="Loc3rConfig.pointer_keys")
    parser.add_argument(
        "--vision-input", choices=["oracle_objects", "oracle_layout"], default="oracle_objects",
        help="tokens per patch (what its footprint shows) or one per object",
    )  # fmt: skip
    parser.add_argument("--loss", choices=["all", "anchor"], default="all")
    parser.add_argument("--train", choices=["all", "heads", "pointer"], default="all")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=DEFAULT.lr, help="the LLM's learning rate")
    parser.add_argument("--head-lr", type=float, default=DEFAULT.head_lr, help="the heads' learning rate")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="global gradient clipping (0 = off)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    objectives = {
        "layout_objective": True,
        "situation_objective": True,
        "bev_loss_weight": DEFAULT.bev_loss_weight,
        "situation_loss_weight": DEFAULT.situation_loss_weight,
        "vision_input": args.vision_input,
        "situation_head": "pointer",
        "anchor_loss_weight": DEFAULT.anchor_loss_weight,
        "pointer_query": args.query,
        "pointer_keys": args.keys,
    }
    base = str(resolve_base(DEFAULT.base))
    config = ModelConfig(backbone="qwen2_5_vl", init="pretrained", pretrained_dir=base, loc3r=objectives)
    model = build_model(config)
    model.train()
    trained = {"all": ("",), "heads": HEADS, "pointer": ("pointer_head",)}[args.train]
    for name, p in model.named_parameters():  # frozen stays frozen (the tower, the oracle's position features)
        p.requires_grad_(p.requires_grad and "visual" not in name and any(part in name for part in trained))
    heads = [p for n, p in model.named_parameters() if p.requires_grad and any(h in n for h in HEADS)]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not any(h in n for h in HEADS)]
    groups = [{"params": rest, "lr": args.lr}, {"params": heads, "lr": args.head_lr}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.01)
    spec = DatasetSpec(kind="synth", root=args.data, split="train")
    data = TextLocalizationDataset(build_synth(spec, num_frames=DEFAULT.data.frames, tasks=("situated",)))
    processor = model.build_processor(mode="train")
    print(
        f"# {vars(args)}; {len(data)} localization samples; trained parameters: {sum(p.numel() for p in heads + rest)}"
    )
    history, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = processor([data[rng.randrange(len(data))] for _ in range(args.batch_size)])
        out = model(**batch)
        vision = batch["input_ids"] == model.video_token_id
        attention = {"anchor": out.position_attention, "faced": out.orientation_attention}
        anchor = anchor_loss(attention, vision, {role: batch[f"{role}_tokens"] for role in attention})
        loss = anchor if args.loss == "anchor" else out.loss
        optimizer.zero_grad()
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        history.append(float(anchor.detach()))
        if step % 25 == 0:
            print(f"step {step:4d}  anchor loss {np.mean(history[-25:]):.3f}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
