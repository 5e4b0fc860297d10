"""Pointer situation heads and anchor supervision (ours, not in the paper: DESIGN.md §8, issue 20).

The paper's ``<Pos>`` / ``<Ori>`` heads are two-layer MLPs on one hidden state each. At small width such an MLP
cannot compute "where is the object the text names, and what is the bearing from me to the object I face": with
perfect object tokens it stays at the room-centre guess and orientation at chance (DESIGN.md §8). The pointer heads
make that geometry explicit and keep the paper's outputs and losses:

* ``<Pos>`` attends over the clip's vision tokens (cosine similarity of a query from the ``<Pos>`` hidden state and
  keys from the vision tokens' final hidden states, times a learned scale ``τ`` that starts at 10: a scaled dot
  product started almost uniform over 64 tokens and stayed so — entropy 3.96 of 4.16 after 400 steps on the oracle
  rung); the position mean is the attention-weighted mean of the tokens' **predicted** BEV positions (the layout
  head's output — so the layout objective is what gives the pointer its meaning) plus a learned offset; ``log σ²``
  comes from the ``<Pos>`` state::

      a = softmax_i(τ cos(q_pos, k_i)),   μ = Σ_i a_i m_i + o(h_pos),   log σ² = s(h_pos)

* **Or the query reads the text first** (``pointer_query = "text"``; the default ``"state"`` is the line above). The
  prompt puts the video BEFORE the situation text (the paper's order, and what lets a video prefix be encoded once for
  many questions), so no vision token can know which objects the text names, and one projection of the ``<Pos>`` state
  has to carry the names itself (on the oracle rung its attention barely left uniform in 800 steps, RESULTS.md).
  Two hops instead: the ``<Pos>`` state attends over the situation text's tokens (the words a role names: each word's
  state knows from the words before it whether it follows "next to" or "facing"), and the vision-token query is the
  attention-weighted mean of those words' (normalised) queries — a name-to-token match::

      w = softmax_j(τ_t cos(q(h_pos), v(t_j))),   q_pos = Σ_j w_j normalize(r(t_j)),   a = softmax_i(τ q_pos · k_i)

  (``t_j`` the final hidden states of the text between the video and ``<Pos>``; ``k_i`` normalised keys). With
  ``pointer_query = "state"``, ``q_pos = normalize(q(h_pos))`` as above.

* **Or the words are matched as names** (``pointer_query = "names"``, with ``pointer_keys = "input"``): the same two
  hops, but a word's query is the head's KEY projection of its input embedding ``e_j``, ``r(t_j) := k(e_j)``. Vision
  tokens and words then meet in the LLM's input space through one map, so a word and a token that carries the same
  name (the oracle inputs write names with the text's own word pieces; a VLM's projector aligns vision features with
  that space) already match at initialisation, and training only has to learn which words each role reads — a random
  ``r`` has to discover the name match first (the anchor loss stayed at uniform-over-objects for 400 steps on the
  oracle-layout rung, benchmarks/RESULTS.md)::

      q_pos = Σ_j w_j normalize(k(e_j))

* ``<Ori>`` attends over the vision tokens the same way (its own query and keys) and turns the bearings from the
  predicted position to the attended tokens into the 36-bin distribution: a mixture of wrapped-Gaussian kernels
  (the paper's orientation target shape, same σ) at the bearings ``φ_i = atan2(m_i,y - μ_y, m_i,x - μ_x)``::

      b = softmax_i(τ' cos(q_ori, k'_i)),   p_θ = (1 - ε) Σ_i b_i K(θ - φ_i) + ε / B,   logits = log p

  ``ε = UNIFORM_FLOOR``: the kernels are narrow (σ = 2 bins), so where no attended token lies near the target yaw
  the mixture is ~0 there; the floor keeps the KL bounded (≤ log(B/ε)) and its gradient alive.

  Decoding (circular soft-argmax) and the loss (KL to the wrapped-Gaussian target) are unchanged. The bearing uses
  the position with its gradient stopped, so the orientation loss does not move the position; in training it is
  taken from the TRUE position where the sample has one (teacher forcing: ``<Ori>`` learns which object is faced
  while ``<Pos>`` is still wrong, instead of chasing a moving origin — measured unstable on a two-clip overfit).

* The heads READ the scene: the model passes the vision tokens' states and BEV positions with their gradient
  stopped, so the situation losses train the queries (through the ``<Pos>`` / ``<Ori>`` states, the same path as the
  paper's MLP heads), the key projections and the offset, and only the layout objective trains the map.

* **Anchor supervision** (optional, ``anchor_loss_weight``): where a situation names objects and the clip has
  instance masks, ``L_anchor = mean_n [-log Σ_{i ∈ A_n} a_n,i - log Σ_{i ∈ F_n} b_n,i]`` with ``A_n`` the vision
  tokens that show the objects the situation stands at and ``F_n`` those that show the object it faces (each term
  only for samples whose set is non-empty). Without it one seed in two failed in the perfect-perception experiment.

All arithmetic is float32. The pure functions :func:`pointer_position` and :func:`bearing_distribution` carry the
geometry (tested on hand-built scenes without training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.core.geometry import pool_token_labels
from loc3r.objectives.common import ClipTargets, TwoLayerMLP, clamp_log_var, linear_fp32, scatter_tokens
from loc3r.objectives.situation import wrapped_gaussian_target

INITIAL_SCALE = 10.0
"""τ at initialisation (cosine logits in [-τ, τ])."""
UNIFORM_FLOOR = 0.05
"""ε of the orientation mixture (see the module docstring)."""
#: a vision token "shows" a named object when at least this share of its footprint's pixels are that object's
ANCHOR_TOKEN_MIN_SHARE = 0.25


def pad_rows(flat: Tensor, counts: list[int]) -> tuple[Tensor, Tensor]:
    """Split ``flat [sum(counts), ...]`` row-major into a padded ``[B, max(counts), ...]`` and its mask ``[B, N]``."""
    batch, width = len(counts), max(counts, default=0)
    out = flat.new_zeros((batch, width, *flat.shape[1:]))
    mask = torch.zeros((batch, width), dtype=torch.bool, device=flat.device)
    start = 0
    for b, n in enumerate(counts):
        out[b, :n] = flat[start : start + n]
        mask[b, :n] = True
        start += n
    return out, mask


def pointer_position(attention: Tensor, token_xy: Tensor, offset: Tensor) -> Tensor:
    """``μ = Σ_i a_i m_i + o``: ``attention [B, N]`` (rows sum to 1), ``token_xy [B, N, 2]``, ``offset [B, 2]``."""
    return torch.einsum("bn,bnc->bc", attention.float(), token_xy.float()) + offset.float()


def bearing_distribution(
    attention: Tensor, token_xy: Tensor, position: Tensor, num_bins: int, sigma_bins: float
) -> Tensor:
    """``p_θ = Σ_i b_i K(θ - φ_i)`` over the yaw bins, ``φ_i`` the bearing from ``position [B, 2]`` to token i.

    ``K`` is the normalised wrapped Gaussian of the orientation target
    (:func:`loc3r.objectives.situation.wrapped_gaussian_target`,
    σ in bins), so attention on one token whose bearing equals the target yaw reproduces the target exactly.
    Returns ``[B, num_bins]`` probabilities (rows sum to 1 where the attention does).
    """
    delta = token_xy.float() - position.float().unsqueeze(1)
    bearings = torch.atan2(delta[..., 1], delta[..., 0])  # [B, N]
    kernels = wrapped_gaussian_target(bearings, num_bins, sigma_bins)  # [B, N, bins]
    return torch.einsum("bn,bnk->bk", attention.float(), kernels)


def attention_mass_loss(attention: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``-log Σ_{i ∈ T_n} attention_n,i`` per row; rows whose target set is empty are masked.

    Returns ``(loss_sum, num_rows)`` so several attention maps can be averaged together.
    """
    targets = targets.to(device=attention.device, dtype=torch.bool)
    has = targets.any(dim=-1)
    mass = torch.where(targets, attention.float(), 0.0).sum(dim=-1)
    per_row = -torch.log(mass.clamp_min(1e-6))
    return torch.where(has, per_row, 0.0).sum(), has.sum()


