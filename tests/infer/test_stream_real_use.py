"""Issue 22 (``loc3r stream`` under real use): a broken frame in a folder is skipped and named (the stream goes on);
a rig's ``rig_poses.npy`` gives its frames poses; a question asked while the window still fills waits for a full
window; a question line that is not UTF-8 is named and makes the command exit non-zero (the others are answered)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.apps.stream import FolderSource, LiveSession, PushSource, RigFolderSource

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(CORPUS, vocab_size=300, backbone="qwen2_5_vl")
    model = Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, layout_objective=True,
                                               situation_objective=True)  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "final"
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def predictor(ckpt: Path):
    from loc3r.apps.infer import Loc3rPredictor

    return Loc3rPredictor.from_pretrained(ckpt, num_frames=4)


def _frames(n: int, size: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)


def _pose(x: float) -> np.ndarray:
    from conftest import look_pose

    return look_pose(np.array([x, 0.0, 1.5]), 0.3 * x)


def test_folder_skips_a_broken_frame_and_goes_on(predictor, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for i, img in enumerate(_frames(5)):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    (folder / "002.png").write_bytes(b"\x89PNG not really")
    events: list[dict] = []
    live = LiveSession(predictor, FolderSource(folder, poll=0.02, idle_end=0.6), on_event=events.append)
    summary = live.run(max_seconds=60)
    assert summary["error"] is None and summary["received"] == 4  # 000, 001, 003, 004
    assert any(e["event"] == "warning" and "002.png" in e["message"] and "skipped" in e["message"] for e in events)
    assert [e for e in events if e["event"] == "update"][-1]["last_seq"] == 3


def test_rig_folder_uses_rig_poses_npy(predictor, tmp_path: Path) -> None:
    rig = tmp_path / "rig"
    rig.mkdir()
    (rig / "rig.json").write_text(json.dumps({"cameras": [{"name": "a"}, {"name": "b"}]}))
    for name in ("a", "b"):
        (rig / name).mkdir()
        for t, img in enumerate(_frames(2)):
            Image.fromarray(img).save(rig / name / f"{t:03d}.png")
    np.save(rig / "rig_poses.npy", np.stack([_pose(0.0), _pose(0.5)]))
    events: list[dict] = []
    live = LiveSession(predictor, RigFolderSource(rig, poll=0.02, idle_end=0.6), on_event=events.append)
    live.run(max_seconds=60)
    updates = [e for e in events if e["event"] == "update"]
    assert updates and all(u["poses"] for u in updates)
    assert live.counts["no_pose"] == 0


def test_early_question_waits_for_a_full_window(predictor) -> None:
    source = PushSource()
    events: list[dict] = []
    live = LiveSession(predictor, source, stall_timeout=120, on_event=events.append).start()
    frames = _frames(4)
    for img in frames[:2]:
        source.push(img)
    deadline = time.monotonic() + 30
    while not any(e["event"] == "update" for e in events) and time.monotonic() < deadline:
        live.step()
        time.sleep(0.02)
    q = live.ask(None, "What is on my left?")
    for _ in range(5):
        live.step()
    assert not q.done.is_set()  # two frames of a four-frame window: not yet
    for img in frames[2:]:
        source.push(img)
    while not q.done.is_set() and time.monotonic() < deadline:
        live.step()
        time.sleep(0.02)
    assert q.event["event"] == "answer" and q.event["frames"] == 4
    source.close()
    live.run(max_seconds=10)


def test_cli_names_a_question_line_that_is_not_utf8(ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(_frames(4)):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    questions = tmp_path / "q.txt"
    questions.write_bytes(b"What is on my left?\n" + "Qu\xe9 hay?\n".encode("latin-1") + b"How many?\n")
    proc = subprocess.run(
        [sys.executable, "-m", "loc3r.cli", "stream", "--model", str(ckpt), "--folder", str(folder), "--frames", "4",
         "--idle-end", "1.5", "--questions", str(questions), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("loc3r stream: error:") and "q.txt line 2" in proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["question"] for e in events if e["event"] == "answer"] == ["What is on my left?", "How many?"]


def test_cli_readable_lines_and_latest_bev_picture(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loc3r.cli import main

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(_frames(4)):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
        np.savetxt(folder / f"{i:03d}.txt", _pose(0.2 * i))
    png = tmp_path / "latest.png"
    code = main(["stream", "--model", str(ckpt), "--folder", str(folder), "--frames", "4", "--idle-end", "0.5",
                 "--format", "text", "--bev", str(png)])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert any(line.startswith("update: 4 frames (#0-#3, poses yes) at (") for line in out)
    assert out[-1].startswith("summary: 4 frames received") and not any(line.startswith("{") for line in out)
    assert Image.open(png).size[0] > 0
    assert main(["stream", "--model", str(ckpt), "--folder", str(folder), "--bev", str(tmp_path)]) == 2


@pytest.mark.parametrize("name", ["../outside", "/etc", "a/../../b", ".."])
def test_rig_camera_names_cannot_escape_the_rig_folder(tmp_path: Path, name: str) -> None:
    from loc3r.apps.infer import load_rig
    from loc3r.data.schema import SampleError

    rig = tmp_path / "rig"
    rig.mkdir()
    (tmp_path / "outside").mkdir()
    Image.fromarray(_frames(1)[0]).save(tmp_path / "outside" / "000.png")
    (rig / "rig.json").write_text(json.dumps({"cameras": [{"name": name}]}))
    with pytest.raises(SampleError, match="must be a folder name inside the rig folder"):
        load_rig(rig, 4)
    with pytest.raises(SampleError, match="must be a folder name inside the rig folder"):
        RigFolderSource(rig)
