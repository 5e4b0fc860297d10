"""BEV pictures (matplotlib, Agg backend, PNG): reconstructed layout, camera trajectory, predicted pose.

What one picture shows, all in the clip's BEV anchor frame (metres; x = first camera's forward, y = left):

* the **reconstructed layout**: every vision token's predicted BEV point (layout head), coloured by the
  frame it comes from (early → late; Qwen2.5-VL tokens cover 2 frames, coloured by the first);
* the **camera trajectory** (when poses are known): camera centres with short heading ticks;
* the **predicted pose**: an arrow at the position with the predicted heading, and the 1-σ / 2-σ ellipses of
  the position uncertainty (axis-aligned, σ_x, σ_y from the position head);
* the **ground truth** (when known): a second arrow, and the room's objects as footprints if given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def plot_bev(
    path: str | Path,
    layout_xy: np.ndarray | None = None,
    trajectory: np.ndarray | None = None,
    pred_xy: Sequence[float] | None = None,
    pred_yaw: float | None = None,
    pred_sigma: Sequence[float] | None = None,
    gt_xy: Sequence[float] | None = None,
    gt_yaw: float | None = None,
    footprints: Sequence[np.ndarray] | None = None,
    title: str = "",
    num_groups: int | None = None,
    layout_frame: Sequence[int] | np.ndarray | None = None,
) -> Path:
    """Draw and save one BEV picture; returns the PNG path.

    Args:
        layout_xy: ``[N, 2]`` predicted BEV points of the vision tokens in sequence order (or None).
        trajectory: ``[T, 4, 4]`` camera-to-BEV poses or ``[T, 2]`` camera centres (or None).
        pred_xy, pred_yaw, pred_sigma: predicted position (m), heading (rad), per-axis σ (m).
        gt_xy, gt_yaw: ground-truth pose when known.
        footprints: ``[4, 2]`` BEV corner arrays of the objects (ground truth), drawn as outlines.
        layout_frame: ``[N]`` source frame index of each layout point (``Loc3rPrediction.layout_frame``, exact
            from the processor's token segments); the colour of a point is its frame.
        num_groups: without ``layout_frame``: colour the points in this many equal consecutive groups (an
            approximation of the frame; exact only when every frame group has the same number of tokens).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse, Polygon

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for fp in footprints or []:
        ax.add_patch(Polygon(np.asarray(fp)[:, :2], closed=True, fill=False, ec="0.4", lw=0.8))
    if layout_xy is not None and len(layout_xy):
        pts = np.asarray(layout_xy, dtype=np.float64).reshape(-1, 2)
        n = len(pts)
        if layout_frame is not None and len(layout_frame) == n:
            frame = np.asarray(layout_frame, dtype=np.float64)
            colour = frame - frame.min()
        elif num_groups:
            colour = np.floor(np.arange(n) * num_groups / n) / max(num_groups - 1, 1)
        else:
            colour = np.arange(n) / max(n - 1, 1)
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=colour, cmap="viridis", s=8, alpha=0.7, label="layout (tokens)")
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04, label="frame (early → late)")
    if trajectory is not None:
        traj = np.asarray(trajectory, dtype=np.float64)
        centres = traj[:, :2, 3] if traj.ndim == 3 else traj[:, :2]
        ax.plot(centres[:, 0], centres[:, 1], "-o", color="0.2", ms=2, lw=1, label="camera")
        if traj.ndim == 3:
            fwd = traj[:, :2, 2]
            fwd = fwd / np.maximum(np.linalg.norm(fwd, axis=1, keepdims=True), 1e-9)
            ax.quiver(centres[:, 0], centres[:, 1], fwd[:, 0], fwd[:, 1], color="0.2", scale=25, width=0.004)
    if gt_xy is not None:
        g = np.asarray(gt_xy, dtype=np.float64)
        ax.plot(g[0], g[1], "s", color="tab:green", ms=7, label="ground truth")
        if gt_yaw is not None:
            ax.arrow(g[0], g[1], 0.6 * np.cos(gt_yaw), 0.6 * np.sin(gt_yaw), color="tab:green", width=0.03)
    if pred_xy is not None:
        p = np.asarray(pred_xy, dtype=np.float64)
        if pred_sigma is not None:
            s = np.asarray(pred_sigma, dtype=np.float64)
            for k, alpha in ((1, 0.35), (2, 0.15)):
                ax.add_patch(Ellipse(p, 2 * k * s[0], 2 * k * s[1], color="tab:red", alpha=alpha, lw=0))
        ax.plot(p[0], p[1], "o", color="tab:red", ms=7, label="predicted")
        if pred_yaw is not None:
            ax.arrow(p[0], p[1], 0.6 * np.cos(pred_yaw), 0.6 * np.sin(pred_yaw), color="tab:red", width=0.03)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("BEV x (m, first camera forward)")
    ax.set_ylabel("BEV y (m, left)")
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right", fontsize=7)
    draw_title(fig, ax, title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def draw_title(fig: Any, ax: Any, title: str, fontsize: float = 8.0, max_lines: int = 4) -> None:
    """Set ``title`` wrapped to the figure's width (a long situation + question used to run off both edges and be
    cut); beyond ``max_lines`` lines it ends with an ellipsis. Wrap width from the figure width and font size
    (an average glyph is ~0.55 em wide)."""
    import textwrap

    if not title:
        return
    width_pt = fig.get_figwidth() * 72.0 * 0.92
    chars = max(20, int(width_pt / (0.55 * fontsize)))
    lines = textwrap.wrap(" ".join(str(title).split()), width=chars) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, chars - 1)].rstrip() + "…"
    ax.set_title("\n".join(lines), fontsize=fontsize)
