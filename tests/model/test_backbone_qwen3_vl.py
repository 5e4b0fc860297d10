"""Qwen3-VL adapter: preprocessing vs transformers' processors, prompt blocks vs ``Qwen3VLProcessor``, positions vs
``get_rope_index``, DeepStack, greedy decoding vs HF ``generate``, footprints, save/load, camera tokens, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as hf_video_smart_resize
from transformers.video_utils import VideoMetadata

from loc3r.data.schema import SampleError
from loc3r.model.backbones import TokenKind, get_backbone
from loc3r.model.backbones.qwen3_vl import video_smart_resize
from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
from loc3r.model.tokenizer import CAMERA_TOKEN

BACKBONE = "qwen3_vl"


def _model(tiny_tokenizer, **kwargs) -> Loc3rForConditionalGeneration:
    return Loc3rForConditionalGeneration.tiny(BACKBONE, tiny_tokenizer(BACKBONE), **kwargs)


@pytest.mark.parametrize(
    "t,size,limits",
    [(4, (112, 112), (4096, 2**20)), (8, (480, 640), (128 * 1024, 768 * 1024)), (32, (384, 384), (4096, 25165824))],
)
def test_video_smart_resize_matches_transformers(t, size, limits):
    args = dict(temporal_factor=2, factor=32, min_pixels=limits[0], max_pixels=limits[1])
    assert video_smart_resize(t, *size, **args) == hf_video_smart_resize(t, *size, **args)


def test_preprocessing_matches_hf_processor_layout(tiny_tokenizer):
    """Identical frame pairs give exactly the patches of HF's Qwen2-VL image processor at patch 16 (which repeats an
    image over the temporal patch), in the same order; one segment per group of 2 frames."""
    model = _model(tiny_tokenizer)
    distinct = np.random.default_rng(0).integers(0, 256, (3, 100, 130, 3), dtype=np.uint8)
    video = np.repeat(distinct, 2, axis=0)
    enc = model.adapter.preprocess_video(video, model.config.vlm_config, model.preprocessing)
    height, width = enc.frame_size
    ref = Qwen2VLImageProcessorPil(
        size={"shortest_edge": height * width, "longest_edge": height * width},
        patch_size=16,
        merge_size=2,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )(images=list(distinct), return_tensors="pt")
    assert enc.grid_thw == (3, int(ref["image_grid_thw"][0, 1]), int(ref["image_grid_thw"][0, 2]))
    torch.testing.assert_close(enc.pixel_values, ref["pixel_values"].float(), atol=1e-5, rtol=1e-5)
    assert [s.frame_indices for s in enc.segments] == [(0, 1), (2, 3), (4, 5)]


def _hf_processor() -> Qwen3VLProcessor:
    """HF's processor object without running its __init__ (which resolves the video processor class through a
    torchvision-only mapping); ``replace_video_token`` only reads the attributes set here."""
    proc = object.__new__(Qwen3VLProcessor)
    proc.video_processor = Qwen3VLVideoProcessor()
    proc.video_token = "<|video_pad|>"
    proc.vision_start_token, proc.vision_end_token = "<|vision_start|>", "<|vision_end|>"
    return proc


def test_video_block_equals_qwen3vl_processor_text(tiny_tokenizer, clip_factory):
    """Timestamps from frame indices + source fps: our video block is HF's expansion of ``<|video_pad|>`` token for
    token (``<t seconds><|vision_start|> pads <|vision_end|>`` per group); mm_token_type_ids mark the pads."""
    model = _model(tiny_tokenizer)
    tok = tiny_tokenizer(BACKBONE)
    clip = clip_factory(num_frames=6)
    clip.frame_indices = np.array([0, 30, 61, 90, 121, 152])
    clip.meta["fps"] = 30.0
    batch = model.build_processor(mode="eval")([clip])
    enc = model.adapter.preprocess_video(
        clip.frames,
        model.config.vlm_config,
        {**model.preprocessing, "frame_indices": clip.frame_indices.tolist(), "source_fps": 30.0},
    )
    video_inputs = {
        "video_grid_thw": torch.tensor([enc.grid_thw]),
        "video_metadata": [VideoMetadata(total_num_frames=200, fps=30.0, frames_indices=clip.frame_indices.tolist())],
    }
    hf_text = _hf_processor().replace_video_token(video_inputs, 0)
    assert "<0.5 seconds>" in hf_text and "<2.5 seconds>" in hf_text and f"<{(121 + 152) / 60:.1f} seconds>" in hf_text
    hf_ids = tok(hf_text, add_special_tokens=False)["input_ids"]
    ids = batch["input_ids"][0].tolist()
    prefix = tok(model.adapter.chat_template().prefix, add_special_tokens=False)["input_ids"]
    assert ids[: len(prefix)] == prefix
    start = len(prefix)
    assert ids[start : start + len(hf_ids)] == hf_ids
    mm = batch["mm_token_type_ids"][0]
    assert torch.equal(mm == 2, batch["input_ids"][0] == model.video_token_id) and set(mm.tolist()) <= {0, 2}


def test_timestamps_fall_back_to_video_fps_not_24(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer)
    tok = tiny_tokenizer(BACKBONE)
    text = tok.decode(model.build_processor()([clip_factory(num_frames=4)])["input_ids"][0])
    assert "<0.2 seconds>" in text and "<1.2 seconds>" in text  # frames 0..3 at the default 2 fps
    clip = clip_factory(num_frames=4)
    clip.meta["sampled_fps"] = 0.5
    text = tok.decode(model.build_processor()([clip])["input_ids"][0])
    assert "<1.0 seconds>" in text and "<5.0 seconds>" in text


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_positions_match_get_rope_index(tiny_tokenizer, clip_factory, mode):
    model = _model(tiny_tokenizer)
    batch = model.build_processor(mode=mode)(
        [clip_factory(num_frames=4, sample_id="a"), clip_factory(num_frames=6, question="How far?", sample_id="b")]
    )
    hf_pos, _ = model.vlm.model.get_rope_index(
        batch["input_ids"],
        mm_token_type_ids=batch["mm_token_type_ids"],
        video_grid_thw=batch["video_grid_thw"],
        attention_mask=batch["attention_mask"],
    )
    ours = batch["position_ids"].permute(1, 0, 2)
    for b in range(2):
        keep = batch["attention_mask"][b].bool()
        assert torch.equal(ours[:, b, keep], hf_pos[:, b, keep])


def test_camera_tokens_follow_vision_start_and_shift_nothing(tiny_tokenizer, clip_factory):
    cam_model = _model(tiny_tokenizer, camera_prior="poses")
    plain_model = _model(tiny_tokenizer)
    clip = clip_factory(num_frames=5)
    with_cam, plain = cam_model.build_processor()([clip]), plain_model.build_processor()([clip])
    ids, pos = with_cam["input_ids"][0], with_cam["position_ids"][0]
    tok = tiny_tokenizer(BACKBONE)
    cam = ids == tok.convert_tokens_to_ids(CAMERA_TOKEN)
    assert int(cam.sum()) == 5
    assert torch.equal(ids[~cam], plain["input_ids"][0]) and torch.equal(pos[:, ~cam], plain["position_ids"][0])
    start_id = tok.convert_tokens_to_ids("<|vision_start|>")
    for i in torch.nonzero(cam).flatten().tolist():
        j = i
        while bool(cam[j - 1]):
            j -= 1
        assert int(ids[j - 1]) == start_id  # the group's camera tokens directly follow its <|vision_start|>
        first_vision = int(torch.nonzero(ids[i:] == cam_model.video_token_id)[0]) + i
        assert pos[:, i].tolist() == [int(pos[0, first_vision])] * 3
    out = cam_model(**with_cam)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("num_frames,shape", [(4, (112, 112)), (5, (112, 112)), (2, (112, 168))])
def test_token_footprints_match_vision_tower_and_deepstack(tiny_tokenizer, num_frames, shape):
    model = _model(tiny_tokenizer)
    frames = np.random.default_rng(2).integers(0, 256, (num_frames, *shape, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(frames, model.config.vlm_config, model.preprocessing)
    with torch.no_grad():
        feats = model.adapter.encode_video_features(model.vlm, model.adapter.collate_pixels([enc]))
    assert feats.embeds.shape[0] == enc.num_vision_tokens
    assert len(feats.layer_features) == 2 and all(f.shape == feats.embeds.shape for f in feats.layer_features)
    assert sorted(f for s in enc.segments for f in s.frame_indices) == list(range(num_frames))


def test_deepstack_reaches_the_llm_and_is_not_dropped(tiny_tokenizer, clip_factory):
    """The loss depends on the DeepStack mergers (gradients reach them), and embed_inputs refuses to drop them."""
    model = _model(tiny_tokenizer)
    batch = model.build_processor()([clip_factory(num_frames=4)])
    model(**batch).loss.backward()
    grads = [p.grad for p in model.vlm.model.visual.deepstack_merger_list.parameters()]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)
    with pytest.raises(ValueError, match="DeepStack"):
        model.embed_inputs(batch["input_ids"], {k: batch[k] for k in ("pixel_values_videos", "video_grid_thw")})


def test_predict_greedy_matches_hf_generate(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer).eval()
    proc = model.build_processor(mode="eval")
    clips = [clip_factory(num_frames=4, sample_id="a"), clip_factory(num_frames=4, sample_id="b", question="How far?")]
    preds = model.predict(proc(clips), max_new_tokens=8)
    for clip, pred in zip(clips, preds, strict=True):
        single = proc([clip])
        keys = ["input_ids", "attention_mask", "pixel_values_videos", "video_grid_thw", "mm_token_type_ids"]
        generated = model.vlm.generate(
            **{k: single[k] for k in keys},
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
    model = _model(tiny_tokenizer, camera_prior="poses").eval()
    batch = model.build_processor()([clip_factory(num_frames=4)])
    model.save_pretrained(tmp_path / "m")
    again = Loc3rForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).loss, again(**batch).loss)
    # a real HF checkpoint directory of the backbone (config + safetensors + tokenizer) loads through the adapter
    tok = tiny_tokenizer(BACKBONE)
    model.vlm.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    loaded = Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path / "hf")
    assert loaded.config.backbone == BACKBONE and type(loaded.vlm).__name__ == "Qwen3VLForConditionalGeneration"


def test_bad_input_errors_name_file_and_field(tiny_tokenizer, clip_factory, tmp_path):
    model = _model(tiny_tokenizer)
    with pytest.raises(SampleError, match="'frames' has 1 frame.*temporal patch size 2"):
        model.build_processor()([clip_factory(num_frames=1, sample_id="one")])
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps({"patch_size": 14}))
    match = "video_preprocessor_config.json.*'patch_size' is 14.*vision_config.patch_size"
    with pytest.raises(ValueError, match=match):
        get_backbone(BACKBONE).default_preprocessing(model.config.vlm_config, tmp_path)
    clip = clip_factory(num_frames=4, sample_id="bad-fps")
    clip.frame_indices, clip.meta["fps"] = np.arange(4), -3
    with pytest.raises(SampleError, match="bad-fps.*meta\\['fps'\\]"):
        model.build_processor()([clip])


def test_token_kinds_and_freeze(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, camera_prior="poses")
    item = model.build_processor()._process_one(clip_factory(num_frames=4), "train")
    assert int((item["kinds"] == TokenKind.VIDEO).sum()) == item["encoding"].num_vision_tokens
    model.freeze_vision_tower()
    assert all(p.requires_grad for p in model.vlm.model.visual.merger.parameters())
    assert all(p.requires_grad for p in model.vlm.model.visual.deepstack_merger_list.parameters())
    assert not any(p.requires_grad for p in model.vlm.model.visual.blocks.parameters())
