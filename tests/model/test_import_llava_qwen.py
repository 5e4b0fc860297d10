"""``loc3r import`` on tiny checkpoints written in LLaVA-NeXT's ``llava_qwen`` key layout.

Each test writes its source checkpoint itself: a tiny HF ``LlavaOnevisionForConditionalGeneration`` (2-layer Qwen2,
2-layer SigLIP) with random weights, saved under the ORIGINAL LLaVA-NeXT names (``model.layers.N``,
``model.vision_tower.vision_tower.vision_model.*``, ``model.mm_projector.0/2``, ``model.image_newline``,
``lm_head.weight``; the table below is the test's own, written from LLaVA-NeXT's ``llava_arch.py`` /
``builder.py``), sharded with a ``model.safetensors.index.json``, a llava_qwen ``config.json``, a Qwen-style tokenizer
without ``<video>``, and head tensors under names loc3r does not know (as the published Loc3R-VLM weights have).
The HF model built from the same weights is the reference: the imported loc3r model must give identical logits.
The writer is ``conftest.write_llava_qwen_checkpoint`` (docs/reproduce.md's test imports stand-ins with it too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from conftest import LLAVA_HEAD_KEYS, LLAVA_HEAD_MAP, write_llava_qwen_checkpoint
from loc3r.cli import main

HEAD_KEYS = LLAVA_HEAD_KEYS
HEAD_MAP = LLAVA_HEAD_MAP
_write_source = write_llava_qwen_checkpoint


def _import(capsys: pytest.CaptureFixture[str], source: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["import", str(source), "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _loc3r_logits(model: Any, ids: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    embeds, _ = model.embed_inputs(ids, {"pixel_values_videos": pixels})
    positions = torch.arange(ids.shape[1])[None, None]
    hidden, _ = model.decode(embeds, torch.ones_like(ids), positions)
    return model.get_output_embeddings()(hidden)


def _inputs(model: Any, frames: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    tok = model.tokenizer
    video = tok.convert_tokens_to_ids("<video>")
    per_frame = 16  # 112 / 14 = 8 patches per side -> 2x2 bilinear pooling -> 4 x 4
    head = tok("<|im_start|>user ")["input_ids"]
    tail = tok("\nWhat is on my left?<|im_end|><|im_start|>assistant\n")["input_ids"]
    ids = torch.tensor([head + [video] * (frames * per_frame + 1) + tail])
    pixels = torch.randn(1, frames, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    return ids, pixels


def test_import_round_trip_identical_logits_and_lists_unknown_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    source, reference, tensors = _write_source(tmp_path / "src")
    out = tmp_path / "imported"
    code, printed, err = _import(capsys, source, out)
    assert code == 0, err
    # every unknown key is printed with its shape, and is in the JSON report
    report = json.loads((out / "import_report.json").read_text())
    assert sorted(u["key"] for u in report["unknown"]) == sorted(HEAD_KEYS)
    for key, shape in HEAD_KEYS.items():
        assert f"{key}  {list(shape)}" in printed
    assert {u["shard"] for u in report["unknown"]} <= {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)}
    initialised = {i["key"] for i in report["initialised"]}
    assert "position_head.mlp.fc1.weight" in initialised and "position_head.mlp.fc1.weight" in printed
    assert report["tokens_added"] == ["<video>", "<image>", "<Pos>", "<Ori>", "<Cam>"]
    assert report["embedding_rows"]["imported"] == report["embedding_rows"]["checkpoint"]  # fit the spare rows
    assert not [w for w in report["warnings"] if w.startswith("token layout")]

    model = Loc3rForConditionalGeneration.from_pretrained(out).eval()  # strict: every weight present
    assert model.config.backbone == "llava_onevision" and model.num_frames == 32
    assert model.tokenizer.convert_tokens_to_ids("<video>") == reference.config.video_token_id
    text_config = model.config.vlm_config.text_config
    assert text_config.rope_parameters["rope_theta"] == 50000.0
    # the vision tower, projector, image_newline, embeddings and LM head are the source tensors, same shapes
    own = model.state_dict()
    pairs = {
        "model.image_newline": "vlm.model.image_newline",
        "model.mm_projector.0.weight": "vlm.model.multi_modal_projector.linear_1.weight",
        "model.mm_projector.2.bias": "vlm.model.multi_modal_projector.linear_2.bias",
        "model.embed_tokens.weight": "vlm.model.language_model.embed_tokens.weight",
        "model.layers.1.mlp.down_proj.weight": "vlm.model.language_model.layers.1.mlp.down_proj.weight",
        "lm_head.weight": "vlm.lm_head.weight",
    }
    vision_params = {k: v for k, v in model.vlm.model.vision_tower.state_dict().items()}
    for rel, value in vision_params.items():
        src = "model.vision_tower.vision_tower.vision_model." + rel.removeprefix("vision_model.")
        assert torch.equal(value, tensors[src]), rel
    assert len(vision_params) == sum(k.startswith("model.vision_tower.") for k in tensors)
    for src, dst in pairs.items():
        assert own[dst].shape == tensors[src].shape and torch.equal(own[dst], tensors[src]), dst
    # round trip: the HF model built from the same weights and the imported loc3r model give identical logits
    ids, pixels = _inputs(model)
    with torch.no_grad():
        expected = reference(input_ids=ids, pixel_values_videos=pixels).logits
        got = _loc3r_logits(model, ids, pixels)
    assert got.shape == expected.shape and torch.equal(got, expected)  # bit for bit (same ops, same order)
    # a model whose image_newline were dropped would not match (the test can fail)
    with torch.no_grad():
        model.vlm.model.image_newline.zero_()
        assert not torch.allclose(_loc3r_logits(model, ids, pixels), expected, atol=1e-3)


def test_map_places_head_keys_and_bad_rules_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    source, _, tensors = _write_source(tmp_path / "src")
    rules = tmp_path / "heads.txt"
    rules.write_text("# Loc3R-VLM head keys\n" + "\n".join(HEAD_MAP[1:]) + "\n")
    out = tmp_path / "mapped"
    code, printed, err = _import(capsys, source, out, "--map", HEAD_MAP[0], "--map-file", str(rules))
    assert code == 0, err
    report = json.loads((out / "import_report.json").read_text())
    assert report["unknown"] == [] and report["initialised"] == []
    assert {m["source"] for m in report["mapped"]} == set(HEAD_KEYS)
    model = Loc3rForConditionalGeneration.from_pretrained(out)
    own = model.state_dict()
    assert torch.equal(own["position_head.mlp.fc1.weight"], tensors["model.loc_heads.pos.0.weight"])
    assert torch.equal(own["orientation_head.mlp.fc2.bias"], tensors["model.loc_heads.ori.2.bias"])
    assert torch.equal(own["layout_head.proj.weight"], tensors["model.loc_heads.bev.weight"])
    assert "position_head.mlp.fc1.weight" in printed
    # a JSON mapping file works the same way
    as_json = tmp_path / "heads.json"
    as_json.write_text(json.dumps(dict(rule.split("=", 1) for rule in HEAD_MAP)))
    code, _, err = _import(capsys, source, tmp_path / "mapped-json", "--map-file", str(as_json))
    assert code == 0, err
    # a target the model does not have, and a shape that does not fit, are errors naming the rule / key
    nope = r"model\.loc_heads\.pos\.0\.=position_head.nope."
    code, _, err = _import(capsys, source, tmp_path / "bad1", "--map", nope)
    assert code == 2 and "'position_head.nope.bias'" in err and "--map" in err
    too_wide = r"model\.loc_heads\.ori\.2\.=position_head.mlp.fc2."
    code, _, err = _import(capsys, source, tmp_path / "bad2", "--map", too_wide)
    assert code == 2 and "model.loc_heads.ori.2.bias" in err and "[36]" in err
    code, _, err = _import(capsys, source, tmp_path / "bad3", "--map", "model.loc_heads(=x")
    assert code == 2 and "regular expression" in err
    # refusing to write over an existing checkpoint
    code, _, err = _import(capsys, source, out)
    assert code == 2 and "already holds a checkpoint" in err


def test_bf16_tied_embeddings_and_grown_vocabulary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Qwen2-0.5B-style checkpoint: bf16, tied LM head not stored, no spare embedding rows."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    source, reference, tensors = _write_source(
        tmp_path / "src", tie=True, dtype=torch.bfloat16, spare_rows=0, heads=False
    )
    out = tmp_path / "imported"
    code, printed, err = _import(capsys, source, out)
    assert code == 0, err
    with safe_open(str(next(out.glob("*.safetensors"))), "pt") as handle:
        dtypes = {handle.get_tensor(k).dtype for k in handle.keys()}  # noqa: SIM118 - safe_open is not a dict
    assert dtypes == {torch.bfloat16}  # the checkpoint's dtype is kept, also for the new heads
    report = json.loads((out / "import_report.json").read_text())
    assert report["dtype"] == "bfloat16" and report["tied_word_embeddings"]
    rows = tensors["model.embed_tokens.weight"].shape[0]
    assert report["embedding_rows"] == {"checkpoint": rows, "imported": rows + 5, "tokenizer": rows + 5}
    model = Loc3rForConditionalGeneration.from_pretrained(out).eval()
    assert model.dtype == torch.bfloat16
    embed = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight.data_ptr() == embed.data_ptr()  # still tied
    assert torch.equal(embed[:rows], tensors["model.embed_tokens.weight"])
    mean = tensors["model.embed_tokens.weight"].float().mean(0).to(torch.bfloat16)
    assert all(torch.equal(embed[r], mean) for r in range(rows, rows + 5))  # new rows = mean of the old
    # same logits as the bf16 HF reference on the tokens both know (the reference has no rows for the new ones)
    ids, pixels = _inputs(model)
    with torch.no_grad():
        reference.resize_token_embeddings(rows + 5)  # room for <video>'s id; its embedding is replaced by vision
        expected = reference(input_ids=ids, pixel_values_videos=pixels.to(torch.bfloat16)).logits[..., :rows]
        got = _loc3r_logits(model, ids, pixels.to(torch.bfloat16))[..., :rows]
    torch.testing.assert_close(got.float(), expected.float(), rtol=0, atol=1e-2)


def test_token_layout_differences_are_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LLaVA-Video as lmms-eval runs it (average pooling, a newline per grid row) is not loc3r's layout: warned."""
    layout = {"mm_newline_position": "grid", "mm_spatial_pool_mode": "average"}
    source, _, _ = _write_source(tmp_path / "src", heads=False, layout=layout)
    code, printed, err = _import(capsys, source, tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "import_report.json").read_text())
    assert report["layout"]["mm_newline_position"] == {"checkpoint": "grid", "loc3r": "one_token", "same": False}
    assert report["layout"]["mm_spatial_pool_stride"]["same"]
    warned = [w for w in report["warnings"] if w.startswith("token layout")]
    assert len(warned) == 2 and all(f"warning: {w}" in printed for w in warned)


