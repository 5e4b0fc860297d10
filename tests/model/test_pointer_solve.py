"""The pointer's position solve (``pointer_position = "solve"``, loc3r.objectives.pointer): every relation of the
text on the map, checked by hand on scenes with known geometry, then inside the model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import tiny_model
from loc3r.objectives.pointer import (
    SOLVE_INITIAL,
    PointerSituationHeads,
    anchor_loss,
    sector_violation,
    solve_position,
)
from loc3r.synthrooms.questions import sector_of

# A table at the origin; standing 1 m east of it one faces the door 3 m north, the lamp is on one's left.
TRUTH = torch.tensor([1.0, 0.0])
OBJECTS = torch.tensor([[0.0, 0.0], [1.0, 3.0], [0.0, 0.6], [-2.5, -2.0]])  # table, door, lamp, shelf
TABLE, DOOR, LAMP, SHELF = range(4)
PARAMS = torch.tensor(SOLVE_INITIAL)


def _mirror(points: torch.Tensor) -> torch.Tensor:
    return points * torch.tensor([-1.0, 1.0])


@given(st.floats(-179.0, 179.0))
@settings(max_examples=200, deadline=None)
def test_sector_violation_without_slack_is_the_synthrooms_sector(beta_deg):
    if min(abs(abs(beta_deg) - 45.0), abs(abs(beta_deg) - 135.0)) < 1e-3:
        return  # on a sector boundary
    beta = torch.tensor(math.radians(beta_deg))
    for sector in ("left", "right", "behind"):
        inside = float(sector_violation(beta, sector, slack_deg=0.0)) < 0
        assert inside == (sector_of(math.radians(beta_deg)) == sector), (beta_deg, sector)


def test_sector_slack_widens_every_sector_by_the_facing_tolerance():
    for sector, edge in (("left", 45.0), ("left", 135.0), ("right", -45.0), ("behind", 135.0)):
        outside = math.radians(edge + (-15.0 if abs(edge) == 45.0 else 15.0) * (1 if edge > 0 else -1))
        if sector == "behind":
            outside = math.radians(120.0)
        assert float(sector_violation(torch.tensor(outside), sector, slack_deg=0.0)) > 0
        assert float(sector_violation(torch.tensor(outside), sector, slack_deg=20.0)) < 0


@pytest.mark.parametrize("sector", ["left", "right"])
def test_solve_moves_the_position_to_where_the_side_object_is_on_that_side(sector):
    """Without the side relation the solve stays at the table (1 m from the truth, the mean-of-anchors rule); with
    "the lamp on my left" it moves to the side of the table where the lamp IS on the left — through the arithmetic."""
    objects, truth = (OBJECTS, TRUTH) if sector == "left" else (_mirror(OBJECTS), _mirror(TRUTH))
    slot = ("left", "right", "behind").index(sector)
    anchor = torch.nn.functional.one_hot(torch.tensor([TABLE]), 4).float()
    side = objects[[LAMP if k == slot else SHELF for k in range(3)]][None]
    no_side = solve_position(anchor, objects[None], objects[DOOR][None], side, torch.zeros(1, 3), PARAMS)
    gates = torch.zeros(1, 3)
    gates[0, slot] = 1.0
    solved = solve_position(anchor, objects[None], objects[DOOR][None], side, gates, PARAMS)
    assert float((no_side[0] - objects[TABLE]).norm()) < 0.05
    assert float((solved[0] - truth).norm()) < 0.45 < float((no_side[0] - truth).norm()) - 0.5
    # the lamp is on that side of the solved position, facing the door (the text's relation holds there)
    to_door, to_lamp = objects[DOOR] - solved[0], objects[LAMP] - solved[0]
    relative = math.atan2(float(to_lamp[1]), float(to_lamp[0])) - math.atan2(float(to_door[1]), float(to_door[0]))
    assert sector_of(relative) == sector
    # a rigid motion of the map moves the solution with it
    rot = torch.tensor([[math.cos(0.7), -math.sin(0.7)], [math.sin(0.7), math.cos(0.7)]])
    moved = objects @ rot.T + torch.tensor([2.0, -1.0])
    moved_side = moved[[LAMP if k == slot else SHELF for k in range(3)]][None]
    again = solve_position(anchor, moved[None], moved[DOOR][None], moved_side, gates, PARAMS)
    torch.testing.assert_close(again[0], solved[0] @ rot.T + torch.tensor([2.0, -1.0]), atol=0.05, rtol=0)


def test_solve_keeps_a_behind_object_behind():
    """Between two anchors 1 m apart on the x axis, facing north: the shelf behind me pulls the solution south of
    the anchors' mean only when its gate is open."""
    objects = torch.tensor([[-0.5, 0.0], [0.5, 0.0], [0.0, 3.0], [0.0, -0.6]])
    anchor = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    side = objects[[3, 3, 3]][None]
    closed = solve_position(anchor, objects[None], objects[2][None], side, torch.zeros(1, 3), PARAMS)
    opened = solve_position(anchor, objects[None], objects[2][None], side, torch.tensor([[0.0, 0.0, 1.0]]), PARAMS)
    assert abs(float(closed[0, 1])) < 0.1 and float(opened[0, 1]) > float(closed[0, 1]) + 0.1


