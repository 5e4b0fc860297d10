"""The joint objective: the weighted sum of the objectives' terms (DESIGN.md §2).

Total objective (paper defaults ``λ_bev = 0.05, λ_sit = 0.075, λ_ori = 3.5``)::

    L = L_CE + λ_bev · L_BEV + λ_sit · (L_pos + λ_ori · L_ori) [+ λ_rec · L_rec] [+ λ_anc · L_anchor]

Each weight's single default is declared by its objective's module (``CONFIG``); :class:`LossWeights` takes them
from there, as :class:`loc3r.model.configuration_loc3r.Loc3rConfig` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from loc3r.objectives import layout as _layout
from loc3r.objectives import recognition as _recognition
from loc3r.objectives import situation as _situation
from loc3r.objectives.common import graph_zero


@dataclass
class LossWeights:
    """Weights of the joint objective (paper defaults). A weight of 0 switches that objective off."""

    bev: float = _layout.CONFIG["bev_loss_weight"]
    situation: float = _situation.CONFIG["situation_loss_weight"]
    orientation: float = _situation.CONFIG["orientation_loss_weight"]
    recognition: float = _recognition.CONFIG["recognition_loss_weight"]
    #: anchor supervision of the pointer situation heads (ours, :mod:`loc3r.objectives.pointer`); off by default
    anchor: float = _situation.CONFIG["anchor_loss_weight"]

    def __post_init__(self) -> None:
        for name in ("bev", "situation", "orientation", "recognition", "anchor"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"LossWeights.{name} must be a finite number >= 0, got {value}")


def combine_losses(
    ce: Tensor | None,
    bev: Tensor | None,
    pos: Tensor | None,
    ori: Tensor | None,
    weights: LossWeights,
    rec: Tensor | None = None,
    anchor: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Joint objective ``L = L_CE + λ_bev·L_BEV + λ_sit·(L_pos + λ_ori·L_ori) [+ λ_rec·L_rec] [+ λ_anc·L_anchor]``.

    ``L_rec`` (:func:`loc3r.objectives.recognition.token_category_loss`) is only used to pretrain a base from scratch;
    the paper has no such term. ``L_anchor`` (:func:`loc3r.objectives.pointer.anchor_loss`) is our anchor
    supervision of the pointer situation heads; the paper has no such term either.

    ``None`` terms (not computed) are skipped; a term whose weight is 0 is logged but not added, so it can neither
    contribute gradient nor propagate a NaN. Returns ``(loss, logs)``: the detached terms present (``loss_ce,
    loss_bev, loss_pos, loss_ori, loss_rec, loss_anchor``), ``loss_sit = L_pos + λ_ori · L_ori`` and ``loss``.
    """
    logs: dict[str, Tensor] = {}
    parts: list[Tensor] = []
    sit_parts: list[Tensor] = []

    def add(name: str, term: Tensor | None, weight: float | None, into: list[Tensor]) -> None:
        """Log ``term``; add it to ``into`` unweighted (``weight`` None) or times a non-zero ``weight``."""
        if term is not None:
            logs[f"loss_{name}"] = term.detach().float()
            if weight is None:
                into.append(term.float())
            elif weight != 0:
                into.append(weight * term.float())

    add("ce", ce, None, parts)
    add("bev", bev, weights.bev, parts)
    add("pos", pos, None, sit_parts)
    add("ori", ori, weights.orientation, sit_parts)
    if pos is not None or ori is not None:
        sit = (
            torch.stack(sit_parts).sum() if sit_parts else torch.zeros((), device=(ori if pos is None else pos).device)
        )
        logs["loss_sit"] = sit.detach()
        if weights.situation != 0 and sit_parts:
            parts.append(weights.situation * sit)
    add("rec", rec, weights.recognition, parts)
    add("anchor", anchor, weights.anchor, parts)
    if not parts:
        if not logs:
            raise ValueError("combine_losses: every loss term is None; nothing to optimise")
        # Only zero-weighted terms: a zero total still connected to the graph.
        present = [t for t in (ce, bev, pos, ori, rec, anchor) if t is not None]
        total = graph_zero(*present)
    else:
        total = parts[0]
        for p in parts[1:]:
            total = total + p.to(total.device)
    logs["loss"] = total.detach()
    return total, logs
