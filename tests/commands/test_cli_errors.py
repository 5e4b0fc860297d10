"""Bad input on any command: one line ``loc3r CMD: error: ...`` on stderr and exit code 2, from one place
(:func:`loc3r.cli.main`); a bug (any other exception) keeps its traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from loc3r import cli


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "prefix", "names"),
    [
        (["train", "{tmp}/missing.yaml"], "loc3r train: error: ", "missing.yaml"),
        (["score", "vsibench", "--predictions", "{tmp}/none.jsonl"], "loc3r score vsibench: error: ", "none.jsonl"),
        (["demo", "--variants", "no_such_variant"], "loc3r demo: error: ", "no_such_variant"),
        (["demo", "--parallel", "0"], "loc3r demo: error: ", "--parallel"),
        (["demo", "--set", "no_such_field=1"], "loc3r demo: error: ", "no_such_field"),
        (["demo", "--set", "data=1"], "loc3r demo: error: ", "data=1"),
        (["demo", "--set", "steps=abc"], "loc3r demo: error: ", "steps must be int"),
        (["demo", "--set", "freeze_vision_tower=1"], "loc3r demo: error: ", "freeze_vision_tower must be bool"),
    ],
)
def test_user_errors_are_one_stderr_line_with_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], prefix: str, names: str
) -> None:
    code, out, err = _run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2 and out == ""
    assert err.startswith(prefix) and names in err, err


def test_other_exceptions_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = cli.build_parser()

    def broken(args: object) -> int:
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=broken, command="x")
    with pytest.raises(KeyError, match="a bug"):
        cli.main([])


def test_debug_env_reraises_user_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loc3r.core.errors import ConfigError

    monkeypatch.setenv("LOC3R_DEBUG", "1")
    with pytest.raises(ConfigError, match="missing.yaml"):
        cli.main(["train", str(tmp_path / "missing.yaml")])


def test_demo_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--seed takes several seeds (mean ± std over them), --parallel the number of variants trained at once,
    --resume continues an interrupted run (off by default)."""
    import loc3r.apps.demo

    seen = {}

    def fake_run_demo(out: object, settings: object, data_seed: int, resume: bool) -> None:
        seen.update(settings=settings, resume=resume)

    monkeypatch.setattr(loc3r.apps.demo, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--out", str(tmp_path), "--seed", "0", "1", "2", "--parallel", "1", "--steps", "7"]) == 0
    settings = seen["settings"]
    assert settings.seeds == (0, 1, 2) and settings.parallel == 1 and settings.steps == 7
    assert seen["resume"] is False
    assert cli.main(["demo", "--out", str(tmp_path), "--resume"]) == 0
    assert seen["resume"] is True
    assert settings.variants == loc3r.apps.demo.DEFAULT.variants


def test_demo_set_reaches_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--set FIELD=VALUE sets any other demo setting (Python literals; text stays text), on top of --full's."""
    import loc3r.apps.demo

    seen = {}
    monkeypatch.setattr(loc3r.apps.demo, "run_demo", lambda out, settings, data_seed, resume: seen.update(s=settings))
    argv = ["demo", "--out", str(tmp_path), "--full", "--set", "pointer_query=names", "head_lr=0.002", "seeds=(1,)"]
    argv += ["lr=1", "variants=loc3r"]
    assert cli.main(argv) == 0
    settings = seen["s"]
    assert settings.pointer_query == "names" and settings.head_lr == 0.002 and settings.seeds == (1,)
    assert settings.lr == 1.0 and settings.variants == ("loc3r",)
    assert settings.steps == loc3r.apps.demo.FULL.steps and settings.data == loc3r.apps.demo.FULL.data
