"""Anchor supervision targets and the oracle-objects diagnostic input, from SynthRooms scans to the batch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model
from loc3r.benchmarks.synthrooms.reader import build_synth
from loc3r.data.schema import SIDE_ROLES
from loc3r.data.spec import DatasetSpec
from loc3r.model.oracle_tower import ORACLE_BACKGROUND, pad_word_ids, token_object_names
from loc3r.synthrooms.questions import relative_bearing, sector_of
from loc3r.synthrooms.writer import SynthSettings, generate_dataset

SETTINGS = SynthSettings(
    num_scenes=2,
    frames=4,
    width=56,
    height=56,
    seed=5,
    situations_per_scene=6,
    questions_per_situation=1,
    vsi_questions_per_type=1,
    val_fraction=0.0,
    test_fraction=0.0,
    write_video=False,
    novel_view=False,
)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("anchor") / "ds"
    assert not generate_dataset(out, SETTINGS, workers=1, progress=False).failed
    return out


def _situated(root: Path):
    return build_synth(DatasetSpec(kind="synth", root=str(root), split="train"), num_frames=4, tasks=("situated",))


def test_synthrooms_annotations_name_anchor_and_faced_objects_by_role(synth_root):
    anns = json.loads((synth_root / "sqa3d" / "v1_balanced_sqa_annotations_train_scannetv2.json").read_text())
    questions = json.loads((synth_root / "sqa3d" / "v1_balanced_questions_train_scannetv2.json").read_text())
    text = {q["question_id"]: q["situation"] for q in questions["questions"]}
    assert anns["annotations"]
    for a in anns["annotations"]:
        assert len(a["faced_instances"]) == 1 and 1 <= len(a["anchor_instances"]) <= 2
        situation = text[a["question_id"]]
        meta = json.loads((synth_root / "scans" / a["scene_id"] / "meta_info.json").read_text())[a["scene_id"]]
        category = {b["instance_id"]: c for c, boxes in meta["object_bbox"].items() for b in boxes}
        # "facing the <name>" names the faced object; the text starts with where the agent stands
        assert category[a["faced_instances"][0]] in situation.split("facing the ", 1)[1].split(",")[0]
        assert all(category[i] in situation.split("facing")[0] for i in a["anchor_instances"])
        # the side objects by sector: named after "with", in that sector seen from the true pose
        pose = np.array([a["position"]["x"], a["position"]["y"]])
        yaw = 2 * math.atan2(a["rotation"]["_z"], a["rotation"]["_w"])
        boxes = [b for group in meta["object_bbox"].values() for b in group]
        centre = {b["instance_id"]: np.array(b["centroid"][:2]) for b in boxes}
        sides = [(sector, i) for sector in SIDE_ROLES for i in a[f"{sector}_instances"]]
        for sector, i in sides:
            assert category[i] in situation.split("with", 1)[1]
            assert sector_of(float(relative_bearing(pose, yaw, centre[i][None])[0])) == sector
        named = a["anchor_instances"] + a["faced_instances"] + [i for _, i in sides]
        assert sorted(named) == sorted(a["referenced_instances"])


def test_anchor_tokens_are_the_tokens_that_show_the_named_objects(synth_root, tiny_tokenizer):
    ds = _situated(synth_root)
    sample = ds[0]
    assert sample.referents and sample.pixel_instances.shape == (4, 56, 56) and sample.instance_names
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", anchor_loss_weight=1.0)
    batch = model.build_processor()([sample])
    vision = batch["input_ids"] == model.video_token_id
    anchor, faced = batch["anchor_tokens"], batch["faced_tokens"]
    assert not (anchor & ~vision).any() and not (faced & ~vision).any()  # only vision tokens are targets
    # recompute by hand: a token shows an object when >= 25 % of its footprint's pixels are that object's
    meta = batch.metadata[0]
    inst = sample.pixel_instances
    expected = []
    h, w = inst.shape[1:]
    for seg in meta.segments:
        for r in range(seg.grid_h):
            for c in range(seg.grid_w):
                y0, y1 = r * h // seg.grid_h, (r + 1) * h // seg.grid_h
                x0, x1 = c * w // seg.grid_w, (c + 1) * w // seg.grid_w
                pix = np.concatenate([inst[f, y0:y1, x0:x1].ravel() for f in seg.frame_indices])
                expected.append(bool(np.isin(pix, sample.referents["anchor"]).mean() >= 0.25))
        expected.extend([False] * seg.extra_tokens)
    assert anchor[0][vision[0]].tolist() == expected


def test_the_solve_supervises_the_side_slots_on_the_tokens_of_each_sector(synth_root, tiny_tokenizer):
    samples = [s for s in _situated(synth_root) if any(s.referents.get(role) for role in SIDE_ROLES)][:2]
    assert samples and all(set(s.referents) == {"anchor", "faced", *SIDE_ROLES} for s in samples)
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", anchor_loss_weight=1.0,
                       pointer_position="solve", vision_input="oracle_layout")  # fmt: skip
    batch = model.build_processor()(samples)
    assert batch["side_labelled"].all()
    vision = batch["input_ids"] == model.video_token_id
    # on the layout input token k is object k (the first objects, up to the clip's token count): one token each
    for role in SIDE_ROLES:
        assert not (batch[f"{role}_tokens"] & ~vision).any()
        for b, sample in enumerate(samples):
            assert int(batch[f"{role}_tokens"][b].sum()) <= len(sample.referents[role])
    assert any(batch[f"{role}_tokens"].any() for role in SIDE_ROLES)
    out = model(**batch)
    assert out.side_attention.shape[:2] == (2, 3) and torch.isfinite(out.losses["loss_anchor"])
    out.loss.backward()
    assert float(model.pointer_head.side_gate.fc2.weight.grad.abs().sum()) > 0
    # the mean rule has no side inputs
    mean = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", anchor_loss_weight=1.0)
    assert "left_tokens" not in mean.build_processor()(samples)


def test_model_without_anchor_supervision_has_no_anchor_inputs(synth_root, tiny_tokenizer):
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer")
    batch = model.build_processor()([_situated(synth_root)[0]])
    assert "anchor_tokens" not in batch
    assert "loss_anchor" not in model(**batch).losses


def test_token_object_names_take_the_majority_object_or_the_room():
    shares = np.array([[1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [0.5, 0.3, 0.2], [0.9, 0.1, 0.0]])
    names = token_object_names(shares, {1: "black table", 2: "white chair"})
    assert names == [ORACLE_BACKGROUND, "black table", "black table", ORACLE_BACKGROUND]


def test_oracle_objects_input_replaces_the_tower_with_names_and_true_points(synth_root, tiny_tokenizer):
    torch.manual_seed(0)
    model = tiny_model(
        tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", vision_input="oracle_objects", anchor_loss_weight=1.0
    )
    samples = [_situated(synth_root)[i] for i in range(2)]
    batch = model.build_processor()(samples)
    vision = batch["input_ids"] == model.video_token_id
    ids = batch["oracle_word_ids"][vision]
    assert (ids[:, 0] >= 0).all()  # every vision token has a name
    # the tower is not run: scrambled pixels give the same outputs
    with torch.no_grad():
        ref = model(**batch)
        scrambled = dict(batch)
        scrambled["pixel_values_videos"] = torch.randn_like(batch["pixel_values_videos"])
        again = model(**scrambled)
    torch.testing.assert_close(ref.loss, again.loss)
    # the position features are fixed (never trained, seeded: two models agree) and a token's true point moves them
    assert not any(p.requires_grad for p in model.oracle_position.parameters())
    other = tiny_model(tiny_tokenizer, "qwen2_5_vl", vision_input="oracle_objects")
    torch.testing.assert_close(other.oracle_position.fc2.weight, model.oracle_position.fc2.weight)
    with torch.no_grad():
        moved = dict(batch)
        moved["oracle_points"] = batch["oracle_points"] + 1.0
        assert not torch.allclose(model(**batch).position_mean, model(**moved).position_mean)
    # predict works with the oracle input (eval batches carry it too)
    preds = model.predict(model.build_processor(mode="eval")(samples), max_new_tokens=1)
    assert all(np.isfinite(p.position_bev).all() and math.isfinite(p.yaw_bev) for p in preds)


def test_oracle_input_without_instance_masks_is_a_clear_error(tiny_tokenizer, clip_factory):
    from loc3r.data.schema import SampleError

    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", vision_input="oracle_objects")
    with pytest.raises(SampleError, match="oracle_objects' needs fields 'pixel_instances'"):
        model.build_processor()([clip_factory(num_frames=4, sample_id="x")])


def test_oracle_layout_input_gives_each_object_of_the_clip_one_token(synth_root, tiny_tokenizer):
    """``oracle_layout``: token k = object k (name, mean BEV point of its pixels), the rest "room" with no point; the
    anchor targets mark exactly the named objects' tokens."""
    from loc3r.core.geometry import anchor_frame

    model = tiny_model(
        tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", vision_input="oracle_layout", anchor_loss_weight=1.0
    )
    sample = _situated(synth_root)[0]
    batch = model.build_processor()([sample])
    vision = batch["input_ids"][0] == model.video_token_id
    inst = np.asarray(sample.pixel_instances)
    n = int(vision.sum())
    seen = [int(i) for i in np.unique(inst) if i > 0]
    ids = seen[:n]  # a clip with more objects than tokens (here 11 objects, 8 tokens) keeps the first ones
    assert len(ids) > 0
    # the layout targets are the objects' centres (the masks and points share a resolution in SynthRooms)
    bev = anchor_frame(np.asarray(sample.poses)[0]).points_to_bev(np.asarray(sample.points, dtype=np.float64))
    valid = batch["layout_valid"][0][vision]
    assert valid[: len(ids)].all() and not valid[len(ids) :].any()
    for k, iid in enumerate(ids):
        on = (inst == iid) & np.isfinite(bev).all(-1)
        expected = torch.tensor(bev[on][:, :2].mean(0), dtype=torch.float32)
        torch.testing.assert_close(batch["layout_targets"][0][vision][k], expected, atol=1e-4, rtol=0)
    # names: object k's words on token k (the background's "room" on none of them)
    room = torch.tensor(pad_word_ids([model.build_processor()._encode_text(" " + ORACLE_BACKGROUND)])[0])
    words = batch["oracle_word_ids"][0][vision]
    assert all(torch.equal(words[j], room) for j in range(len(ids), n))
    assert not any(torch.equal(words[k], room) for k in range(len(ids)))
    # anchor / faced targets: the tokens of the named instances, nothing else
    for role in ("anchor", "faced"):
        marked = torch.nonzero(batch[f"{role}_tokens"][0][vision]).flatten().tolist()
        assert marked == sorted(ids.index(i) for i in sample.referents[role] if i in ids)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
    # fewer objects than tokens: the rest show the room and have no point
    sample.pixel_instances = np.where(np.isin(inst, ids[:2]), inst, 0)
    batch = model.build_processor()([sample])
    valid, words = batch["layout_valid"][0][vision], batch["oracle_word_ids"][0][vision]
    assert valid.tolist() == [True, True] + [False] * (n - 2)
    assert all(torch.equal(words[j], room) for j in range(2, n)) and not torch.equal(words[1], room)


