"""Loc3rForConditionalGeneration on tiny random configs of the real HF classes (Qwen2.5-VL, LLaVA-OneVision)."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from conftest import tiny_model
from loc3r.model.backbones import get_backbone
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
from loc3r.model.tokenizer import LOC3R_SPECIAL_TOKENS

BACKBONES = ["qwen2_5_vl", "llava_onevision"]


def _model(tiny_tokenizer, backbone: str, **kwargs) -> Loc3rForConditionalGeneration:
    return tiny_model(tiny_tokenizer, backbone, **kwargs)


def _two_clips(clip_factory, num_frames: int = 4):
    return [
        clip_factory(num_frames=num_frames, sample_id="a", agent_position=(1.0, -0.5, 0.0), agent_yaw=2.0),
        clip_factory(
            num_frames=num_frames,
            sample_id="b",
            question="How far is the door from me?",
            answer="1.5 meters.",
            situation_text="I am standing in the room.",
            agent_position=(-1.2, 1.0, 0.0),
            agent_yaw=-1.0,
            start_yaw=1.3,
        ),
    ]


def _grad_norm(module: torch.nn.Module) -> float:
    grads = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


@pytest.mark.parametrize("backbone", BACKBONES)
def test_forward_backward_finite_and_gradients_reach_every_part(tiny_tokenizer, clip_factory, backbone):
    model = _model(tiny_tokenizer, backbone, camera_prior="poses", cue_injection=True)
    batch = model.build_processor()(_two_clips(clip_factory))
    out = model(**batch)
    assert set(out.losses) == {"loss_ce", "loss_bev", "loss_pos", "loss_ori", "loss_sit", "loss"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    parts = {
        "layout head": model.layout_head,
        "position head": model.position_head,
        "orientation head": model.orientation_head,
        "camera projector": model.camera_projector,
        "cue injector (last layer)": model.cue_injector.fc2,
        "vision projector": torch.nn.ModuleList(model.adapter.projector_modules(model.vlm)),
        "LLM decoder": model.adapter.language_model(model.vlm).layers,
        "input embeddings": model.get_input_embeddings(),
        "vision tower": torch.nn.ModuleList(model.adapter.vision_modules(model.vlm)),
    }
    for name, module in parts.items():
        assert _grad_norm(module) > 0, f"no gradient reaches the {name}"


@pytest.mark.parametrize("backbone", BACKBONES)
def test_joint_loss_formula_and_ce_on_label_positions_only(tiny_tokenizer, clip_factory, backbone):
    model = _model(tiny_tokenizer, backbone)
    batch = model.build_processor()(_two_clips(clip_factory))
    with torch.no_grad():
        out = model(**batch, return_hidden_states=True)
        # CE with the full [B, L, V] logits (what HF's own loss does) equals ours on the answer positions only
        logits = model.get_output_embeddings()(out.last_hidden_state)
        ref_ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), ignore_index=-100)
    torch.testing.assert_close(out.losses["loss_ce"], ref_ce, atol=1e-5, rtol=1e-5)
    lo = out.losses
    expected = lo["loss_ce"] + 0.05 * lo["loss_bev"] + 0.075 * (lo["loss_pos"] + 3.5 * lo["loss_ori"])
    torch.testing.assert_close(out.loss, expected)
    assert out.layout_mean.shape == (int((batch["input_ids"] == model.video_token_id).sum()), 2)
    assert out.position_mean.shape == (2, 2) and out.orientation_logits.shape == (2, 36)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_overfit_one_batch_drives_every_loss_down_and_predict_recovers_pose(tiny_tokenizer, clip_factory, backbone):
    torch.manual_seed(0)
    model = _model(tiny_tokenizer, backbone)
    clips = _two_clips(clip_factory)
    batch = model.build_processor()(clips)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    history = []
    for _ in range(60):
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append({k: float(v) for k, v in out.losses.items()})
    first, last = history[0], history[-1]
    assert last["loss_ce"] < 0.2 * first["loss_ce"]
    assert last["loss_bev"] < first["loss_bev"] - 1.0  # Gaussian NLL (can go negative)
    assert last["loss_pos"] < first["loss_pos"] - 2.0
    assert last["loss_ori"] < 0.2 * first["loss_ori"]

    eval_batch = model.build_processor(mode="eval")(clips)
    predictions = model.predict(eval_batch, max_new_tokens=12)
    for pred, clip, meta in zip(predictions, clips, eval_batch.metadata, strict=True):
        assert pred.sample_id == clip.sample_id
        assert pred.answer == clip.answer
        assert np.linalg.norm(pred.position_bev - meta.agent_position_bev) < 0.3
        yaw_err = abs((pred.yaw_bev - meta.agent_yaw_bev + math.pi) % (2 * math.pi) - math.pi)
        assert yaw_err < math.radians(10) and pred.yaw_confidence > 0.5
        # back in the world frame: the known agent pose
        assert np.linalg.norm(pred.position_world[:2] - clip.agent_position[:2]) < 0.3
        yaw_world_err = abs((pred.yaw_world - clip.agent_yaw + math.pi) % (2 * math.pi) - math.pi)
        assert yaw_world_err < math.radians(10)
        assert pred.layout_mean.shape == (meta.num_vision_tokens, 2) and (pred.layout_sigma > 0).all()
        # each layout point knows its source frame: non-decreasing, from frame 0 to the last token group's
        frames_per_token = 2 if backbone == "qwen2_5_vl" else 1
        assert pred.layout_frame is not None and len(pred.layout_frame) == meta.num_vision_tokens
        assert pred.layout_frame[0] == 0 and (np.diff(pred.layout_frame) >= 0).all()
        assert pred.layout_frame[-1] == meta.num_frames - frames_per_token


@pytest.mark.parametrize("backbone", BACKBONES)
def test_predict_greedy_matches_hf_generate(tiny_tokenizer, clip_factory, backbone):
    """Our KV-cache greedy loop (batched, left padded) gives HF generate's tokens (positions incl. M-RoPE)."""
    model = _model(tiny_tokenizer, backbone).eval()
    proc = model.build_processor(mode="eval")
    clips = [clip_factory(num_frames=4, sample_id="a"), clip_factory(num_frames=4, sample_id="b", question="How far?")]
    preds = model.predict(proc(clips), max_new_tokens=8)
    hf_keys = ["input_ids", "attention_mask", "pixel_values_videos", "video_grid_thw", "mm_token_type_ids"]
    hf_keys.append("second_per_grid_ts")
    for clip, pred in zip(clips, preds, strict=True):
        single = proc([clip])
        kwargs = {k: single[k] for k in hf_keys if k in single}
        generated = model.vlm.generate(
            **kwargs,
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=model.config.eos_token_id,
            pad_token_id=model.config.pad_token_id,
        )
        hf_tokens = generated[0, single["input_ids"].shape[1] :].tolist()
        if model.config.eos_token_id in hf_tokens:
            hf_tokens = hf_tokens[: hf_tokens.index(model.config.eos_token_id)]
        assert pred.answer_token_ids == hf_tokens


