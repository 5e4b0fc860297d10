"""Encode once, ask many: ``Loc3rPredictor.session`` answers from the cached video prefix exactly what the uncached
``predict`` answers (answers token for token, situation pose and layout to float tolerance), for one question at a
time and for a padded batch of questions of different lengths, on both backbones and with the camera prior."""

from __future__ import annotations

import numpy as np
import pytest

from loc3r.apps.infer import Loc3rPredictor
from loc3r.data.schema import SampleError

CORPUS = ["I am standing in the room.", "What is on my left? the sofa", "x 1.2 y -0.4 yaw 90 0 1 2 3 4 5 6 7 8 9"]
QUERIES = [
    (None, "What is on my left?"),
    ("I am facing the sofa.", "What is on my left?"),
    ("I am sitting on the bed facing the window next to the sofa.", "How many chairs are in front of me?"),
    ("I am standing in the room.", "x y"),
]


def _predictor(backbone: str, **flags: object) -> Loc3rPredictor:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(CORPUS, vocab_size=300, backbone=backbone)
    model = Loc3rForConditionalGeneration.tiny(backbone, tok, seed=0, layout_objective=True, situation_objective=True,
                                               **flags)  # fmt: skip
    model.eval()
    return Loc3rPredictor(model, num_frames=4)


@pytest.mark.parametrize("backbone,flags", [("qwen2_5_vl", {}), ("llava_onevision", {}),
                                            ("qwen2_5_vl", {"camera_prior": "poses"})])  # fmt: skip
def test_session_equals_uncached(backbone: str, flags: dict, clip_factory) -> None:
    clip = clip_factory(num_frames=4, size=56)
    predictor = _predictor(backbone, **flags)
    session = predictor.session(clip.frames, poses=clip.poses)
    assert session.num_prefix_tokens > 0
    uncached = [predictor.predict(clip.frames, s, q, poses=clip.poses, max_new_tokens=5) for s, q in QUERIES]
    one_by_one = [session.ask(s, q, max_new_tokens=5) for s, q in QUERIES]
    batched = session.ask_many(QUERIES, max_new_tokens=5, batch_size=4)  # padding between prefix and question
    for ref, a, b in zip(uncached, one_by_one, batched, strict=True):
        for got in (a, b):
            assert got.answer == ref.answer
            np.testing.assert_allclose(got.position, ref.position, atol=2e-5)
            np.testing.assert_allclose(got.sigma, ref.sigma, rtol=1e-4)
            assert abs(got.heading - ref.heading) < 1e-4
            np.testing.assert_allclose(got.extras["layout"], ref.extras["layout"], atol=2e-5)
            np.testing.assert_array_equal(got.extras["layout_frame"], ref.extras["layout_frame"])
    mean, sigma, frame = session.layout
    np.testing.assert_allclose(mean, uncached[0].extras["layout"], atol=2e-5)
    assert sigma.shape == mean.shape and frame.shape == (mean.shape[0],)
    # the prefix is left as it was: asking again gives the same answer
    again = session.ask(*QUERIES[2], max_new_tokens=5)
    assert again.answer == one_by_one[2].answer


def test_session_rejects_a_prompt_of_another_clip(clip_factory) -> None:
    predictor = _predictor("qwen2_5_vl")
    a, b = clip_factory(num_frames=4, size=56), clip_factory(num_frames=4, size=56, start_yaw=1.0)
    session = predictor.session(a.frames)
    other = predictor.processor([predictor._sample(b.frames, None, None, "b", None, "q?")], mode="eval")
    other_ids = other["input_ids"].clone()
    other_ids[0, 0] = (other_ids[0, 0] + 1) % 100  # differs inside the prefix
    other["input_ids"] = other_ids
    with pytest.raises(ValueError, match="does not start with the prefix"):
        predictor.model.predict(other, max_new_tokens=1, prefix=session.prefix)
    with pytest.raises(SampleError, match="question is empty"):
        session.ask(None, "  ")


def test_eval_predict_samples_shares_one_prefix_per_clip(clip_factory) -> None:
    """``loc3r eval``'s batch predictor groups the questions of one clip onto one cached prefix; same outputs."""
    from loc3r.evaluate.runner import clip_key, predict_samples

    predictor = _predictor("qwen2_5_vl")
    a = [clip_factory(num_frames=4, size=56, sample_id=f"a{i}", question=q) for i, (_, q) in enumerate(QUERIES)]
    b = [clip_factory(num_frames=4, size=56, start_yaw=1.0, sample_id="b0")]
    samples = [a[0], b[0], *a[1:]]
    assert len({clip_key(s) for s in samples}) == 2
    shared = predict_samples(predictor.model, samples, max_new_tokens=4, batch_size=3)
    plain = predict_samples(predictor.model, samples, max_new_tokens=4, batch_size=3, share_video=False)
    assert [p.sample_id for p, _ in shared] == [s.sample_id for s in samples]
    for (p, _), (q, _) in zip(shared, plain, strict=True):
        assert p.answer_token_ids == q.answer_token_ids
        np.testing.assert_allclose(p.position_bev, q.position_bev, atol=2e-5)
        np.testing.assert_allclose(p.layout_mean, q.layout_mean, atol=2e-5)
