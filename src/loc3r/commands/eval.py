"""``loc3r eval``: a checkpoint on a real benchmark (``--config``) or a SynthRooms split → prediction files +
scores; sharded.

Real benchmarks (SQA3D QA / localization, ScanQA, VSI-Bench, MSQA), from a pinned evaluation config::

    loc3r eval --config configs/paper/eval/sqa3d.yaml [--checkpoint DIR] [--out DIR] [--max-samples N]
    loc3r eval --config configs/paper/eval/sqa3d.yaml --shard 0/2          # process 0 (also 1/2)
    loc3r eval --config configs/paper/eval/sqa3d.yaml --merge OUT/predictions-shard*.jsonl

``--checkpoint`` / ``--out`` / ``--max-samples`` override the config's ``checkpoint`` / ``output_dir`` /
``max_samples``. The output directory gets the predictions in the ``loc3r score`` format of the benchmark
(``sqa3d_predictions.json``, ``sqa3d_localization_predictions.json``, ``scanqa_predictions.json``,
``vsibench_predictions.jsonl``, ``msqa_predictions.json`` + ``msqa_references.json``), ``scores.json`` (the
metrics, keys as ``loc3r score --json`` prints them) and ``settings.json``; the table printed with the
scores shows every setting that changes them (config, checkpoint, frames, prompt suffixes, decoding,
number of samples) and the ``loc3r score`` command that re-scores the file. Bad input (missing checkpoint or
data file, unknown benchmark or key) is a message naming the file / key and exit code 2.

SynthRooms (the ``loc3r demo`` tasks), 2 shards then the merge step::

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
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a benchmark or dataset split (sharded), score it")
    p.add_argument("--config", help="evaluation config YAML of a real benchmark (configs/paper/eval/*.yaml)")
    p.add_argument("--checkpoint", help="with --config: checkpoint directory (overrides the config's 'checkpoint')")
    p.add_argument("--max-samples", type=int, default=None, help="with --config: evenly spread subset of N samples")
    p.add_argument("--model", help="SynthRooms mode: checkpoint directory")
    p.add_argument("--data", help="SynthRooms directory (loc3r synth --out)")
    p.add_argument("--split", default="test", help="train | val | test | test_novel_view (default test)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the training recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the config's batch_size (SynthRooms: 8)")
    p.add_argument("--shard", default=None, help="i/n (default: RANK/WORLD_SIZE or 0/1)")
    p.add_argument("--merge", nargs="+", default=None, help="merge these shard files and score them")
    p.add_argument("--out", default=None, help="output directory (with --config: default the config's output_dir)")
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="with --merge: score shards that are incomplete, overlap or were made with different settings "
        "(refused otherwise); the scores are then marked partial",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad frame instead of skipping it (skipped frames are always listed in "
        "OUT/frame_report.json)",
    )
    p.set_defaults(func=_run)


# settings that may differ between the shards and the merge step: where files are, how batches were cut
_NOT_COMPARED = frozenset({"config", "checkpoint", "batch_size", "shard", "merged_files"})


def _report_skipped(skipped: list, total: int | None, warnings: list[str]) -> None:
    """Print the samples left out of the scores (and merge warnings) so that the denominator is never silent."""

    for warning in warnings:
        print(f"loc3r eval: warning: {warning}", file=sys.stderr)
    if skipped:
        of = f" of {total}" if total is not None else ""
        print(f"loc3r eval: {len(skipped)}{of} samples skipped (not scored):")
        for entry in skipped[:20]:
            print(f"  {entry.get('sample_id')}: {entry.get('reason')}")
        if len(skipped) > 20:
            print(f"  ... and {len(skipped) - 20} more (see scores.json 'skipped')")


def _finish_frames(frame_log, out, shard: tuple[int, int]) -> None:  # noqa: ANN001 - FrameLog, Path

    # one report per shard: shards of one evaluation share the output folder
    frame_log.write(out, None if shard[1] == 1 else f"frame_report-shard{shard[0]}of{shard[1]}.json")
    if frame_log.problems:
        print(frame_log.summary(), file=sys.stderr)


def _print_scores(scores: dict, settings: dict) -> None:
    from loc3r.evaluate.report import format_table

    for split, metrics in scores.items():
        print(format_table(f"loc3r eval: {split}", metrics, settings))


def _error(message: object) -> int:
    """Bad input: one line on stderr in the CLI's format (``loc3r eval: error: ...``), exit code 2."""
    print(f"loc3r eval: error: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    if args.config:
        return _run_benchmark(args)
    if not args.out:
        return _error("--out is required (or give --config)")
    import json
    from pathlib import Path

    from loc3r.data.schema import SampleError
    from loc3r.data.video import FrameLog
    from loc3r.evaluate.runner import (
        evaluate_synth,
        load_model,
        merge_checked,
        parse_shard,
        score_synth,
        write_jsonl,
    )
    from loc3r.evaluate.shards import model_fingerprint, write_shard_info
    from loc3r.evaluate.tasks.synth import task_settings

    out = Path(args.out)
    skipped: list = []
    warnings: list[str] = []
    try:
        if args.merge:
            records, skipped, warnings, settings = merge_checked(args.merge, allow_partial=args.allow_partial)
            settings = {**settings, "merged_files": len(args.merge), "partial": bool(warnings)}
        else:
            if not args.model or not args.data:
                return _error("--model and --data are required (or --merge FILES)")
            shard = parse_shard(args.shard)
            model = load_model(args.model)
            frames = args.frames or model.num_frames or 8  # recorded with the checkpoint by training
            frame_log = FrameLog("loc3r eval", strict=args.strict)
            records = evaluate_synth(
                model, args.data, args.split, frames, args.batch_size or 8, shard=shard, frame_log=frame_log
            )
            _finish_frames(frame_log, out, shard)
            predictions = out / f"predictions-shard{shard[0]}of{shard[1]}.jsonl"
            write_jsonl(predictions, records)
            settings = {
                **task_settings(frames),
                "data": str(Path(args.data).resolve()),
                "split": args.split,
                "model": model_fingerprint(args.model),
            }
            write_shard_info(
                predictions,
                shard=shard,
                total=-1,  # SynthRooms sets are split per set (loc / qa / vsi); completeness = every shard present
                assigned=len(records),
                predicted=len(records),
                skipped=[],
                settings=settings,
            )
            settings = {**settings, "shard": f"{shard[0]}/{shard[1]}"}
            if shard[1] > 1:
                print(f"wrote {len(records)} predictions of shard {shard[0]}/{shard[1]}; run --merge to score")
                return 0
        scores = score_synth(records)
    except (FileNotFoundError, SampleError, ValueError) as err:
        return _error(err)
    vsi = [
        {k: r[k] for k in ("id", "question_type", "ground_truth", "prediction")} for r in records if r["set"] == "vsi"
    ]
    write_jsonl(out / "vsibench_predictions.jsonl", vsi)
    (out / "scores.json").write_text(
        json.dumps({**scores, "skipped": skipped, "partial": bool(warnings)}, indent=2, default=str)
    )
    _print_scores(scores, settings)
    _report_skipped(skipped, None, warnings)
    return 0


def _run_benchmark(args: argparse.Namespace) -> int:
    """``loc3r eval --config``: one shard of a real benchmark, or the scores of one shard / merged shards."""
    from pathlib import Path

    from loc3r.config_base import ConfigError
    from loc3r.data.schema import SampleError
    from loc3r.data.video import FrameLog
    from loc3r.evaluate.benchmark_config import get_task, load_eval_config
    from loc3r.evaluate.report import format_table, to_json
    from loc3r.evaluate.runner import (
        benchmark_settings,
        evaluate_benchmark,
        load_model,
        merge_checked,
        parse_shard,
        score_benchmark,
        write_jsonl,
    )
    from loc3r.evaluate.shards import model_fingerprint, write_shard_info
    from loc3r.geometry import GeometryError

    source = str(args.config)
    synth_flags = (("--model", args.model), ("--data", args.data), ("--frames", args.frames))
    stray = [flag for flag, value in synth_flags if value]
    if stray:
        return _error(
            f"{', '.join(stray)} belong to the SynthRooms mode; with --config the checkpoint, data and "
            f"frames are pinned by {source} (override the checkpoint with --checkpoint)"
        )
    try:
        config = load_eval_config(args.config)
        updates: dict = {}
        if args.checkpoint:
            updates["checkpoint"] = Path(args.checkpoint)
        if args.out:
            updates["output_dir"] = Path(args.out)
        if args.max_samples is not None:
            if args.max_samples < 1:
                raise ConfigError(f"--max-samples must be >= 1, got {args.max_samples}")
            updates["max_samples"] = args.max_samples
        config = config.model_copy(update=updates)
        task = get_task(config.benchmark, source)
        task.check_config(config, source)
        out = Path(config.output_dir)
        settings = benchmark_settings(config, args.config, args.batch_size)
        skipped: list = []
        warnings: list[str] = []
        total = None
        if args.merge:
            records, skipped, warnings, shard_settings = merge_checked(args.merge, allow_partial=args.allow_partial)
            # the shards must also have been made with this config's settings (frames, prompts, data, decoding)
            differing = sorted(
                k
                for k, v in settings.items()
                if k not in _NOT_COMPARED and k in shard_settings and shard_settings[k] != v
            )
            for key in differing:
                message = f"setting {key!r} of the shards is {shard_settings[key]!r} but {settings[key]!r} in {source}"
                if not args.allow_partial:
                    raise SampleError(f"cannot merge: {message} (pass --allow-partial to score them anyway)")
                warnings.append(message)
            settings["merged_files"] = len(args.merge)
            settings["partial"] = bool(warnings)
            total = len(records) + len(skipped)
        else:
            shard = parse_shard(args.shard)
            checkpoint = Path(config.checkpoint)
            if not checkpoint.is_dir():
                raise FileNotFoundError(
                    f"{checkpoint}: checkpoint directory does not exist (key 'checkpoint' of {source})"
                )
            model = load_model(checkpoint)
            frame_log = FrameLog("loc3r eval", strict=args.strict)
            sizes: dict[str, int] = {}
            records = evaluate_benchmark(
                model,
                config,
                shard,
                batch_size=args.batch_size,
                source=source,
                frame_log=frame_log,
                skipped=skipped,
                sizes=sizes,
            )
            _finish_frames(frame_log, out, shard)
            predictions = out / f"predictions-shard{shard[0]}of{shard[1]}.jsonl"
            write_jsonl(predictions, records)
            # what must agree between shards: everything that changes a score, the model itself included
            same = {k: v for k, v in settings.items() if k not in _NOT_COMPARED}
            write_shard_info(
                predictions,
                shard=shard,
                total=sizes["total"],
                assigned=sizes["assigned"],
                predicted=len(records),
                skipped=skipped,
                settings={**same, "model": model_fingerprint(checkpoint)},
            )
            total = sizes["assigned"]
            settings["shard"] = f"{shard[0]}/{shard[1]}"
            if shard[1] > 1:
                print(f"wrote {len(records)} predictions of shard {shard[0]}/{shard[1]} to {out}; run --merge to score")
                return 0
        metrics, files = score_benchmark(records, config, out, source=source)
    except (FileNotFoundError, SampleError, ConfigError, GeometryError, ValueError) as err:
        return _error(err)
    settings.update(samples=len(records), skipped=len(skipped), subset=any(r.get("subset") for r in records), **files)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scores.json").write_text(
        to_json({**metrics, "n_input": total, "n_skipped": len(skipped), "skipped": skipped, "partial": bool(warnings)})
    )
    (out / "settings.json").write_text(to_json(settings))
    print(format_table(f"loc3r eval: {task.title}", metrics, settings))
    _report_skipped(skipped, total, warnings)
    return 0
