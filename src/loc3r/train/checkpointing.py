"""Atomic, exactly-resumable training checkpoints on top of 🤗 Accelerate's ``save_state``/``load_state``.

Layout of ``OUTPUT_DIR/checkpoints/`` ::

    step-00000040/                  # complete checkpoints only (renamed into place atomically)
        model.safetensors           # Accelerate: model weights (FSDP / DeepSpeed write their own shards)
        optimizer.bin scheduler.bin # Accelerate: torch.save'd state dicts, re-read with weights_only=True
        random_states_<rank>.pkl    # Accelerate's own RNG capture (kept; we do not rely on it)
        rng_state_<rank>.safetensors  # ours: python / numpy / torch (+cuda) RNG, no pickle
        trainer_state.json          # step, epoch, data position, non-finite count, config fingerprint
        config.yaml                 # the resolved recipe that produced the checkpoint
    .tmp-step-00000040/             # being written; never mistaken for a checkpoint

Why atomic: every rank writes into the hidden ``.tmp-*`` directory; after a barrier the main process
writes ``trainer_state.json`` last and renames the directory into place with ``os.replace`` (a single
``rename(2)`` on POSIX), so a run killed with SIGKILL at any moment leaves either the previous complete
checkpoint or the new complete one. Old checkpoints beyond ``keep_last`` are deleted only after the new one
is in place. (Multi-node runs need ``OUTPUT_DIR`` on a shared filesystem.)

Why our own RNG file: Accelerate restores RNG states inside a ``try/except`` that only logs on failure;
exact resume needs the restore to either succeed or fail loudly, and the house rule forbids unpickling,
so the states are stored as tensors in safetensors with the Python/NumPy scalars in its JSON metadata.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

_log = logging.getLogger("loc3r.train")

_STEP_DIR = re.compile(r"^step-(\d{8})$")
STATE_FILE = "trainer_state.json"
CONFIG_FILE = "config.yaml"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or incompatible with the current run."""


@dataclass
class TrainerState:
    """Where the loop is. ``step`` counts optimizer steps (skipped non-finite steps included: their data
    was consumed and the schedule advanced); ``epoch`` / ``batch_in_epoch`` give the data position in
    micro-batches *per process* within the current mixture epoch, so a resumed run skips exactly the
    micro-batches already consumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    nonfinite_steps: int = 0
    samples_seen: int = 0
    config_fingerprint: str = ""
    num_processes: int = 1
    data_sizes: list[int] = field(default_factory=list)  # sizes of the training datasets (resume check)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> TrainerState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{where}: not valid JSON: {err}") from err
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"{where}: unknown fields {sorted(unknown)}")
        return cls(**data)


# ---------------------------------------------------------------- RNG states (no pickle)


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Python, NumPy, torch CPU (and CUDA) RNG states as ``(tensors, json-metadata)``."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    tensors: dict[str, torch.Tensor] = {
        "torch_cpu": torch.get_rng_state(),
        "python_state": torch.tensor(py_state, dtype=torch.int64),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
    }
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    meta = {
        "python_version": str(py_version),
        "python_gauss": json.dumps(py_gauss),
        "numpy_name": str(np_name),
        "numpy_pos": str(int(np_pos)),
        "numpy_has_gauss": str(int(np_has_gauss)),
        "numpy_gauss": repr(float(np_gauss)),
        "num_cuda": str(torch.cuda.device_count() if torch.cuda.is_available() else 0),
    }
    return tensors, meta


def restore_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(
        (
            int(meta["python_version"]),
            tuple(int(x) for x in tensors["python_state"].tolist()),
            json.loads(meta["python_gauss"]),
        )
    )
    np.random.set_state(
        (
            meta["numpy_name"],
            tensors["numpy_keys"].numpy().astype(np.uint32),
            int(meta["numpy_pos"]),
            int(meta["numpy_has_gauss"]),
            float(meta["numpy_gauss"]),
        )
    )
    torch.set_rng_state(tensors["torch_cpu"])
    num_cuda = int(meta.get("num_cuda", "0"))
    if num_cuda and torch.cuda.is_available():
        states = [tensors[f"torch_cuda_{i}"] for i in range(num_cuda) if f"torch_cuda_{i}" in tensors]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
        else:
            torch.cuda.set_rng_state(states[0])


def save_rng_state(path: Path) -> None:
    tensors, meta = capture_rng_state()
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=meta)


def load_rng_state(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing RNG state for this process; the checkpoint was written by a run with a different "
            "number of processes or is incomplete — exact resume is impossible"
        )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    restore_rng_state(load_file(str(path)), meta)


# ---------------------------------------------------------------- directory handling


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` as ``(step, path)`` sorted by step; ``.tmp-*`` are ignored."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: Path) -> Path | None:
    ckpts = list_checkpoints(root)
    return ckpts[-1][1] if ckpts else None


def _safetensors_damage(file: Path) -> str | None:
    """Why a safetensors file cannot be read whole (truncated, bad header), or None. Reads the header only:
    the file must be exactly ``8 + header length + end of the last tensor`` bytes long."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{file.name}: {size} bytes, too short for a safetensors header"
        header_len = int.from_bytes(head, "little")
        if header_len > size - 8:
            return f"{file.name}: header of {header_len} bytes but the file has {size} (truncated)"
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return f"{file.name}: header is not valid JSON ({err})"
    if not isinstance(header, dict):
        return f"{file.name}: header is not a JSON object"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    expected = 8 + header_len + (max(ends) if ends else 0)
    if size != expected:
        return f"{file.name}: {size} bytes but its header describes {expected} (truncated or damaged)"
    return None


