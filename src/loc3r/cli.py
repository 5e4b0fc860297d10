"""The ``loc3r`` command line.

Each sub-command lives in its own module under :mod:`loc3r.commands` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (called with the parsed
arguments, returns an exit code). Heavy imports happen inside ``func`` so that ``loc3r --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import loc3r
import loc3r.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loc3r",
        description="Train, evaluate and run video VLMs with layout-reconstruction and situation objectives.",
    )
    parser.add_argument("--version", action="version", version=f"loc3r {loc3r.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(loc3r.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"loc3r.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
