"""Question answering / language modelling (the paper's ``L_CE``): next-token cross-entropy on the answer.

* **Targets**: the processor's ``labels`` (the answer and end-of-turn tokens; -100 elsewhere).
* **Head**: the backbone's own LM head, run ONLY on the supervised positions (memory: no ``[B, L, V]`` logits).
* **Loss** (:func:`lm_loss`): ``L_CE = mean over answer tokens t of -log p(token_{t+1} | ≤ t)``; a batch without
  any answer token gives an exact 0 still connected to the graph.
* **Weight**: 1 (the reference term of the joint objective; not configurable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def supervised_mask(labels: Tensor) -> Tensor:
    """``[B, L]`` True at the positions whose NEXT token is supervised (position t predicts token t + 1)."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != -100
    return mask


def lm_loss(lm_head: nn.Module, rows: Tensor, labels: Tensor, mask: Tensor, hidden: Tensor) -> Tensor:
    """``L_CE`` from the hidden states ``rows`` gathered at ``mask`` (:func:`supervised_mask`); ``hidden`` (the full
    ``[B, L, D]`` states) only anchors the exact zero of an answer-less batch to the graph."""
    targets = labels[:, 1:][mask[:, :-1]]
    if targets.numel():
        return F.cross_entropy(lm_head(rows).float(), targets)
    # no answer token in the batch: an exact zero still connected to the graph (NaN-safe ``where``)
    return torch.where(torch.zeros((), dtype=torch.bool, device=hidden.device), hidden[0, 0, 0], 0.0).float()
