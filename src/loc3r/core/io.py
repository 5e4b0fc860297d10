"""Atomic writes and checked reads of loc3r's small text files (JSON, JSON Lines, YAML/plain text).

Why one module: every file loc3r writes may be read by another process while a job runs (a resumed run, an
evaluation merge, a second ``loc3r synth`` worker) or be cut short by a crash or SIGKILL. So a writer never
leaves a half file: it writes a temporary file next to the target (same file system) and ``os.replace``-s it
into place, which is atomic on POSIX. Readers turn a missing, unreadable or malformed file into one
:class:`~loc3r.core.errors.SampleError` naming the file (and the line of a JSON Lines file), which the CLI prints as
``loc3r CMD: error: ...`` (exit code 2) and lenient loaders can catch to skip a record with a report.

JSON only, never pickle. Large tensors are safetensors (``loc3r.data.cache``, the checkpoints), not this module.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loc3r.core.errors import SampleError


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same directory + ``os.replace``); returns the path.

    The parent directory is created. The file gets mode 0644 (``mkstemp`` would leave 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any, indent: int | None = 2, sort_keys: bool = False, **kwargs: Any) -> Path:
    """``json.dumps(data, indent=..., sort_keys=..., **kwargs)`` written atomically (see :func:`write_text`)."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, **kwargs))


def write_jsonl(path: str | Path, records: Iterable[Any]) -> Path:
    """One ``json.dumps(record)`` per line, written atomically (see :func:`write_text`)."""
    return write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of ``path``; a missing or unreadable file is a :class:`SampleError` naming it."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise SampleError(f"{path}: {what} not found") from err
    except IsADirectoryError as err:
        raise SampleError(f"{path}: {what} is a directory, not a file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise SampleError(f"{path}: cannot read {what} ({err})") from err


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file; a missing or malformed file is a :class:`SampleError` naming it."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SampleError(f"{path}: {what} is not valid JSON ({err})") from err


def read_jsonl(path: str | Path, what: str = "file") -> list[Any]:
    """The records of a JSON Lines file (blank lines skipped); a malformed line is a :class:`SampleError`
    naming the file and the line number."""
    return _parse_lines(read_text(path, what), Path(path))


def read_json_or_jsonl(path: str | Path, what: str = "file") -> Any:
    """A JSON document or a JSON Lines file (``.jsonl`` / ``.ndjson`` are always read as lines).

    Raises :class:`SampleError` naming the file (and the line for JSON Lines) when neither parses, and for an
    empty file.
    """
    path = Path(path)
    text = read_text(path, what)
    if not text.strip():
        raise SampleError(f"{path}: file is empty")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _parse_lines(text, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole_err:
        try:
            return _parse_lines(text, path)
        except SampleError as line_err:
            if _first_line_fails(text):
                # Not JSON Lines either: the whole-document error is the likelier intent.
                raise SampleError(f"{path}: not valid JSON or JSON Lines ({whole_err})") from line_err
            raise


def _parse_lines(text: str, path: Path) -> list[Any]:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise SampleError(f"{path} line {line_no} is not valid JSON ({err.msg})") from err
    return records


def _first_line_fails(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        json.loads(first)
    except json.JSONDecodeError:
        return True
    return False