def checkpoint_damage(path: Path) -> str | None:
    """Why a complete-looking checkpoint directory cannot be restored, or None when it looks whole.

    Checks what can be checked without loading tensors: ``trainer_state.json`` and ``config.yaml`` parse; every
    ``*.safetensors`` file is as long as its header says; every ``*.bin`` (torch's zip format: optimizer,
    scheduler) has its zip directory (which sits at the end, so a truncated file fails); the RNG state of
    process 0 is there.
    """
    import zipfile

    import yaml

    path = Path(path)
    try:
        TrainerState.from_json((path / STATE_FILE).read_text(), str(path / STATE_FILE))
    except (OSError, CheckpointError, ValueError, TypeError) as err:
        return f"{STATE_FILE}: {err}"
    try:
        yaml.safe_load((path / CONFIG_FILE).read_text())
    except (OSError, yaml.YAMLError) as err:
        return f"{CONFIG_FILE}: {err}"
    if not (path / "rng_state_0.safetensors").is_file():
        return "rng_state_0.safetensors is missing"
    weights = sorted(path.glob("*.safetensors"))
    model_files = [w for w in weights if not w.name.startswith("rng_state_")] + list(path.glob("pytorch_model*"))
    if not model_files and not any(p.is_dir() for p in path.iterdir()):  # FSDP / DeepSpeed: shards in folders
        return "no model weights (*.safetensors)"
    for file in weights:
        why = _safetensors_damage(file)
        if why is not None:
            return why
    for file in sorted(path.glob("*.bin")):
        try:
            with zipfile.ZipFile(file):
                pass
        except (zipfile.BadZipFile, OSError) as err:
            return f"{file.name}: not a complete torch file ({err})"
    return None


