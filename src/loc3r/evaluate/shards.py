"""What each evaluation shard was made from, and the checks ``loc3r eval --merge`` makes before scoring.

Every shard's predictions file ``predictions-shard<i>of<n>.jsonl`` gets a sidecar ``...shard.json``::

    {"format": "loc3r.eval_shard.v1", "shard": i, "num_shards": n,
     "total": samples of the whole evaluation, "assigned": samples of this shard, "predicted": records written,
     "skipped": [{"index", "sample_id", "reason"}], "settings": {everything that changes a score, the model's
     fingerprint included}}

:func:`check_shards` refuses to merge shards that are incomplete (a shard index missing, or a shard whose
records + skipped samples do not add up to what it was assigned), not disjoint (a shard index twice), or made
with different settings (another model, data, frame count, prompt, decoding, ``--max-samples``) — each with a
message naming the files and the fields — unless ``allow_partial`` is set, in which case the problems are
returned as warnings and the scores are marked partial.

:func:`model_fingerprint` identifies a checkpoint without hashing gigabytes: SHA-256 over ``config.json``,
the processor config and, per ``*.safetensors`` file, its size, its header (tensor names, dtypes, shapes,
offsets) and its data — whole up to 64 MiB, else 1 MiB at 64 evenly spaced places (a middle-and-end sample missed
checkpoints whose sampled bytes were frozen weights). Two checkpoints of one run at different steps differ there; a
copy of the same checkpoint elsewhere does not. ``loc3r eval --merge`` also checks the shards' fingerprint against
the config's ``checkpoint`` when that directory is there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loc3r.core.io import read_json, write_json
from loc3r.data.schema import SampleError

SHARD_FORMAT = "loc3r.eval_shard.v1"
_CHUNK = 1 << 20
_SAMPLES = 64


def shard_info_path(predictions: str | Path) -> Path:
    """``predictions-shard0of2.jsonl`` -> ``predictions-shard0of2.shard.json``."""
    path = Path(predictions)
    return path.with_name(path.stem + ".shard.json")


def model_fingerprint(model_dir: str | Path) -> str:
    """A short hash identifying the weights and settings of a checkpoint directory (see the module docstring)."""
    directory = Path(model_dir)
    digest = hashlib.sha256()
    for name in ("config.json", "loc3r_processor_config.json"):
        file = directory / name
        digest.update(name.encode())
        digest.update(file.read_bytes() if file.is_file() else b"<missing>")
    for file in sorted(directory.glob("*.safetensors")):
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with file.open("rb") as handle:
            head = handle.read(8)
            header_len = int.from_bytes(head, "little") if len(head) == 8 else 0
            digest.update(handle.read(min(header_len, size)))
            if size <= _SAMPLES * _CHUNK:  # small: all of it
                handle.seek(0)
                digest.update(handle.read())
                continue
            for k in range(_SAMPLES):  # 1 MiB at _SAMPLES evenly spaced places: a frozen tower cannot hide a change
                handle.seek((size - _CHUNK) * k // (_SAMPLES - 1))
                digest.update(handle.read(_CHUNK))
    return digest.hexdigest()[:16]


def write_shard_info(
    predictions: str | Path,
    *,
    shard: tuple[int, int],
    total: int,
    assigned: int,
    predicted: int,
    skipped: Sequence[dict[str, Any]],
    settings: dict[str, Any],
) -> Path:
    """Write the sidecar of a shard's predictions file atomically; returns its path."""
    path = shard_info_path(predictions)
    payload = {
        "format": SHARD_FORMAT,
        "shard": int(shard[0]),
        "num_shards": int(shard[1]),
        "total": int(total),
        "assigned": int(assigned),
        "predicted": int(predicted),
        "skipped": list(skipped),
        "settings": settings,
    }
    return write_json(path, payload, indent=1, sort_keys=True, default=str)


def _read_info(predictions: Path) -> dict[str, Any]:
    path = shard_info_path(predictions)
    if not path.is_file():
        raise SampleError(
            f"{predictions}: no {path.name} next to it, so what the shard was made from is unknown (made by an older "
            "loc3r?); re-run that shard, or pass --allow-partial to merge anyway"
        )
    info = read_json(path, "shard info")
    if not isinstance(info, dict) or info.get("format") != SHARD_FORMAT:
        raise SampleError(f"{path}: field 'format' must be {SHARD_FORMAT!r}")
    for key in ("shard", "num_shards", "total", "assigned", "predicted", "skipped", "settings"):
        if key not in info:
            raise SampleError(f"{path}: field {key!r} is missing")
    return info


def check_shards(
    paths: Sequence[str | Path], counts: Sequence[int], allow_partial: bool = False
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Check the shards behind ``paths`` (``counts``: records read from each file).

    Returns ``(skipped, warnings, settings)``: the skipped samples of all shards, the problems that
    ``allow_partial`` let through, and the shards' common settings. Raises :class:`SampleError` naming the files
    and fields otherwise.
    """
    problems: list[str] = []
    infos: list[tuple[Path, dict[str, Any]]] = []
    for raw, count in zip(paths, counts, strict=True):
        path = Path(raw)
        try:
            info = _read_info(path)
        except SampleError as err:
            if not allow_partial:
                raise
            problems.append(str(err))
            continue
        if count != info["predicted"]:
            problems.append(
                f"{path}: holds {count} records but its shard wrote {info['predicted']} (file edited or truncated?)"
            )
        if info["predicted"] + len(info["skipped"]) < info["assigned"]:
            problems.append(
                f"{path}: shard {info['shard']}/{info['num_shards']} was assigned {info['assigned']} samples but "
                f"predicted {info['predicted']} and skipped {len(info['skipped'])}"
            )
        infos.append((path, info))
    skipped = [s for _, info in infos for s in info["skipped"]]
    settings: dict[str, Any] = infos[0][1]["settings"] if infos else {}
    if infos:
        first_path, first = infos[0]
        for path, info in infos[1:]:
            for key in ("num_shards", "total"):
                if info[key] != first[key]:
                    problems.append(f"{path}: field {key!r} is {info[key]} but {first[key]} in {first_path}")
            differing = sorted(
                k
                for k in set(info["settings"]) | set(first["settings"])
                if info["settings"].get(k) != first["settings"].get(k)
            )
            for key in differing:
                problems.append(
                    f"{path}: setting {key!r} is {info['settings'].get(key)!r} but {first['settings'].get(key)!r} in "
                    f"{first_path} (shards of different models, data or settings)"
                )
        seen: dict[int, Path] = {}
        for path, info in infos:
            if info["shard"] in seen:
                problems.append(
                    f"{path}: shard {info['shard']}/{info['num_shards']} is also given as {seen[info['shard']]}"
                )
            seen[info["shard"]] = path
        missing = sorted(set(range(int(first["num_shards"]))) - set(seen))
        if missing:
            of = f" of {first['total']}" if int(first["total"]) >= 0 else ""
            problems.append(
                f"shards {missing} of {first['num_shards']} are missing (given: {sorted(seen)}); the scores would be "
                f"over {sum(i['assigned'] for _, i in infos)}{of} samples"
            )
    if problems and not allow_partial:
        raise SampleError("cannot merge: " + "; ".join(problems) + " (pass --allow-partial to score them anyway)")
    return skipped, problems, settings
