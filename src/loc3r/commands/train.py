"""``loc3r train CONFIG.yaml [--set key=value ...] [--resume]`` — run a training recipe.

One process on a laptop::

    loc3r train configs/train_tiny.yaml

Many processes / GPUs / nodes, through the launchers (the recipe itself does not change)::

    torchrun --standalone --nproc_per_node 8 -m loc3r.cli train configs/RECIPE.yaml
    accelerate launch --config_file configs/accelerate/zero3.yaml -m loc3r.cli train configs/RECIPE.yaml

Several processes on a CPU-only machine (gloo) run under ``torchrun`` as above (``accelerate launch --cpu``
multi-process needs MPI).

``--dry-run`` prints the recipe's parameter counts and its estimated memory per GPU at ``--frames`` (default
``data.num_frames``) of ``--image-size`` pixels — weights, gradients, AdamW states, activations with or without
gradient checkpointing (:mod:`loc3r.train.memory`) — without loading weights or data.

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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the recipe's parameters and estimated GPU memory (weights, gradients, optimizer states, "
        "activations with checkpointing) and exit; builds nothing, reads no data",
    )
    parser.add_argument("--frames", type=int, default=None, help="--dry-run: frames per clip (default data.num_frames)")
    parser.add_argument("--image-size", type=int, default=384, help="--dry-run: frame side in pixels (default 384)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from loc3r.train.config import ConfigError, load_config
    from loc3r.train.recipe import train

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from loc3r.train.memory import estimate_recipe

        try:
            print(estimate_recipe(cfg, frames=args.frames, image_size=args.image_size))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{args.config}: {err}") from err
        return 0
    train(cfg, resume=args.resume, strict=args.strict)
    return 0
