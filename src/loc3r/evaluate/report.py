"""Printing metric dicts: an aligned text table for people, one JSON object for machines.

Both views show the same flat dict produced by the scorers (``score_sqa3d_localization``,
``score_sqa3d_qa``, ``score_scanqa``, ``score_vsibench``), so every key printed in the table is a key of
the JSON object and vice versa. Floats are percentages unless the key says otherwise (``*_m``,
``*_deg``); the table rounds to 2 decimals, the JSON keeps full precision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["format_value", "format_table", "to_json"]


def format_value(value: Any) -> str:
    """Table text of one value: floats with 2 decimals, ``None`` as ``n/a``, lists comma-joined."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def format_table(title: str, metrics: Mapping[str, Any], settings: Mapping[str, Any] | None = None) -> str:
    """Two-column table ``metric | value`` of every key of ``metrics``, under a title line.

    ``settings`` (e.g. the input files and options) are printed first so a result always carries how it
    was produced.
    """
    rows = [(str(k), format_value(v)) for k, v in metrics.items()]
    key_width = max([len("metric"), *(len(k) for k, _ in rows)])
    val_width = max([len("value"), *(len(v) for _, v in rows)])
    lines = [title]
    if settings:
        for key, value in settings.items():
            lines.append(f"  {key}: {format_value(value)}")
    rule = f"+-{'-' * key_width}-+-{'-' * val_width}-+"
    lines += [rule, f"| {'metric'.ljust(key_width)} | {'value'.ljust(val_width)} |", rule]
    for key, value in rows:
        # Numbers right-aligned, text left-aligned.
        cell = value.rjust(val_width) if _is_number(value) else value.ljust(val_width)
        lines.append(f"| {key.ljust(key_width)} | {cell} |")
    lines.append(rule)
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_json(metrics: Mapping[str, Any]) -> str:
    """One JSON object with the metric names as keys (NaN/inf become ``null``: strict JSON has neither)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        return value

    return json.dumps(clean(dict(metrics)), indent=2, allow_nan=False)
