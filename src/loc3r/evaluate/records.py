"""Reading benchmark annotation / prediction files with errors that name file, record and field.

Every scorer in :mod:`loc3r.evaluate` reads user-supplied JSON: official annotation files and prediction
files written by *any* model. A malformed record must never be skipped silently or crash with a bare
``KeyError``: it raises :class:`loc3r.data.schema.SampleError` whose message names the file, the record
(index and, when it has one, its ``question_id`` / ``id``) and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from loc3r.core.io import read_json_or_jsonl
from loc3r.data.schema import SampleError


def load_records(path: str | Path, list_key: str | None = None) -> list[Any]:
    """Load a list of records from a JSON list, a JSON object holding the list under ``list_key``
    (e.g. SQA3D's ``{"annotations": [...]}``), or JSON Lines."""
    data = read_json_or_jsonl(path)
    if isinstance(data, Mapping):
        if list_key is not None and list_key in data:
            data = data[list_key]
        else:
            expected = f"a list or an object with key {list_key!r}" if list_key else "a list of records"
            raise SampleError(f"{path}: expected {expected}, got an object with keys {sorted(data)[:8]}")
    if not isinstance(data, list):
        raise SampleError(f"{path}: expected a list of records, got {type(data).__name__}")
    return data


def record_where(source: str, index: int, record: Any, id_key: str = "question_id") -> str:
    """Human-readable location of a record: ``"P.json: record 3 (question_id 220602000129)"``."""
    where = f"{source}: record {index}"
    if isinstance(record, Mapping) and id_key in record:
        where += f" ({id_key} {record[id_key]!r})"
    return where


def require_field(record: Any, field: str, where: str) -> Any:
    """``record[field]``; :class:`SampleError` naming ``where`` and ``field`` if absent or not an object."""
    if not isinstance(record, Mapping):
        raise SampleError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field not in record:
        raise SampleError(f"{where}: missing field {field!r}")
    return record[field]


def require_number(value: Any, where: str, field: str) -> float:
    """A finite real number (bools rejected), else :class:`SampleError` naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SampleError(f"{where}: field {field!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SampleError(f"{where}: field {field!r} must be finite, got {value!r}")
    return value


def normalise_id(value: Any, where: str, field: str = "question_id") -> str:
    """Record ids are matched as strings so that ``220602000129`` and ``"220602000129"`` agree.

    Only JSON integers and strings are ids; anything else (floats, null, lists) is a malformed record.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SampleError(f"{where}: field {field!r} must be an integer or a string, got {value!r}")
    text = str(value).strip()
    if not text:
        raise SampleError(f"{where}: field {field!r} is empty")
    return text


def index_by_id(records: Sequence[Any], source: str, id_key: str = "question_id") -> dict[str, tuple[int, Any]]:
    """Map normalised id -> (index, record); duplicate ids are an error (a record must be scored once)."""
    index: dict[str, tuple[int, Any]] = {}
    for i, record in enumerate(records):
        where = record_where(source, i, record, id_key)
        key = normalise_id(require_field(record, id_key, where), where, id_key)
        if key in index:
            raise SampleError(f"{where}: duplicate {id_key} {key!r} (also record {index[key][0]})")
        index[key] = (i, record)
    return index


def match_predictions(
    reference_ids: Iterable[str],
    predictions: Mapping[str, tuple[int, Any]],
    *,
    prediction_source: str,
    strict: bool,
    max_examples: int = 5,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Compare the reference ids with the prediction ids.

    Returns ``(missing, unknown, report)`` where ``missing`` are reference ids without a prediction (they
    are scored as wrong), ``unknown`` are prediction ids that no reference has (ignored), and ``report``
    holds the counts and a few example ids for the printed table / JSON. With ``strict`` unknown ids raise.
    """
    reference_ids = list(reference_ids)
    ref_set = set(reference_ids)
    missing = [rid for rid in reference_ids if rid not in predictions]
    unknown = [pid for pid in predictions if pid not in ref_set]
    if strict and unknown:
        raise SampleError(
            f"{prediction_source}: {len(unknown)} prediction(s) for ids not in the references "
            f"(e.g. {unknown[:max_examples]}); remove them or run without --strict"
        )
    report: dict[str, Any] = {"missing": len(missing), "unknown": len(unknown)}
    if missing:
        report["missing_examples"] = missing[:max_examples]
    if unknown:
        report["unknown_examples"] = unknown[:max_examples]
    return missing, unknown, report
