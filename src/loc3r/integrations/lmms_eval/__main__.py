"""``python -m loc3r.integrations.lmms_eval`` prints the task folder to give lmms-eval as ``--include_path``.

``python -m loc3r.integrations.lmms_eval run ARGS...`` runs lmms-eval's own command line (``lmms-eval ARGS...``, the
loc3r task folder added to ``--include_path``) and exits non-zero when a run failed: lmms-eval catches an exception
of a run (a missing checkpoint, a bad config, a model error), logs it and exits 0, so a script or CI job would take a
failed evaluation for a finished one. The failure is also printed as one line, ``loc3r lmms-eval: error: ...``.
"""

from __future__ import annotations

import sys

from loc3r.integrations.lmms_eval import TASKS_DIR


def run(argv: list[str]) -> int:
    """lmms-eval's ``cli_evaluate`` on ``argv``; 2 when any of its runs raised, else 0."""
    import lmms_eval.__main__ as lmms_cli

    failures: list[str] = []
    single = lmms_cli.cli_evaluate_single

    def recording(args):  # the one place lmms-eval's loop calls per run; its exception is swallowed after this
        try:
            return single(args)
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}")
            raise

    if not any(a == "--include_path" or a.startswith("--include_path=") for a in argv):
        argv = [*argv, "--include_path", str(TASKS_DIR)]
    saved_argv = sys.argv
    lmms_cli.cli_evaluate_single = recording
    sys.argv = ["lmms-eval", *argv]
    try:
        lmms_cli.cli_evaluate()
    finally:
        lmms_cli.cli_evaluate_single = single
        sys.argv = saved_argv
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        print(f"loc3r lmms-eval: error: {len(failures)} run(s) failed: {failures[0]}{more}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(TASKS_DIR)
        return 0
    if argv[0] != "run":
        print("usage: python -m loc3r.integrations.lmms_eval [run LMMS_EVAL_ARGS...]", file=sys.stderr)
        return 2
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
