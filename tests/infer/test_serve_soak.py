"""Issue 22: ``loc3r serve`` runs for days. A bounded soak on loopback: several visitors in turn (each a new client
session) upload a video and ask, stream webcam frames and ask on them, and leave; the server's threads, memory (RSS),
open files and temporary files come back to their level after the first round, one visitor's video never answers
another's question, and no response shows a server path. Also the limits (question length, upload size)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]
ROUNDS = 5


def _proc(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    field = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines()}
    return {
        "threads": int(field["Threads"][0]),
        "rss_mb": int(field["VmRSS"][0]) // 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _files(*roots: Path) -> int:
    return sum(1 for root in roots for p in root.rglob("*") if p.is_file())


def _video(path: Path, colour: tuple[int, int, int]) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=4)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(6):
            img = np.zeros((64, 64, 3), np.uint8)
            img[:] = colour
            img[i * 8 : (i + 1) * 8] = 128
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("gradio")
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc to read the server's threads, memory and open files")
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    root = tmp_path_factory.mktemp("soak")
    tok = build_tiny_tokenizer(CORPUS, vocab_size=300, backbone="qwen2_5_vl")
    Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, layout_objective=True,
                                       situation_objective=True).save_pretrained(root / "final")  # fmt: skip
    (root / "tmp").mkdir()
    (root / "gradio").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TMPDIR=str(root / "tmp"), GRADIO_TEMP_DIR=str(root / "gradio"),
               GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")  # fmt: skip
    log = (root / "server.log").open("w")
    argv = [sys.executable, "-m", "loc3r.cli", "serve", "--model", str(root / "final"), "--frames", "4", "--port",
            str(port), "--live-idle-s", "1", "--max-question-chars", "200", "--max-upload-mb", "1",
            "--cache-ttl-s", "5"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (root / "server.log").read_text()
            time.sleep(0.3)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "pid": proc.pid, "root": root}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _visit(url: str, video: Path, cam: Path, colour_channel: int) -> list[str]:
    """One visitor: upload + ask, three webcam frames + ask, leave. Returns every text the server sent."""
    import httpx
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    try:
        status, answer, bev, details, frames = client.predict(
            handle_file(str(video)), None, "I am here.", "What is on my left?", api_name="/ask"
        )
        assert status.startswith("OK"), status
        assert "re-used" not in status  # the previous visitor's video is never this visitor's answer
        first = frames[0]["image"]
        first_url = first["url"] if isinstance(first, dict) else first
        image = np.asarray(Image.open(io.BytesIO(httpx.get(first_url, timeout=30).content)).convert("RGB"))
        assert int(np.argmax(image.reshape(-1, 3).mean(0))) == colour_channel  # this visitor's own frames
        texts = [status, answer, str(details)]
        for _ in range(3):
            _, live_status = client.predict(handle_file(str(cam)), api_name="/push_frame")  # (BEV, status)
            texts.append(live_status)
        live_answer, _ = client.predict(None, "What is on my left?", api_name="/webcam_ask")
        assert not live_answer.startswith("Error"), live_answer
        texts.append(live_answer)
        too_long = client.predict(handle_file(str(video)), None, None, "x" * 300, api_name="/ask")[0]
        assert too_long == "Error: the question has 300 characters; the limit is 200"
        return texts
    finally:
        client.close()


def test_serve_soak_threads_memory_files_flat(server: dict, tmp_path: Path) -> None:
    pytest.importorskip("gradio_client")
    red, blue = _video(tmp_path / "red.mp4", (220, 30, 30)), _video(tmp_path / "blue.mp4", (30, 30, 220))
    cam = tmp_path / "cam.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(cam)
    pid, root = server["pid"], server["root"]
    temp_roots = (root / "tmp", root / "gradio")

    def now() -> dict[str, int]:
        return {**_proc(pid), "temp_files": _files(*temp_roots)}

    texts = _visit(server["url"], red, cam, 0)  # warm-up: lazy imports, caches, gradio's first files
    texts += _visit(server["url"], blue, cam, 2)
    time.sleep(8.5)  # > --live-idle-s and --cache-ttl-s (+ its purge period): sessions closed, Gradio's cache purged
    base = now()
    for k in range(ROUNDS):  # each visit opens a webcam session (a capture thread): a leak would show as +ROUNDS
        texts += _visit(server["url"], (red, blue)[k % 2], cam, (0, 2)[k % 2])
    deadline = time.monotonic() + 30  # sessions reaped within ~1.5 s, the cache within ~8 s, idle pool threads ~10 s
    while True:
        after = now()
        flat = (
            after["threads"] <= base["threads"] + 1
            and after["temp_files"] <= base["temp_files"]
            and after["fds"] <= base["fds"] + 2  # closed client sockets leave the fd table a moment later under load
        )
        if flat or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after["threads"] <= base["threads"] + 1, (base, after)
    assert after["fds"] <= base["fds"] + 2, (base, after)
    # the allocator keeps growing for ~20 visits, then plateaus (measured: +5 MB per visit early, +0.3 MB late)
    assert after["rss_mb"] <= base["rss_mb"] + 60, (base, after)
    assert after["temp_files"] <= base["temp_files"], (base, after)
    leaked = [t for t in texts if str(root) in t or "loc3r_web_" in t or "/tmp/" in t]
    assert not leaked, leaked[:3]


def test_upload_over_the_limit_is_refused(server: dict, tmp_path: Path) -> None:
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file

    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(2 * 2**20))
    client = Client(server["url"], verbose=False, download_files=False)
    try:
        with pytest.raises(Exception, match="(?i)size|large|limit"):
            client.predict(handle_file(str(big)), None, None, "What is on my left?", api_name="/ask")
    finally:
        client.close()
