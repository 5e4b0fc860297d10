"""Oracle-objects vision input: a DIAGNOSTIC tower that turns a scan's layout into tokens (ours, issue 20).

Not a method and never a baseline to beat: it is the top rung of the perception ladder in benchmarks/RESULTS.md,
the answer to "how well do the situation heads localise when perception is perfect?". With
``Loc3rConfig.vision_input = "oracle_objects"`` the vision tower is not run; each vision token's embedding is built
from what its footprint shows, read from the scan's instance masks and layout:

    e_i = mean_w E[w]  over the word pieces of the name of the token's majority object (" black table", tokenized
          as inside a sentence; " room" when no object covers ``ORACLE_MIN_SHARE`` of the footprint)
        + F(fourier(p_i))    p_i = the token's true 3D point in the clip's BEV frame (depth + pose; the layout
          target's source); F a FIXED random two-layer MLP (:class:`FixedPositionFeatures`, seeded, never trained)

``E`` is the LLM's own input embedding, so the name of an object on a token and in the situation text share their
embedding — perception is perfect and the text-to-token link is free. Like the real tower in the demo, the oracle
tower is frozen: when its position MLP was trained (zero-initialised, at the LLM's LR) the tokens the pointer heads
read kept moving and their attention never left uniform (anchor loss 2.6-2.7 after 250 steps for every LR tried; with
it fixed, 1.95 with the LLM frozen and 1.60 with input keys: benchmarks/RESULTS.md,
``benchmarks/pointer_learnability.py``).

``vision_input = "oracle_layout"`` goes one step further and turns the scan's LAYOUT into tokens, as the outside
experiment of issue 20 did: vision token k shows object k of the clip (its name, and as its point the mean BEV point
of all its pixels in the clip: a perfect detector), the remaining tokens show ``"room"`` and have no point. Coverage is
then perfect too: every object the clip sees has exactly one token, so perfect attention reaches the ceiling of the
"mean of anchors" rule (benchmarks/perception_ladder.py) instead of the per-token one (``benchmarks/token_ceiling.py``:
60.5 / 80.2 on the demo's world, where 14 % of situations have no token that shows an anchor). The layout targets, the
anchor targets and the oracle names all read these object tokens (:func:`layout_tokens`).

Everything after the embeddings (LLM, layout head, situation heads, losses, metrics) is the same as with pixels. It
needs what only generated data has at inference: instance masks, object names and depth (SynthRooms writes all three).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.data.schema import SampleError
from loc3r.model.cue_injection import CueInjector
from loc3r.objectives.common import ClipTargets, scatter_tokens
from loc3r.objectives.pointer import token_instances

#: a token shows an object when that object covers at least this share of its footprint's pixels
ORACLE_MIN_SHARE = 0.25
#: the name of a token that shows no object
ORACLE_BACKGROUND = "room"
#: word pieces kept per object name (a small vocabulary splits " brown chair" into up to ~8)
ORACLE_MAX_WORDS = 16


#: output scale of the fixed position features: their norm (~0.28 at width 192) stays below a name's embedding (~0.36
#: in loc3r-tiny), so a token's name still dominates its direction
ORACLE_POSITION_SCALE = 0.05
ORACLE_POSITION_SEED = 0


class FixedPositionFeatures(CueInjector):
    """The oracle token's position part: the cue injector's Fourier MLP with fixed random weights (seed
    ``ORACLE_POSITION_SEED``; ``fc1 ~ N(0, 1/in)``, ``fc2 ~ N(0, ORACLE_POSITION_SCALE² / D)``), never trained."""

    def reset_parameters(self) -> None:
        generator = torch.Generator().manual_seed(ORACLE_POSITION_SEED)
        with torch.no_grad():
            for layer, std in ((self.fc1, 1.0 / math.sqrt(self.fc1.in_features)),
                               (self.fc2, ORACLE_POSITION_SCALE / math.sqrt(self.fc2.in_features))):  # fmt: skip
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
                layer.bias.zero_()
        self.requires_grad_(False)


def layout_tokens(ctx: ClipTargets) -> None:
    """``vision_input: oracle_layout``: make the clip's vision tokens show its objects, one object per token.

    Fills the per-clip cache entries that every target builder reads — ``token_points`` (the layout targets and the
    oracle points: token k = the mean BEV point of object k's pixels over the clip, objects in instance-id order;
    the other tokens invalid) and ``token_instances`` (token k shows all of object k; the others show nothing, so
    the anchor targets and the names follow) — so the objectives need no change to read object tokens. A clip with
    more objects than vision tokens keeps the first ones."""
    if "token_points" in ctx.clip and "token_instances" in ctx.clip:
        return
    sample = ctx.sample
    if sample.pixel_instances is None or sample.points is None or ctx.anchor is None:
        raise SampleError(
            f"{ctx.where}: vision_input 'oracle_layout' needs fields 'pixel_instances', 'points' and 'poses' "
            "(SynthRooms scans have them)"
        )
    inst = np.asarray(sample.pixel_instances, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        bev = ctx.anchor.points_to_bev(np.asarray(sample.points, dtype=np.float64))
    # the masks and the point maps may have different resolutions: read each point's instance at the nearest pixel
    (_, h, w), (_, ph, pw, _) = inst.shape, bev.shape
    rows, cols = (np.arange(ph) * h) // ph, (np.arange(pw) * w) // pw
    labels = inst[:, rows][:, :, cols].reshape(-1)
    flat = bev.reshape(-1, 3)
    seen = np.isfinite(flat).all(axis=1) & (labels > 0)
    n = ctx.encoding.num_vision_tokens
    ids = np.unique(labels[seen])[:n]
    points, valid = np.full((n, 3), np.nan, dtype=np.float32), np.zeros(n, dtype=bool)
    shares = np.zeros((n, int(inst.max(initial=0)) + 1))
    for k, iid in enumerate(ids):
        points[k] = flat[seen & (labels == iid)].mean(axis=0)
        valid[k], shares[k, iid] = True, 1.0
    ctx.clip["token_points"], ctx.clip["token_instances"] = (points, valid), shares


def token_object_names(shares: np.ndarray, names: dict[int, str]) -> list[str]:
    """The name of every token's majority object: ``shares [N, K]`` is each token's share of instance ids 0..K-1
    (:func:`loc3r.core.geometry.pool_token_labels` of the instance masks), ``names`` the id -> name table."""
    return [
        names.get(int(row.argmax()) + 1, ORACLE_BACKGROUND)
        if len(row) and row.max() >= ORACLE_MIN_SHARE
        else ORACLE_BACKGROUND
        for row in shares[:, 1:]
    ]


def oracle_embeddings(
    embedding: nn.Embedding, word_ids: Tensor, points: Tensor, valid: Tensor, position_mlp: nn.Module
) -> Tensor:
    """``[N, D]`` oracle token embeddings from ``word_ids [N, W]`` (-1 = padding), ``points [N, 3]``, ``valid [N]``."""
    keep = word_ids >= 0
    words = embedding(word_ids.clamp_min(0))  # [N, W, D]
    mean = (words * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True).clamp_min(1)
    return mean + position_mlp(points, valid).to(mean.dtype)


def pad_word_ids(ids: list[list[int]]) -> np.ndarray:
    """``[N, ORACLE_MAX_WORDS]`` int64, -1 padded (names longer than that are cut)."""
    out = np.full((len(ids), ORACLE_MAX_WORDS), -1, dtype=np.int64)
    for i, row in enumerate(ids):
        out[i, : len(row[:ORACLE_MAX_WORDS])] = row[:ORACLE_MAX_WORDS]
    return out


def oracle_targets(ctx: ClipTargets, encode_text, has_points: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(video_slots, word_ids [N, ORACLE_MAX_WORDS])``: the name of each vision token's majority object, tokenized
    by ``encode_text``; the sample must have instance masks, object names and (``has_points``) token points."""
    sample = ctx.sample
    if sample.pixel_instances is None or sample.instance_names is None or not has_points:
        raise SampleError(
            f"{ctx.where}: vision_input 'oracle_objects' needs fields 'pixel_instances', 'instance_names' and "
            "'points' (SynthRooms scans have them)"
        )
    names = token_object_names(token_instances(ctx), sample.instance_names)
    # with the space a name has inside a sentence: byte-level BPE gives a word after a space other ids ("Ġtable",
    # "Ġb l ack") than at the start of a text ("table", "black"), and the token must share the text's ids
    return ctx.video_slots, pad_word_ids([encode_text(" " + name) for name in names])


def batch_oracle(items: list[dict], offsets: list[int], length: int, points: Tensor, valid: Tensor) -> dict:
    """``oracle_word_ids [B, L, W]`` (-1 off the vision tokens), ``oracle_points [B, L, 3]``, ``oracle_valid``."""
    return {
        "oracle_word_ids": scatter_tokens([it["oracle"] for it in items], offsets, length, -1, torch.long),
        "oracle_points": torch.nan_to_num(points, nan=0.0),
        "oracle_valid": valid.clone(),
    }
