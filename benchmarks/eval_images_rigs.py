"""The demo's variants on still images and camera rigs (issue 14): the paper's method was only ever tested on
monocular video.

Regenerates the demo's SynthRooms set (same settings and seed, read from ``DEMO_DIR/results.json`` or given) with
the extra splits ``test_image`` (one still per held-out room) and ``test_rig`` (front/left/right rig, whole time
steps interleaved) — the existing splits come out byte-identical, so the held-out rooms stay held out — and scores
every trained variant (``DEMO_DIR/runs/<variant>-seed0/final``) on ``test``, ``test_image`` and ``test_rig`` with
the demo's runner and metrics (:func:`loc3r.evaluate.runner.evaluate` on the ``synthrooms`` tasks,
:func:`loc3r.benchmarks.synthrooms.task.score_synth`). Prints a table.

Run::

    python benchmarks/eval_images_rigs.py runs/demo --out runs/demo_images_rigs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_dir")
    parser.add_argument("--out", required=True)
    parser.add_argument("--settings-json", default=None, help="DemoSettings as JSON (default: results.json)")
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--max", type=int, default=None, help="at most this many samples per set")
    args = parser.parse_args()

    from loc3r.benchmarks.synthrooms.task import score_synth, synth_eval_config
    from loc3r.data.schema import SampleError
    from loc3r.evaluate.runner import evaluate, load_model
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    demo = Path(args.demo_dir)
    if args.settings_json:
        s = json.loads(Path(args.settings_json).read_text())
        seed = 0
    else:
        info = json.loads((demo / "results.json").read_text())["_info"]
        s, seed = info["settings"], info["data_seed"]
    if "data" in s:  # DemoSettings.data: the demo's SynthSettings as results.json stores them
        d = {**s["data"], "seed": seed, "extra_splits": ("image", "rig")}
        d["val_fraction"] = 0.0 if d["num_scenes"] < 10 else d["val_fraction"]
        s = {**s, "frames": d["frames"]}
        synth = SynthSettings(**d)
    else:  # a results.json written before DemoSettings held a SynthSettings
        synth = SynthSettings(
        num_scenes=s["scenes"], frames=s["frames"], width=s["size"], height=s["size"], seed=seed,
        min_objects=s["min_objects"], min_side=s["min_side"], max_side=s["max_side"], max_objects=s["max_objects"],
        category_colors=s["category_colors"], val_fraction=0.0 if s["scenes"] < 10 else 0.05,
        test_fraction=s["test_fraction"], situations_per_scene=s["situations_per_scene"],
        questions_per_situation=s["questions_per_situation"], write_video=False, extra_splits=("image", "rig"),
        )  # fmt: skip
    data = Path(args.out) / "synthrooms"
    generate_dataset(data, synth, workers=1, progress=False)
    variants = args.variants or sorted(p.name.rsplit("-seed", 1)[0] for p in (demo / "runs").glob("*-seed0"))
    limit = None if args.max is None else {"loc": args.max, "qa": args.max, "vsi": args.max}
    rows = []
    for variant in variants:
        final = demo / "runs" / f"{variant}-seed0" / "final"
        if not final.is_dir():
            print(f"{variant}: no trained model at {final} (skipped)")
            continue
        model = load_model(final)
        for split in ("test", "test_image", "test_rig"):
            try:
                config = synth_eval_config(final, data, split, s["frames"], Path(args.out) / "eval", 16, limit)
                recs = evaluate(model, config, progress=False)
            except SampleError as err:  # e.g. no situation of a still names only objects that the still shows
                print(f"{variant} {split}: not evaluated: {err}", flush=True)
                continue
            sc = score_synth(recs)[split]
            rows.append((variant, split, sc))
            print(json.dumps({"variant": variant, "split": split, **sc}), flush=True)
    print("| variant | split | Acc@0.5m | Acc@1.0m | Acc@15° | Acc@30° | QA EM | VSI overall | n loc / qa |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v, split, sc in rows:
        print(f"| {v} | {split} | {sc.get('acc@0.5m', float('nan')):.1f} | {sc.get('acc@1.0m', float('nan')):.1f} | "
              f"{sc.get('acc@15deg', float('nan')):.1f} | {sc.get('acc@30deg', float('nan')):.1f} | "
              f"{sc.get('em', float('nan')):.1f} | {sc.get('overall', float('nan')):.1f} | "
              f"{sc.get('n_loc', 0)} / {sc.get('n_qa', 0)} |")  # fmt: skip


if __name__ == "__main__":
    main()