@pytest.mark.parametrize("backbone", BACKBONES)
def test_save_load_gives_identical_outputs(tiny_tokenizer, clip_factory, backbone, tmp_path):
    model = _model(tiny_tokenizer, backbone, camera_prior="poses", cue_injection=True).eval()
    batch = model.build_processor()(_two_clips(clip_factory))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = Loc3rForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.camera_prior == "poses" and loaded.config.cue_injection
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    for key in ("loss", "layout_mean", "layout_log_var", "position_mean", "position_log_var", "orientation_logits"):
        assert torch.equal(a[key], b[key]), key
    # the tokenizer and preprocessing travel with the checkpoint
    assert loaded.tokenizer is not None and len(loaded.tokenizer) == len(model.tokenizer)
    batch2 = loaded.build_processor()(_two_clips(clip_factory))
    assert all(torch.equal(batch[k], batch2[k]) for k in batch)
    eval_clips = _two_clips(clip_factory)
    pa = model.predict(model.build_processor(mode="eval")(eval_clips), max_new_tokens=4)
    pb = loaded.predict(loaded.build_processor(mode="eval")(eval_clips), max_new_tokens=4)
    assert [p.answer_token_ids for p in pa] == [p.answer_token_ids for p in pb]


def test_load_rejects_config_weight_mismatch_and_pickles(tiny_tokenizer, tmp_path):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    model.save_pretrained(tmp_path)
    cfg_path = tmp_path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["layout_objective"] = False  # weights hold a layout head the config does not want
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match config.json.*layout_head"):
        Loc3rForConditionalGeneration.from_pretrained(tmp_path)
    cfg["layout_objective"] = True
    cfg["camera_prior"] = "poses"  # config wants a camera projector the weights lack
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing_keys.*camera_projector"):
        Loc3rForConditionalGeneration.from_pretrained(tmp_path)
    cfg["camera_prior"] = None
    cfg["layout_objectiv"] = True  # typo
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown key.*layout_objectiv"):
        Loc3rForConditionalGeneration.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        Loc3rForConditionalGeneration.from_pretrained(tmp_path)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="unknown key"):
        Loc3rConfig(backbone="qwen2_5_vl", camera_priorr="poses")
    with pytest.raises(ValueError, match="camera_prior"):
        Loc3rConfig(backbone="qwen2_5_vl", camera_prior="cut3r")
    with pytest.raises(ValueError, match="backbone"):
        Loc3rConfig(backbone="qwen9")
    with pytest.raises(ValueError, match="bev_loss_weight"):
        Loc3rConfig(bev_loss_weight=-1.0)
    cfg = Loc3rConfig()
    assert (cfg.bev_loss_weight, cfg.situation_loss_weight, cfg.orientation_loss_weight) == (0.05, 0.075, 3.5)
    assert cfg.camera_prior is None and cfg.cue_injection is False and cfg.num_orientation_bins == 36
    assert Loc3rConfig(camera_prior="poses").camera_feature_dim == 9


