"""The perception ladder of the demo (issue 20): where is localization lost — perception, or the situation heads?

The same variants and heads as ``loc3r demo`` on the same held-out rooms, with four vision inputs:

* ``layout``  — the DIAGNOSTIC oracle-layout input (``vision_input: oracle_layout``): one token per object the clip
  sees (its name and its centre), as in the outside experiment of issue 20; perception AND coverage are perfect;
* ``oracle``  — the DIAGNOSTIC oracle-objects input (:mod:`loc3r.model.oracle_tower`): each vision token is the name
  of the object it shows plus its true 3D point; perception is perfect, only the heads and the LLM can fail;
* ``palette`` — renders where every object has its category's colour (``SynthSettings.category_colors``);
* ``plain``   — the demo's renders (the frozen tower of the shipped base sees them).

Beside them, rules that read the situation text on a PERFECT map (ground-truth object centres) of the same test
situations: ``room centre`` (stand at the room's centre, yaw 0 in the clip's BEV frame), ``first named object``
(stand at the first object the text names, face the faced object), ``mean of anchors`` (stand at the mean of the
objects the agent stands at, face the faced object: the ceiling of ``pointer_position: mean`` on a perfect map) and
``all relations`` (the pointer's own position solve, :func:`loc3r.objectives.pointer.solve_position`, with perfect
attention on the true centres and sharp constraints: anchors within 1.5 m, the side objects in their sectors; the
ceiling of ``pointer_position: solve``; needs data that label the side objects by sector).

    python benchmarks/perception_ladder.py --out runs/ladder --rungs layout oracle palette plain --seeds 0 1 2
    python benchmarks/perception_ladder.py --out runs/ladder_o --rungs oracle --variants loc3r --steps 2000 \
        --set pointer_keys=input                       # a longer oracle run with other DemoSettings fields
    python benchmarks/perception_ladder.py --out runs/ladder_l --rungs layout --variants loc3r --steps 2000 \
        --set pointer_keys=input pointer_query=names   # the layout rung with the name-matching pointer query
    python benchmarks/perception_ladder.py --out runs/ladder_s --rungs layout --variants loc3r --steps 4000 \
        --set pointer_keys=input pointer_query=names pointer_position=solve   # ... and the position solve

Each rung is one ``loc3r demo`` run (``run_demo(..., resume=True)``: an interrupted ladder continues where it
stopped). Prints one table (mean ± std over seeds) and writes ``OUT/ladder.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.apps.demo import DEFAULT, run_demo, settings_overrides
from loc3r.core.errors import ConfigError
from loc3r.data.schema import SIDE_ROLES

RUNGS = ("layout", "oracle", "palette", "plain")
METRICS = ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "median_pos_err_m", "median_ori_err_deg", "em")


def rung_settings(
    rung: str, seeds: tuple[int, ...], variants: tuple[str, ...], steps: int | None, overrides: dict | None = None
) -> Any:
    """The demo's settings for one rung; ``overrides``: further ``DemoSettings`` fields (``--set``)."""
    settings = dataclasses.replace(DEFAULT, seeds=seeds, variants=variants, progress=False, **(overrides or {}))
    if steps is not None:
        settings = dataclasses.replace(settings, steps=steps)
    if rung == "layout":
        return dataclasses.replace(settings, vision_input="oracle_layout")
    if rung == "oracle":
        return dataclasses.replace(settings, vision_input="oracle_objects")
    if rung == "palette":
        return settings.with_data(category_colors=True)
    if rung == "plain":
        return settings
    raise ValueError(f"unknown rung {rung!r}; known: {RUNGS}")


def _wrap_deg(a: np.ndarray) -> np.ndarray:
    return np.abs((np.degrees(a) + 180.0) % 360.0 - 180.0)


#: (r, s_d, s_β, λ_a, λ_f, λ_s) of the "all relations" rule: sharp constraints (1 cm, 0.6°), anchors within 1.5 m
SHARP_SOLVE = (1.5, 0.01, 0.01, 1.0, 1.0, 1.0)


def _solve_on_the_true_map(anchors: list, faced: np.ndarray, sides: list[list]) -> np.ndarray:
    """The pointer's solve with one-hot attention on the true centres (the side objects of one sector: their mean,
    in the sector when each is, as the sector is convex; an empty sector: gate 0)."""
    import torch

    from loc3r.objectives.pointer import solve_position

    points = torch.tensor(np.array(anchors), dtype=torch.float32)[None]
    attention = torch.full((1, len(anchors)), 1.0 / len(anchors))
    side_xy = torch.tensor(np.array([np.mean(ids, axis=0) if ids else faced for ids in sides]), dtype=torch.float32)
    gates = torch.tensor([[1.0 if ids else 0.0 for ids in sides]])
    faced_xy = torch.tensor(np.asarray(faced), dtype=torch.float32)[None]
    solved = solve_position(attention, points, faced_xy, side_xy[None], gates, torch.tensor(SHARP_SOLVE))
    return solved[0].numpy().astype(np.float64)


