"""A checkpoint folder is self-contained and checked on load (issue 11 part 3): missing processor config, NaN
weights, truncated weights, special-token ids that disagree with the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(["I am standing in the room.", "What is on my left? the sofa"], 300, "qwen2_5_vl")
    path = tmp_path_factory.mktemp("ckpt") / "final"
    Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0).save_pretrained(path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_checkpoint_must_be_self_contained_and_finite(saved_model: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as M

    M.from_pretrained(saved_model)  # the untouched checkpoint loads
    no_proc = _copy(saved_model, tmp_path / "no_proc")
    (no_proc / "loc3r_processor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="loc3r_processor_config.json is missing"):
        M.from_pretrained(no_proc)
    nan = _copy(saved_model, tmp_path / "nan")
    weights = load_file(str(nan / "model.safetensors"))
    name = sorted(k for k in weights if weights[k].is_floating_point())[0]
    weights[name][..., 0] = float("nan")
    save_file(weights, str(nan / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"NaN/inf values in .*{name}"):
        M.from_pretrained(nan)
    cut = _copy(saved_model, tmp_path / "cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut"):
        M.from_pretrained(cut)
    swapped = _copy(saved_model, tmp_path / "swapped")
    config = json.loads((swapped / "config.json").read_text())
    config["pos_token_id"], config["ori_token_id"] = config["ori_token_id"], config["pos_token_id"]
    (swapped / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="field 'pos_token_id'"):
        M.from_pretrained(swapped)


def test_checkpoint_records_its_frame_count(saved_model: Path, tmp_path: Path) -> None:
    from loc3r.apps.infer import Loc3rPredictor
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as M

    model = M.from_pretrained(saved_model)
    model.num_frames = 6  # what training sets (data.num_frames)
    model.save_pretrained(tmp_path / "six")
    assert json.loads((tmp_path / "six" / "loc3r_processor_config.json").read_text())["num_frames"] == 6
    assert M.from_pretrained(tmp_path / "six").num_frames == 6
    assert Loc3rPredictor.from_pretrained(tmp_path / "six").num_frames == 6  # no config.yaml next to it needed
    config = json.loads((tmp_path / "six" / "loc3r_processor_config.json").read_text())
    (tmp_path / "six" / "loc3r_processor_config.json").write_text(json.dumps({**config, "num_frames": "six"}))
    with pytest.raises(ValueError, match="field 'num_frames'"):
        M.from_pretrained(tmp_path / "six")


def test_processor_config_of_another_prompt_format_or_backbone_is_refused(saved_model: Path, tmp_path: Path) -> None:
    """Checked where a checkpoint is loaded (``from_pretrained``, under ``load_model``), naming the file and field."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration as M

    for field, value in (("template_version", "qwen2_5_vl/v0"), ("backbone", "llava_onevision")):
        changed = _copy(saved_model, tmp_path / field)
        path = changed / "loc3r_processor_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
        with pytest.raises(ValueError, match=rf"loc3r_processor_config\.json: field '{field}'"):
            M.from_pretrained(changed)
