"""``loc3r train CONFIG.yaml [--set key=value ...] [--resume]`` — run a training recipe.

One process on a laptop::

    loc3r train configs/train_tiny.yaml

Many processes / GPUs / nodes, through the launchers (the recipe itself does not change)::

    torchrun --standalone --nproc_per_node 8 -m loc3r.cli train configs/RECIPE.yaml
    accelerate launch --config_file configs/accelerate/zero3.yaml -m loc3r.cli train configs/RECIPE.yaml

Several processes on a CPU-only machine (gloo) run under ``torchrun`` as above (``accelerate launch --cpu``
multi-process needs MPI).

``--resume`` continues from the newest complete checkpoint in ``OUTPUT_DIR/checkpoints`` (exactly: model,
optimizer, scheduler, RNG states and data position); without it, an ``OUTPUT_DIR`` that already holds
checkpoints is an error, so a run is never silently overwritten.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe (single process or under torchrun / accelerate launch)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="YAML recipe (see configs/train_tiny.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field by dotted path, value parsed as YAML (repeatable), e.g. --set optim.lr=1e-4",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest complete checkpoint in OUTPUT_DIR/checkpoints",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad frame (unreadable, of another size, bad pose) instead of skipping it; skipped "
        "frames are always counted and named in OUTPUT_DIR/frame_report.json",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    from loc3r.data.schema import SampleError
    from loc3r.train.checkpointing import CheckpointError
    from loc3r.train.config import ConfigError, load_config
    from loc3r.train.recipe import NonFiniteLossError, train

    try:
        cfg = load_config(args.config, args.overrides)
        train(cfg, resume=args.resume, strict=args.strict)
    except (ConfigError, CheckpointError, NonFiniteLossError, SampleError) as err:
        print(f"loc3r train: error: {err}", file=sys.stderr)
        return 2
    return 0
