"""``loc3r eval``: a checkpoint on a benchmark or a SynthRooms split, from one evaluation config → prediction
files + scores; sharded.

One mode, for every benchmark (SQA3D QA / localization, ScanQA, VSI-Bench, MSQA, Beacon3D: ``configs/paper/eval``)
and every SynthRooms split (localization + situated QA + VSI-style: ``configs/synth/eval/<split>.yaml``)::

    loc3r eval --config configs/paper/eval/sqa3d.yaml [--checkpoint DIR] [--out DIR] [--max-samples N]
    loc3r eval --config configs/synth/eval/test.yaml --set checkpoint=runs/x/final --set data.root=data/synthrooms
    loc3r eval --config X.yaml --shard 0/2          # process 0 (also 1/2)
    loc3r eval --config X.yaml --merge OUT/predictions-shard*.jsonl

``--set key.path=value`` overrides any key of the config before it is validated (``num_frames``, ``data.split``,
``batch_size``, ...; unknown keys are errors); ``--checkpoint`` / ``--out`` / ``--max-samples`` are short for the
config's ``checkpoint`` / ``output_dir`` / ``max_samples``. Under ``torchrun`` without ``--shard``, the shard is
the process's ``RANK``/``WORLD_SIZE``. Each shard writes ``OUT/predictions-shard<i>of<n>.jsonl`` (+ its
``.shard.json``: sizes, skipped samples, settings, model fingerprint; see :mod:`loc3r.evaluate.shards`); with one
shard, or ``--merge``, the output directory gets the predictions in the ``loc3r score`` format of the benchmark
(``sqa3d_predictions.json``, ``sqa3d_localization_predictions.json``, ``scanqa_predictions.json``,
``vsibench_predictions.jsonl``, ``msqa_predictions.json`` + ``msqa_references.json``, ``beacon3d_predictions.json``;
SynthRooms: the VSI records as ``vsibench_predictions.jsonl``), ``scores.json`` (the metrics, keys as
``loc3r score --json`` prints them; SynthRooms: ``{split: {metric: value}}``) and ``settings.json``; the table
printed with the scores shows every setting that changes them (config, checkpoint, frames, prompts, decoding,
number of samples) and the ``loc3r score`` command that re-scores the file. Bad input (missing checkpoint or
data file, unknown benchmark or key) is one line ``loc3r eval: error: ...`` on stderr and exit code 2
(reported by :func:`loc3r.cli.main`).

The runner is :mod:`loc3r.evaluate.runner` (``loc3r demo`` evaluates with the same functions); what is specific
to a benchmark is its task in :mod:`loc3r.evaluate.tasks`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: the flags of the former SynthRooms mode -> the config key that replaced each
_FORMER_FLAGS = {"--model": "checkpoint", "--data": "data.root", "--split": "data.split", "--frames": "num_frames"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a benchmark or dataset split (sharded), score it")
    p.add_argument(
        "--config",
        help="evaluation config YAML: a real benchmark (configs/paper/eval/*.yaml) or a SynthRooms split "
        "(configs/synth/eval/*.yaml)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted path, value parsed as YAML), e.g. --set data.root=data/synthrooms",
    )
    p.add_argument("--checkpoint", help="checkpoint directory (short for --set checkpoint=DIR)")
    p.add_argument("--max-samples", type=int, default=None, help="evenly spread subset of N samples per task")
    p.add_argument("--batch-size", type=int, default=None, help="default: the config's batch_size")
    p.add_argument("--shard", default=None, help="i/n (default: RANK/WORLD_SIZE or 0/1)")
    p.add_argument("--merge", nargs="+", default=None, help="merge these shard files and score them")
    p.add_argument("--out", default=None, help="output directory (default: the config's output_dir)")
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
    for flag in _FORMER_FLAGS:  # accepted only to say what replaced them
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
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


#: settings the checkpoint fixes (resolution, preprocessing, chat template): carried from the shards into a merge
_PROTOCOL_KEYS = ("backbone", "resolution", "preprocessing", "chat_template")


def _print_protocol(settings: dict) -> None:
    """The exact protocol of the run, printed before anything is predicted (and again with the scores)."""
    from loc3r.evaluate.report import format_value

    print(f"loc3r eval: protocol of this run ({settings['benchmark']})")
    for key, value in settings.items():
        print(f"  {key}: {format_value(value)}")
    sys.stdout.flush()


def _load_config(args: argparse.Namespace) -> Any:
    """The evaluation config with ``--set`` applied (before validation) and the short flags (after it)."""
    from pathlib import Path

    from loc3r.core.config import ConfigError
    from loc3r.evaluate.tasks import load_eval_config

    former = [flag for flag in _FORMER_FLAGS if getattr(args, flag.lstrip("-"))]
    if former:
        keys = " ".join(f"--set {_FORMER_FLAGS[flag]}=..." for flag in former)
        raise ConfigError(
            f"{', '.join(former)}: not options of loc3r eval any more; a SynthRooms split is evaluated like every "
            f"benchmark, from its config: loc3r eval --config configs/synth/eval/<split>.yaml {keys}"
            + (f" (with --config {args.config}: {keys})" if args.config else "")
        )
    if not args.config:
        raise ConfigError(
            "--config is required: configs/paper/eval/<benchmark>.yaml or configs/synth/eval/<split>.yaml"
        )
    config = load_eval_config(args.config, args.overrides)
    updates: dict[str, Any] = {}
    if args.checkpoint:
        updates["checkpoint"] = Path(args.checkpoint)
    if args.out:
        updates["output_dir"] = Path(args.out)
    if args.max_samples is not None:
        if args.max_samples < 1:
            raise ConfigError(f"--max-samples must be >= 1, got {args.max_samples}")
        updates["max_samples"] = args.max_samples
    return config.model_copy(update=updates)


def _stream_driver(task: Any) -> Any:
    """The driver of a streamed benchmark (VSI-SUPER streaming counting: ``loc3r stream``'s session), else None."""
    if not any(part.streaming for part in task.parts()):
        return None
    from loc3r.apps.stream_eval import stream_counts

    return stream_counts


def _merged(args: argparse.Namespace, config: Any, source: str) -> tuple[list, list, list[str], dict[str, Any]]:
    """``--merge``: the shards' records, checked against this config (settings, checkpoint); ``(records, skipped,
    warnings, settings)`` (a difference is an error unless ``--allow-partial``, then a warning)."""
    from pathlib import Path

    from loc3r.data.schema import SampleError
    from loc3r.evaluate.runner import eval_settings, merge_checked
    from loc3r.evaluate.shards import model_fingerprint

    records, skipped, warnings, shard_settings = merge_checked(args.merge, allow_partial=args.allow_partial)
    settings = eval_settings(config, args.config, args.batch_size)
    settings.update({k: shard_settings[k] for k in _PROTOCOL_KEYS if k in shard_settings})
    if config.num_frames is None and "frames" in shard_settings:  # the checkpoint's, as the shards resolved it
        settings["frames"] = shard_settings["frames"]
    # the shards must also have been made with this config's settings (frames, prompts, data, decoding)
    differing = sorted(
        k for k, v in settings.items() if k not in _NOT_COMPARED and k in shard_settings and shard_settings[k] != v
    )
    messages = [
        f"setting {k!r} of the shards is {shard_settings[k]!r} but {settings[k]!r} in {source}" for k in differing
    ]
    # ... and with this config's checkpoint: the scores are reported as its scores
    checkpoint = Path(config.checkpoint)
    if shard_settings.get("model") is not None and checkpoint.is_dir():
        mine = model_fingerprint(checkpoint)
        if mine != shard_settings["model"]:
            messages.append(
                f"the shards were made with another checkpoint (model fingerprint {shard_settings['model']}) than "
                f"{checkpoint} (key 'checkpoint' of {source}, fingerprint {mine})"
            )
    for message in messages:
        if not args.allow_partial:
            raise SampleError(f"cannot merge: {message} (pass --allow-partial to score them anyway)")
        warnings.append(message)
    settings["model"] = shard_settings.get("model")
    settings["merged_files"] = len(args.merge)
    settings["partial"] = bool(warnings)
    return records, skipped, warnings, settings


def _predict_shard(args: argparse.Namespace, config: Any, task: Any, source: str) -> tuple[Any, list, list, dict, int]:
    """One shard's predictions, written with its shard info; ``(config, records, skipped, settings, assigned)``."""
    from pathlib import Path

    from loc3r.data.video import FrameLog
    from loc3r.evaluate.runner import eval_settings, evaluate, load_model, parse_shard, resolve_num_frames, write_jsonl
    from loc3r.evaluate.shards import model_fingerprint, write_shard_info

    shard = parse_shard(args.shard)
    checkpoint, out = Path(config.checkpoint), Path(config.output_dir)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"{checkpoint}: checkpoint directory does not exist (key 'checkpoint' of {source})")
    model = load_model(checkpoint)
    config = resolve_num_frames(config, model)
    settings = eval_settings(config, args.config, args.batch_size, model=model)
    settings["shard"] = f"{shard[0]}/{shard[1]}"
    _print_protocol(settings)
    frame_log = FrameLog("loc3r eval", strict=args.strict)
    skipped: list = []
    sizes: dict[str, int] = {}
    records = evaluate(model, config, shard, batch_size=args.batch_size, source=source, frame_log=frame_log,
                       skipped=skipped, sizes=sizes, stream_predict=_stream_driver(task))  # fmt: skip
    _finish_frames(frame_log, out, shard)
    predictions = out / f"predictions-shard{shard[0]}of{shard[1]}.jsonl"
    write_jsonl(predictions, records)
    # what must agree between shards: everything that changes a score, the model itself included
    same = {k: v for k, v in settings.items() if k not in _NOT_COMPARED}
    same["model"] = model_fingerprint(checkpoint)
    write_shard_info(predictions, shard=shard, total=sizes["total"], assigned=sizes["assigned"],
                     predicted=len(records), skipped=skipped, settings=same)  # fmt: skip
    return config, records, skipped, settings, sizes["assigned"]


