"""Where does a fine-tuned layout head's map fail? Its BEV error per view of the clip, held-out against training rooms.

The layout targets are in the clip's anchor frame (the first camera, DESIGN.md §3). A token of the first view needs
only what its pixels show and where in the image it is; a token of a later view also needs the camera's motion since
the first frame, which a model without a pose input must read from the video. This script loads a checkpoint with a
layout head (e.g. ``runs/demo/runs/loc3r-seed0/final``), runs it on the SynthRooms clips it was (train) and was not
(held-out split) trained on, and prints per view (one vision-token segment = one group of frames):

* the model's median BEV error of the vision tokens (metres), on the held-out split and on the training split;
* the **cell prior**: the training split's mean target of each (view, token cell) — what a head that knows only
  where its token is in the clip reaches (no pixels read);
* the zero guess (every token at the first camera) and the share of situations whose named anchor objects are shown
  in that view (from the instance masks, as the anchor supervision sees them).

A model far better on training rooms than on held-out ones, and worse on held-out rooms than the cell prior, has
memorised the training rooms' maps instead of learning to read them::

    python benchmarks/layout_by_view.py runs/demo/runs/loc3r-seed0/final runs/demo/synthrooms [--max-samples 400]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from loc3r.apps.demo import DEFAULT
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.spec import DatasetSpec
from loc3r.data.text_localization import TextLocalizationDataset
from loc3r.model import load_model


def collect(model, processor, root: str, split: str, count: int, batch_size: int) -> list[dict]:
    """Per situation: each vision token's view, cell, target, validity, predicted BEV point and anchor flag."""
    spec = DatasetSpec(kind="synth", root=root, split=split)
    data = TextLocalizationDataset(build_synth(spec, num_frames=DEFAULT.data.frames, tasks=("situated",)))
    rows: list[dict] = []
    # evenly spaced situations: every room of the split, not the first few rooms' many situations
    picks = np.unique(np.linspace(0, len(data) - 1, min(count, len(data))).round().astype(int)).tolist()
    with torch.no_grad():
        for start in range(0, len(picks), batch_size):
            batch = processor([data[i] for i in picks[start : start + batch_size]])
            out = model(**batch)
            vision = batch["input_ids"] == model.video_token_id
            means = out.layout_mean.split(vision.sum(1).tolist())
            for b, meta in enumerate(batch.metadata):
                views = np.concatenate([np.full(s.num_tokens, k) for k, s in enumerate(meta.segments)])
                cells = np.concatenate([np.arange(s.num_tokens) for s in meta.segments])
                anchor = batch["anchor_tokens"][b][vision[b]].numpy() if "anchor_tokens" in batch else None
                rows.append({
                    "view": views, "cell": cells,
                    "target": batch["layout_targets"][b][vision[b]].numpy(),
                    "valid": batch["layout_valid"][b][vision[b]].numpy(),
                    "pred": means[b].float().numpy(),
                    "anchor": anchor,
                })  # fmt: skip
    return rows


def per_view_errors(rows: list[dict], predict) -> dict[int, float]:
    """Median BEV error (m) per view of ``predict(row) -> [N, 2]`` over the valid tokens."""
    errors: dict[int, list[np.ndarray]] = defaultdict(list)
    for row in rows:
        err = np.linalg.norm(predict(row) - row["target"], axis=1)
        for view in np.unique(row["view"]):
            keep = row["valid"] & (row["view"] == view)
            errors[int(view)].append(err[keep])
    return {view: float(np.median(np.concatenate(e))) for view, e in sorted(errors.items()) if sum(map(len, e))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a fine-tuned checkpoint directory with a layout head")
    parser.add_argument("data", help="the SynthRooms directory it was trained on")
    parser.add_argument("--split", default="test", help="the held-out split (default: test)")
    parser.add_argument("--max-samples", type=int, default=400, help="situations per split")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    if model.layout_head is None:
        parser.error(f"{args.checkpoint}: has no layout head")
    if not model.config.layout_enabled:
        parser.error(f"{args.checkpoint}: its config has no layout objective (the processor builds no targets)")
    processor = model.build_processor(mode="train")  # the training processor builds the layout and anchor targets
    train = collect(model, processor, args.data, "train", args.max_samples, args.batch_size)
    held_out = collect(model, processor, args.data, args.split, args.max_samples, args.batch_size)
    # the cell prior: mean training target of each (view, cell)
    sums: dict[tuple[int, int], np.ndarray] = defaultdict(lambda: np.zeros(2))
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for row in train:
        for view, cell, target in zip(
            row["view"][row["valid"]], row["cell"][row["valid"]], row["target"][row["valid"]], strict=True
        ):
            sums[view, cell] += target
            counts[view, cell] += 1

    def prior(row: dict) -> np.ndarray:
        return np.stack(
            [sums[k] / counts[k] if counts[k] else np.zeros(2) for k in zip(row["view"], row["cell"], strict=True)]
        )

    model_held = per_view_errors(held_out, lambda r: r["pred"])
    model_train = per_view_errors(train, lambda r: r["pred"])
    prior_held = per_view_errors(held_out, prior)
    zero_held = per_view_errors(held_out, lambda r: np.zeros_like(r["target"]))
    labelled = [r for r in held_out if r["anchor"] is not None and r["anchor"].any()]
    print(f"# {args.checkpoint}: {len(held_out)} {args.split} / {len(train)} train situations")
    print(
        f"| view | model, {args.split} (m) | model, train (m) | cell prior, {args.split} (m) | zero guess (m) "
        "| anchors shown |"
    )
    print("|---|---|---|---|---|---|")
    for view in model_held:
        shown = np.mean([r["anchor"][r["view"] == view].any() for r in labelled]) if labelled else float("nan")
        print(
            f"| {view} | {model_held[view]:.2f} | {model_train.get(view, float('nan')):.2f} | {prior_held[view]:.2f} | "
            f"{zero_held[view]:.2f} | {100 * shown:.1f} % |"
        )


if __name__ == "__main__":
    main()
