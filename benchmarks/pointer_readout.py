"""What did a trained pointer learn to read? Attention mass per role, gate accuracy, on held-out situations.

Loads a fine-tuned checkpoint with pointer heads and anchor supervision (e.g. a ``loc3r demo`` or perception-ladder
run's ``runs/loc3r-seed0/final``), runs it on the localization samples of a SynthRooms split and prints, per role, the
mean attention mass on the tokens that show the objects the situation names for it (``anchor``: ``<Pos>``,
``faced``: ``<Ori>``, and with ``pointer_position: solve`` the side slots ``left`` / ``right`` / ``behind``), the
share of situations where that mass is above one half, the side gates' accuracy and the solve's learned parameters.

    python benchmarks/pointer_readout.py runs/ladder_s/layout/runs/loc3r-seed0/final runs/ladder_s/layout/synthrooms
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from loc3r.apps.demo import DEFAULT
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.schema import REFERENT_ROLES, SIDE_ROLES
from loc3r.data.spec import DatasetSpec
from loc3r.data.text_localization import TextLocalizationDataset
from loc3r.model import load_model
from loc3r.objectives.pointer import SOLVE_INITIAL, pad_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a fine-tuned checkpoint directory with pointer heads")
    parser.add_argument("data", help="the SynthRooms directory it was trained on")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-samples", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    if model.pointer_head is None or not model.config.anchor_loss_enabled:
        parser.error(f"{args.checkpoint}: needs pointer heads trained with anchor supervision")
    spec = DatasetSpec(kind="synth", root=args.data, split=args.split)
    data = TextLocalizationDataset(build_synth(spec, num_frames=DEFAULT.data.frames, tasks=("situated",)))
    processor = model.build_processor(mode="train")  # the training processor builds the referent targets
    mass: dict[str, list[float]] = {role: [] for role in REFERENT_ROLES}
    gates: list[torch.Tensor] = []
    count = min(args.max_samples, len(data))
    with torch.no_grad():
        for start in range(0, count, args.batch_size):
            batch = processor([data[i] for i in range(start, min(start + args.batch_size, count))])
            out = model(**batch)
            vision = batch["input_ids"] == model.video_token_id
            attention = {"anchor": out.position_attention, "faced": out.orientation_attention}
            if out.side_attention is not None:
                attention.update(zip(SIDE_ROLES, out.side_attention.unbind(1), strict=True))
            for role, maps in attention.items():
                targets, _ = pad_rows(batch[f"{role}_tokens"][vision], vision.sum(1).tolist())
                mass[role] += [float(m[t].sum()) for m, t in zip(maps, targets, strict=True) if t.any()]
            if out.side_gate_logits is not None:
                present = torch.stack([batch[f"{role}_tokens"].any(1) for role in SIDE_ROLES], dim=1)
                labelled = batch["side_labelled"]
                gates.append(((out.side_gate_logits > 0) == present)[labelled].float())
    print(f"# {args.checkpoint}, {args.split} split, {count} situations")
    print("| role | situations | mean attention mass | mass > 0.5 |")
    print("|---|---|---|---|")
    for role, values in mass.items():
        if values:
            print(f"| {role} | {len(values)} | {np.mean(values):.3f} | {100 * np.mean(np.array(values) > 0.5):.1f} % |")
    report = {}
    if gates:
        accuracy = torch.cat(gates).mean(0).tolist()
        report["gate_accuracy"] = dict(zip(SIDE_ROLES, [round(100 * a, 1) for a in accuracy], strict=True))
    if getattr(model.pointer_head, "solves", False):
        names = ("radius_m", "distance_softness_m", "bearing_softness_deg", "lambda_anchor", "lambda_faced")
        values = model.pointer_head.log_solve.exp().tolist()
        values[2] = float(np.degrees(values[2]))
        report["solve"] = {n: round(v, 3) for n, v in zip((*names, "lambda_side"), values, strict=True)}
        report["solve_initial"] = SOLVE_INITIAL
    if report:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
