"""What limits the base's recognition? The vision tower trained alone on the dense category loss, per frame layout.

loc3r-tiny's tower (Qwen2.5-VL, ``temporal_patch_size`` 2) fuses every two consecutive frames into one token. SynthRooms
takes its 8 frames uniformly along a 6-30 s walk (one frame every 1-4 s), while Qwen2.5-VL samples real video at 2 fps
(pairs 0.5 s apart, nearly the same view). So a tiny-base token mixes two different views and its category label (the
footprint's majority class) is ambiguous. This script measures how much that costs, with the tower + merger +
recognition head trained alone (no LLM; the same loss as the base's recognition objective), one layout per process:

* ``spread``: the frames as rendered, pairs (0, 1), (2, 3), ... (what the base and the demo do);
* ``paired``: frames 0, 2, 4, 6 each fed twice (one view per token; same token count and cost, half the views).

Scored on rooms the base never saw (the demo's ``test`` split): balanced accuracy of the recognition head over the
token's majority category (background included), and that accuracy on object tokens only.

    python benchmarks/tower_recognition.py --layout spread --minutes 10 &
    python benchmarks/tower_recognition.py --layout paired --minutes 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

LAYOUTS = {"spread": [0, 1, 2, 3, 4, 5, 6, 7], "paired": [0, 0, 2, 2, 4, 4, 6, 6]}


def _relayout(sample, order: list[int]):
    import dataclasses

    frames = np.asarray(sample.frames)[order]
    labels = None if sample.pixel_labels is None else np.asarray(sample.pixel_labels)[order]
    poses = None if sample.poses is None else np.asarray(sample.poses)[order]
    idx = None if sample.frame_indices is None else np.asarray(sample.frame_indices)[order]
    return dataclasses.replace(sample, frames=frames, pixel_labels=labels, poses=poses, frame_indices=idx)


def _tokens(model, processor, samples):
    """Tower features [N, D] of every vision token and their soft targets [N, C]."""
    batch = processor(samples)
    pixels = {"pixel_values_videos": batch["pixel_values_videos"], "video_grid_thw": batch["video_grid_thw"]}
    feats = model.adapter.encode_video(model.vlm, pixels)
    mask = batch["input_ids"] == model.config.vlm_config.video_token_id
    return feats, batch["recognition_targets"][mask], batch["recognition_valid"][mask]


def _balanced(y: np.ndarray, pred: np.ndarray) -> float:
    return float(100 * np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def main() -> None:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.objectives.recognition import token_category_loss
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layout", choices=sorted(LAYOUTS), required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--train-root", type=Path, default=Path("data/pretrain"))
    ap.add_argument("--test-root", type=Path, default=Path("runs/demo/synthrooms"))
    ap.add_argument("--base", type=Path, default=Path("src/loc3r/assets/loc3r-tiny"), help="architecture only")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    order = LAYOUTS[args.layout]

    base = Loc3rForConditionalGeneration.from_pretrained(args.base, dtype=torch.float32)
    model = Loc3rForConditionalGeneration(base.config)  # random init, same architecture
    model.tokenizer, model.preprocessing = base.tokenizer, base.preprocessing
    processor = model.build_processor(mode="eval")
    params = list(model.vlm.model.visual.parameters()) + list(model.recognition_head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    train = SynthPretrainDataset(args.train_root, "train", 8, tasks=("objects",))
    test = SynthPretrainDataset(args.test_root, "test", 8, tasks=("objects",))
    rng = np.random.default_rng(args.seed)
    weight = model.config.recognition_background_weight

    def evaluate() -> tuple[float, float, float]:
        model.eval()
        ys, preds, losses, floor = [], [], [], []
        with torch.no_grad():
            for lo in range(0, len(test), 8):
                samples = [_relayout(test[i], order) for i in range(lo, min(len(test), lo + 8))]
                feats, target, valid = _tokens(model, processor, samples)
                logits = model.recognition_head(feats)
                losses.append(float(token_category_loss(logits, target, valid, weight)))
                # the loss's floor: the same loss with the targets' own log-probabilities (their entropy)
                floor.append(float(token_category_loss(torch.log(target.clamp_min(1e-12)), target, valid, weight)))
                ys.append(target[valid].argmax(1).numpy())
                preds.append(logits[valid].argmax(1).numpy())
        model.train()
        y, p = np.concatenate(ys), np.concatenate(preds)
        obj = y != 0
        return _balanced(y, p), _balanced(y[obj], p[obj]), float(np.mean(losses)), float(np.mean(floor))

    start, step, clips = time.time(), 0, 0
    print(f"layout {args.layout} frames {order}; train {len(train)} rooms, test {len(test)} rooms", flush=True)
    print("| minutes | steps | clips | train loss | test loss | balanced acc. (%) | object tokens bal. acc. (%) |")
    print("|---|---|---|---|---|---|---|")
    next_eval, running = 0.0, []
    while True:
        elapsed = (time.time() - start) / 60
        if elapsed >= next_eval or elapsed >= args.minutes:
            bal, obj, test_loss, floor = evaluate()
            mean = np.mean(running) if running else float("nan")
            print(
                f"| {elapsed:.1f} | {step} | {clips} | {mean:.3f} | {test_loss:.3f} (floor {floor:.3f}) | {bal:.1f} "
                f"| {obj:.1f} |",
                flush=True,
            )
            running = []
            next_eval += args.minutes / 5
            if elapsed >= args.minutes:
                break
        idx = rng.choice(len(train), size=args.batch_size, replace=False)
        feats, target, valid = _tokens(model, processor, [_relayout(train[int(i)], order) for i in idx])
        loss = token_category_loss(model.recognition_head(feats), target, valid, weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running.append(float(loss.detach()))
        step += 1
        clips += args.batch_size


if __name__ == "__main__":
    main()