def rule_baselines(data: Path, split: str = "test") -> dict[str, dict[str, float]]:
    """The rules on a split's situations (one per distinct situation, as the demo scores them)."""
    from loc3r.benchmarks.synthrooms.reader import build_synth
    from loc3r.core.geometry import anchor_frame
    from loc3r.data.spec import DatasetSpec
    from loc3r.data.text_localization import TextLocalizationDataset, bev_ground_truth

    ds = TextLocalizationDataset(
        build_synth(
            DatasetSpec(kind="synth", root=str(data), split=split), num_frames=DEFAULT.frames, tasks=("situated",)
        )
    )
    rows: dict[str, list[tuple[float, float]]] = {
        "room centre": [],
        "first named object": [],
        "mean of anchors": [],
        "all relations": [],
    }
    for i in range(len(ds)):
        sample = ds[i]
        gt_xy, gt_yaw = bev_ground_truth(sample)
        anchor = anchor_frame(np.asarray(sample.poses)[0])
        meta = json.loads((data / "scans" / sample.scene_id / "meta_info.json").read_text())[sample.scene_id]
        centre = {b["instance_id"]: np.array(b["centroid"]) for boxes in meta["object_bbox"].values() for b in boxes}
        bev = {iid: anchor.points_to_bev(c[None])[0, :2] for iid, c in centre.items()}
        room = anchor.points_to_bev(np.array(meta["room_center"])[None])[0, :2]
        refs = sample.referents or {}
        anchors, faced = refs.get("anchor", []), refs.get("faced", [])
        if not anchors or not faced:
            continue
        face_xy = bev[faced[0]]

        first = bev[anchors[0]]
        mean = np.mean([bev[a] for a in anchors], axis=0)
        guesses = {
            "room centre": (room, 0.0),
            "first named object": (first, math.atan2(*(face_xy - first)[::-1])),
            "mean of anchors": (mean, math.atan2(*(face_xy - mean)[::-1])),
        }
        if all(role in refs for role in SIDE_ROLES):
            solved = _solve_on_the_true_map(
                [bev[a] for a in anchors], face_xy, [[bev[i] for i in refs[r]] for r in SIDE_ROLES]
            )
            guesses["all relations"] = (solved, math.atan2(*(face_xy - solved)[::-1]))
        for name, (xy, yaw) in guesses.items():
            rows[name].append((float(np.linalg.norm(xy - gt_xy)), float(_wrap_deg(np.array(yaw - gt_yaw)))))
    out: dict[str, dict[str, float]] = {}
    for name, errs in rows.items():
        if not errs:  # data without the side objects by sector: no "all relations" rule
            continue
        pos = np.array([e[0] for e in errs])
        ori = np.array([e[1] for e in errs])
        out[name] = {
            "acc@0.5m": 100 * float((pos < 0.5).mean()),
            "acc@1.0m": 100 * float((pos < 1.0).mean()),
            "acc@15deg": 100 * float((ori < 15).mean()),
            "acc@30deg": 100 * float((ori < 30).mean()),
            "median_pos_err_m": float(np.median(pos)),
            "median_ori_err_deg": float(np.median(ori)),
            "n": len(errs),
        }
    return out


def _cell(per_seed: list[float]) -> str:
    vals = [v for v in per_seed if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{np.mean(vals):.1f} ± {np.std(vals, ddof=1):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ladder")
    parser.add_argument("--rungs", nargs="+", default=list(RUNGS), choices=RUNGS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT.variants))
    parser.add_argument("--steps", type=int, default=None, help="fine-tuning steps per variant (default: the demo's)")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="other DemoSettings fields, e.g. pointer_keys=input lr=1e-4 (values parsed as Python literals)",
    )
    args = parser.parse_args()
    try:
        overrides = settings_overrides(args.set, DEFAULT)
    except ConfigError as err:
        parser.error(str(err))
    out = Path(args.out)
    table: dict[str, Any] = {"rungs": {}, "rules": None, "command": vars(args)}
    for rung in args.rungs:
        settings = rung_settings(rung, tuple(args.seeds), tuple(args.variants), args.steps, overrides)
        run_demo(out / rung, settings, resume=True, print_fn=lambda *a, **k: None)
        per_seed: dict[str, list[dict[str, Any]]] = {}
        for variant in settings.variants:
            for seed in settings.seeds:
                done = json.loads((out / rung / "runs" / f"{variant}-seed{seed}" / "result.json").read_text())
                per_seed.setdefault(variant, []).append(done["result"]["scores"])
        table["rungs"][rung] = {"per_seed": per_seed}
        if table["rules"] is None:
            table["rules"] = rule_baselines(out / rung / "synthrooms")
    (out / "ladder.json").write_text(json.dumps(table, indent=1, default=str))
    print(format_ladder(table))


def format_ladder(table: dict[str, Any]) -> str:
    lines = ["| rung | variant | " + " | ".join(METRICS) + " | layout err (m) |", "|---" * (len(METRICS) + 3) + "|"]
    for rung, entry in table["rungs"].items():
        per_seed = entry.get("per_seed") or {}
        for variant, seeds in per_seed.items():
            tests = [s.get("test", {}) for s in seeds]
            cells = [_cell([t.get(m) for t in tests]) for m in METRICS]
            cells.append(_cell([t.get("layout_median_err_m") for t in tests]))
            lines.append(f"| {rung} | {variant} | " + " | ".join(cells) + " |")
    for name, m in (table.get("rules") or {}).items():
        cells = [f"{m[k]:.1f}" if k in m else "-" for k in METRICS]
        lines.append(f"| rule | {name} | " + " | ".join(cells) + " | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
