"""Pointer situation heads (ours, loc3r.objectives.pointer): geometry by hand, then inside the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import tiny_model
from loc3r.model.configuration_loc3r import Loc3rConfig
from loc3r.objectives.pointer import (
    PointerSituationHeads,
    TextInputs,
    attention_mass_loss,
    bearing_distribution,
    pad_rows,
    pointer_position,
    situation_text_mask,
)
from loc3r.objectives.situation import decode_orientation, orientation_kl

# A hand-built room in BEV: a bed, a table, a window and a door (metres).
OBJECTS = torch.tensor([[2.0, 1.0], [-1.0, 0.5], [0.5, -2.0], [-2.0, -1.5]])


def _one_hot_attention(index: int, n: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor([index]), n).float()


def test_pointer_position_is_the_attended_tokens_mean_plus_offset():
    attention = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    position = pointer_position(attention, OBJECTS[None], torch.tensor([[0.1, -0.2]]))
    torch.testing.assert_close(position, torch.tensor([[0.5 + 0.1, 0.75 - 0.2]]))


@pytest.mark.parametrize("stand, face", [(0, 2), (1, 3), (3, 0), (2, 1)])
def test_bearing_distribution_decodes_to_the_bearing_of_the_faced_object(stand, face):
    position = OBJECTS[stand][None] + torch.tensor([[0.3, 0.0]])
    probs = bearing_distribution(_one_hot_attention(face), OBJECTS[None], position, num_bins=36, sigma_bins=2.0)
    assert torch.allclose(probs.sum(-1), torch.ones(1))
    delta = OBJECTS[face] - position[0]
    expected = math.atan2(float(delta[1]), float(delta[0]))
    yaw, confidence = decode_orientation(torch.log(probs))
    assert abs((float(yaw) - expected + math.pi) % (2 * math.pi) - math.pi) < math.radians(1.0)
    assert float(confidence) > 0.8
    # the mixture of one kernel IS the paper's orientation target: KL exactly ~0 at the true bearing
    assert float(orientation_kl(torch.log(probs), torch.tensor([expected]))) < 1e-5


def _hand_built_heads(stand: int, face: int) -> PointerSituationHeads:
    """Heads whose queries pick token ``stand`` (<Pos>) and ``face`` (<Ori>) by construction, not by training.

    Hidden states are 8-D: dims 0-3 one-hot object identity of a vision token, dims 4-7 the same code for what the
    <Pos> / <Ori> state asks for. Keys copy the identity, queries copy the request, scaled so softmax is ~one-hot.
    """
    heads = PointerSituationHeads(hidden_size=8, num_bins=36, key_dim=4)
    with torch.no_grad():
        for key, query in ((heads.pos_key, heads.pos_query), (heads.ori_key, heads.ori_query)):
            key.weight.zero_(), key.bias.zero_(), query.weight.zero_(), query.bias.zero_()
            key.weight[:, :4] = torch.eye(4) * 10.0
            query.weight[:, 4:] = torch.eye(4) * 10.0
    return heads


@pytest.mark.parametrize("stand, face", [(0, 2), (3, 1)])
def test_pointer_heads_read_position_and_bearing_from_the_scene_without_training(stand, face):
    heads = _hand_built_heads(stand, face)
    tokens = torch.zeros(1, 4, 8)
    tokens[0, :, :4] = torch.eye(4)
    pos_state, ori_state = torch.zeros(1, 8), torch.zeros(1, 8)
    pos_state[0, 4 + stand] = 1.0
    ori_state[0, 4 + face] = 1.0
    out = heads(pos_state, ori_state, tokens, OBJECTS[None], torch.ones(1, 4, dtype=torch.bool))
    # position head: the standing object's BEV position (the offset MLP starts at exactly 0)
    torch.testing.assert_close(out["position_mean"], OBJECTS[stand][None], atol=1e-3, rtol=0)
    # orientation head: the bearing from there to the faced object
    delta = OBJECTS[face] - OBJECTS[stand]
    yaw, _ = decode_orientation(out["orientation_logits"])
    assert abs((float(yaw) - math.atan2(float(delta[1]), float(delta[0])) + math.pi) % (2 * math.pi) - math.pi) < 0.02
    # a rigid motion of the whole map moves the position with it and turns the yaw by the same angle
    rot = torch.tensor([[math.cos(1.0), -math.sin(1.0)], [math.sin(1.0), math.cos(1.0)]])
    moved = OBJECTS @ rot.T + torch.tensor([3.0, -1.0])
    out2 = heads(pos_state, ori_state, tokens, moved[None], torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(out2["position_mean"], moved[stand][None], atol=1e-3, rtol=0)
    yaw2, _ = decode_orientation(out2["orientation_logits"])
    assert abs((float(yaw2) - float(yaw) - 1.0 + math.pi) % (2 * math.pi) - math.pi) < 0.02


def _text_reading_heads(matches_names: bool) -> PointerSituationHeads:
    """Hidden size 12: dims 0-3 an object's name (one-hot, on vision tokens AND on the text word naming it), dims 4-5
    a word's role (4 = "stands at", 5 = "faces"), dims 6-7 mark the <Pos> / <Ori> states. Each head's own query picks
    the words of its role; the word query maps a name to the vision key of that name (``names``: the key projection
    itself, applied to the word's input embedding)."""
    heads = PointerSituationHeads(hidden_size=12, num_bins=36, key_dim=4, reads_text=True, matches_names=matches_names)
    with torch.no_grad():
        for p in heads.parameters():
            p.zero_()
        heads.log_scale.fill_(math.log(40.0))
        for head, (own, state_dim, role_dim) in enumerate(((heads.pos_query, 6, 4), (heads.ori_query, 7, 5))):
            own.weight[0, state_dim] = 1.0  # the role query ...
            heads.text_hops[head][0].weight[0, role_dim] = 1.0  # ... matches the words of that role
            if not matches_names:
                heads.text_hops[head][1].weight[:, :4] = torch.eye(4)  # a word's name -> the vision key of that name
        for key in (heads.pos_key, heads.ori_key):
            key.weight[:, :4] = torch.eye(4)
    return heads


@pytest.mark.parametrize("query", ["text", "names"])
@pytest.mark.parametrize("stand, face", [(0, 2), ((1, 3), 0)])
def test_text_reading_pointer_finds_the_named_objects_without_training(stand, face, query):
    """The two-hop query: "I stand at <stand> facing <face>" in the text's words, four named objects on the vision
    tokens; the position is the named object's (or the mean of two named objects'), the yaw the bearing to the faced
    one — through the arithmetic, with hand-set weights, no training. ``names``: the words' input embeddings carry
    only the name (their states carry the role too), and the name match is the keys' own projection."""
    stand = (stand,) if isinstance(stand, int) else stand
    heads = _text_reading_heads(matches_names=query == "names")
    tokens = torch.zeros(1, 4, 12)
    tokens[0, :, :4] = torch.eye(4)
    words = [(obj, 4) for obj in stand] + [(face, 5), (None, None)]  # plus one word that names nothing
    states, embeds = torch.zeros(1, len(words), 12), torch.zeros(1, len(words), 12)
    for j, (obj, role) in enumerate(words):
        if obj is not None:
            states[0, j, obj], states[0, j, role], embeds[0, j, obj] = 1.0, 1.0, 1.0
    if query == "names":
        states[..., :4] = 0.0  # the states know the role only: the name must come from the embeddings
    text = TextInputs(states, torch.ones(1, len(words)).bool(), embeds if query == "names" else None)
    pos_state, ori_state = torch.zeros(1, 12), torch.zeros(1, 12)
    pos_state[0, 6], ori_state[0, 7] = 1.0, 1.0
    mask = torch.ones(1, 4, dtype=torch.bool)
    out = heads(pos_state, ori_state, tokens, OBJECTS[None], mask, None, None, text)
    torch.testing.assert_close(out["position_mean"], OBJECTS[list(stand)].mean(0, keepdim=True), atol=1e-3, rtol=0)
    delta = OBJECTS[face] - OBJECTS[list(stand)].mean(0)
    yaw, _ = decode_orientation(out["orientation_logits"])
    assert abs((float(yaw) - math.atan2(float(delta[1]), float(delta[0])) + math.pi) % (2 * math.pi) - math.pi) < 0.02
    assert float(out["orientation_attention"][0, face]) > 0.99
    with pytest.raises(ValueError, match="situation text"):
        heads(pos_state, ori_state, tokens, OBJECTS[None], mask)
    if query == "names":
        with pytest.raises(ValueError, match="embeddings"):
            heads(pos_state, ori_state, tokens, OBJECTS[None], mask, None, None, TextInputs(states, text.mask))


def test_situation_text_mask_is_between_the_video_and_pos():
    ids = torch.tensor([[1, 5, 5, 2, 3, 7, 8, 4], [0, 5, 2, 0, 3, 7, 8, 0]])  # 5 = vision, 7 = <Pos>, 0 = pad
    got = situation_text_mask(ids, ids == 5, ids == 7, pad_token_id=0)
    assert got.tolist() == [
        [False, False, False, True, True, False, False, False],
        [False, False, True, False, True, False, False, False],
    ]


def test_padding_never_receives_attention_and_mass_loss_is_minus_log_mass():
    flat = torch.arange(5, dtype=torch.float32)[:, None].expand(5, 8).clone()
    padded, mask = pad_rows(flat, [3, 2])
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    heads = PointerSituationHeads(hidden_size=8, num_bins=36, key_dim=4)
    xy = torch.randn(2, 3, 2)
    out = heads(torch.randn(2, 8), torch.randn(2, 8), padded, xy, mask)
    assert float(out["position_attention"][1, 2]) == 0.0 and float(out["orientation_attention"][1, 2]) == 0.0
    attention = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    targets = torch.tensor([[False, True, True], [False, False, False]])
    loss_sum, rows = attention_mass_loss(attention, targets)
    assert int(rows) == 1
    torch.testing.assert_close(loss_sum, torch.tensor(-math.log(0.8)))


def test_config_rejects_an_unknown_head_type():
    with pytest.raises(ValueError, match="situation_head"):
        Loc3rConfig(situation_head="transformer")


@pytest.mark.parametrize("backbone", ["qwen2_5_vl", "llava_onevision"])
def test_model_with_pointer_heads_trains_and_predicts(tiny_tokenizer, clip_factory, backbone):
    torch.manual_seed(0)
    model = tiny_model(tiny_tokenizer, backbone, situation_head="pointer", situation_loss_weight=1.0)
    assert model.position_head is None and model.orientation_head is None and model.pointer_head is not None
    assert model.layout_head is not None  # the pointer reads it even without the layout objective
    clips = [
        clip_factory(num_frames=4, sample_id="a", agent_position=(1.0, -0.5, 0.0), agent_yaw=2.0),
        clip_factory(num_frames=4, sample_id="b", agent_position=(-1.2, 1.0, 0.0), agent_yaw=-1.0, start_yaw=1.3),
    ]
    batch = model.build_processor()(clips)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    history = []
    for _ in range(40):
        out = model(**batch)
        assert set(out.losses) == {"loss_ce", "loss_bev", "loss_pos", "loss_ori", "loss_sit", "loss"}
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append({k: float(v) for k, v in out.losses.items()})
    assert history[-1]["loss_pos"] < history[0]["loss_pos"] - 0.5
    assert history[-1]["loss_bev"] < history[0]["loss_bev"] - 0.5  # the map the pointer reads is learned
    # orientation can only point where the map has tokens: on two box-room clips it must at least not diverge
    assert history[-1]["loss_ori"] < 1.2 * history[0]["loss_ori"]
    predictions = model.predict(model.build_processor(mode="eval")(clips), max_new_tokens=2)
    for pred in predictions:
        assert pred.position_bev.shape == (2,) and np.isfinite(pred.position_bev).all()
        assert pred.yaw_probabilities.shape == (36,) and abs(pred.yaw_probabilities.sum() - 1) < 1e-4
        assert pred.layout_mean is not None


@pytest.mark.parametrize("query, keys", [("text", "final"), ("state", "input"), ("text", "input"), ("names", "input")])
def test_pointer_query_and_key_sources_train_and_predict_with_a_video_prefix(tiny_tokenizer, clip_factory, query, keys):
    """Every pointer_query / pointer_keys pair: the situation losses fall on one clip, and ``predict`` on a cached
    video prefix (``encode_prefix``: the keys of ``"input"`` come from the prefix's stored input embeddings) gives the
    same position and yaw as on the whole prompt."""
    torch.manual_seed(0)
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", situation_loss_weight=1.0,
                       pointer_query=query, pointer_keys=keys)  # fmt: skip
    clip = clip_factory(num_frames=4, sample_id="a", agent_position=(1.0, -0.5, 0.0), agent_yaw=2.0)
    batch = model.build_processor()([clip])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    first = last = None
    for _ in range(15):
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        first = first if first is not None else float(out.losses["loss_sit"])
        last = float(out.losses["loss_sit"])
    assert last < first
    model.eval()
    eval_batch = model.build_processor(mode="eval")([clip])
    full = model.predict(eval_batch, max_new_tokens=0)[0]
    cached = model.predict(eval_batch, max_new_tokens=0, prefix=model.encode_prefix(eval_batch))[0]
    np.testing.assert_allclose(cached.position_bev, full.position_bev, atol=1e-4)
    np.testing.assert_allclose(cached.yaw_probabilities, full.yaw_probabilities, atol=1e-4)