def _solving_heads(stand: int, face: int, left: int | None) -> PointerSituationHeads:
    """Heads whose <Pos> / <Ori> / left-slot queries pick tokens ``stand`` / ``face`` / ``left`` by construction
    (hidden size 8: dims 0-3 a token's identity, dims 4-7 what a state asks for; the left slot asks for object
    ``left`` through its own query), and whose gate opens the left slot only."""
    heads = PointerSituationHeads(hidden_size=8, num_bins=36, key_dim=4, solves=True)
    with torch.no_grad():
        for layer in (heads.pos_key, heads.ori_key, heads.pos_query, heads.ori_query, *heads.side_queries):
            layer.weight.zero_(), layer.bias.zero_()
        for key in (heads.pos_key, heads.ori_key):
            key.weight[:, :4] = torch.eye(4) * 10.0
        heads.pos_query.weight[:, 4:] = torch.eye(4) * 10.0
        heads.ori_query.weight[:, 4:] = torch.eye(4) * 10.0
        if left is not None:
            heads.side_queries[0].bias[left] = 10.0
        heads.side_gate.fc2.bias.copy_(torch.tensor([20.0 if left is not None else -20.0, -20.0, -20.0]))
    return heads


@pytest.mark.parametrize("left", [None, LAMP])
def test_solving_heads_read_anchor_faced_and_side_objects_without_training(left):
    heads = _solving_heads(TABLE, DOOR, left)
    tokens = torch.zeros(1, 4, 8)
    tokens[0, :, :4] = torch.eye(4)
    pos_state, ori_state = torch.zeros(1, 8), torch.zeros(1, 8)
    pos_state[0, 4 + TABLE], ori_state[0, 4 + DOOR] = 1.0, 1.0
    out = heads(pos_state, ori_state, tokens, OBJECTS[None], torch.ones(1, 4, dtype=torch.bool))
    assert out["side_attention"].shape == (1, 3, 4) and out["side_gate_logits"].shape == (1, 3)
    error = float((out["position_mean"][0] - TRUTH).norm())
    assert (error < 0.45) if left is not None else (abs(error - 1.0) < 0.05)
    if left is not None:
        assert float(out["side_attention"][0, 0, LAMP]) > 0.99


def test_solve_has_finite_gradients_when_every_point_sits_on_the_grid_centre():
    """At initialisation every attention is ~uniform, so the side slots' points, the faced point and the grid's centre
    coincide: the bearings there must not poison the gradients."""
    torch.manual_seed(0)
    heads = PointerSituationHeads(hidden_size=8, num_bins=36, key_dim=4, solves=True)
    tokens = torch.zeros(2, 5, 8)  # identical tokens: exactly uniform attention
    token_xy = torch.randn(2, 5, 2)
    out = heads(torch.randn(2, 8), torch.randn(2, 8), tokens, token_xy, torch.ones(2, 5, dtype=torch.bool))
    (out["position_mean"].sum() + out["orientation_logits"].sum()).backward()
    assert torch.isfinite(out["position_mean"]).all()
    for name, param in heads.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name


def test_anchor_loss_adds_side_slot_mass_and_gate_cross_entropy():
    vision = torch.tensor([[True, True, True, False]])
    attention = {
        "anchor": torch.tensor([[0.6, 0.3, 0.1]]),
        "faced": torch.tensor([[0.2, 0.2, 0.6]]),
        "left": torch.tensor([[0.1, 0.8, 0.1]]),
        "right": torch.tensor([[0.3, 0.3, 0.4]]),
        "behind": torch.tensor([[0.3, 0.3, 0.4]]),
    }
    targets = {role: torch.zeros(1, 4, dtype=torch.bool) for role in attention}
    targets["anchor"][0, 0] = targets["faced"][0, 2] = targets["left"][0, 1] = True
    gates = torch.tensor([[2.0, -1.0, 0.5]])
    loss = anchor_loss(attention, vision, targets, gates, torch.tensor([True]))
    mass = -(math.log(0.6) + math.log(0.6) + math.log(0.8)) / 3
    bce = torch.nn.functional.binary_cross_entropy_with_logits(gates, torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(loss, torch.tensor(mass) + bce)
    # rows whose data do not label the sectors: no gate term
    unlabelled = anchor_loss(attention, vision, targets, gates, torch.tensor([False]))
    torch.testing.assert_close(unlabelled, torch.tensor(mass))


def test_model_with_the_solve_trains_and_predicts_with_a_video_prefix(tiny_tokenizer, clip_factory):
    torch.manual_seed(0)
    model = tiny_model(tiny_tokenizer, "qwen2_5_vl", situation_head="pointer", situation_loss_weight=1.0,
                       pointer_query="names", pointer_keys="input", pointer_position="solve")  # fmt: skip
    clip = clip_factory(num_frames=4, sample_id="a", agent_position=(1.0, -0.5, 0.0), agent_yaw=2.0)
    batch = model.build_processor()([clip])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    history = []
    for _ in range(15):
        out = model(**batch)
        assert out.side_attention is not None and torch.isfinite(out.loss)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append(float(out.losses["loss_sit"]))
    assert history[-1] < history[0]
    model.eval()
    eval_batch = model.build_processor(mode="eval")([clip])
    full = model.predict(eval_batch, max_new_tokens=0)[0]
    cached = model.predict(eval_batch, max_new_tokens=0, prefix=model.encode_prefix(eval_batch))[0]
    np.testing.assert_allclose(cached.position_bev, full.position_bev, atol=1e-4)
    np.testing.assert_allclose(cached.yaw_probabilities, full.yaw_probabilities, atol=1e-4)


def test_config_rejects_an_unknown_position_rule():
    from loc3r.model.configuration_loc3r import Loc3rConfig

    with pytest.raises(ValueError, match="pointer_position"):
        Loc3rConfig(pointer_position="median")
