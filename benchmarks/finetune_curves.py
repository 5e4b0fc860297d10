"""Where does held-out localization head? Learning curves of the demo's fine-tuning, by steps and by training rooms.

Each run fine-tunes one demo variant from the shipped base exactly as ``loc3r demo`` does (``loc3r.apps.demo._recipe``:
same objectives, loss weights, lr, batch, frozen tower) on the training rooms of ``--train-root``, for ``--steps``
steps (one cosine schedule), keeps the checkpoints at ``--eval-at`` and scores each on the held-out rooms of
``--heldout-root`` (split ``--heldout-split``) with the runner of ``loc3r eval``. Runs go two at a time, one torch
thread each. Prints one table (and writes ``OUT/curves.json``) with the room-centre guess of the held-out rooms.

Keep the demo's ``test`` split out of this: it is the reported result, never a tuning set. Generate a separate
held-out set (another seed) for curves, e.g.:

    loc3r synth --out data/curves --scenes 330 --seed 3000 --min-side 3 --max-side 6 --frames 8 --size 112x112 \\
        --min-objects 4 --max-objects 10 --situations 40 --questions-per-situation 2 --val-fraction 0 \\
        --test-fraction 0.1 --no-video --no-novel-view --workers 2
    python benchmarks/finetune_curves.py --out runs/curves --heldout-root data/curves \\
        --run loc3r:data/curves --run situation_only:data/curves --run loc3r:runs/demo/synthrooms \\
        --steps 1200 --eval-at 300 600 1200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Run:
    variant: str
    train_roots: tuple[Path, ...]
    name: str


def _eval_dir(run_dir: Path, step: int, final: Path) -> Path:
    """A loadable model directory of training checkpoint ``step``: the final model's config, tokenizer and processor
    files with the checkpoint's weights (the checkpoints hold the weights and the optimizer state only)."""
    ckpt = run_dir / "checkpoints" / f"step-{step:08d}"
    if not (ckpt / "model.safetensors").is_file():
        raise FileNotFoundError(f"{ckpt}: no model.safetensors (was --eval-at a multiple of the save interval?)")
    out = run_dir / "eval_models" / f"step-{step}"
    out.mkdir(parents=True, exist_ok=True)
    for f in final.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy2(f, out / f.name)
    shutil.copy2(ckpt / "model.safetensors", out / "model.safetensors")
    return out


