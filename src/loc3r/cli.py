"""The ``loc3r`` command line.

Each sub-command lives in its own module under :mod:`loc3r.commands` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (called with the parsed
arguments, returns an exit code). Heavy imports happen inside ``func`` so that ``loc3r --help`` is fast.

Errors on bad input are reported HERE, and only here: a command raises one of :func:`user_errors` (see
:mod:`loc3r.core.errors` and CONTRIBUTING.md) and :func:`main` prints it as one line on stderr,
``loc3r CMD: error: MESSAGE``, and returns exit code 2 (argparse's own usage errors look the same). Any other
exception is a bug and keeps its traceback. ``LOC3R_DEBUG=1`` re-raises user errors too (with the traceback).
A command whose errors should name a sub-command sets ``prog`` in its parser defaults (``loc3r score scanqa``).
"""

from __future__ import annotations

import argparse
import importlib
import os
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


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input (exit code 2, one line on stderr); imported only when needed,
    so ``loc3r --help`` stays fast."""
    from loc3r.core.errors import ConfigError, SampleError
    from loc3r.core.geometry import GeometryError
    from loc3r.synthrooms.writer import DatasetError
    from loc3r.train.checkpointing import CheckpointError
    from loc3r.train.recipe import NonFiniteLossError

    # ValueError last: any other bad value a loader or constructor rejects (SampleError / ConfigError /
    # GeometryError are ValueErrors that also say which kind of input is wrong; prefer them).
    return (SampleError, ConfigError, GeometryError, CheckpointError, DatasetError, NonFiniteLossError,
            FileNotFoundError, ValueError)  # fmt: skip


#: OS errors about a path (with ``filename``): an output folder that is an existing file, a file path that is a
#: folder, a place without write permission — the user's path, named in the one-line message
_PATH_ERRORS = (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)

_PATH_HINTS = {
    FileExistsError: "exists and is not a folder (a folder is written there: give a new or existing folder)",
    NotADirectoryError: "a part of this path is a file, not a folder",
    IsADirectoryError: "is a folder (a file path is needed here)",
    PermissionError: "permission denied (choose a place you can write to)",
}


def error_message(err: BaseException) -> str:
    """The one-line message of a user error: an OS error about a path says the path and what is wrong with it."""
    if isinstance(err, _PATH_ERRORS) and getattr(err, "filename", None):
        hint = next(h for t, h in _PATH_HINTS.items() if isinstance(err, t))
        return f"{err.filename}: {hint}"
    return str(err)


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` means bad input (see :func:`user_errors`).

    The named types always do. A plain ``ValueError`` (or a subclass not named there) does only when Python code
    raised it on purpose — the innermost frame of its traceback is a ``raise`` statement (loc3r's own checks, a
    library rejecting a file: numpy's ``allow_pickle``, ...). One raised inside a builtin or C code (``min()`` of an
    empty sequence, a codec's ``UnicodeDecodeError``, ``int("x")``) means loc3r did not check its input: a bug,
    which keeps its traceback instead of being passed off as a "user error" with a bare Python message.
    """
    import dis

    if isinstance(err, _PATH_ERRORS) and getattr(err, "filename", None):
        return True  # a path the user gave is a file where a folder is needed, or the reverse, or not writable
    errors = user_errors()
    if not isinstance(err, errors):
        return False
    if isinstance(err, tuple(t for t in errors if t is not ValueError)):
        return True
    tb = err.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    raise_ops = {dis.opmap[name] for name in ("RAISE_VARARGS", "RERAISE") if name in dis.opmap}
    return 0 <= tb.tb_lasti < len(code.co_code) and code.co_code[tb.tb_lasti] in raise_ops


def report_error(prog: str, err: BaseException) -> int:
    """Print ``PROG: error: MESSAGE`` on stderr (a multi-line message keeps its lines, indented) -> 2."""
    print(f"{prog}: error: {error_message(err)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prog = getattr(args, "prog", None) or f"loc3r {args.command}"
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        if os.environ.get("LOC3R_DEBUG") or not is_user_error(err):
            raise
        return report_error(prog, err)


if __name__ == "__main__":
    sys.exit(main())
