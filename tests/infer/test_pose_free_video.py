"""A checkpoint trained with the camera prior (and camera-prior dropout, our addition) on a plain RGB video without
poses: ``loc3r infer`` (API and CLI), ``loc3r stream`` and the web backend answer, and every output says which inputs
it used (frames, poses, depth, camera prior)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_clip
from loc3r.apps.infer import Loc3rPredictor, describe_inputs

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]
QUESTION = "What is on my left?"


def _train_and_save(path: Path, dropout: float, steps: int) -> Path:
    """A tiny camera-prior model after ``steps`` AdamW steps of the real training batches (with the dropout)."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(CORPUS, vocab_size=300, backbone="qwen2_5_vl")
    model = Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, layout_objective=True,
                                               situation_objective=True, camera_prior="poses",
                                               camera_prior_dropout=dropout)  # fmt: skip
    if steps:
        processor = model.build_processor(mode="train", camera_dropout_seed=0)
        clips = [make_clip(num_frames=4, size=56, sample_id=f"s{i}", start_yaw=0.4 * i, answer="the sofa")
                 for i in range(4)]  # fmt: skip
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        for _ in range(steps):
            batch = processor(clips)
            assert 0 < sum(m.camera_prior_used for m in batch.metadata) < 4  # both kinds of sample in training
            model(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    model.num_frames = 4
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def camera_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train_and_save(tmp_path_factory.mktemp("ckpt") / "camera", dropout=0.5, steps=2)


@pytest.fixture(scope="module")
def plain_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """An mp4 of the box room (no poses anywhere) and the clip it was made from (which has poses)."""
    import av

    clip = make_clip(num_frames=6, size=64, with_points=False)
    video = tmp_path_factory.mktemp("video") / "walk.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for img in clip.frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return video, clip.poses


def test_predictor_on_plain_video_says_poses_were_not_used(camera_ckpt: Path, plain_video) -> None:
    video, _ = plain_video
    predictor = Loc3rPredictor.from_pretrained(camera_ckpt)
    result = predictor.predict(video, "I am facing the sofa.", QUESTION, max_new_tokens=3)
    assert result.inputs == {"frames": 4, "poses": "none", "depth": "none", "camera_prior": "not used (no poses)"}
    assert np.isfinite(result.position).all() and result.position_world is None
    assert result.to_dict()["inputs"] == result.inputs
    # the same frames with poses: the prior runs, and changes the prediction
    frames, _, _, _ = __import__("loc3r.apps.infer", fromlist=["load_frames"]).load_frames(video, 4)
    poses = make_clip(num_frames=4, size=64, with_points=False).poses
    posed = predictor.predict(frames, "I am facing the sofa.", QUESTION, poses=poses, max_new_tokens=3)
    assert posed.inputs["poses"] == "given" and posed.inputs["camera_prior"] == "used"
    assert posed.position_world is not None
    assert not np.allclose(posed.position, result.position, atol=1e-7)
    # a session answers the same as predict, and says the same
    session = predictor.session(video)
    again = session.ask("I am facing the sofa.", QUESTION, max_new_tokens=3)
    assert again.answer == result.answer and again.inputs == result.inputs
    np.testing.assert_allclose(again.position, result.position, atol=2e-5)


def test_cli_infer_json_and_text(camera_ckpt: Path, plain_video, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.cli import main

    video, _ = plain_video
    args = ["infer", "--model", str(camera_ckpt), "--video", str(video), "--question", QUESTION]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"]["poses"] == "none" and out["inputs"]["camera_prior"] == "not used (no poses)"
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    line = next(x for x in lines if x.strip().startswith("inputs:"))
    assert line.strip() == "inputs: 4 frames, poses: none, depth: none, camera prior: not used (no poses)"


def test_model_without_dropout_runs_and_warns(tmp_path: Path, plain_video) -> None:
    """A checkpoint trained with the prior on every sample still runs on a plain video; the output says that this is
    outside its training."""
    video, _ = plain_video
    predictor = Loc3rPredictor.from_pretrained(_train_and_save(tmp_path / "nodrop", dropout=0.0, steps=0))
    result = predictor.predict(video, None, QUESTION, max_new_tokens=2)
    assert result.inputs["camera_prior"] == "not used (no poses)" and "camera_prior_dropout 0" in result.inputs["note"]
    assert "outside its training" in describe_inputs(result.inputs)


def test_stream_plain_video_and_posed_stream(camera_ckpt: Path, plain_video) -> None:
    from loc3r.apps.stream import LiveSession, PushSource, VideoFileSource

    video, _ = plain_video
    predictor = Loc3rPredictor.from_pretrained(camera_ckpt)
    events: list[dict] = []
    live = LiveSession(predictor, VideoFileSource(video, realtime=False), on_event=events.append)
    live.ask(None, QUESTION)
    summary = live.run(max_seconds=60)
    updates = [e for e in events if e["event"] == "update"]
    answers = [e for e in events if e["event"] == "answer"]
    assert updates and summary["skipped_no_pose"] == 0 and summary["no_pose"] == 6
    assert all(u["inputs"]["camera_prior"] == "not used (no poses)" and not u["poses"] for u in updates)
    assert answers and answers[0]["inputs"]["poses"] == "none"
    json.dumps(events)

    # a stream that gives poses keeps the prior: once a pose arrived, a frame without one is skipped
    source, events = PushSource(), []
    live = LiveSession(predictor, source, window=4, on_event=events.append).start()
    clip = make_clip(num_frames=5, size=56, with_points=False)
    for i, img in enumerate(clip.frames):
        source.push(img, pose=None if i == 3 else clip.poses[i], name=f"f{i}")
    source.close()
    deadline = time.monotonic() + 60
    while live.step() and time.monotonic() < deadline:
        time.sleep(0.01)
    summary = live.close()
    updates = [e for e in events if e["event"] == "update"]
    assert summary["skipped_no_pose"] == 1 and updates
    assert all(u["poses"] and u["inputs"]["camera_prior"] == "used" for u in updates)
    assert any(e["event"] == "warning" and "frames without pose are skipped" in e["message"] for e in events)


def test_web_backend_plain_video(camera_ckpt: Path, plain_video) -> None:
    from loc3r.apps.web import DemoBackend

    video, _ = plain_video
    backend = DemoBackend(camera_ckpt)
    out = backend.ask(str(video), None, None, QUESTION)
    assert out["status"].startswith("OK") and "camera prior: not used (no poses)" in out["status"], out["status"]
    assert out["details"]["inputs"]["poses"] == "none"
