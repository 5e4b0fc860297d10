"""Camera-prior dropout (our addition, DESIGN.md §8): rate 0 changes nothing, rate 1 drops every camera token, the
decision is a pure function of (seed, sample), and the processor runs a camera-prior model on samples without poses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_clip, tiny_model
from loc3r.data.schema import SampleError
from loc3r.evaluate.benchmark_config import EvalConfig
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.model.tokenizer import CAMERA_TOKEN
from loc3r.objectives.camera_prior import camera_prior_dropped


def _clips(n: int, **kwargs: object) -> list:
    return [make_clip(num_frames=4, size=56, sample_id=f"s{i}", start_yaw=0.2 * i, **kwargs) for i in range(n)]


def _camera_tokens(batch, model) -> list[int]:
    return (batch["input_ids"] == model.config.camera_token_id).sum(dim=1).tolist()


def test_config_checks_the_rate() -> None:
    assert Loc3rConfig(camera_prior="poses").camera_prior_dropout == 0.0
    assert Loc3rConfig(camera_prior="poses", camera_prior_dropout=0.5).camera_prior_dropout == 0.5
    for bad in (-0.1, 1.5, float("nan"), True, "half"):
        with pytest.raises(ValueError, match="camera_prior_dropout"):
            Loc3rConfig(camera_prior="poses", camera_prior_dropout=bad)
    with pytest.raises(ValueError, match="camera_prior_dropout.*needs camera_prior"):
        Loc3rConfig(camera_prior_dropout=0.3)


def test_rate_zero_changes_nothing(tiny_tokenizer) -> None:
    """Rate 0 (the default) = the prior on every sample, as before dropout existed: the batch equals the one built with
    camera_input='given' (the path that never drops) bit for bit, for any seed, and so does the loss."""
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses")
    explicit = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses", camera_prior_dropout=0.0)
    clips = _clips(3)
    reference = model.build_processor(mode="train", camera_input="given")(clips)
    assert _camera_tokens(reference, model) == [4, 4, 4] and bool(reference["camera_valid"].all())
    for seed in (0, 7, 12345):
        batch = explicit.build_processor(mode="train", camera_dropout_seed=seed)(clips)
        assert batch.keys() == reference.keys()
        for key in reference:
            assert torch.equal(batch[key], reference[key]), key
        assert all(m.camera_prior_used for m in batch.metadata)
    torch.manual_seed(0)
    loss_ref = model(**reference).loss
    torch.manual_seed(0)
    loss = explicit(**batch).loss
    assert torch.equal(loss, loss_ref)


def test_rate_one_drops_every_camera_token(tiny_tokenizer) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses", camera_prior_dropout=1.0)
    clips = _clips(3)
    batch = model.build_processor(mode="train", camera_dropout_seed=3)(clips)
    assert _camera_tokens(batch, model) == [0, 0, 0]
    assert batch["camera_valid"].shape == (3, 4) and not bool(batch["camera_valid"].any())
    assert [m.camera_prior_used for m in batch.metadata] == [False, False, False]
    # the dropped prompt is exactly the pose-free one (what inference gives a plain video)
    pose_free = model.build_processor(mode="train", camera_input="none")(clips)
    assert torch.equal(batch["input_ids"], pose_free["input_ids"])
    assert torch.equal(batch["position_ids"], pose_free["position_ids"])
    # the targets still come from the poses: layout and situation supervision are unchanged by the dropout
    kept = model.build_processor(mode="train", camera_input="given")(clips)
    assert int(batch["layout_valid"].sum()) == int(kept["layout_valid"].sum()) > 0
    assert torch.equal(batch["situation_position"], kept["situation_position"])
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.camera_projector.fc1.weight.grad is None or not bool(model.camera_projector.fc1.weight.grad.any())


def test_half_rate_is_deterministic_and_mixed_batches_train(tiny_tokenizer) -> None:
    clips = [make_clip(num_frames=1, size=28, sample_id=f"q{i}", with_points=False) for i in range(400)]
    drops = [camera_prior_dropped(0.5, 0, c) for c in clips]
    assert 0.4 < np.mean(drops) < 0.6
    assert drops == [camera_prior_dropped(0.5, 0, c) for c in clips]  # the same seed, the same samples
    assert drops != [camera_prior_dropped(0.5, 1, c) for c in clips]  # another seed, other samples
    # nested: a sample dropped at rate r is dropped at every higher rate
    low = [camera_prior_dropped(0.2, 0, c) for c in clips]
    assert all(d for d, lo in zip(drops, low, strict=True) if lo)

    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses", camera_prior_dropout=0.5)
    batch_clips = _clips(6)
    processor = model.build_processor(mode="train", camera_dropout_seed=0)
    batch = processor(batch_clips)
    expect = [not camera_prior_dropped(0.5, 0, c) for c in batch_clips]
    assert [m.camera_prior_used for m in batch.metadata] == expect and 0 < sum(expect) < 6
    assert _camera_tokens(batch, model) == [4 if e else 0 for e in expect]
    assert batch["camera_valid"].all(dim=1).tolist() == expect
    again = model.build_processor(mode="train", camera_dropout_seed=0)(batch_clips)  # a new worker, a resumed run
    assert torch.equal(again["input_ids"], batch["input_ids"])
    out = model(**batch)
    out.loss.backward()
    assert bool(model.camera_projector.fc1.weight.grad.abs().sum() > 0)  # the kept samples train the projector


def test_eval_uses_the_prior_when_poses_exist(tiny_tokenizer) -> None:
    """A mixed eval batch (one clip with poses, one without) predicts per row what each predicts alone."""
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses").eval()
    posed = make_clip(num_frames=4, size=56, answer=None)
    plain = make_clip(num_frames=4, size=56, answer=None, with_poses=False, agent_position=None, agent_yaw=None,
                      with_points=False, sample_id="plain")  # fmt: skip
    processor = model.build_processor(mode="eval")
    batch = processor([posed, plain])
    assert [m.camera_prior_used for m in batch.metadata] == [True, False]
    assert _camera_tokens(batch, model) == [4, 0]
    assert processor.camera_counts == {"used": 1, "not used": 1}
    with torch.inference_mode():
        together = model.predict(batch, max_new_tokens=3)
        alone = [model.predict(processor([c]), max_new_tokens=3)[0] for c in (posed, plain)]
    for a, b in zip(together, alone, strict=True):
        assert a.answer == b.answer
        np.testing.assert_allclose(a.position_bev, b.position_bev, atol=1e-5)
    # the prior changes the prediction: the same frames with and without the camera tokens differ
    no_cam = model.build_processor(mode="eval", camera_input="none")([posed])
    assert no_cam.metadata[0].camera_prior_used is False and no_cam.metadata[0].anchor is not None
    with torch.inference_mode():
        without = model.predict(no_cam, max_new_tokens=0)[0]
    assert not np.allclose(without.position_bev, alone[0].position_bev, atol=1e-7)


def test_given_needs_poses_and_training_stays_strict(tiny_tokenizer) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="poses", camera_prior_dropout=0.5)
    plain = make_clip(num_frames=4, size=56, with_poses=False, agent_position=None, agent_yaw=None, with_points=False)
    with pytest.raises(SampleError, match="'poses' is missing"):
        model.build_processor(mode="eval", camera_input="given")([plain])
    kept = [c for c in _clips(4, with_poses=False, with_points=False, agent_position=None, agent_yaw=None)
            if not camera_prior_dropped(0.5, 0, c)]  # fmt: skip
    with pytest.raises(SampleError, match="'poses' is missing"):  # a training sample that keeps its prior needs poses
        model.build_processor(mode="train", camera_dropout_seed=0)(kept[:1])
    with pytest.raises(ValueError, match="camera_input"):
        model.build_processor(mode="eval", camera_input="sometimes")


def test_model_without_prior_is_untouched(tiny_tokenizer) -> None:
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0)
    batch = model.build_processor(mode="train", camera_input="none")(_clips(2))
    assert "camera_valid" not in batch and all(m.camera_prior_used is None for m in batch.metadata)
    assert CAMERA_TOKEN not in model.build_processor().tokenizer.decode(batch["input_ids"][0])


def test_eval_config_camera_prior_input() -> None:
    base = {"benchmark": "synthrooms", "checkpoint": "x", "output_dir": "y", "data": {"kind": "synth", "root": "z"}}
    assert EvalConfig(**base).camera_prior_input == "auto"
    assert EvalConfig(**base, camera_prior_input="none").camera_prior_input == "none"
    with pytest.raises(ValueError, match="camera_prior_input"):
        EvalConfig(**base, camera_prior_input="off")


def test_feature_priors_without_their_features(tiny_tokenizer) -> None:
    """'sample' / 'file' priors at inference: a sample without camera_features, or a file model given no
    camera_root, runs without the prior; training still refuses a file model without camera_root."""
    clip = make_clip(num_frames=4, size=56, answer=None)
    sample_model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="sample", camera_feature_dim=5)
    batch = sample_model.build_processor(mode="eval")([clip])
    assert batch.metadata[0].camera_prior_used is False
    clip.camera_features = np.ones((4, 5), dtype=np.float32)
    assert sample_model.build_processor(mode="eval")([clip]).metadata[0].camera_prior_used is True
    file_model = tiny_model(tiny_tokenizer, "qwen2_5_vl", seed=0, camera_prior="file", camera_feature_dim=5)
    assert file_model.build_processor(mode="eval")([clip]).metadata[0].camera_prior_used is False
    with pytest.raises(SampleError, match="no feature source"):
        file_model.build_processor(mode="eval", camera_input="given")([clip])
    with pytest.raises(ValueError, match="root directory"):
        file_model.build_processor(mode="train")