@dataclass
class TextInputs:
    """What a text-reading pointer query reads: the situation text's final hidden states ``[B, M, D]``, its mask
    ``[B, M]`` and (``pointer_query = "names"``) its input embeddings ``[B, M, D]``."""

    states: Tensor
    mask: Tensor
    embeds: Tensor | None = None


class PointerSituationHeads(nn.Module):
    """The ``<Pos>`` / ``<Ori>`` pointer heads (see the module docstring): query/key projections and the ``<Pos>``
    MLP giving ``(offset_x, offset_y, log σ²_x, log σ²_y)``."""

    def __init__(
        self,
        hidden_size: int,
        num_bins: int = 36,
        key_dim: int = 64,
        intermediate_size: int | None = None,
        sigma_bins: float = 2.0,
        reads_text: bool = False,
        matches_names: bool = False,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_bins, self.key_dim, self.sigma_bins = hidden_size, num_bins, key_dim, sigma_bins
        self.pos_query = nn.Linear(hidden_size, key_dim)
        self.pos_key = nn.Linear(hidden_size, key_dim)
        self.ori_query = nn.Linear(hidden_size, key_dim)
        self.ori_key = nn.Linear(hidden_size, key_dim)
        self.pos_mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, 4, float32=True)
        self.reads_text, self.matches_names = reads_text or matches_names, matches_names
        if self.reads_text:  # each head's text hop: word key v, word query r (its role query is pos_query / ori_query)
            # names: no r of its own, a word's query is the head's key projection of its input embedding
            per_hop = 1 if matches_names else 2
            self.text_hops = nn.ModuleList(
                nn.ModuleList(nn.Linear(hidden_size, key_dim) for _ in range(per_hop)) for _ in range(2)
            )
        #: log of the attention scales τ (``<Pos>``, ``<Ori>``; then their text hops τ_t)
        self.log_scale = nn.Parameter(torch.zeros(4 if self.reads_text else 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default-scale projections (attention starts informative enough to learn from), zero offset at init."""
        hops = [layer for hop in self.text_hops for layer in hop] if self.reads_text else []
        for layer in (self.pos_query, self.pos_key, self.ori_query, self.ori_key, *hops):
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(self.hidden_size))
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.pos_mlp.fc1.weight, std=0.02)
        nn.init.zeros_(self.pos_mlp.fc1.bias)
        nn.init.zeros_(self.pos_mlp.fc2.weight)
        nn.init.zeros_(self.pos_mlp.fc2.bias)
        with torch.no_grad():
            self.log_scale.fill_(math.log(INITIAL_SCALE))

    def _softmax(self, query: Tensor, keys: Tensor, mask: Tensor, scale: int) -> Tensor:
        """``softmax_i(τ q · normalize(k_i))`` over the unmasked ``keys [B, N, d]`` (zero on the masked)."""
        keys = torch.nn.functional.normalize(keys, dim=-1)
        scores = torch.einsum("bd,bnd->bn", query, keys) * self.log_scale[scale].float().exp()
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).masked_fill(~mask, 0.0)

    def _query(self, head: int, state: Tensor, text: TextInputs | None) -> Tensor:
        """The head's vision-token query ``[B, d]``: from the text (two hops) or from its own state."""
        own = torch.nn.functional.normalize(linear_fp32((self.pos_query, self.ori_query)[head], state), dim=-1)
        if not self.reads_text:
            return own
        if text is None or (self.matches_names and text.embeds is None):
            raise ValueError("pointer_query 'text' / 'names' needs the situation text's hidden states (and embeddings)")
        # the head's own query picks which of the text's words it reads
        weights = self._softmax(own, linear_fp32(self.text_hops[head][0], text.states), text.mask, 2 + head)  # [B, M]
        if self.matches_names:  # a word's query is its input embedding seen as a vision token's key would be
            words = linear_fp32((self.pos_key, self.ori_key)[head], text.embeds)
        else:
            words = linear_fp32(self.text_hops[head][1], text.states)
        return torch.einsum("bm,bmd->bd", weights, torch.nn.functional.normalize(words, dim=-1))

    def _attend(self, head: int, state: Tensor, tokens: Tensor, mask: Tensor, text: TextInputs | None) -> Tensor:
        keys = linear_fp32((self.pos_key, self.ori_key)[head], tokens)
        return self._softmax(self._query(head, state, text), keys, mask, head)

    def forward(
        self,
        pos_state: Tensor,
        ori_state: Tensor,
        tokens: Tensor,
        token_xy: Tensor,
        mask: Tensor,
        true_position: Tensor | None = None,
        true_valid: Tensor | None = None,
        text: TextInputs | None = None,
    ) -> dict[str, Tensor]:
        """``pos_state / ori_state [B, D]`` (the ``<Pos>`` / ``<Ori>`` final hidden states), ``tokens [B, N, D]``
        (the vision tokens' final hidden states, at least one per row), ``token_xy [B, N, 2]`` (their predicted BEV
        means), ``mask [B, N]``; in training ``true_position [B, 2]`` / ``true_valid [B]``, the bearings' origin where
        valid; ``text``: the situation text's final hidden states, mask and (``matches_names``) input embeddings
        (read when ``reads_text``). Returns ``position_mean/log_var [B, 2]``, ``orientation_logits [B, bins]``,
        ``position_attention`` / ``orientation_attention [B, N]`` (zero on padding).
        """
        pos_attn = self._attend(0, pos_state, tokens, mask, text)
        head = self.pos_mlp(pos_state)
        position = pointer_position(pos_attn, token_xy, head[..., :2])
        ori_attn = self._attend(1, ori_state, tokens, mask, text)
        origin = position.detach()
        if true_position is not None and true_valid is not None:
            origin = torch.where(true_valid.bool().unsqueeze(-1), true_position.to(origin), origin)
        probs = bearing_distribution(ori_attn, token_xy, origin, self.num_bins, self.sigma_bins)
        return dict(
            position_mean=position,
            position_log_var=clamp_log_var(head[..., 2:]),
            orientation_logits=torch.log((1.0 - UNIFORM_FLOOR) * probs + UNIFORM_FLOOR / self.num_bins),
            position_attention=pos_attn,
            orientation_attention=ori_attn,
        )


def situation_text_mask(input_ids: Tensor, vision_mask: Tensor, pos_mask: Tensor, pad_token_id: int | None) -> Tensor:
    """``[B, L]`` the tokens between a row's last vision token and its ``<Pos>`` token (the situation text and the
    prompt's words around it), padding excluded — what the text-reading pointer query reads. A row without vision
    tokens reads everything before ``<Pos>``."""
    index = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    last_vision = torch.where(vision_mask, index, -1).max(dim=1, keepdim=True).values
    pos_at = torch.where(pos_mask, index, -1).max(dim=1, keepdim=True).values
    mask = (index > last_vision) & (index < pos_at)
    return mask if pad_token_id is None else mask & (input_ids != pad_token_id)


def build_head(config: Any, hidden_size: int) -> PointerSituationHeads | None:
    """The pointer heads when the situation heads are of that type (``situation_head = "pointer"``) and on."""
    if not config.pointer_heads:
        return None
    sizes = (config.num_orientation_bins, config.pointer_key_dim, config.head_intermediate_size)
    return PointerSituationHeads(
        hidden_size,
        *sizes,
        config.orientation_sigma_bins,
        reads_text=config.pointer_query == "text",
        matches_names=config.pointer_query == "names",
    )


def anchor_loss(
    position_attention: Tensor, orientation_attention: Tensor, vision_mask: Tensor, anchor: Tensor, faced: Tensor | None
) -> Tensor:
    """``L_anchor`` (see the module docstring) from ``[B, L]`` token masks over the sequence: the mean over the rows
    of both attention maps whose target set is non-empty."""
    counts = vision_mask.sum(dim=1).tolist()
    total, rows = [], []
    for attention, target in ((position_attention, anchor), (orientation_attention, faced)):
        if target is None:
            continue
        padded, _ = pad_rows(target.to(vision_mask.device)[vision_mask], counts)
        loss_sum, n = attention_mass_loss(attention, padded)
        total.append(loss_sum)
        rows.append(n)
    return torch.stack(total).sum() / torch.stack(rows).sum().clamp_min(1)


def token_instances(ctx: ClipTargets) -> np.ndarray | None:
    """``[N, I]`` share of each vision token's footprint showing each instance id (None without instance masks;
    cached per clip). Read by the anchor targets and by the oracle-objects input."""
    if ctx.sample.pixel_instances is None:
        return None
    if "token_instances" not in ctx.clip:
        inst = np.asarray(ctx.sample.pixel_instances, dtype=np.int64)
        ctx.clip["token_instances"] = pool_token_labels(inst, ctx.encoding.segments, int(inst.max(initial=0)) + 1)[0]
    return ctx.clip["token_instances"]


def referent_tokens(ctx: ClipTargets) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """``(video_slots, {role: [N] bool})``: the vision tokens that show the objects the situation names per role
    (``anchor``: it stands at them, ``faced``: it faces it); None when the sample names none or has no masks."""
    shares = token_instances(ctx) if ctx.sample.referents else None
    if shares is None:
        return None
    return ctx.video_slots, {
        role: shares[:, [i for i in ids if 0 < i < shares.shape[1]]].sum(axis=1) >= ANCHOR_TOKEN_MIN_SHARE
        for role, ids in ctx.sample.referents.items()
    }


def batch_referent_tokens(items: list[dict], offsets: list[int], length: int) -> dict[str, Tensor]:
    """``anchor_tokens`` / ``faced_tokens [B, L]`` (False where a sample names no such object)."""
    out = {}
    for role in ("anchor", "faced"):
        rows = [it.get("referent_tokens") for it in items]
        rows = [(r[0], r[1][role]) if r is not None and role in r[1] else None for r in rows]
        out[f"{role}_tokens"] = scatter_tokens(rows, offsets, length, False, torch.bool)
    return out