def test_oracle_layout_without_depth_is_a_clear_error(synth_root, tiny_tokenizer):
    from loc3r.data.schema import SampleError

    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", vision_input="oracle_layout")
    sample = _situated(synth_root)[0]
    sample.points = None
    with pytest.raises(SampleError, match="oracle_layout' needs fields 'pixel_instances', 'points'"):
        model.build_processor()([sample])


def test_oracle_names_share_the_situation_texts_token_ids(synth_root, tiny_tokenizer):
    """A named object's oracle token carries the ids its name has INSIDE the situation text (byte-level BPE gives a
    word after a space other ids than at the start of a text: "Ġtable" vs "table"). Both oracle inputs name their
    tokens through ``oracle_targets``; the layout one shows every object, so every named object is checked."""
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", vision_input="oracle_layout")
    processor = model.build_processor()
    checked = 0
    for sample in _situated(synth_root):
        batch = processor([sample])
        ids = batch["input_ids"][0].tolist()
        vision = batch["input_ids"][0] == model.video_token_id
        token_names = {tuple(row[row >= 0].tolist()) for row in batch["oracle_word_ids"][0][vision]}
        for iid in sample.referents["anchor"] + sample.referents["faced"]:
            name = sample.instance_names[iid]
            run = processor.tokenizer(" " + name, add_special_tokens=False)["input_ids"]
            if f" {name}" in sample.situation_text and tuple(run) in token_names:
                assert any(ids[i : i + len(run)] == run for i in range(len(ids))), (name, run)
                checked += 1
    assert checked > 0


def test_malformed_side_objects_name_the_record_and_the_field():
    from loc3r.benchmarks.sqa3d.reader import _referents
    from loc3r.data.schema import SampleError

    assert _referents({"anchor_instances": [1], "left_instances": []}, "a.json record 3") == {"anchor": [1], "left": []}
    for bad in ("x", [1.5], [True], None):
        item = {"anchor_instances": [1], "behind_instances": bad}
        if bad is None:
            assert "behind" not in _referents(item, "a.json record 3")  # absent: an older dataset, not an error
            continue
        with pytest.raises(SampleError, match=r"a.json record 3: field 'behind_instances'"):
            _referents(item, "a.json record 3")