def _run(args: argparse.Namespace) -> int:
    """One shard of an evaluation, or the scores of one shard / merged shards."""
    from pathlib import Path

    from loc3r.evaluate.report import format_table, to_json
    from loc3r.evaluate.runner import score_evaluation
    from loc3r.evaluate.tasks import get_task

    config = _load_config(args)
    source = str(args.config)
    task = get_task(config.benchmark, source)
    for part in task.parts():
        part.check_config(config, source)
    out = Path(config.output_dir)
    if args.merge:
        records, skipped, warnings, settings = _merged(args, config, source)
        _print_protocol(settings)
        total = len(records) + len(skipped)
    else:
        config, records, skipped, settings, total = _predict_shard(args, config, task, source)
        warnings = []
        shard = settings["shard"].split("/")
        if int(shard[1]) > 1:
            print(f"wrote {len(records)} predictions of shard {shard[0]}/{shard[1]} to {out}; run --merge to score")
            return 0
    scores, files = score_evaluation(records, config, out, source=source)
    settings.update(samples=len(records), skipped=len(skipped), subset=any(r.get("subset") for r in records), **files)
    (out / "scores.json").write_text(
        to_json(
            {
                **scores,
                "n_input": total,
                "n_skipped": len(skipped),
                "skipped": skipped,
                "partial": bool(warnings),
                "settings": settings,  # the exact protocol (frames, sampling, resolution, prompts, metric version)
            }
        )
    )
    (out / "settings.json").write_text(to_json(settings))
    tables = scores.items() if task.scores_by_split else [(task.title, scores)]
    for title, metrics in tables:
        print(format_table(f"loc3r eval: {title}", metrics, settings))
    _report_skipped(skipped, total, warnings)
    return 0