def test_config_rejects_unknown_pointer_sources():
    with pytest.raises(ValueError, match="pointer_keys"):
        Loc3rConfig(pointer_keys="middle")
    with pytest.raises(ValueError, match="pointer_query"):
        Loc3rConfig(pointer_query="image")
    with pytest.raises(ValueError, match="needs pointer_keys 'input'"):
        Loc3rConfig(pointer_query="names", pointer_keys="final")


def test_pointer_reads_the_map_without_training_it(tiny_tokenizer, clip_factory):
    """situation_only with pointer heads: the layout head exists (the pointer reads it) but only the layout
    objective trains it, so here it gets no gradient and no layout loss."""
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", layout_objective=False)
    assert model.layout_head is not None
    batch = model.build_processor()([clip_factory(num_frames=4, sample_id="a", agent_position=(1, 0, 0), agent_yaw=1)])
    assert "layout_targets" not in batch
    out = model(**batch)
    assert "loss_bev" not in out.losses
    out.loss.backward()
    grad = model.layout_head.proj.weight.grad
    assert grad is None or float(grad.abs().sum()) == 0.0
    assert float(model.pointer_head.pos_query.weight.grad.abs().sum()) > 0


def test_anchor_loss_is_logged_and_weighted(tiny_tokenizer, clip_factory):
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", anchor_loss_weight=0.5)
    batch = model.build_processor()(
        [clip_factory(num_frames=4, sample_id="a", agent_position=(1.0, 0, 0), agent_yaw=0.3)]
    )
    vision = batch["input_ids"] == model.video_token_id
    anchor = torch.zeros_like(vision)
    anchor[0, torch.nonzero(vision[0])[:3, 0]] = True
    assert not batch["anchor_tokens"].any()  # the clip names no objects: an empty target, no loss
    batch["anchor_tokens"], batch["faced_tokens"] = anchor, torch.zeros_like(vision)
    with torch.no_grad():
        out = model(**batch)
        mass = out.position_attention[0, :3].sum()
    torch.testing.assert_close(out.losses["loss_anchor"], -torch.log(mass))
    lo = out.losses
    expected = (
        lo["loss_ce"]
        + 0.05 * lo["loss_bev"]
        + 0.075 * (lo["loss_pos"] + 3.5 * lo["loss_ori"])
        + 0.5 * lo["loss_anchor"]
    )
    torch.testing.assert_close(out.loss, expected)
