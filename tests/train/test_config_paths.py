"""Issue 22 (newcomer trips): the shipped recipes work from any working directory (a relative input path that is
not in the working directory is taken from next to the config / the repository it ships in: the tiny pretrained
base), while your own paths stay yours; ``--set data.train[0].root=...`` indexes lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from loc3r.core.config import ConfigError
from loc3r.evaluate.tasks import load_eval_config
from loc3r.train.config import load_config

TINY = REPO / "src" / "loc3r" / "assets" / "loc3r-tiny"


def test_shipped_recipe_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(REPO / "configs" / "demo" / "loc3r.yaml")
    assert Path(cfg.model.pretrained_dir).resolve() == TINY.resolve()  # the shipped asset, found from /tmp
    assert str(cfg.output_dir) == "runs/demo_loc3r"  # outputs stay where the user is
    (tmp_path / "data" / "synthrooms_demo").mkdir(parents=True)  # the user's own data in the working directory wins
    cfg = load_config(REPO / "configs" / "demo" / "loc3r.yaml")
    assert str(cfg.data.train[0].root) == "data/synthrooms_demo"


def test_list_index_overrides(tmp_path: Path) -> None:
    cfg = load_config(REPO / "configs" / "train_tiny.yaml", [f"data.train[0].root={tmp_path}", "data.val.0.split=test"])
    assert Path(cfg.data.train[0].root) == tmp_path and cfg.data.val[0].split == "test"
    with pytest.raises(ConfigError, match=r"data\.train\.3.*1-item list"):
        load_config(REPO / "configs" / "train_tiny.yaml", ["data.train[3].root=x"])


def test_eval_config_checkpoint_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_eval_config(REPO / "configs/synth/eval/test.yaml", ["checkpoint=src/loc3r/assets/loc3r-tiny"])
    assert Path(cfg.checkpoint).resolve() == TINY.resolve()


def test_readme_config_path_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``loc3r train configs/train_tiny.yaml`` as README writes it, run outside the repository."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config("configs/train_tiny.yaml")
    assert str(cfg.output_dir) == "runs/train_tiny"
    with pytest.raises(ConfigError, match="no_such.yaml: recipe file not found"):
        load_config("configs/no_such.yaml")
