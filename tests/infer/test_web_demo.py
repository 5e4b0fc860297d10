"""``loc3r serve`` in a real headless browser (Debian's chromium driven by Playwright): the page loads, a SynthRooms
sample is submitted with a situation and a question, the answer and the BEV map appear (screenshot written to
``$LOC3R_TEST_ARTIFACTS`` or the test's tmp dir); bad input (no video, an empty question, a corrupt upload) shows a
message on the page, never a stack trace. The backend is also checked directly (prefix re-use, webcam frames)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("web")
    settings = SynthSettings(num_scenes=1, frames=4, width=32, height=32, write_video=False, situations_per_scene=1,
                             val_fraction=0.0, test_fraction=0.0, novel_view=False)  # fmt: skip
    generate_dataset(root / "synth", settings, progress=False)
    tok = build_tiny_tokenizer(CORPUS, vocab_size=300, backbone="qwen2_5_vl")
    model = Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, layout_objective=True,
                                               situation_objective=True)  # fmt: skip
    model.save_pretrained(root / "final")
    return root / "final", root / "synth"


def test_backend_reuses_the_video_and_reports_bad_input(served: tuple[Path, Path]) -> None:
    pytest.importorskip("gradio")
    from loc3r.apps.web import DemoBackend

    backend = DemoBackend(served[0], served[1], num_frames=4)
    name = sorted(backend.samples)[0]
    first = backend.ask(None, name, "I am facing the sofa.", "What is on my left?")
    assert first["status"].startswith("OK") and first["bev"].ndim == 3 and first["bev"].shape[-1] == 3
    assert not list(backend.out_dir.glob("*.png"))  # the picture goes to the page as an array, no file is left
    assert first["details"]["poses"] == "from the scan" and first["details"]["layout_points"] > 0
    second = backend.ask(None, name, None, "How many chairs?")
    assert "re-used" in second["status"] and second["details"]["video_encoded"].startswith("re-used")
    assert backend.ask(None, None, None, "q?")["status"].startswith("Error: no video")
    assert backend.ask(None, name, None, "  ")["status"].startswith("Error: the question is empty")
    state, bev, status = None, None, ""
    for img in np.random.default_rng(0).integers(0, 255, size=(3, 40, 40, 3), dtype=np.uint8):
        state, bev, status = backend.webcam_frame(state, img)
    assert bev is not None and bev.ndim == 3 and "frames" in status
    text, _ = backend.webcam_ask(state, None, "What is on my left?")
    assert not text.startswith("Error"), text
    backend.close()
    assert backend.live_sessions == 0 and not backend.out_dir.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_page_in_headless_chromium(served: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST NOT RUN: no chromium on this machine (apt-get install chromium chromium-driver; "
                    ".ci/run installs it when it can)")  # fmt: skip
    from playwright.sync_api import expect, sync_playwright

    out = Path(os.environ.get("LOC3R_TEST_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "loc3r.cli", "serve", "--model", str(served[0]), "--data",
                               str(served[1]), "--frames", "4", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
        else:
            pytest.fail(f"loc3r serve did not listen within 120 s: {(tmp_path / 'server.log').read_text()}")
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1400},
            )  # fmt: skip
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            expect(page.get_by_text("where am I, and what is around me?")).to_be_visible(timeout=60_000)
            status = page.locator("#status textarea")
            # bad input: no video
            page.locator("#question textarea").fill("What is on my left?")
            page.locator("#ask").click()
            expect(status).to_have_value("Error: no video: upload a video file or pick a SynthRooms sample",
                                         timeout=60_000)  # fmt: skip
            # a sample, first with an empty question
            page.locator("#sample input").click()
            page.get_by_role("option").first.click()
            page.locator("#situation textarea").fill("I am facing the sofa.")
            page.locator("#question textarea").fill("")
            page.locator("#ask").click()
            expect(status).to_have_value("Error: the question is empty: type a question", timeout=60_000)
            page.locator("#question textarea").fill("What is on my left?")
            page.locator("#ask").click()
            expect(status).to_have_value(re.compile(r"^OK: answered"), timeout=120_000)
            expect(page.locator("#bev img")).to_be_visible(timeout=30_000)
            assert page.locator("#bev img").evaluate("img => img.naturalWidth") > 100
            expect(page.locator("#details")).to_contain_text("position")
            page.screenshot(path=str(out / "web_demo.png"), full_page=True)
            # a corrupt upload: a message, no stack trace
            bad = tmp_path / "corrupt.mp4"
            bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
            page.locator("#video input[type=file]").set_input_files(str(bad))
            page.wait_for_timeout(1000)
            page.locator("#ask").click()
            expect(status).to_have_value(re.compile(r"^Error: "), timeout=60_000)
            page.screenshot(path=str(out / "web_demo_corrupt.png"), full_page=True)
            assert "Traceback" not in page.content()
            context.close()
        assert (out / "web_demo.png").stat().st_size > 10_000
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