def newest_good_checkpoint(root: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint under ``root`` that :func:`checkpoint_damage` finds whole, and the newer damaged
    ones with the reason (newest first). ``(None, damaged)`` when none is whole."""
    damaged: list[tuple[Path, str]] = []
    for _, path in reversed(list_checkpoints(root)):
        why = checkpoint_damage(path)
        if why is None:
            return path, damaged
        damaged.append((path, why))
    return None, damaged


def read_checkpoint_config(path: Path) -> dict[str, Any]:
    """The resolved recipe stored with a checkpoint (``yaml.safe_load``)."""
    import yaml

    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"{path}: no {CONFIG_FILE}; not a loc3r training checkpoint")
    return yaml.safe_load(file.read_text())


def save_checkpoint(
    accelerator: Any,
    root: Path,
    state: TrainerState,
    config_yaml: str,
    keep_last: int,
    extra: Callable[[Path], None] | None = None,
) -> Path | None:
    """Write a checkpoint of everything ``accelerator`` prepared plus ``state``; collective (all ranks).

    ``extra(tmp_dir)`` runs on the main process before the directory is completed (e.g. saving the
    tokenizer). Returns the final directory on the main process (None elsewhere).
    """
    root = Path(root)
    name = f"step-{state.step:08d}"
    tmp = root / f".tmp-{name}"
    final = root / name
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    save_rng_state(tmp / f"rng_state_{accelerator.process_index}.safetensors")
    accelerator.wait_for_everyone()
    result = None
    if accelerator.is_main_process:
        (tmp / CONFIG_FILE).write_text(config_yaml)
        if extra is not None:
            extra(tmp)
        _write_fsync(tmp / STATE_FILE, state.to_json())
        _fsync_dir(tmp)
        if final.exists():  # a resumed run re-saving the same step: replace the old copy
            trash = root / f".old-{name}"
            if trash.exists():
                shutil.rmtree(trash)
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
        for _, old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        result = final
    accelerator.wait_for_everyone()
    return result


def load_checkpoint(accelerator: Any, path: Path) -> TrainerState:
    """Restore model / optimizer / scheduler (Accelerate) and the RNG states (ours); return the state."""
    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path}: no {STATE_FILE}; incomplete or not a loc3r checkpoint")
    state = TrainerState.from_json(state_file.read_text(), str(state_file))
    if state.num_processes != accelerator.num_processes:
        raise CheckpointError(
            f"{path}: written by {state.num_processes} process(es), resuming with {accelerator.num_processes}; "
            "the data shards and RNG streams would differ, so exact resume is impossible"
        )
    try:
        accelerator.load_state(str(path))
    except pickle.UnpicklingError as err:
        _load_without_optimizer(accelerator, path, err)
    bad = [
        name
        for model in getattr(accelerator, "_models", [])
        for name, p in accelerator.unwrap_model(model).named_parameters()
        if p.is_floating_point() and not bool(torch.isfinite(p).all())
    ]
    if bad:
        raise CheckpointError(
            f"{path}: model weights with NaN/inf values in {bad[:5]}{' ...' if len(bad) > 5 else ''} ({len(bad)} "
            "tensors); training diverged before this checkpoint — resume from an earlier one (delete this one) "
            "or lower optim.lr"
        )
    load_rng_state(path / f"rng_state_{accelerator.process_index}.safetensors")
    return state


def _load_without_optimizer(accelerator: Any, path: Path, err: Exception) -> None:
    """``accelerator.load_state`` refused a file that holds pickled objects other than tensors (it loads with
    ``weights_only=True``; such a file is never unpickled: it may run code). When that file is ``optimizer.bin`` —
    the model is loaded by then — the optimizer starts fresh (its moments are rebuilt over the next steps) with a
    warning, and the scheduler is restored on its own; any other file is a :class:`CheckpointError`."""
    optimizer_file = path / "optimizer.bin"
    try:
        torch.load(optimizer_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    else:  # the optimizer was fine: another file is foreign
        raise CheckpointError(f"{path}: a file holds pickled objects other than tensors, not loaded ({err})") from err
    _log.warning(
        "%s holds pickled objects other than tensors (not loaded: unpickling it could run code); resuming with a "
        "FRESH optimizer state (model weights, schedule, data position and RNG are restored)",
        optimizer_file,
    )
    for i, scheduler in enumerate(getattr(accelerator, "_schedulers", [])):
        file = path / ("scheduler.bin" if i == 0 else f"scheduler_{i}.bin")
        try:
            scheduler.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        except (OSError, RuntimeError, pickle.UnpicklingError) as sched_err:
            raise CheckpointError(f"{file}: cannot restore the learning-rate schedule ({sched_err})") from sched_err


def cleanup_partial(root: Path) -> list[Path]:
    """Remove ``.tmp-*`` / ``.old-*`` leftovers of a killed save (main process only)."""
    removed = []
    root = Path(root)
    if root.is_dir():
        for child in root.iterdir():
            if child.name.startswith((".tmp-step-", ".old-step-")):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed


def _write_fsync(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