@pytest.mark.parametrize(
    "kwargs,absent_heads,absent_losses",
    [
        ({"bev_loss_weight": 0.0}, ["layout_head"], ["loss_bev"]),
        ({"layout_objective": False}, ["layout_head"], ["loss_bev"]),
        ({"orientation_loss_weight": 0.0}, ["orientation_head"], ["loss_ori"]),
        ({"situation_loss_weight": 0.0}, ["position_head", "orientation_head"], ["loss_pos", "loss_ori", "loss_sit"]),
        (
            {"layout_objective": False, "situation_objective": False},
            ["layout_head", "position_head", "orientation_head"],
            ["loss_bev", "loss_pos", "loss_ori", "loss_sit"],
        ),
    ],
)
def test_zero_weight_or_off_objective_is_not_computed(
    tiny_tokenizer, clip_factory, kwargs, absent_heads, absent_losses
):
    model = _model(tiny_tokenizer, "llava_onevision", **kwargs)
    for name in absent_heads:
        assert getattr(model, name) is None
        assert not any(k.startswith(name) for k in model.state_dict())
    out = model(**model.build_processor()(_two_clips(clip_factory, num_frames=2)))
    assert not set(absent_losses) & set(out.losses)
    if not set(out.losses) - {"loss_ce", "loss"}:
        torch.testing.assert_close(out.loss, out.losses["loss_ce"])


