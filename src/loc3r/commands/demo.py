"""``loc3r demo``: the CPU comparison of lm_only / situation_only / cue_injection(_est) / loc3r / loc3r_camera,
each fine-tuned from the shipped pretrained base loc3r-tiny.

Example::

    loc3r demo --out runs/demo                 # the default variants; <= 10 min on 2 cores
    loc3r demo --out runs/demo_full --full     # every variant, 3 seeds, mean ± std
    loc3r demo --out runs/demo_full --full --resume   # continue it after an interruption
    loc3r demo --out runs/demo_scratch --from-scratch   # the old tiny model trained from nothing

See :mod:`loc3r.apps.demo` for what is trained and measured.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train tiny models per variant on SynthRooms and compare localization / QA on held-out rooms",
        description="Generate SynthRooms, fine-tune the pretrained tiny base loc3r-tiny per variant (lm_only, "
        "situation_only, cue_injection with sensor depth, cue_injection_est with estimated depth, loc3r, "
        "loc3r_camera), evaluate on held-out rooms and novel viewpoints, print one table and write "
        "OUT/results.json + BEV pictures.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--full", action="store_true", help="every variant, more rooms and steps, seeds 0,1,2")
    p.add_argument(
        "--seed", type=int, nargs="+", default=None, help="training seed(s), mean ± std over several (default 0; "
        "--full: 0 1 2)"
    )  # fmt: skip
    p.add_argument("--data-seed", type=int, default=0, help="SynthRooms generator seed")
    p.add_argument("--variants", nargs="+", default=None, help="override the variants to run")
    p.add_argument("--steps", type=int, default=None, help="override training steps per variant")
    p.add_argument("--scenes", type=int, default=None, help="override the number of rooms")
    p.add_argument(
        "--situation-head",
        choices=("pointer", "mlp"),
        default=None,
        help="situation heads of every variant with heads: pointer (ours, default) or the paper's mlp",
    )
    p.add_argument(
        "--anchor-weight",
        type=float,
        default=None,
        help="weight of the pointer heads' anchor supervision (ours; default 1.0, 0 = off)",
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="variants trained at once, one process each (default 2, for 2 cores; 1: one after another)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in OUT with the same settings: finished variants are read back, the others "
        "continue from their last checkpoint (every 200 steps)",
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="other demo settings (fields of loc3r.apps.demo.DemoSettings, values parsed as Python literals), e.g. "
        "--set pointer_query=names pointer_keys=input pointer_position=solve",
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument(
        "--base", default=None, help="base checkpoint to fine-tune (default: the shipped loc3r-tiny, hash-checked)"
    )
    base.add_argument("--from-scratch", action="store_true", help="train the old tiny model from nothing instead")
    p.set_defaults(func=_run)


#: CPU kernel choices pinned for the demo (before torch is imported; spawned variant processes inherit them): the
#: same seed then gives the same figures on x86 machines of different generations, which otherwise pick different
#: vectorised kernels (AVX-512 vs AVX2) whose float rounding makes training diverge. Every x86-64 CPU since 2013 has
#: AVX2. An explicit value in the environment wins.
PINNED_CPU_NUMERICS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}


def pin_cpu_numerics() -> dict[str, str]:
    """Set :data:`PINNED_CPU_NUMERICS` where unset (only effective before torch's first import); returns them."""
    import os
    import platform
    import sys

    if "torch" in sys.modules or platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    for key, value in PINNED_CPU_NUMERICS.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in PINNED_CPU_NUMERICS}


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    pin_cpu_numerics()

    from loc3r.apps.demo import DEFAULT, FULL, run_demo, settings_overrides
    from loc3r.core.config import ConfigError

    logging.getLogger("loc3r").setLevel(logging.WARNING)
    settings = FULL if args.full else DEFAULT
    changes: dict = {}
    if args.seed is not None:
        changes["seeds"] = tuple(args.seed)
    if args.variants:  # run_demo names unknown ones (and the known) before any work
        changes["variants"] = tuple(args.variants)
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.scenes is not None:
        changes["data"] = dataclasses.replace(settings.data, num_scenes=args.scenes)
    if args.situation_head is not None:
        changes["situation_head"] = args.situation_head
    if args.anchor_weight is not None:
        if not args.anchor_weight >= 0:
            raise ConfigError(f"--anchor-weight must be a number >= 0, got {args.anchor_weight}")
        changes["anchor_loss_weight"] = args.anchor_weight
    if args.parallel is not None:
        if args.parallel < 1:
            raise ConfigError(f"--parallel must be >= 1, got {args.parallel}")
        changes["parallel"] = args.parallel
    changes.update(settings_overrides(args.set, settings))
    if args.base is not None:
        changes["base"] = args.base
    if args.from_scratch:
        changes["base"] = None
        changes["freeze_vision_tower"] = False
        changes["lr"] = 1e-3
    run_demo(args.out, dataclasses.replace(settings, **changes), data_seed=args.data_seed, resume=args.resume)
    return 0
