"""Is the predicted position sigma calibrated? Temperature and candidate spread fitted on validation, then the
held-out report: coverage within 1/2/3 sigma vs the 2-D Gaussian's 39/86/99 %, a reliability plot, Acc with 1 and
with 3 candidates, and the paper's analysis (QA accuracy when localization is right vs wrong, sigma per group).

Inputs are the prediction records of ``loc3r eval --config configs/synth/eval/S.yaml --set checkpoint=M
--set data.root=D --out DIR``
(``DIR/predictions-shard0of1.jsonl``: ``set`` = ``loc`` records carry ``position_bev``, ``position_sigma``,
``yaw_bev``, ``yaw_probabilities``, ``gt_xy_bev``, ``gt_yaw_bev``; ``qa`` records carry ``answer`` and
``references``; both carry ``scene_id`` and ``situation``, which join a question to its situation)::

    python benchmarks/calibrate_poses.py --val ev_val/predictions-shard0of1.jsonl \
        --test ev_test/predictions-shard0of1.jsonl --out runs/calibration

Prints a Markdown table and writes ``OUT/calibration.json`` and ``OUT/reliability.png``. The fitted
``position_sigma_temperature`` and ``candidate_spread`` are what an evaluation config takes
(``configs/paper/eval/sqa3d_localization.yaml``). Validation only fits; the test split only reports.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.evaluate.calibration import (
    fit_candidate_spread,
    fit_temperature,
    pose_candidates,
    qa_by_localization,
    reliability_plot,
    sigma_calibration,
)
from loc3r.evaluate.localization import localization_metrics, position_error_xy, yaw_error_deg
from loc3r.evaluate.qa import answer_match, clean_answer
from loc3r.evaluate.runner import read_jsonl

LOCALIZED_M, LOCALIZED_DEG = 1.0, 45.0  # the paper's "localization is right"


def _loc_arrays(records: list[dict[str, Any]]) -> dict[str, Any]:
    loc = [r for r in records if r["set"] == "loc" and r.get("position_sigma") is not None]
    if not loc:
        raise SystemExit("no 'loc' records with position_sigma (evaluate a model with situation heads)")
    return {
        "records": loc,
        "pred": np.array([r["position_bev"] for r in loc], dtype=np.float64),
        "sigma": np.array([r["position_sigma"] for r in loc], dtype=np.float64),
        "gt": np.array([r["gt_xy_bev"] for r in loc], dtype=np.float64),
        "yaw": np.array([r["yaw_bev"] for r in loc], dtype=np.float64),
        "gt_yaw": np.array([r["gt_yaw_bev"] for r in loc], dtype=np.float64),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--val", required=True, help="validation prediction records (fit only)")
    ap.add_argument("--test", required=True, help="held-out prediction records (report only)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    val, test_records = _loc_arrays(read_jsonl(args.val)), read_jsonl(args.test)
    test = _loc_arrays(test_records)

    temperature = fit_temperature(val["pred"], val["gt"], val["sigma"])
    spread, _ = fit_candidate_spread(val["pred"], val["gt"], val["sigma"], temperature)
    raw = sigma_calibration(test["pred"], test["gt"], test["sigma"])
    cal = sigma_calibration(test["pred"], test["gt"], test["sigma"], temperature)
    reliability_plot(
        {"raw sigma": raw["reliability"], f"T = {temperature:.2f} (val)": cal["reliability"]},
        out / "reliability.png",
        title=f"position sigma, held-out ({raw['n']} situations)",
    )

    # Acc with 1 and with 3 candidates (BEV frame; closest position and closest orientation each)
    k3_xy, k3_yaw = [], []
    for r in test["records"]:
        cands = pose_candidates(
            r["position_bev"], r["position_sigma"], r.get("yaw_probabilities"), r["yaw_bev"], 3, temperature, spread
        )
        k3_xy.append([c[0] for c in cands])
        k3_yaw.append([c[1] for c in cands])
    acc1 = localization_metrics(test["gt"], test["gt_yaw"], test["pred"], test["yaw"])
    acc3 = localization_metrics(test["gt"], test["gt_yaw"], np.array(k3_xy), np.array(k3_yaw))

    # QA accuracy when the question's situation is localized right (<= 1.0 m and <= 45 deg) vs wrong
    pos_err = np.asarray(position_error_xy(test["pred"], test["gt"]))
    ori_err = np.asarray(yaw_error_deg(test["yaw"], test["gt_yaw"]))
    by_situation = {}
    for i, r in enumerate(test["records"]):
        by_situation[(r["scene_id"], r.get("situation"))] = (
            bool(pos_err[i] <= LOCALIZED_M and ori_err[i] <= LOCALIZED_DEG),
            float(np.linalg.norm(test["sigma"][i]) * temperature),
        )
    loc_flags, qa_flags, sigmas = [], [], []
    for r in test_records:
        key = (r["scene_id"], r.get("situation"))
        if r["set"] != "qa" or key not in by_situation:
            continue
        hit, _ = answer_match(clean_answer(r["answer"] or ""), [clean_answer(a) for a in r["references"]])
        loc_flags.append(by_situation[key][0])
        qa_flags.append(hit)
        sigmas.append(by_situation[key][1])
    split = qa_by_localization(loc_flags, qa_flags, sigmas) if loc_flags else {}
    loc_sigma = {
        f"mean_sigma_{name}_m": float(np.mean([s for (ok, s) in by_situation.values() if ok == want]))
        if any(ok == want for ok, _ in by_situation.values())
        else None
        for name, want in (("localized_situations", True), ("not_localized_situations", False))
    }

    result = {
        "n_val": int(len(val["pred"])),
        "n_test": int(len(test["pred"])),
        "temperature": temperature,
        "candidate_spread": spread,
        "calibration_raw": {k: v for k, v in raw.items() if k != "reliability"},
        "calibration_temperature": {k: v for k, v in cal.items() if k != "reliability"},
        "reliability_raw": raw["reliability"],
        "reliability_temperature": cal["reliability"],
        "acc_1_candidate": acc1,
        "acc_3_candidates": acc3,
        "qa_by_localization": split,
        "sigma_by_localization": loc_sigma,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(result, indent=1))

    print(f"validation: {result['n_val']} situations -> T = {temperature:.3f}, candidate spread = {spread:.2f} sigma")
    print(f"held-out: {result['n_test']} situations\n")
    print("| sigma | within 1σ | within 2σ | within 3σ | NLL | median r |")
    print("|---|---|---|---|---|---|")
    print("| 2-D Gaussian | 39.3 | 86.5 | 98.9 | - | 1.18 |")
    for name, c in (("raw", raw), (f"× T = {temperature:.2f}", cal)):
        cells = [f"{c[f'within_{k}sigma']:.1f}" for k in (1, 2, 3)]
        print(f"| {name} | " + " | ".join(cells) + f" | {c['nll']:.2f} | {c['median_r']:.2f} |")
    print("\n| candidates | Acc@0.5m | Acc@1.0m | Acc@15° | Acc@30° |")
    print("|---|---|---|---|---|")
    for name, a in (("1", acc1), ("3", acc3)):
        print(
            f"| {name} | "
            + " | ".join(f"{a[k]:.1f}" for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg"))
            + " |"
        )
    if split:
        fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"  # noqa: E731
        print(f"\nQA EM when localized (<= {LOCALIZED_M} m and <= {LOCALIZED_DEG:.0f}°) vs not:")
        print("| situation localized | questions | QA EM | mean |σ| (m, calibrated) |")
        print("|---|---|---|---|")
        for name in ("localized", "not_localized"):
            print(
                f"| {name} | {split[f'n_{name}']} | {fmt(split[f'qa_acc_{name}'])} | "
                f"{fmt(split[f'mean_sigma_{name}_m'])} |"
            )
    print(f"\nwrote {out / 'calibration.json'} and {out / 'reliability.png'}")


if __name__ == "__main__":
    main()
