"""``loc3r demo``: the CPU comparison of lm_only / situation_only / cue_injection / loc3r / loc3r_camera.

Example::

    loc3r demo --out runs/demo            # lm_only, cue_injection, loc3r; <= 10 min on 2 cores
    loc3r demo --out runs/demo_full --full  # every variant, more data, 3 seeds, mean ± std

See :mod:`loc3r.demo` for what is trained and measured.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train tiny models per variant on SynthRooms and compare localization / QA on held-out rooms",
        description="Generate SynthRooms, train a tiny model from scratch per variant (lm_only, situation_only, "
        "cue_injection, loc3r, loc3r_camera), evaluate on held-out rooms and novel viewpoints, print one table "
        "and write OUT/results.json + BEV pictures.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--full", action="store_true", help="every variant, more rooms and steps, seeds 0,1,2")
    p.add_argument("--seed", type=int, default=None, help="training seed (default 0; --full: 0,1,2)")
    p.add_argument("--data-seed", type=int, default=0, help="SynthRooms generator seed")
    p.add_argument("--variants", nargs="+", default=None, help="override the variants to run")
    p.add_argument("--steps", type=int, default=None, help="override training steps per variant")
    p.add_argument("--scenes", type=int, default=None, help="override the number of rooms")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from loc3r.demo import DEFAULT, FULL, VARIANTS, run_demo

    logging.getLogger("loc3r").setLevel(logging.WARNING)
    settings = FULL if args.full else DEFAULT
    changes: dict = {}
    if args.seed is not None:
        changes["seeds"] = (args.seed,)
    if args.variants:
        unknown = sorted(set(args.variants) - set(VARIANTS))
        if unknown:
            print(f"loc3r demo: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
            return 2
        changes["variants"] = tuple(args.variants)
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.scenes is not None:
        changes["scenes"] = args.scenes
    run_demo(args.out, dataclasses.replace(settings, **changes), data_seed=args.data_seed)
    return 0