def test_missing_situation_token_in_batch_is_a_clear_error(tiny_tokenizer, clip_factory):
    model = _model(tiny_tokenizer, "qwen2_5_vl")
    batch = model.build_processor()(_two_clips(clip_factory, num_frames=2))
    ids = batch["input_ids"].clone()
    ids[1][ids[1] == model.config.pos_token_id] = model.config.pad_token_id
    batch["input_ids"] = ids
    with pytest.raises(ValueError, match=r"batch row\(s\) \[1\].*<Pos>"):
        model(**batch)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_gradient_checkpointing_gives_same_loss_and_gradients(tiny_tokenizer, clip_factory, backbone):
    model = _model(tiny_tokenizer, backbone)
    batch = model.build_processor()(_two_clips(clip_factory, num_frames=2))
    model.train()
    ref = model(**batch)
    ref.loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    # transformers 5.24 renamed it activation_checkpointing_enable; 5.17 (GPU machines) only has the old name
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable()
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = model.adapter.language_model(model.vlm).layers
    assert all(getattr(layer, "gradient_checkpointing", False) for layer in layers)
    out = model(**batch)
    out.loss.backward()
    torch.testing.assert_close(out.loss, ref.loss)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_freeze_vision_tower_keeps_projector_trainable(tiny_tokenizer, backbone):
    model = _model(tiny_tokenizer, backbone)
    frozen = model.freeze_vision_tower()
    assert frozen > 0
    assert all(not p.requires_grad for m in model.adapter.vision_modules(model.vlm) for p in m.parameters())
    assert all(p.requires_grad for m in model.adapter.projector_modules(model.vlm) for p in m.parameters())
    assert all(p.requires_grad for p in model.layout_head.parameters())


def test_attention_implementation_is_logged(tiny_tokenizer, caplog):
    with caplog.at_level(logging.INFO, logger="loc3r.model.modeling_loc3r"):
        _model(tiny_tokenizer, "qwen2_5_vl")
    assert "attention implementation 'sdpa'" in caplog.text


def _plain_backbone_tokenizer(backbone: str) -> PreTrainedTokenizerFast:
    """A tokenizer as a real checkpoint ships it: the backbone's special tokens, none of loc3r's."""
    specials = list(get_backbone(backbone).backbone_special_tokens)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["I am standing in the room. What is on my left? The red wall."] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=specials
    )


@pytest.mark.parametrize("backbone", BACKBONES)
def test_from_backbone_pretrained_loads_a_real_hf_checkpoint_dir(clip_factory, backbone, tmp_path):
    adapter = get_backbone(backbone)
    tok = _plain_backbone_tokenizer(backbone)
    ids = {t: tok.convert_tokens_to_ids(t) for t in adapter.backbone_special_tokens}
    torch.manual_seed(0)
    vlm = adapter.hf_model_class(adapter.tiny_config(len(tok), ids))
    vlm.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "video_preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.4, 0.4, 0.4], "image_std": [0.3, 0.3, 0.3], "size": {"shortest_edge": 3136}})
    )
    old_embeddings = vlm.get_input_embeddings().weight.detach().clone()

    model = Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path, attn_implementation="sdpa")
    assert model.config.backbone == backbone
    # every part runs the implementation asked for: the wrapper, the backbone and its text / vision sub-configs
    parts = model.attention_implementations()
    assert {"loc3r.vlm_config.text_config", "loc3r.vlm_config.vision_config"} <= parts.keys()
    assert set(parts.values()) == {"sdpa"}
    assert {m.config._attn_implementation for m in model.vlm.modules() if isinstance(m, PreTrainedModel)} == {"sdpa"}
    eager = Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path, attn_implementation="eager")
    assert set(eager.attention_implementations().values()) == {"eager"}
    default = Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path)  # HF's default, dispatched too
    assert None not in default.attention_implementations().values()
    vocab = model.tokenizer.get_vocab()
    assert all(t in vocab for t in LOC3R_SPECIAL_TOKENS)
    new_embeddings = model.get_input_embeddings().weight
    assert new_embeddings.shape[0] == len(model.tokenizer) == len(tok) + 3
    torch.testing.assert_close(new_embeddings[: len(old_embeddings)], old_embeddings)  # pretrained rows kept
    assert model.preprocessing["image_mean"] == [0.4, 0.4, 0.4]
    out = model(**model.build_processor()([clip_factory(num_frames=2)]))
    assert torch.isfinite(out.loss)
    with pytest.raises(FileNotFoundError, match="config.json"):
        Loc3rForConditionalGeneration.from_backbone_pretrained(tmp_path / "nope")
