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
  With ``solve`` the side slots get the same term on their sector's objects, and their gates a binary cross-entropy
  toward "the text names such an object" (rows whose data label the sectors)::

      L_anchor = mean over (row, map) [-log Σ_{i ∈ T} attention_i]  +  mean_{n, k} BCE(g_n,k, [S_n,k ≠ ∅])

* **Or the position is SOLVED from every relation of the text** (``pointer_position = "solve"``; the default
  ``"mean"`` is the line above). The mean of the anchors ignores what the rest of the text says ("facing the door,
  with the lamp on my left"): on the demo's test situations the mean of the TRUE anchor centres reaches 79 % Acc@1.0m,
  while a reader that keeps every position consistent with all the relations (object centres only) reaches 95 %
  (benchmarks/RESULTS.md). Three more slots attend over the vision tokens like ``<Pos>`` (its key projection, their
  own role queries; with ``text`` / ``names`` their own text hops): the side objects ``left`` / ``right`` /
  ``behind``, each with a gate ``g_k = sigmoid(·)`` from the ``<Pos>`` state (is there such an object in the text?).
  A grid of candidate positions ``p_g`` around the anchors' mean ``c_0`` is scored by a soft constraint energy and
  the position is its posterior mean::

      E(p) = λ_a Σ_i a_i softplus((|m_i - p| - r) / s_d)                  stand next to the anchors
           + λ_f softplus((d_f - |f - p|) / s_d)                           the faced object f is not at my feet
           + λ_s Σ_k g_k softplus(v_k(β_k(p)) / s_β)                       side object k is in its sector
      π_g = softmax_g(-E(p_g)),   μ = Σ_g π_g p_g + o(h_pos)

  ``f = Σ_i b_i m_i`` the ``<Ori>`` head's point (gradient stopped), ``x_k = Σ_i e_k,i m_i`` slot k's point,
  ``β_k(p)`` the bearing of ``x_k`` seen from ``p`` RELATIVE to the bearing of ``f`` (standing at ``p`` one faces
  ``f``), ``v_k`` how far ``β_k`` lies outside sector k (widened by the ±20° facing tolerance), ``d_f`` = 0.5 m;
  ``r``, ``s_d``, ``s_β`` and the ``λ`` are learned (positive, log-parameterised). Every term is the text's own
  relation on the predicted map: the heads still only choose which tokens each role reads.

All arithmetic is float32. The pure functions :func:`pointer_position`, :func:`solve_position` and
:func:`bearing_distribution` carry the geometry (tested on hand-built scenes without training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from loc3r.core.geometry import pool_token_labels
from loc3r.data.schema import REFERENT_ROLES, SIDE_ROLES
from loc3r.objectives.common import ClipTargets, TwoLayerMLP, clamp_log_var, linear_fp32, scatter_tokens
from loc3r.objectives.situation import wrapped_gaussian_target

INITIAL_SCALE = 10.0
"""τ at initialisation (cosine logits in [-τ, τ])."""
UNIFORM_FLOOR = 0.05
"""ε of the orientation mixture (see the module docstring)."""
#: a vision token "shows" a named object when at least this share of its footprint's pixels are that object's
ANCHOR_TOKEN_MIN_SHARE = 0.25
#: the position solve's candidate grid: (2 SOLVE_HALF_CELLS + 1)² points SOLVE_STEP_M apart around the anchors' mean
#: (±2.5 m: "next to" is within 1 m of a footprint, "between" within 1.5 m of both)
SOLVE_STEP_M = 0.125
SOLVE_HALF_CELLS = 20
#: the side sectors of the situation texts (relative bearing, degrees, + = left), widened by the ±20° facing tolerance:
#: standing at a candidate one faces the faced object's centre, the true yaw is within 20° of it
SOLVE_SECTOR_SLACK_DEG = 20.0
#: the faced object is at least this far (m) from where one stands (SynthRooms: 0.5 m from its footprint)
SOLVE_FACED_MIN_DIST = 0.5
#: initial (radius r m, distance softness s_d m, bearing softness s_β rad, λ_anchor, λ_faced, λ_side)
SOLVE_INITIAL = (1.25, 0.15, 0.15, 1.0, 1.0, 1.0)


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


def _bearing(delta: Tensor) -> Tensor:
    """``atan2(dy, dx)`` of ``delta [..., 2]``, with a finite gradient where the vector is ~0 (a point on a grid
    candidate)."""
    small = delta.norm(dim=-1, keepdim=True) < 1e-6
    safe = torch.where(small, torch.tensor([1e-6, 0.0], device=delta.device), delta)
    return torch.atan2(safe[..., 1], safe[..., 0])


def sector_violation(relative: Tensor, sector: str, slack_deg: float = SOLVE_SECTOR_SLACK_DEG) -> Tensor:
    """How far (radians, > 0 outside) a relative bearing lies outside ``sector`` (left 45-135°, right -135..-45°,
    behind |β| >= 135°; each widened by ``slack_deg``), the SynthRooms sectors (loc3r.synthrooms.questions)."""
    slack = math.radians(slack_deg)
    if sector == "behind":
        return math.radians(135.0) - slack - relative.abs()
    beta = relative if sector == "left" else -relative
    low, high = math.radians(45.0) - slack, math.radians(135.0) + slack
    return torch.maximum(low - beta, beta - high)


def solve_grid(centre: Tensor, step: float = SOLVE_STEP_M, half_cells: int = SOLVE_HALF_CELLS) -> Tensor:
    """``[B, G, 2]`` candidate positions: a square grid of ``(2 half_cells + 1)²`` points around ``centre [B, 2]``."""
    axis = torch.arange(-half_cells, half_cells + 1, device=centre.device, dtype=torch.float32) * step
    offsets = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    return centre.float().unsqueeze(1) + offsets


def solve_energy(
    candidates: Tensor,
    anchor_attention: Tensor,
    token_xy: Tensor,
    faced_xy: Tensor,
    side_xy: Tensor,
    side_gates: Tensor,
    params: Tensor,
    sectors: tuple[str, ...] = SIDE_ROLES,
) -> Tensor:
    """``E(p_g) [B, G]`` of the module docstring: ``candidates [B, G, 2]``, ``anchor_attention [B, N]``,
    ``token_xy [B, N, 2]``, ``faced_xy [B, 2]``, ``side_xy [B, S, 2]`` and ``side_gates [B, S]`` (in [0, 1]) for the
    ``sectors``, ``params [6]`` = (r, s_d, s_β, λ_a, λ_f, λ_s), positive."""
    radius, soft_d, soft_b, w_anchor, w_faced, w_side = params.float().unbind()
    softplus = torch.nn.functional.softplus
    to_tokens = token_xy.float().unsqueeze(1) - candidates.unsqueeze(2)  # [B, G, N, 2]
    distance = torch.sqrt(to_tokens.square().sum(-1) + 1e-9)
    anchor = torch.einsum("bn,bgn->bg", anchor_attention.float(), softplus((distance - radius) / soft_d))
    to_faced = faced_xy.float().unsqueeze(1) - candidates  # [B, G, 2]
    faced = softplus((SOLVE_FACED_MIN_DIST - to_faced.norm(dim=-1)) / soft_d)
    facing = _bearing(to_faced)  # standing at p_g one faces f
    energy = w_anchor * anchor + w_faced * faced
    for k, sector in enumerate(sectors):
        relative = _bearing(side_xy[:, k].float().unsqueeze(1) - candidates) - facing
        relative = torch.atan2(torch.sin(relative), torch.cos(relative))  # wrap to (-π, π]
        violation = softplus(sector_violation(relative, sector) / soft_b)
        energy = energy + w_side * side_gates[:, k : k + 1].float() * violation
    return energy


def solve_position(
    anchor_attention: Tensor,
    token_xy: Tensor,
    faced_xy: Tensor,
    side_xy: Tensor,
    side_gates: Tensor,
    params: Tensor,
    sectors: tuple[str, ...] = SIDE_ROLES,
) -> Tensor:
    """``Σ_g π_g p_g [B, 2]``, ``π = softmax(-E)`` over the grid around the anchors' mean (:func:`solve_energy`)."""
    centre = pointer_position(anchor_attention, token_xy, torch.zeros_like(faced_xy, dtype=torch.float32))
    candidates = solve_grid(centre.detach())
    energy = solve_energy(candidates, anchor_attention, token_xy, faced_xy, side_xy, side_gates, params, sectors)
    return torch.einsum("bg,bgc->bc", torch.softmax(-energy, dim=-1), candidates)


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
    MLP giving ``(offset_x, offset_y, log σ²_x, log σ²_y)``; with ``solves`` the side slots, their gates and the
    solve's parameters."""

    def __init__(
        self,
        hidden_size: int,
        num_bins: int = 36,
        key_dim: int = 64,
        intermediate_size: int | None = None,
        sigma_bins: float = 2.0,
        reads_text: bool = False,
        matches_names: bool = False,
        solves: bool = False,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_bins, self.key_dim, self.sigma_bins = hidden_size, num_bins, key_dim, sigma_bins
        self.pos_query = nn.Linear(hidden_size, key_dim)
        self.pos_key = nn.Linear(hidden_size, key_dim)
        self.ori_query = nn.Linear(hidden_size, key_dim)
        self.ori_key = nn.Linear(hidden_size, key_dim)
        self.pos_mlp = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, 4, float32=True)
        self.reads_text, self.matches_names, self.solves = reads_text or matches_names, matches_names, solves
        # each role's text hop: word key v, word query r (names: no r, a word's query is the role's key projection of
        # its input embedding); roles <Pos>, <Ori>, then the side slots
        per_hop = 1 if matches_names else 2
        roles = 2 + (len(SIDE_ROLES) if solves else 0)
        if self.reads_text:
            self.text_hops = nn.ModuleList(
                nn.ModuleList(nn.Linear(hidden_size, key_dim) for _ in range(per_hop)) for _ in range(2)
            )
        if solves:  # the side slots read the vision tokens through <Pos>'s key projection
            self.side_queries = nn.ModuleList(nn.Linear(hidden_size, key_dim) for _ in SIDE_ROLES)
            if self.reads_text:
                self.side_hops = nn.ModuleList(
                    nn.ModuleList(nn.Linear(hidden_size, key_dim) for _ in range(per_hop)) for _ in SIDE_ROLES
                )
            self.side_gate = TwoLayerMLP(hidden_size, intermediate_size or hidden_size, len(SIDE_ROLES), float32=True)
            #: log of (r, s_d, s_β, λ_anchor, λ_faced, λ_side) of the solve's energy
            self.log_solve = nn.Parameter(torch.zeros(len(SOLVE_INITIAL)))
        #: log of the attention scales τ, one per role (over the vision tokens), then one per role's text hop τ_t
        self.log_scale = nn.Parameter(torch.zeros(2 * roles if self.reads_text else roles))
        self.reset_parameters()

    def _roles(self) -> list[tuple[nn.Linear, nn.ModuleList | None, nn.Linear]]:
        """Per role (<Pos>, <Ori>, the side slots): its query projection, its text hop (None without text) and the key
        projection of the vision tokens it reads."""
        queries = [self.pos_query, self.ori_query, *(self.side_queries if self.solves else ())]
        keys = [self.pos_key, self.ori_key] + [self.pos_key] * (len(queries) - 2)
        hops: list = [None] * len(queries)
        if self.reads_text:
            hops = [*self.text_hops, *(self.side_hops if self.solves else ())]
        return list(zip(queries, hops, keys, strict=True))

    def reset_parameters(self) -> None:
        """Default-scale projections (attention starts informative enough to learn from), zero offset at init."""
        # the order of the random draws of the two-role heads is kept (their results reproduce), the side slots follow
        roles = self._roles()
        hops = [layer for _, hop, _ in roles[:2] for layer in (hop or ())]
        layers = [self.pos_query, self.pos_key, self.ori_query, self.ori_key, *hops]
        layers += [layer for query, hop, _ in roles[2:] for layer in (query, *(hop or ()))]
        for layer in layers:
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(self.hidden_size))
            nn.init.zeros_(layer.bias)
        mlps = [self.pos_mlp, self.side_gate] if self.solves else [self.pos_mlp]
        for mlp in mlps:  # zero output at init: no offset, gates at 0.5
            nn.init.normal_(mlp.fc1.weight, std=0.02)
            nn.init.zeros_(mlp.fc1.bias)
            nn.init.zeros_(mlp.fc2.weight)
            nn.init.zeros_(mlp.fc2.bias)
        with torch.no_grad():
            self.log_scale.fill_(math.log(INITIAL_SCALE))
            if self.solves:
                self.log_solve.copy_(torch.log(torch.tensor(SOLVE_INITIAL)))

    def _softmax(self, query: Tensor, keys: Tensor, mask: Tensor, scale: int) -> Tensor:
        """``softmax_i(τ q · normalize(k_i))`` over the unmasked ``keys [B, N, d]`` (zero on the masked)."""
        keys = torch.nn.functional.normalize(keys, dim=-1)
        scores = torch.einsum("bd,bnd->bn", query, keys) * self.log_scale[scale].float().exp()
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).masked_fill(~mask, 0.0)

    def _query(self, role: int, state: Tensor, text: TextInputs | None) -> Tensor:
        """Role ``role``'s vision-token query ``[B, d]``: from the text (two hops) or from its own state."""
        query, hop, key = self._roles()[role]
        own = torch.nn.functional.normalize(linear_fp32(query, state), dim=-1)
        if hop is None:
            return own
        if text is None or (self.matches_names and text.embeds is None):
            raise ValueError("pointer_query 'text' / 'names' needs the situation text's hidden states (and embeddings)")
        # the role's own query picks which of the text's words it reads
        num_roles = len(self.log_scale) // 2
        weights = self._softmax(own, linear_fp32(hop[0], text.states), text.mask, num_roles + role)  # [B, M]
        # names: a word's query is its input embedding seen as a vision token's key would be
        words = linear_fp32(key, text.embeds) if self.matches_names else linear_fp32(hop[1], text.states)
        return torch.einsum("bm,bmd->bd", weights, torch.nn.functional.normalize(words, dim=-1))

    def _attend(self, role: int, state: Tensor, tokens: Tensor, mask: Tensor, text: TextInputs | None) -> Tensor:
        keys = linear_fp32(self._roles()[role][2], tokens)
        return self._softmax(self._query(role, state, text), keys, mask, role)

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
        ``position_attention`` / ``orientation_attention [B, N]`` (zero on padding); with ``solves`` also
        ``side_attention [B, 3, N]`` and ``side_gate_logits [B, 3]``.
        """
        pos_attn = self._attend(0, pos_state, tokens, mask, text)
        ori_attn = self._attend(1, ori_state, tokens, mask, text)
        head = self.pos_mlp(pos_state)
        out: dict[str, Tensor] = {}
        if self.solves:
            side_attn = torch.stack(
                [self._attend(2 + k, pos_state, tokens, mask, text) for k in range(len(SIDE_ROLES))], dim=1
            )
            side_xy = torch.einsum("bkn,bnc->bkc", side_attn, token_xy.float())
            gate_logits = self.side_gate(pos_state)
            faced_xy = pointer_position(ori_attn.detach(), token_xy, torch.zeros_like(head[..., :2]))
            solved = solve_position(
                pos_attn, token_xy, faced_xy, side_xy, torch.sigmoid(gate_logits), self.log_solve.float().exp()
            )
            position = solved + head[..., :2]
            out.update(side_attention=side_attn, side_gate_logits=gate_logits)
        else:
            position = pointer_position(pos_attn, token_xy, head[..., :2])
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
            **out,
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
        solves=config.pointer_position == "solve",
    )


def anchor_loss(
    attentions: dict[str, Tensor],
    vision_mask: Tensor,
    targets: dict[str, Tensor | None],
    side_gate_logits: Tensor | None = None,
    side_labelled: Tensor | None = None,
) -> Tensor:
    """``L_anchor`` (see the module docstring): ``attentions`` per role (``anchor``: the ``<Pos>`` map, ``faced``: the
    ``<Ori>`` map, ``left`` / ``right`` / ``behind``: the side slots', each ``[B, N]``) and ``targets`` per role,
    ``[B, L]`` token masks over the sequence: the mean over the rows of every map whose target set is non-empty,
    plus (``side_gate_logits [B, 3]``, rows where ``side_labelled [B]``) the gates' mean binary cross-entropy toward
    "the row's sector set is non-empty"."""
    counts = vision_mask.sum(dim=1).tolist()
    total, rows = [], []
    for role, attention in attentions.items():
        target = targets.get(role)
        if target is None:
            continue
        padded, _ = pad_rows(target.to(vision_mask.device)[vision_mask], counts)
        loss_sum, n = attention_mass_loss(attention, padded)
        total.append(loss_sum)
        rows.append(n)
    loss = torch.stack(total).sum() / torch.stack(rows).sum().clamp_min(1)
    if side_gate_logits is not None and side_labelled is not None and bool(side_labelled.any()):
        present = torch.stack([targets[role].any(dim=1) for role in SIDE_ROLES], dim=1).float()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            side_gate_logits.float(), present.to(side_gate_logits.device), reduction="none"
        )
        loss = loss + bce[side_labelled.to(bce.device)].mean()
    return loss


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


def batch_referent_tokens(items: list[dict], offsets: list[int], length: int, sides: bool = False) -> dict[str, Tensor]:
    """``anchor_tokens`` / ``faced_tokens [B, L]`` (False where a sample names no such object); with ``sides`` also
    ``left_tokens`` / ``right_tokens`` / ``behind_tokens`` and ``side_labelled [B]`` (the sample's data label every
    sector, so an empty sector means "the text names none")."""
    out = {}
    referents = [it.get("referent_tokens") for it in items]
    for role in REFERENT_ROLES if sides else REFERENT_ROLES[:2]:
        rows = [(r[0], r[1][role]) if r is not None and role in r[1] else None for r in referents]
        out[f"{role}_tokens"] = scatter_tokens(rows, offsets, length, False, torch.bool)
    if sides:
        labelled = [r is not None and all(role in r[1] for role in SIDE_ROLES) for r in referents]
        out["side_labelled"] = torch.tensor(labelled, dtype=torch.bool)
    return out
