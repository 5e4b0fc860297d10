"""The model card `loc3r base export` writes names no machine's folders (issue 20: the shipped card printed one)."""

from __future__ import annotations

from loc3r.apps.pretrained_base import BASE_DIR
from loc3r.commands.base import _portable_paths


def test_absolute_paths_become_placeholders_and_relative_ones_stay():
    text = "model:\n  pretrained_dir: /work/data/loc3r-tiny-stage1\n  root: data/pretrain\n  out: /a/b/c/  # note\n"
    out = _portable_paths(text)
    assert "pretrained_dir: <loc3r-tiny-stage1>" in out and "root: data/pretrain" in out and "out: <c>  # note" in out
    assert "/work/" not in out and "/a/b" not in out


def test_the_shipped_card_prints_no_absolute_path():
    card = (BASE_DIR / "MODEL_CARD.md").read_text()
    recipe = card.split("## Training recipe", 1)[1]
    assert "/work/" not in recipe and ": /" not in recipe
