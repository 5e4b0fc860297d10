"""Issue 22: the BEV figure's title (situation + question) is wrapped inside the figure, never cut at its edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loc3r.apps.viz import draw_title, plot_bev

LONG = ("I am sitting on the edge of the bed with the window behind me and the wardrobe to my right, facing the "
        "door. What is the object on my left that is closest to the lamp on the nightstand?")  # fmt: skip


def test_long_title_fits_the_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    draw_title(fig, ax, LONG)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    box = ax.title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    assert ax.title.get_text().replace("\n", " ") == " ".join(LONG.split())  # every word kept
    plt.close(fig)
    path = plot_bev(tmp_path / "bev.png", layout_xy=np.zeros((4, 2)), pred_xy=[0.0, 0.0], pred_yaw=0.0, title=LONG)
    assert path.stat().st_size > 1000


def test_very_long_title_is_shortened_with_an_ellipsis() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    draw_title(fig, ax, "word " * 300)
    lines = ax.title.get_text().split("\n")
    assert len(lines) == 4 and lines[-1].endswith("…")
    plt.close(fig)
