"""Issue 22: an output path that is an existing file, and ``serve`` on a busy port, are one-line errors naming the
path / port and exit 2 (were tracebacks)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import REPO
from loc3r.cli import main


def test_output_folder_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "afile"
    existing.write_text("x")
    runs = [
        ["synth", "--out", str(existing), "--scenes", "1", "--frames", "4", "--size", "32x32", "--quiet"],
        ["train", str(REPO / "configs/train_tiny.yaml"), "--set", f"output_dir={existing}"],
    ]
    for argv in runs:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == f"loc3r {argv[0]}: error: {existing}: exists and is not a folder (a folder is written " \
                          "there: give a new or existing folder)"  # fmt: skip
    assert existing.read_text() == "x"


def test_serve_on_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(tmp_path / "none"), "--port", str(port)]) == 2
    assert f"--port {port}: already in use" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "none"), "--port", "70000"]) == 2
    assert "between 1 and 65535" in capsys.readouterr().err
