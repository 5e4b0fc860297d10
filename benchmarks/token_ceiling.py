"""What the pointer heads could reach with PERFECT attention on the tokens they are given (issue 20).

The pointer's position is an attention-weighted mean of vision tokens' BEV points, its yaw a bearing to attended
tokens. So even a perfect pointer is bounded by the tokens: a named object may cover no token's footprint, and a
Qwen2.5-VL token fuses two consecutive frames, so its 3D point is the mean of what two views show. This script puts
perfect attention on the TRUE token points (the layout targets, i.e. the oracle rung with a perfect map) of a
SynthRooms directory's test situations, through the product's own processor:

* ``pos``: position = mean of the true points of the tokens that show the anchor objects (all tokens when none does),
  Acc@1.0m against the situation's position;
* ``yaw_mean``: yaw = bearing from the TRUE position to the mean point of the faced object's tokens, Acc@30°
  (situations whose faced object covers no token count as chance, 1/6);
* ``yaw_pointer``: the pointer's own orientation distribution (kernel mixture) with uniform attention on those
  tokens, decoded by the circular soft-argmax, Acc@30°;
* ``has anchor`` / ``has faced``: situations with at least one such token (a token shows an object when the object
  covers >= ``ANCHOR_TOKEN_MIN_SHARE`` of its pixels).

    python benchmarks/token_ceiling.py runs/demo/synthrooms [DIR ...] [--frames 8] [--limit N]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from loc3r.apps.demo import DEFAULT, resolve_base
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.spec import DatasetSpec
from loc3r.data.text_localization import TextLocalizationDataset
from loc3r.model import build_model
from loc3r.objectives.pointer import bearing_distribution, pad_rows
from loc3r.objectives.situation import decode_orientation
from loc3r.train.config import ModelConfig


def _angle_err_deg(a: float, b: float) -> float:
    return abs(math.degrees(math.atan2(math.sin(a - b), math.cos(a - b))))


def token_ceiling(root: str, frames: int, limit: int | None, model) -> dict[str, float]:
    split = DatasetSpec(kind="synth", root=root, split="test")
    data = TextLocalizationDataset(build_synth(split, num_frames=frames, tasks=("situated",)))
    processor = model.build_processor(mode="train")  # train mode: layout targets and referent token masks
    n = len(data) if limit is None else min(limit, len(data))
    rows: dict[str, list[float]] = {k: [] for k in ("pos", "yaw_mean", "yaw_pointer", "has_anchor", "has_faced")}
    for start in range(0, n, 16):
        batch = processor([data[j] for j in range(start, min(start + 16, n))])
        vision = batch["input_ids"] == model.video_token_id
        counts = vision.sum(1).tolist()
        points, _ = pad_rows(batch["layout_targets"][vision], counts)
        valid, _ = pad_rows(batch["layout_valid"][vision], counts)
        anchor, _ = pad_rows(batch["anchor_tokens"][vision], counts)
        faced, _ = pad_rows(batch["faced_tokens"][vision], counts)
        anchor, faced = anchor & valid, faced & valid
        true_xy, true_yaw = batch["situation_position"].float(), batch["situation_yaw"].float()
        for r in range(len(counts)):
            has_a, has_f = bool(anchor[r].any()), bool(faced[r].any())
            rows["has_anchor"].append(has_a)
            rows["has_faced"].append(has_f)
            position = points[r][anchor[r] if has_a else valid[r]].mean(0)
            rows["pos"].append(float((position - true_xy[r]).norm() < 1.0))
            if has_f:
                delta = points[r][faced[r]].mean(0) - true_xy[r]
                err = _angle_err_deg(math.atan2(float(delta[1]), float(delta[0])), float(true_yaw[r]))
                rows["yaw_mean"].append(float(err < 30.0))
            else:
                rows["yaw_mean"].append(1.0 / 6.0)
            attention = (faced[r] if has_f else valid[r]).float()
            attention = (attention / attention.sum())[None]
            probs = bearing_distribution(attention, points[r][None], true_xy[r][None], 36, 2.0)
            yaw, _ = decode_orientation(torch.log(probs + 1e-9))
            rows["yaw_pointer"].append(float(_angle_err_deg(float(yaw), float(true_yaw[r])) < 30.0))
    return {"situations": float(n), **{k: 100.0 * float(np.mean(v)) for k, v in rows.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="loc3r synth / loc3r demo SynthRooms directories")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="at most this many test situations per directory")
    parser.add_argument(
        "--vision-input", default="oracle_objects", choices=("oracle_objects", "oracle_layout"),
        help="which tokens: one per patch (what its footprint shows) or one per object of the clip",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    # the demo's base with the oracle input (it needs no pixels) and pointer heads: only its processor is used
    config = ModelConfig(
        backbone="qwen2_5_vl", init="pretrained", pretrained_dir=str(resolve_base(DEFAULT.base)),
        loc3r=dict(layout_objective=True, situation_objective=True, situation_loss_weight=1.0,
                   vision_input=args.vision_input, situation_head="pointer", anchor_loss_weight=1.0),
    )  # fmt: skip
    model = build_model(config)
    header = ("data", "situations", "Acc@1.0m (pos)", "Acc@30° (yaw_mean)", "Acc@30° (yaw_pointer)")
    header += ("has anchor", "has faced")
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|")
    for root in args.dirs:
        r = token_ceiling(root, args.frames, args.limit, model)
        print(
            f"| {root} | {r['situations']:.0f} | {r['pos']:.1f} | {r['yaw_mean']:.1f} | {r['yaw_pointer']:.1f} | "
            f"{r['has_anchor']:.1f} | {r['has_faced']:.1f} |"
        )


if __name__ == "__main__":
    main()
