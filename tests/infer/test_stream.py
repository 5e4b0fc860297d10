"""``loc3r stream`` / :class:`loc3r.apps.stream.LiveSession` on real sources: a video file played at its own rate (CLI),
a folder that frames keep arriving in with missing poses and a frame of another size, a stalled pushed stream, the
coverage-aware window; answers come from the current update's cached prefix."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loc3r.apps.stream import FolderSource, FrameWindow, LiveSession, PushSource, StreamFrame

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


def _frames(n: int, size: int = 56) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)


def _pose(x: float, yaw: float) -> np.ndarray:
    from conftest import look_pose

    return look_pose(np.array([x, 0.0, 1.5]), yaw)


@pytest.mark.slow
def test_cli_streams_a_video_file_at_its_rate(ckpt: Path, tmp_path: Path) -> None:
    import av

    video = tmp_path / "walk.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for img in _frames(10, 64):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    questions = tmp_path / "q.txt"
    questions.write_text("I am facing the sofa. | What is on my left?\nHow many chairs?\n")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "loc3r.cli", "stream", "--model", str(ckpt), "--video", str(video), "--frames", "4",
         "--questions", str(questions), "--bev-dir", str(tmp_path / "live")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 > 0.9  # 10 frames at 10 fps: played at the file's own rate
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert "update" in kinds and kinds[-1] == "summary" and "ended" in kinds
    answers = [e for e in events if e["event"] == "answer"]
    assert [a["question"] for a in answers] == ["What is on my left?", "How many chairs?"]
    assert answers[0]["situation"] == "I am facing the sofa." and answers[1]["situation"] is None
    assert all(a["latency_s"] > 0 and len(a["position"]) == 2 for a in answers)
    updates = [e for e in events if e["event"] == "update"]
    assert all(u["frames"] <= 4 and u["layout_points"] > 0 for u in updates)
    assert updates[-1]["last_seq"] == 9  # the final frames were encoded
    summary = events[-1]
    assert summary["received"] == 10 and summary["updates"] == len(updates) and summary["questions"] == 2
    assert Path(updates[-1]["bev_png"]).is_file()
    bad = subprocess.run([sys.executable, "-m", "loc3r.cli", "stream", "--model", str(ckpt), "--video",
                          str(tmp_path / "none.mp4")], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("loc3r stream: error:") and "none.mp4" in bad.stderr


def test_folder_with_missing_poses_and_resized_frame(ckpt: Path, tmp_path: Path) -> None:
    from loc3r.apps.infer import Loc3rPredictor

    predictor = Loc3rPredictor.from_pretrained(ckpt, num_frames=4)
    folder = tmp_path / "incoming"
    folder.mkdir()
    events: list[dict] = []
    live = LiveSession(predictor, FolderSource(folder, poll=0.02), on_event=events.append).start()
    frames = _frames(5)
    for i, img in enumerate(frames):
        if i == 3:
            img = np.asarray(Image.fromarray(img).resize((40, 48)))  # another size
        if i != 2:  # frame 2 has no pose (a pose file is written before its image, as a capture app does)
            np.savetxt(folder / f"{i:03d}.txt", _pose(0.2 * i, 0.3 * i))
        Image.fromarray(img).save(folder / f"{i:03d}.png")
        deadline = time.monotonic() + 20
        while live.counts["received"] < i + 1 and time.monotonic() < deadline:  # one frame per model step
            time.sleep(0.02)
        live.step()
    q = live.ask(None, "What is on my left?")
    deadline = time.monotonic() + 60
    while not q.done.is_set() and time.monotonic() < deadline:
        live.step()
        time.sleep(0.02)
    summary = live.close()
    assert q.done.is_set() and q.event["event"] == "answer"
    assert summary["received"] == 5 and summary["resized"] == 1 and summary["no_pose"] == 1
    assert any(e["event"] == "warning" and "differs from the stream's" in e["message"] for e in events)
    updates = [e for e in events if e["event"] == "update"]
    assert updates[0]["poses"] and updates[0]["position_world"] is not None  # frames 0-1: all posed
    assert not updates[-1]["poses"] and "have no pose" in updates[-1]["message"]


def test_stall_then_resume_and_end(ckpt: Path) -> None:
    from loc3r.apps.infer import Loc3rPredictor

    predictor = Loc3rPredictor.from_pretrained(ckpt, num_frames=4)
    source = PushSource()
    events: list[dict] = []
    live = LiveSession(predictor, source, stall_timeout=0.2, on_event=events.append).start()
    for img in _frames(2):
        source.push(img)
    deadline = time.monotonic() + 30
    while not any(e["event"] == "update" for e in events) and time.monotonic() < deadline:
        live.step()
        time.sleep(0.02)
    events.clear()  # a stall may have been seen before the capture thread took the frames (a loaded machine)
    live._stalled = False
    while not any(e["event"] == "stall" for e in events) and time.monotonic() < deadline:
        live.step()
        time.sleep(0.02)
    q = live.ask("I am standing in the room.", "What is on my left?")  # answered during the stall
    live.step()
    assert q.event["event"] == "answer"
    source.push(_frames(3)[2])
    while live.counts["received"] < 3 and time.monotonic() < deadline + 30:
        time.sleep(0.02)
    live.step()
    assert any(e["event"] == "resumed" for e in events)
    source.close()
    live.run(max_seconds=10)
    assert [e["event"] for e in events][-2:] == ["ended", "summary"]


def test_coverage_window_keeps_the_far_view() -> None:
    """A camera that looks at one corner for a while must not push the rest of the room out of the window."""
    window = FrameWindow(3, "coverage")
    poses = [_pose(3.0, 0.0)] + [_pose(0.0, np.pi) for _ in range(5)]  # one far view, then the same view 5 times
    for i, pose in enumerate(poses):
        window.add(StreamFrame(seq=i, time=float(i), image=_frames(1)[0], pose=pose))
    assert [f.seq for f in window.snapshot()][0] == 0 and window.snapshot()[-1].seq == 5
    last = FrameWindow(3, "last")
    for i, pose in enumerate(poses):
        last.add(StreamFrame(seq=i, time=float(i), image=_frames(1)[0], pose=pose))
    assert [f.seq for f in last.snapshot()] == [3, 4, 5] and last.dropped == 3


def test_rig_folder_streams_whole_time_steps(ckpt: Path, tmp_path: Path) -> None:
    """A front/left/right rig: updates hold whole time steps (3 frames each) with every camera's pose; a step one
    camera never delivers is skipped with a message and the session keeps running."""
    from loc3r.apps.infer import Loc3rPredictor
    from loc3r.apps.stream import RigFolderSource
    from loc3r.synthrooms.writer import RIG_CAMERAS, rig_extrinsic

    rig = tmp_path / "rig"
    cams = [{"name": n, "extrinsic": rig_extrinsic(y).tolist()} for n, y in RIG_CAMERAS]
    rig.mkdir()
    (rig / "rig.json").write_text(json.dumps({"cameras": cams}))
    (rig / "rig_pose").mkdir()
    for name, _ in RIG_CAMERAS:
        (rig / name).mkdir()
    frames = _frames(6, 40)
    for t in range(4):
        np.savetxt(rig / "rig_pose" / f"{t:03d}.txt", _pose(0.3 * t, 0.0))
        for c, (name, _) in enumerate(RIG_CAMERAS):
            if t == 1 and name == "left":
                continue  # the left camera never delivers step 1
            Image.fromarray(frames[(t + c) % 6]).save(rig / name / f"{t:03d}.png")
    predictor = Loc3rPredictor.from_pretrained(ckpt, num_frames=7)  # 7 -> a window of 2 whole steps (6 frames)
    events: list[dict] = []
    live = LiveSession(predictor, RigFolderSource(rig, poll=0.02, idle_end=0.5, max_lag=1), on_event=events.append)
    summary = live.run(max_seconds=60)
    updates = [e for e in events if e["event"] == "update"]
    assert updates and all(u["frames"] % 3 == 0 and u["frames"] <= 6 for u in updates)
    assert all(u["poses"] for u in updates)
    assert any(e["event"] == "warning" and "'001' skipped" in e["message"] and "disagree" in e["message"]
               for e in events)  # fmt: skip
    assert summary["received"] == 9  # steps 0, 2, 3 of three cameras
    assert updates[-1]["last_seq"] == 8