def _one(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from loc3r.apps.demo import DEFAULT, _recipe, resolve_base
    from loc3r.benchmarks.synthrooms.task import score_synth, synth_eval_config
    from loc3r.evaluate.runner import evaluate
    from loc3r.model.loading import load_model
    from loc3r.synthrooms.writer import read_index
    from loc3r.train.recipe import train

    torch.manual_seed(0)
    torch.set_num_threads(1)
    settings = dataclasses.replace(DEFAULT, steps=args.steps, progress=False)
    run_dir = args.out / run.name
    recipe = _recipe(run.train_roots[0], run_dir, run.variant, settings, args.seed, resolve_base(settings.base))
    # more training rooms: the same two datasets (situated QA + VSI, text localization) of every further root, each
    # root drawn in proportion to its training rooms (the mixture draws dataset k with probability ~ weight_k)
    rooms = [len(read_index(root)["splits"]["train"]) for root in run.train_roots]
    first = [spec.model_copy(update={"weight": 1.0}) for spec in recipe.data.train[:2]]
    extra = [
        spec.model_copy(update={"root": root, "weight": n / rooms[0]})
        for root, n in zip(run.train_roots[1:], rooms[1:], strict=True)
        for spec in first
    ]
    interval = min(args.eval_at)
    recipe = recipe.model_copy(
        update={
            "data": recipe.data.model_copy(update={"num_workers": 0, "train": [*first, *extra]}),
            "train": recipe.train.model_copy(update={"save_every": interval, "keep_last": args.steps // interval + 1}),
        }
    )
    done = run_dir / "curve.json"
    if done.is_file():  # finished in an earlier invocation
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    result = train(recipe, resume=(run_dir / "checkpoints").is_dir())  # an interrupted run continues exactly
    seconds = time.perf_counter() - t0
    rows = []
    for step in args.eval_at:
        model_dir = result.final_dir if step == args.steps else _eval_dir(run_dir, step, result.final_dir)
        config = synth_eval_config(
            model_dir, args.heldout_root, args.heldout_split, settings.frames, run_dir / "eval" / f"step-{step}",
            settings.eval_batch_size, {"loc": args.max_loc, "qa": args.max_qa, "vsi": args.max_vsi},
        )  # fmt: skip
        records = evaluate(load_model(model_dir), config, progress=False, source=f"curves {run.name}")
        for r in records:
            r["split"] = "heldout"
        scores = score_synth(records)["heldout"]
        rows.append({"step": step, **{k: v for k, v in scores.items() if isinstance(v, int | float)}})
        print(f"[curves] {run.name} step {step}: acc@1.0m {scores.get('acc@1.0m', float('nan')):.1f}", flush=True)
    roots = [str(r) for r in run.train_roots]
    out = {"run": run.name, "variant": run.variant, "train_roots": roots, "seconds": seconds, "rows": rows}
    done.write_text(json.dumps(out, indent=1))
    return out


def _centre_guess(train_roots: tuple[Path, ...], heldout_root: Path, split: str, frames: int) -> float:
    """Acc@1.0m of the room-centre guess (mean training pose) on the held-out localization samples."""
    import numpy as np

    from loc3r.benchmarks.synthrooms.task import synth_eval_sets
    from loc3r.data.text_localization import parse_pose_text

    poses = []
    for root in train_roots:
        train = synth_eval_sets(root, "train", frames)["loc"]
        poses += [parse_pose_text(train[i].answer) for i in range(len(train))]
    held = synth_eval_sets(heldout_root, split, frames)["loc"]
    xy = np.mean([p[0] for p in poses if p is not None], 0)
    hits = []
    for i in range(len(held)):
        pose = parse_pose_text(held[i].answer)
        if pose is not None:
            hits.append(float(np.linalg.norm(np.asarray(pose[0]) - xy) <= 1.0))
    return 100 * float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--heldout-root", type=Path, required=True)
    ap.add_argument("--heldout-split", default="test")
    ap.add_argument(
        "--run", action="append", required=True, help="VARIANT:TRAIN_ROOT[+TRAIN_ROOT...] (repeat; + joins sets)"
    )
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--eval-at", type=int, nargs="+", default=[300, 600, 1200])
    ap.add_argument("--max-loc", type=int, default=300, help="held-out localization samples per evaluation")
    ap.add_argument("--max-qa", type=int, default=200)
    ap.add_argument("--max-vsi", type=int, default=1, help="VSI-style questions per evaluation (not reported)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if any(s % min(args.eval_at) for s in args.eval_at) or max(args.eval_at) != args.steps:
        ap.error("--eval-at must be multiples of its smallest value and end at --steps")
    runs = []
    for spec in args.run:
        variant, _, roots = spec.partition(":")
        paths = tuple(Path(r) for r in roots.split("+"))
        runs.append(Run(variant, paths, f"{variant}@{'+'.join(p.name for p in paths)}"))
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.parallel, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_one, runs, [args] * len(runs)))
    centre = {r.name: _centre_guess(r.train_roots, args.heldout_root, args.heldout_split, 8) for r in runs}
    (args.out / "curves.json").write_text(json.dumps({"args": vars(args), "results": results, "centre": centre},
                                                     indent=1, default=str))  # fmt: skip
    print(f"held-out rooms: {args.heldout_root} split {args.heldout_split}; room-centre guess Acc@1.0m: {centre}")
    print("| run | step | Acc@0.5m | Acc@1.0m | Acc@30° | median pos. err (m) | QA EM | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        for row in res["rows"]:
            print(
                f"| {res['run']} | {row['step']} | {row.get('acc@0.5m', float('nan')):.1f} | "
                f"{row.get('acc@1.0m', float('nan')):.1f} | {row.get('acc@30deg', float('nan')):.1f} | "
                f"{row.get('median_pos_err_m', float('nan')):.2f} | {row.get('em', float('nan')):.1f} | "
                f"{res['seconds']:.0f} |"
            )


if __name__ == "__main__":
    main()
