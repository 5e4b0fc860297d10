"""Oracle-objects vision input: a DIAGNOSTIC tower that turns a scan's layout into tokens (ours, issue 20).

Not a method and never a baseline to beat: it is the top rung of the perception ladder in benchmarks/RESULTS.md,
the answer to "how well do the situation heads localise when perception is perfect?". With
``Loc3rConfig.vision_input = "oracle_objects"`` the vision tower is not run; each vision token's embedding is built
from what its footprint shows, read from the scan's instance masks and layout:

    e_i = mean_w E[w]  over the words of the name of the token's majority object ("black table"; "room" when no
          object covers ``ORACLE_MIN_SHARE`` of the footprint)
        + F(fourier(p_i))    p_i = the token's true 3D point in the clip's BEV frame (depth + pose; the layout
          target's source); F a FIXED random two-layer MLP (:class:`FixedPositionFeatures`, seeded, never trained)

``E`` is the LLM's own input embedding, so the name of an object on a token and in the situation text share their
embedding — perception is perfect and the text-to-token link is free. Like the real tower in the demo, the oracle
tower is frozen: when its position MLP was trained (zero-initialised, at the LLM's LR) the tokens the pointer heads
read kept moving and their attention never left uniform (anchor loss 2.6-2.7 after 250 steps for every LR tried; with
it fixed, 1.95 with the LLM frozen and 1.60 with input keys: benchmarks/RESULTS.md,
``benchmarks/pointer_learnability.py``).

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
#: word pieces kept per object name (the tiny tokenizer splits a colour + category name into a few)
ORACLE_MAX_WORDS = 6


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
    return ctx.video_slots, pad_word_ids([encode_text(name) for name in names])


def batch_oracle(items: list[dict], offsets: list[int], length: int, points: Tensor, valid: Tensor) -> dict:
    """``oracle_word_ids [B, L, W]`` (-1 off the vision tokens), ``oracle_points [B, L, 3]``, ``oracle_valid``."""
    return {
        "oracle_word_ids": scatter_tokens([it["oracle"] for it in items], offsets, length, -1, torch.long),
        "oracle_points": torch.nan_to_num(points, nan=0.0),
        "oracle_valid": valid.clone(),
    }