def test_missing_or_truncated_shards_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, _, _ = _write_source(tmp_path / "src", heads=False)
    index = json.loads((source / "model.safetensors.index.json").read_text())
    shard = source / "model-00002-of-00003.safetensors"
    # an index naming a file that is not there
    data = shard.read_bytes()
    shard.unlink()
    code, _, err = _import(capsys, source, tmp_path / "o1")
    assert code == 2 and "model-00002-of-00003.safetensors" in err and "does not exist" in err
    # a truncated shard
    shard.write_bytes(data[: len(data) // 2])
    code, _, err = _import(capsys, source, tmp_path / "o2")
    assert code == 2 and "model-00002-of-00003.safetensors" in err and "truncated" in err
    shard.write_bytes(data)
    # an index naming a tensor its shard does not hold
    key = next(iter(index["weight_map"]))
    index["weight_map"]["model.layers.9.extra.weight"] = index["weight_map"][key]
    (source / "model.safetensors.index.json").write_text(json.dumps(index))
    code, _, err = _import(capsys, source, tmp_path / "o3")
    assert code == 2 and "model.layers.9.extra.weight" in err and index["weight_map"][key] in err
    del index["weight_map"]["model.layers.9.extra.weight"]
    (source / "model.safetensors.index.json").write_text(json.dumps(index))
    # a backbone tensor missing altogether (no LM head, untied)
    del index["weight_map"]["lm_head.weight"]
    (source / "model.safetensors.index.json").write_text(json.dumps(index))
    code, _, err = _import(capsys, source, tmp_path / "o4")
    assert code == 2 and "lm_head" in err and "tie_word_embeddings" in err
    # not a llava_qwen config
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "model_type": "qwen2", "architectures": []}))
    code, _, err = _import(capsys, source, tmp_path / "o5")
    assert code == 2 and "config.json" in err and "model_type" in err
