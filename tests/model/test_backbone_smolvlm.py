"""SmolVLM2 adapter: preprocessing vs transformers' SmolVLM processor, the prompt vs ``SmolVLMProcessor``'s video text,
footprints vs the tower, greedy decoding vs HF ``generate``, camera tokens, save/load, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil
from transformers.models.smolvlm.processing_smolvlm import SmolVLMProcessor
from transformers.video_utils import VideoMetadata

from loc3r.model.backbones import get_backbone
from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
from loc3r.model.tokenizer import CAMERA_TOKEN

BACKBONE = "smolvlm"


def _model(tiny_tokenizer, **kwargs) -> Loc3rForConditionalGeneration:
    return Loc3rForConditionalGeneration.tiny(BACKBONE, tiny_tokenizer(BACKBONE), **kwargs)


def test_preprocessing_matches_hf_image_processor(tiny_tokenizer):
    """Square frames: resize to S x S (Lanczos), /255, mean/std 0.5 — HF's SmolVLM PIL processor, no tiling."""
    model = _model(tiny_tokenizer)
    video = np.random.default_rng(1).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(video, model.config.vlm_config, model.preprocessing)
    ref = SmolVLMImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 112}, max_image_size={"longest_edge": 112}
    )(images=[[f] for f in video], return_tensors="pt")
    torch.testing.assert_close(enc.pixel_values, ref["pixel_values"][:, 0].float(), atol=1e-5, rtol=1e-5)
    assert [s.frame_indices for s in enc.segments] == [(0,), (1,), (2,)]
    assert all(s.num_tokens == 16 for s in enc.segments)


def test_prompt_equals_smolvlm_processor_text(tiny_tokenizer, clip_factory):
    """The eval prompt is token for token HF's chat format with ``replace_video_token``'s video text (frame count in
    words, duration, ``Frame from mm:ss``) for frames sampled at known indices of a 30 fps video."""
    model = _model(tiny_tokenizer, situation_objective=False)
    tok = tiny_tokenizer(BACKBONE)
    clip = clip_factory(num_frames=4, situation_text=None)
    clip.frame_indices, clip.meta["fps"] = np.array([0, 900, 1830, 2700]), 30.0
    proc = model.build_processor(mode="eval")
    batch = proc([clip])
    hf = object.__new__(SmolVLMProcessor)  # replace_video_token only reads these attributes
    hf.image_seq_len, hf.image_token = 16, "<image>"
    hf.fake_image_token, hf.global_image_token = "<fake_token_around_image>", "<global-img>"
    video_text = hf.replace_video_token(
        {
            "pixel_values": batch["pixel_values_videos"],
            "video_metadata": [VideoMetadata(total_num_frames=2700, fps=30.0, frames_indices=[0, 900, 1830, 2700])],
        },
        0,
    )
    assert "series of four frames from a 0:01:30" in video_text and "Frame from 01:01:" in video_text
    text = f"<|im_start|>User: {video_text}{clip.question}<end_of_utterance>\nAssistant:"
    assert batch["input_ids"][0].tolist() == tok(text, add_special_tokens=False)["input_ids"]
    assert torch.equal(batch["position_ids"][0, 0], torch.arange(batch["input_ids"].shape[1]))


def test_train_labels_are_the_answer_after_assistant(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer)
    tok = tiny_tokenizer(BACKBONE)
    batch = model.build_processor()([clip_factory(num_frames=2, answer="The red wall.")])
    labels = batch["labels"][0]
    supervised = labels[labels != -100].tolist()
    assert tok.decode(supervised) == " The red wall.<end_of_utterance>"
    assert "1 frame" not in tok.decode(batch["input_ids"][0]) and "two frames" in tok.decode(batch["input_ids"][0])


@pytest.mark.parametrize("num_frames,shape", [(3, (112, 112)), (2, (90, 150))])
def test_token_footprints_match_vision_tower(tiny_tokenizer, num_frames, shape):
    model = _model(tiny_tokenizer)
    frames = np.random.default_rng(2).integers(0, 256, (num_frames, *shape, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(frames, model.config.vlm_config, model.preprocessing)
    with torch.no_grad():
        feats = model.adapter.encode_video(model.vlm, model.adapter.collate_pixels([enc]))
    assert feats.shape[0] == enc.num_vision_tokens == 16 * num_frames


def test_camera_token_after_global_image_token(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, camera_prior="poses")
    tok = tiny_tokenizer(BACKBONE)
    batch = model.build_processor()([clip_factory(num_frames=3)])
    ids = batch["input_ids"][0]
    cam_idx = torch.nonzero(ids == tok.convert_tokens_to_ids(CAMERA_TOKEN)).flatten().tolist()
    assert len(cam_idx) == 3
    for i in cam_idx:
        assert int(ids[i - 1]) == tok.convert_tokens_to_ids("<global-img>") and int(ids[i + 1]) == model.video_token_id
    out = model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.camera_projector is not None


def test_predict_greedy_matches_hf_generate(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer).eval()
    proc = model.build_processor(mode="eval")
    clips = [clip_factory(num_frames=2, sample_id="a"), clip_factory(num_frames=2, sample_id="b", question="How far?")]
    preds = model.predict(proc(clips), max_new_tokens=8)
    for clip, pred in zip(clips, preds, strict=True):
        single = proc([clip])
        generated = model.vlm.generate(
            input_ids=single["input_ids"],
            attention_mask=single["attention_mask"],
            pixel_values=single["pixel_values_videos"],
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=model.config.eos_token_id,
            pad_token_id=model.config.pad_token_id,
        )
        hf_tokens = generated[0, single["input_ids"].shape[1] :].tolist()
        if model.config.eos_token_id in hf_tokens:
            hf_tokens = hf_tokens[: hf_tokens.index(model.config.eos_token_id)]
        assert pred.answer_token_ids == hf_tokens


def test_save_load_and_checkpoint_dir(tiny_tokenizer, clip_factory, tmp_path):
    model = _model(tiny_tokenizer).eval()
    batch = model.build_processor()([clip_factory(num_frames=2)])
    model.save_pretrained(tmp_path / "m")
    again = Loc3rForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).loss, again(**batch).loss)
    model.vlm.save_pretrained(tmp_path / "hf")
    tiny_tokenizer(BACKBONE).save_pretrained(tmp_path / "hf")
    loaded = Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path / "hf")
    assert loaded.config.backbone == BACKBONE and loaded.preprocessing["image_size"] == 112
    model.freeze_vision_tower()
    assert all(p.requires_grad for p in model.vlm.model.connector.parameters())
    assert not any(p.requires_grad for p in model.vlm.model.vision_model.parameters())


def test_processor_file_disagreeing_with_model_is_an_error(tiny_tokenizer, tmp_path):
    model = _model(tiny_tokenizer)
    path = tmp_path / "video_preprocessor_config.json"
    path.write_text(json.dumps({"max_image_size": {"longest_edge": 384}}))
    with pytest.raises(ValueError, match="video_preprocessor_config.json.*'max_image_size' is 384.*image_size = 112"):
        get_backbone(BACKBONE).default_preprocessing(model.config.vlm_config, tmp_path)
