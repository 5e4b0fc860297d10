"""``loc3r eval``: a checkpoint on a SynthRooms split → prediction files + scores; sharded.

Example (2 shards, then the merge step)::

    loc3r eval --model runs/x/final --data data/synthrooms --split test --shard 0/2 --out ev/  # process 0
    loc3r eval --model runs/x/final --data data/synthrooms --split test --shard 1/2 --out ev/  # process 1
    loc3r eval --merge ev/predictions-shard*.jsonl --out ev/                                   # scores

Under ``torchrun`` without ``--shard``, the shard is the process's ``RANK``/``WORLD_SIZE``. Each shard writes
``OUT/predictions-shard<i>of<n>.jsonl`` (see :mod:`loc3r.evaluate.runner`); with one shard, or ``--merge``,
the scores are printed (with the pinned prompts and frame settings) and written to ``OUT/scores.json``, the
VSI records as ``OUT/vsibench_predictions.jsonl`` (input of ``loc3r score vsibench``).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a dataset split (sharded) and score it")
    p.add_argument("--model", help="checkpoint directory")
    p.add_argument("--data", help="SynthRooms directory (loc3r synth --out)")
    p.add_argument("--split", default="test", help="train | val | test | test_novel_view (default test)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the training recipe's)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--shard", default=None, help="i/n (default: RANK/WORLD_SIZE or 0/1)")
    p.add_argument("--merge", nargs="+", default=None, help="merge these shard files and score them")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_run)


def _print_scores(scores: dict, settings: dict) -> None:
    from loc3r.evaluate.report import format_table

    for split, metrics in scores.items():
        print(format_table(f"loc3r eval: {split}", metrics, settings))


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from loc3r.data.schema import SampleError
    from loc3r.evaluate.runner import (
        evaluate_synth,
        load_model,
        merge_shards,
        parse_shard,
        score_synth,
        write_jsonl,
    )
    from loc3r.evaluate.tasks.synth import task_settings
    from loc3r.infer import _recipe_num_frames

    out = Path(args.out)
    try:
        if args.merge:
            records = merge_shards(args.merge)
            settings = {"merged_files": len(args.merge)}
        else:
            if not args.model or not args.data:
                print("loc3r eval: --model and --data are required (or --merge FILES)")
                return 2
            shard = parse_shard(args.shard)
            model = load_model(args.model)
            frames = args.frames or _recipe_num_frames(Path(args.model)) or 8
            records = evaluate_synth(model, args.data, args.split, frames, args.batch_size, shard=shard)
            write_jsonl(out / f"predictions-shard{shard[0]}of{shard[1]}.jsonl", records)
            settings = {**task_settings(frames), "shard": f"{shard[0]}/{shard[1]}"}
            if shard[1] > 1:
                print(f"wrote {len(records)} predictions of shard {shard[0]}/{shard[1]}; run --merge to score")
                return 0
        scores = score_synth(records)
    except (FileNotFoundError, SampleError, ValueError) as err:
        print(f"loc3r eval: {err}")
        return 2
    vsi = [
        {k: r[k] for k in ("id", "question_type", "ground_truth", "prediction")} for r in records if r["set"] == "vsi"
    ]
    write_jsonl(out / "vsibench_predictions.jsonl", vsi)
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    _print_scores(scores, settings)
    return 0
