"""The one strict-config base of loc3r's typed YAML configs (training recipes, evaluation configs, dataset specs).

Every config is a pydantic model deriving from :class:`StrictConfig`: **unknown keys are errors** (a typo such as
``optim.lr_warmup`` fails with a message naming the key and the file instead of being silently ignored) and values
are validated on assignment too. Files are read with ``yaml.safe_load`` only (never unpickled), the top level must
be a mapping, and ``--set key.path=value`` overrides (values parsed as YAML) are applied before validation, so an
override gets the same errors as the file. Every problem is a :class:`ConfigError` whose message names the file
and the key (the CLI prints it as ``loc3r CMD: error: ...``, exit code 2).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from loc3r.core.errors import ConfigError

__all__ = ["ConfigError", "StrictConfig", "apply_overrides", "format_validation_error", "locate_config",
           "read_yaml_mapping", "resolve_input_paths", "validate_config"]  # fmt: skip


class StrictConfig(BaseModel):
    """Base of every typed config: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


C = TypeVar("C", bound=StrictConfig)


def format_validation_error(err: ValidationError, source: str, what: str = "config", schema: str = "config") -> str:
    """One line per problem, each naming the dotted key: ``SOURCE: invalid WHAT`` then the keys."""
    lines = [f"{source}: invalid {what}"]
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}' (not a field of the {schema} schema; check the spelling)")
        elif item["type"] == "missing":
            lines.append(f"  missing required key '{key}'")
        else:
            lines.append(f"  key '{key}': {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def validate_config(
    cls: type[C], raw: Any, source: str, what: str = "config", schema: str = "config", top: str = "a config"
) -> C:
    """``cls.model_validate(raw)`` with a :class:`ConfigError` naming ``source`` and every bad key (``what``:
    "training config", ``schema``: "recipe", ``top``: "a recipe" word the messages)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level of {top} must be a mapping, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, what, schema)) from None


def locate_config(path: str | Path) -> Path:
    """``path`` itself when it exists; else, for a relative path, the same path in the loc3r repository this code
    runs from (an editable install of a clone: ``configs/train_tiny.yaml`` works from any directory, as README
    writes it). Otherwise ``path`` (reading it then says it is missing)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    repo = Path(__file__).resolve().parents[3]
    candidate = repo / path
    return candidate if (repo / "configs").is_dir() and candidate.is_file() else path


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The raw mapping of a YAML config file (``yaml.safe_load``; an empty file is ``{}``; another top level is a
    :class:`ConfigError`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level of the {what} must be a mapping, got {type(raw).__name__}")
    return {} if raw is None else raw


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    """Set ``a.b.c`` (integers index lists: ``data.train.0.root``, also written ``data.train[0].root``)."""
    dotted = re.sub(r"\[\s*(\d+)\s*\]", r".\1", dotted)
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: override key {dotted!r} is not a dotted path like 'optim.lr'")
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"{source}: cannot set {dotted!r}: '{where}' is not an index of a {len(node)}-item list"
                )
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"{source}: cannot set {dotted!r}: '{'.'.join(parts[:i])}' is a value, not a section")


#: keys whose values are paths a config READS (data, checkpoints, shipped assets); output paths are not among them
INPUT_PATH_KEYS = frozenset(
    {"pretrained_dir", "config_file", "root", "checkpoint", "camera_root", "scene_meta", "scans_root", "cache"}
)


def resolve_input_paths(raw: Any, config_path: str | Path) -> Any:
    """Relative input paths of a config, made to work from any working directory.

    A relative path is the working directory's when it exists there (your data, your runs: like every CLI tool);
    otherwise, when it exists relative to the config file's folder or one of its parents (the repository a shipped
    recipe comes from: ``src/loc3r/assets/loc3r-tiny``, ``data/synthrooms`` next to the configs), that absolute
    path is used. Output paths (``output_dir``) stay relative to the working directory. Keys: :data:`INPUT_PATH_KEYS`,
    at any depth (``data.train[*].root``, ``data.options.scene_meta``, ...).
    """
    anchors = [Path(config_path).resolve().parent, *Path(config_path).resolve().parent.parents]

    def fix(value: Any) -> Any:
        if not isinstance(value, str) or not value or Path(value).is_absolute() or Path(value).exists():
            return value
        for anchor in anchors:
            candidate = anchor / value
            if candidate.exists():
                return str(candidate)
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fix(v) if k in INPUT_PATH_KEYS else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed with ``yaml.safe_load``) to a raw config dict."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: override {item!r} must look like key.path=value")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: cannot parse value of {key!r}: {err}") from err
        _set_dotted(out, key.strip(), value, source)
    return out
