"""loc3r-tiny, the pretrained tiny base shipped inside the package, that ``loc3r demo`` fine-tunes every variant from.

The paper fine-tunes a pretrained video VLM; a model trained from nothing on a CPU never learns to see
(benchmarks/RESULTS.md). loc3r-tiny is a Qwen2.5-VL-class model pretrained on SynthRooms recognition tasks with no
spatial supervision (:mod:`loc3r.synthrooms.pretraining`, recipe ``configs/base/loc3r_tiny.yaml``); its model card
(``MODEL_CARD.md`` beside the weights) gives the data, steps, wall time, machine, metrics and the commands that
rebuild it.

Files of a base directory: ``config.json``, ``model.safetensors`` (float16), ``tokenizer.json``,
``tokenizer_config.json``, ``loc3r_processor_config.json``, ``MODEL_CARD.md`` and ``SHA256SUMS`` (the sha256 of
every other file). :func:`verify_base` checks the hashes before a demo trusts the weights; :func:`export_base` writes
such a directory from a finished ``loc3r train`` run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: Where the shipped base lives (package data).
BASE_DIR = Path(__file__).parent.parent / "assets" / "loc3r-tiny"
BASE_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "loc3r_processor_config.json",
    "MODEL_CARD.md",
)
REBUILD = (
    "rebuild it with: loc3r synth --out data/pretrain --scenes 2400 --frames 8 --size 112x112 --seed 1000 "
    "--min-objects 5 --max-objects 24 --min-side 2.5 --max-side 7.5 --situations 0 --vsi-per-type 0 --no-novel-view "
    "--val-fraction 0.03 --test-fraction 0 --no-video --workers 2 && loc3r train configs/base/loc3r_tiny.yaml && "
    "loc3r base export runs/base/loc3r_tiny/final --out src/loc3r/assets/loc3r-tiny (see its MODEL_CARD.md)"
)


class BaseError(ValueError):
    """The base directory is missing, incomplete or does not match its SHA256SUMS."""


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_base(path: str | Path = BASE_DIR) -> dict[str, str]:
    """Check every file of a base directory against its ``SHA256SUMS``; returns ``{file: sha256}``.

    Raises :class:`BaseError` naming the file (missing, a Git LFS pointer instead of weights, or a changed hash)
    and saying how to rebuild the base.
    """
    path = Path(path)
    sums_path = path / "SHA256SUMS"
    if not sums_path.is_file():
        raise BaseError(f"{sums_path}: missing (no pretrained base at {path}); {REBUILD}")
    expected: dict[str, str] = {}
    for number, line in enumerate(sums_path.read_text().splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise BaseError(f"{sums_path}: line {number}: expected '<sha256>  <file>', got {line!r}")
        expected[parts[1]] = parts[0]
    missing = [name for name in BASE_FILES if name not in expected]
    if missing:
        raise BaseError(f"{sums_path}: no hash for {missing}; {REBUILD}")
    for name, want in expected.items():
        file = path / name
        if not file.is_file():
            raise BaseError(f"{file}: missing; {REBUILD}")
        got = file_sha256(file)
        if got != want:
            raise BaseError(f"{file}: sha256 {got} does not match SHA256SUMS ({want}); {REBUILD}")
    return expected


def export_base(final_dir: str | Path, out_dir: str | Path, card: str) -> dict[str, str]:
    """Write a base directory from a ``loc3r train`` ``final/`` model: float16 safetensors weights, the config,
    tokenizer and processor files, ``card`` as ``MODEL_CARD.md`` and ``SHA256SUMS``; atomically (a temporary
    directory renamed into place). Returns the hashes."""
    import torch

    from loc3r.model.loading import load_model

    final_dir, out_dir = Path(final_dir), Path(out_dir)
    model = load_model(final_dir, dtype=torch.float16)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        (tmp / "MODEL_CARD.md").write_text(card)
        for extra in sorted(set(os.listdir(tmp)) - set(BASE_FILES)):
            raise BaseError(f"export_base: unexpected file {extra!r} written by save_pretrained")
        os.chmod(tmp, 0o755)
        for name in BASE_FILES:
            os.chmod(tmp / name, 0o644)
        hashes = {name: file_sha256(tmp / name) for name in BASE_FILES}
        (tmp / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in hashes.items()))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return hashes


def base_summary(path: str | Path = BASE_DIR) -> dict[str, Any]:
    """Size facts of a base (for the demo's settings line): parameters of the tower and in total, tokens per frame."""
    config = json.loads((Path(path) / "config.json").read_text())
    vision = config["vlm_config"]["vision_config"]
    text = config["vlm_config"].get("text_config", config["vlm_config"])
    return {
        "vision": f"depth {vision['depth']}, width {vision['hidden_size']}, patch {vision['patch_size']}",
        "llm": f"{text['num_hidden_layers']} layers, width {text['hidden_size']}",
    }
