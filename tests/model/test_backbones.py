"""Backbone adapters and the processor: preprocessing vs transformers' own processors, token footprints vs the
vision towers, Qwen2.5-VL M-RoPE positions vs HF's ``get_rope_index``, camera-token placement, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from conftest import tiny_model
from loc3r.data.schema import SampleError
from loc3r.model.backbones import TokenKind, available_backbones, get_backbone
from loc3r.model.backbones.qwen2_5_vl import smart_resize
from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
from loc3r.model.processing import Loc3rProcessor
from loc3r.model.tokenizer import CAMERA_TOKEN

BACKBONES = ["qwen2_5_vl", "llava_onevision"]


def _model(tiny_tokenizer, backbone: str, **kwargs) -> Loc3rForConditionalGeneration:
    return tiny_model(tiny_tokenizer, backbone, **kwargs)


def test_registry_lists_both_backbones_and_rejects_unknown():
    assert {"qwen2_5_vl", "llava_onevision"} <= set(available_backbones())
    with pytest.raises(KeyError, match="unknown backbone"):
        get_backbone("no_such_vlm")


@pytest.mark.parametrize("size", [(112, 112), (100, 130), (480, 640), (30, 2000), (1000, 1000)])
def test_qwen_smart_resize_matches_transformers(size):
    args = dict(factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    assert smart_resize(*size, **args) == hf_smart_resize(*size, **args)


@pytest.mark.parametrize("shape", [(112, 112), (100, 130)])
def test_qwen_preprocessing_matches_hf_processor_layout(tiny_tokenizer, shape):
    """A video whose frame pairs are identical must give exactly the patches of HF's Qwen2-VL image processor
    (which repeats an image over the temporal patch) for the distinct frames, in the same order."""
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, (3, *shape, 3), dtype=np.uint8)
    video = np.repeat(distinct, 2, axis=0)  # a a b b c c
    options = dict(model.preprocessing)
    enc = model.adapter.preprocess_video(video, model.config.vlm_config, options)
    ref = Qwen2VLImageProcessorPil(
        size={"shortest_edge": options["min_pixels"], "longest_edge": options["max_pixels"]},
        image_mean=options["image_mean"],
        image_std=options["image_std"],
    )(images=list(distinct), return_tensors="pt")
    grid = ref["image_grid_thw"]
    assert enc.grid_thw == (3, int(grid[0, 1]), int(grid[0, 2]))
    assert enc.pixel_values.shape == ref["pixel_values"].shape
    torch.testing.assert_close(enc.pixel_values, ref["pixel_values"].float(), atol=1e-5, rtol=1e-5)
    # one segment per temporal group of 2 frames, grid = patches / merge
    assert [s.frame_indices for s in enc.segments] == [(0, 1), (2, 3), (4, 5)]
    assert all((s.grid_h, s.grid_w) == (grid[0, 1] // 2, grid[0, 2] // 2) for s in enc.segments)


def test_llava_preprocessing_matches_siglip_processor(tiny_tokenizer):
    """LLaVA-OneVision frames: resize to S x S, /255, mean/std 0.5 — compared with HF's SigLIP PIL processor."""
    model = _model(tiny_tokenizer, "llava_onevision")
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (3, 90, 150, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(video, model.config.vlm_config, model.preprocessing)
    size = model.config.vlm_config.vision_config.image_size
    ref = SiglipImageProcessorPil(size={"height": size, "width": size})(images=list(video), return_tensors="pt")
    torch.testing.assert_close(enc.pixel_values, ref["pixel_values"].float(), atol=1e-5, rtol=1e-5)
    assert [s.frame_indices for s in enc.segments] == [(0,), (1,), (2,)]
    assert enc.segments[-1].extra_tokens == 1 and enc.segments[0].extra_tokens == 0


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("num_frames,shape", [(4, (112, 112)), (5, (112, 112)), (2, (112, 168))])
def test_token_footprints_match_vision_tower_output(tiny_tokenizer, backbone, num_frames, shape):
    model = _model(tiny_tokenizer, backbone)
    frames = np.random.default_rng(2).integers(0, 256, (num_frames, *shape, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(frames, model.config.vlm_config, model.preprocessing)
    pixel_inputs = model.adapter.collate_pixels([enc])
    with torch.no_grad():
        feats = model.adapter.encode_video(model.vlm, pixel_inputs)
    assert feats.shape[0] == enc.num_vision_tokens == sum(s.num_tokens for s in enc.segments)
    covered = sorted(f for s in enc.segments for f in s.frame_indices)
    assert covered == list(range(num_frames))  # every real frame once, padding frames never


def test_qwen_odd_frame_count_repeats_last_frame(tiny_tokenizer):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    frames = np.random.default_rng(3).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    enc = model.adapter.preprocess_video(frames, model.config.vlm_config, model.preprocessing)
    even = model.adapter.preprocess_video(frames[[0, 1, 2, 2]], model.config.vlm_config, model.preprocessing)
    assert enc.grid_thw == even.grid_thw
    torch.testing.assert_close(enc.pixel_values, even.pixel_values)
    assert enc.segments[-1].frame_indices == (2,) and enc.group_frames[-1] == (2,)


def _rows(batch, b):
    keep = batch["attention_mask"][b].bool()
    return keep


@pytest.mark.parametrize("mode,fps", [("train", 2.0), ("eval", 2.0), ("train", 3.0), ("eval", 1.0)])
def test_qwen_mrope_positions_match_get_rope_index(tiny_tokenizer, clip_factory, mode, fps):
    """Without camera tokens our positions equal HF's get_rope_index (incl. padding and the video time scale)."""
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    proc = model.build_processor(mode=mode, preprocessing={**model.preprocessing, "video_fps": fps})
    samples = [
        clip_factory(num_frames=4, sample_id="a"),
        clip_factory(num_frames=6, question="How far?", sample_id="b"),
    ]
    batch = proc(samples)
    mm = batch["mm_token_type_ids"]
    assert torch.equal(mm == 2, batch["input_ids"] == model.video_token_id)
    assert set(mm.unique().tolist()) <= {0, 2}
    if fps not in (1.0, 2.0):
        # a fractional seconds-per-temporal-group: transformers 5.17 truncates it to an int before scaling
        # (all groups at t = 0), 5.2x multiplies in float as the original Qwen2.5-VL code; we follow the latter
        # and check against its formula instead of whichever transformers is installed
        ours = batch["position_ids"].permute(1, 0, 2)
        vid = batch["input_ids"][1] == model.video_token_id
        t_ids = ours[0, 1, vid].unique()
        interval = model.config.vlm_config.vision_config.tokens_per_second * 2 / fps
        expected = [int(t_ids[0]) + int(np.float32(g) * np.float32(interval)) for g in range(3)]
        assert t_ids.tolist() == expected
        return
    hf_pos, _ = model.vlm.model.get_rope_index(
        batch["input_ids"],
        mm_token_type_ids=mm,
        video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"],
        attention_mask=batch["attention_mask"],
    )
    ours = batch["position_ids"].permute(1, 0, 2)
    for b in range(len(samples)):
        keep = _rows(batch, b)
        assert torch.equal(ours[:, b, keep], hf_pos[:, b, keep])
    # the temporal axis really advances between the 2 groups by tokens_per_second * 2 frames / fps
    vid = batch["input_ids"][0] == model.video_token_id
    t_ids = ours[0, 0, vid].unique()
    assert t_ids.numel() == 2 and int(t_ids[1] - t_ids[0]) == int(2 * 2 / fps)


def test_qwen_sampled_fps_from_sample_meta_sets_time_scale(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    clip = clip_factory(num_frames=4)
    clip.meta["sampled_fps"] = 0.5  # e.g. 32 frames over 64 s: 2 frames per group -> 4 s -> 2 tok/s * 4 = 8
    batch = model.build_processor()([clip])
    assert float(batch["second_per_grid_ts"][0]) == 4.0
    vid = batch["input_ids"][0] == model.video_token_id
    t_ids = batch["position_ids"][0, 0, vid].unique()
    assert int(t_ids[1] - t_ids[0]) == 8
    clip.meta["sampled_fps"] = -1
    with pytest.raises(SampleError, match="sampled_fps"):
        model.build_processor()([clip])


def test_qwen_camera_token_positions(tiny_tokenizer, clip_factory):
    """Camera tokens sit before their group's vision tokens at (t_g, s, s) and shift no other position."""
    model_cam = _model(tiny_tokenizer, "qwen2_5_vl", camera_prior="poses")
    model_plain = _model(tiny_tokenizer, "qwen2_5_vl")
    clip = clip_factory(num_frames=5)
    with_cam = model_cam.build_processor()([clip])
    plain = model_plain.build_processor()([clip])
    ids = with_cam["input_ids"][0]
    pos = with_cam["position_ids"][0]  # [3, L]
    cam = ids == tiny_tokenizer("qwen2_5_vl").convert_tokens_to_ids(CAMERA_TOKEN)
    assert int(cam.sum()) == 5  # one per real frame (the padded 6th frame has none)
    # dropping the camera tokens gives exactly the positions of the plain sequence
    assert torch.equal(ids[~cam], plain["input_ids"][0])
    assert torch.equal(pos[:, ~cam], plain["position_ids"][0])
    video = ids == model_cam.video_token_id
    start = int(pos[1, video].min())
    cam_idx = torch.nonzero(cam).flatten().tolist()
    groups = [cam_idx[0:2], cam_idx[2:4], cam_idx[4:5]]
    for g, idx in enumerate(groups):
        first_vision = idx[-1] + 1
        assert bool(video[first_vision]) and all(not bool(video[i]) for i in idx)
        for i in idx:
            assert pos[:, i].tolist() == [int(pos[0, first_vision]), start, start]
        assert int(pos[0, first_vision]) == start + 2 * g
    assert torch.equal(with_cam["camera_valid"], torch.ones(1, 5, dtype=torch.bool))


def test_llava_camera_tokens_precede_each_frame(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "llava_onevision", camera_prior="poses")
    batch = model.build_processor()([clip_factory(num_frames=3)])
    ids = batch["input_ids"][0]
    cam_id = tiny_tokenizer("llava_onevision").convert_tokens_to_ids(CAMERA_TOKEN)
    cam_idx = torch.nonzero(ids == cam_id).flatten().tolist()
    per_frame = 16  # 112 px / 14 = 8 patches -> pooled 4 x 4
    assert len(cam_idx) == 3 and cam_idx[1] - cam_idx[0] == per_frame + 1 and cam_idx[2] - cam_idx[1] == per_frame + 1
    vision = torch.nonzero(ids == model.video_token_id).flatten()
    assert len(vision) == 3 * per_frame + 1  # + the newline token
    assert torch.equal(batch["position_ids"][0, 0], torch.arange(len(ids)))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_prompt_layout_labels_and_padding(tiny_tokenizer, clip_factory, backbone):
    model = _model(tiny_tokenizer, backbone)
    tok = tiny_tokenizer(backbone)
    proc = model.build_processor()
    short = clip_factory(num_frames=2, question="What?", answer="The red wall.", sample_id="short")
    long = clip_factory(num_frames=2, question="How many chairs are in front of me?", answer="2", sample_id="long")
    batch = proc([short, long])
    for b, sample in enumerate([short, long]):
        labels = batch["labels"][b]
        supervised = labels[labels != -100].tolist()
        assert tok.decode(supervised, skip_special_tokens=True).strip() == sample.answer
        assert supervised[-1] == tok.convert_tokens_to_ids("<|im_end|>")
        text = tok.decode(batch["input_ids"][b][batch["attention_mask"][b].bool()])
        assert f"{sample.situation_text} <Pos> <Ori> {sample.question}" in text
    assert batch["attention_mask"][0, -1] == 0  # train: right padding
    ev = proc([short, long], mode="eval")
    assert "labels" not in ev and bool(ev["attention_mask"][:, -1].all())  # eval: left padding
    text = tok.decode(ev["input_ids"][0][ev["attention_mask"][0].bool()])
    assert text.endswith(model.adapter.chat_template().user_suffix) and "The red wall." not in text
    assert [m.sample_id for m in ev.metadata] == ["short", "long"]
    # no situation objective -> the situation text stays (a plain model must read it), no tokens, no targets
    plain = _model(tiny_tokenizer, backbone, situation_objective=False).build_processor()([short])
    plain_text = tok.decode(plain["input_ids"][0])
    assert f"{short.situation_text} {short.question}" in plain_text
    assert "<Pos>" not in plain_text and "situation_position" not in plain
    no_situation = clip_factory(num_frames=2, situation_text=None)
    plain_text = tok.decode(
        _model(tiny_tokenizer, backbone, situation_objective=False).build_processor()([no_situation])["input_ids"][0]
    )
    assert "I am standing in the room." not in plain_text


def test_pseudo_situation_when_sample_has_none(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "llava_onevision")
    clip = clip_factory(num_frames=2, situation_text=None, agent_position=None, agent_yaw=None)
    batch = model.build_processor()([clip])
    text = tiny_tokenizer("llava_onevision").decode(batch["input_ids"][0])
    assert "I am standing in the room. <Pos> <Ori>" in text
    assert not bool(batch["situation_valid"][0])


@pytest.mark.parametrize("backbone", BACKBONES)
def test_layout_targets_are_bev_token_means_and_nan_depth_is_masked(tiny_tokenizer, clip_factory, backbone):
    from loc3r.core.geometry import anchor_frame, pool_token_points

    model = _model(tiny_tokenizer, backbone)
    clip = clip_factory(num_frames=4)
    clip.points[1, :, :14] = np.nan  # invalid depth pixels (left half of frame 1)
    clip.points[2] = np.nan  # a frame without valid depth
    batch = model.build_processor()([clip])
    meta = batch.metadata[0]
    anchor = anchor_frame(clip.poses[0])
    expected, valid = pool_token_points(anchor.points_to_bev(clip.points.astype(np.float64)), meta.segments)
    vision = batch["input_ids"][0] == model.video_token_id
    got_valid = batch["layout_valid"][0, vision].numpy()
    assert np.array_equal(got_valid, valid)
    np.testing.assert_allclose(batch["layout_targets"][0, vision].numpy()[valid], expected[valid, :2], atol=1e-5)
    assert not batch["layout_valid"][0, ~vision].any()
    assert np.isfinite(batch["layout_targets"].numpy()).all()
    # first camera at (0.8, 0, 1.5): targets are relative to it, inside the room rotated into the BEV frame
    assert np.abs(batch["layout_targets"][0, vision].numpy()[valid]).max() < 6.0
    if backbone == "llava_onevision":  # one frame per segment: frame 2's tokens are all masked
        seg_frames = np.concatenate([[s.frame_indices[0]] * s.num_tokens for s in meta.segments])
        assert not got_valid[seg_frames == 2].any()


def test_samples_without_points_or_poses_are_masked(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    batch = model.build_processor()(
        [clip_factory(num_frames=2, with_points=False), clip_factory(num_frames=2, with_poses=False)]
    )
    assert not batch["layout_valid"].any()
    assert bool(batch["situation_valid"][0]) and not bool(batch["situation_valid"][1])  # no poses -> no anchor


def test_situation_targets_in_anchor_frame(tiny_tokenizer, clip_factory):
    from loc3r.core.geometry import anchor_frame, wrap_angle

    model = _model(tiny_tokenizer, "qwen2_5_vl")
    clip = clip_factory(num_frames=2, agent_position=(1.0, -0.5, 0.0), agent_yaw=2.0)
    batch = model.build_processor()([clip])
    anchor = anchor_frame(clip.poses[0])
    expected = anchor.points_to_bev(clip.agent_position)[:2]
    np.testing.assert_allclose(batch["situation_position"][0].numpy(), expected, atol=1e-6)
    assert abs(float(batch["situation_yaw"][0]) - wrap_angle(2.0 - anchor.yaw)) < 1e-6


# ----------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda c: setattr(c, "frames", c.frames.astype(np.float32)), "frames"),
        (lambda c: setattr(c, "frames", c.frames[..., :2]), "frames"),
        (lambda c: setattr(c, "frames", c.frames[:0]), "frames"),
        (lambda c: c.poses.__setitem__((1, 0, 3), np.nan), "poses"),
        (lambda c: c.poses.__setitem__((1, slice(0, 3), 0), 2.0 * c.poses[1, :3, 0]), "poses"),
        (lambda c: setattr(c, "poses", c.poses[:1]), "poses"),
        (lambda c: setattr(c, "points", c.points[:1]), "points"),
        (lambda c: setattr(c, "answer", None), "answer"),
        (lambda c: setattr(c, "question", "Where is the <Pos> token?"), "<Pos>"),
        (lambda c: setattr(c, "situation_text", "I see <|video_pad|> here."), "situation_text"),
        (lambda c: setattr(c, "answer", 3), "answer"),
    ],
)
def test_bad_input_names_sample_and_field(tiny_tokenizer, clip_factory, mutate, field):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    clip = clip_factory(num_frames=2, sample_id="bad-one")
    mutate(clip)
    with pytest.raises(SampleError, match="bad-one") as err:
        model.build_processor()([clip])
    assert field in str(err.value)


def test_wrong_frame_count_is_an_error(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "llava_onevision")
    proc = model.build_processor(num_frames=4)
    with pytest.raises(SampleError, match="'frames' has 2 frames, expected 4"):
        proc([clip_factory(num_frames=2, sample_id="x")])
    with pytest.raises(SampleError, match="same frame count"):
        model.build_processor()([clip_factory(num_frames=2), clip_factory(num_frames=3)])


def test_negative_and_nan_points_never_become_targets(tiny_tokenizer, clip_factory):
    """Points from NaN / negative depth come as NaN (geometry.depth_to_world_points); inf is masked too."""
    model = _model(tiny_tokenizer, "llava_onevision")
    clip = clip_factory(num_frames=2)
    clip.points[:] = np.nan
    clip.points[0, 0, 0] = [np.inf, 0.0, 0.0]
    batch = model.build_processor()([clip])
    assert not batch["layout_valid"].any() and np.isfinite(batch["layout_targets"].numpy()).all()
    out = model(**batch)
    assert torch.isfinite(out.loss) and float(out.losses["loss_bev"]) == 0.0


def test_processor_save_load_roundtrip(tiny_tokenizer, clip_factory, tmp_path):
    model = _model(tiny_tokenizer, "qwen2_5_vl", camera_prior="poses")
    proc = model.build_processor(num_frames=4)
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    again = Loc3rProcessor.from_pretrained(tmp_path)
    clip = clip_factory(num_frames=4)
    a, b = proc([clip]), again([clip])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.num_frames == 4


def test_token_kinds_cover_the_sequence(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "qwen2_5_vl", camera_prior="poses")
    proc = model.build_processor()
    item = proc._process_one(clip_factory(num_frames=4), "train")
    kinds = item["kinds"]
    assert set(np.unique(kinds)) == {TokenKind.TEXT, TokenKind.VIDEO, TokenKind.CAMERA}
    assert int((kinds == TokenKind.VIDEO).sum()) == item["encoding"].num_vision_tokens


@pytest.mark.parametrize(
    "hidden_size,heads,expected", [(64, 4, [2, 3, 3]), (128, 4, [4, 6, 6]), (512, 4, [16, 24, 24])]
)
def test_qwen_tiny_mrope_section_follows_a_resized_llm(tiny_tokenizer, clip_factory, hidden_size, heads, expected):
    """A wider tiny LLM (e.g. the demo's ``hidden_size``) keeps M-RoPE sections summing to head_dim / 2."""
    text = {"hidden_size": hidden_size, "num_attention_heads": heads, "intermediate_size": 2 * hidden_size}
    model = _model(tiny_tokenizer, "qwen2_5_vl", vlm_overrides={"text_config": text})
    section = model.config.vlm_config.text_config.rope_parameters["mrope_section"]
    assert section == expected and sum(section) == hidden_size // heads // 2
    batch = model.build_processor()([clip_factory(num_frames=2)])
    assert torch.isfinite(model(**batch).loss)
