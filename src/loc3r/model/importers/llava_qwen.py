"""LLaVA-NeXT ``llava_qwen`` checkpoints (LLaVA-Video-7B-Qwen2, LLaVA-OneVision-Qwen2, Loc3R-VLM) → loc3r.

The source is a directory in the layout of the original LLaVA-NeXT code base (``LlavaQwenForCausalLM``):

* ``config.json``: a Qwen2 config (``hidden_size``, ``num_hidden_layers``, ``vocab_size``, ``tie_word_embeddings``,
  ...) plus the multimodal fields ``model_type: llava_qwen``, ``mm_vision_tower`` (the SigLIP tower's name or path),
  ``mm_projector_type: mlp2x_gelu``, ``mm_hidden_size``, ``mm_patch_merge_type``, ``image_aspect_ratio``,
  ``mm_newline_position``, ``mm_spatial_pool_mode`` / ``_stride``;
* the weights as one ``model.safetensors`` or shards named by ``model.safetensors.index.json`` (``weight_map``);
* the Qwen2 tokenizer files (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``, ``tokenizer_config.json``).

Key layout (LLaVA-NeXT ``LlavaMetaModel`` inside a Qwen2 causal LM) and where each key goes in the loc3r model
(``llava_onevision`` backbone = HF ``LlavaOnevisionForConditionalGeneration``):

==============================================================  ==============================================
``model.embed_tokens.*``, ``model.layers.N.*``, ``model.norm.*``  the Qwen2 decoder (``adapter.language_model``)
``lm_head.weight`` (absent when ``tie_word_embeddings``)          the LM head (tied to ``embed_tokens`` if so)
``model.vision_tower.vision_tower.vision_model.*``                the SigLIP tower (``adapter.vision_modules``);
                                                                  LLaVA keeps 26 of SigLIP's 27 layers and no
                                                                  pooling head, the features are the last kept
                                                                  layer's output = HF ``vision_feature_layer -1``
``model.mm_projector.0.*`` / ``model.mm_projector.2.*``           projector ``linear_1`` / ``linear_2``
                                                                  (``mlp2x_gelu``: Linear, GELU, Linear)
``model.image_newline``                                           ``image_newline`` (``mm_patch_merge_type``
                                                                  ``*unpad*``)
==============================================================  ==============================================

Anything else (a resampler, ``faster_token``, the heads of a Loc3R-VLM checkpoint) is **listed** — key, shape,
dtype, shard — and not imported, unless a mapping rule places it: ``OLD=NEW`` where ``OLD`` is a regular
expression matched at the start of the source key (a plain prefix such as ``model.pos_head.`` is one) and the
matched part is replaced by ``NEW`` (backreferences ``\\1`` allowed); the result must be a key of the loc3r model,
e.g. ``position_head.mlp.fc1.weight`` (the loc3r heads with no source tensor are listed with their shapes, so the
targets are visible). User rules are tried before the built-in layout, first match wins.

The vision tower's sizes come from the weights (layers, width, MLP width, patch and image size); only the number
of attention heads and the LayerNorm epsilon cannot: they are read from the tower's own ``config.json`` when
``mm_vision_tower`` is a local directory, from ``vision_config`` (a file given by the user), or from the public
config of the known towers (``google/siglip-so400m-patch14-384``: 16 heads, eps 1e-6).

Streaming: tensors are read one at a time (``safetensors.safe_open``) and copied into a model built without random
initialisation in the checkpoint's dtype, so peak memory is one copy of the model; the dtype is kept. Tokens loc3r
needs that the tokenizer lacks (``<video>``, ``<image>``, ``<Pos>``, ``<Ori>``, ``<Cam>``) are added; they fit in
the padded rows of Qwen2's embedding (152,064 rows for ~151,650 tokens), otherwise the embedding and LM head grow
and the new rows are the mean of the old ones. Heads with no source tensor get loc3r's own initialisation.

Token layout: loc3r's ``llava_onevision`` backbone runs the HF LLaVA-OneVision layout — 2x2 **bilinear** pooling
and **one** ``image_newline`` per video. LLaVA-NeXT checkpoints say in ``config.json`` how they were trained
(``mm_spatial_pool_mode``, ``mm_newline_position``: ``grid`` puts a newline after every row of every frame, lmms-eval
runs LLaVA-Video with ``average`` pooling and ``grid``); every difference is a warning in the report, because the
imported model then sees a token layout it was not trained with.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from loc3r.core.errors import ConfigError, SampleError
from loc3r.core.io import read_json, read_text, write_json

INDEX_NAME = "model.safetensors.index.json"
REPORT_NAME = "import_report.json"
VISION_PREFIX = "model.vision_tower.vision_tower.vision_model."

#: the public configs of the SigLIP towers LLaVA-NeXT checkpoints name (what the weights cannot tell)
KNOWN_TOWERS: dict[str, dict[str, Any]] = {
    "siglip-so400m-patch14-384": {"num_attention_heads": 16, "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh"},
}

#: how loc3r's llava_onevision backbone lays out video tokens, in LLaVA-NeXT's config vocabulary
LOC3R_LAYOUT: dict[str, Any] = {
    "mm_spatial_pool_mode": "bilinear",
    "mm_spatial_pool_stride": 2,
    "mm_newline_position": "one_token",
    "add_faster_video": False,
}
#: LLaVA-NeXT's defaults when ``config.json`` does not state a field (``llava_arch.py``)
_LLAVA_DEFAULTS: dict[str, Any] = {"mm_newline_position": "one_token", "add_faster_video": False}

# fmt: off
_QWEN2_KEYS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "hidden_act", "max_position_embeddings", "initializer_range", "rms_norm_eps", "use_cache", "tie_word_embeddings",
    "rope_theta", "rope_scaling", "rope_parameters", "use_sliding_window", "sliding_window", "max_window_layers",
    "attention_dropout", "bos_token_id", "eos_token_id",
)
# fmt: on
_REQUIRED_TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")

_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
}


# ============================================================================================ mapping rules
@dataclass(frozen=True)
class MapRule:
    """``OLD=NEW``: ``OLD`` a regular expression matched at the start of a source key, replaced by ``NEW``."""

    pattern: str
    replacement: str
    origin: str  # where the rule came from (``--map`` or ``FILE line N``), for error messages

    def apply(self, key: str) -> str | None:
        match = re.match(self.pattern, key)
        if match is None:
            return None
        return match.expand(self.replacement) + key[match.end() :]

    def __str__(self) -> str:
        return f"{self.pattern}={self.replacement}"


def _rule(text: str, origin: str) -> MapRule:
    if "=" not in text:
        raise ConfigError(f"{origin}: a mapping rule must look like OLD=NEW, got {text!r}")
    old, new = (part.strip() for part in text.split("=", 1))
    if not old:
        raise ConfigError(f"{origin}: the OLD part of {text!r} is empty")
    try:
        re.compile(old)
    except re.error as err:
        raise ConfigError(f"{origin}: OLD of {text!r} is not a valid regular expression ({err})") from err
    return MapRule(old, new, origin)


def parse_map_rules(items: Sequence[str], origin: str = "--map") -> list[MapRule]:
    """Rules of ``--map OLD=NEW`` items (in order: the first rule that matches a key wins)."""
    return [_rule(item, f"{origin} {item!r}") for item in items]


def read_map_file(path: str | Path) -> list[MapRule]:
    """Rules of a mapping file: a JSON object ``{"OLD": "NEW", ...}`` (``.json``) or text lines ``OLD=NEW``
    (``#`` starts a comment, blank lines are skipped). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mapping file does not exist (--map-file)")
    if path.suffix.lower() == ".json":
        data = read_json(path, "mapping file")
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ConfigError(f'{path}: a JSON mapping file must be an object of strings {{"OLD": "NEW"}}')
        return [_rule(f"{k}={v}", f"{path} key {k!r}") for k, v in data.items()]
    rules = []
    for number, line in enumerate(read_text(path, "mapping file").splitlines(), start=1):
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            rules.append(_rule(line, f"{path} line {number}"))
    return rules


# ============================================================================================ the source
@dataclass
class SourceTensor:
    key: str
    shard: Path
    shape: tuple[int, ...]
    dtype: str  # safetensors' name: BF16, F16, F32, ...


class SourceCheckpoint:
    """The weights of a checkpoint directory: one ``model.safetensors``, shards named by the index, or the
    ``*.safetensors`` files of the directory. Every shard is opened (header only) up front, so a missing, truncated
    or foreign file is an error naming it before anything is written; tensors are then read one at a time."""

    def __init__(self, directory: str | Path) -> None:
        from safetensors import safe_open

        self.directory = Path(directory)
        index = self.directory / INDEX_NAME
        shards: dict[Path, list[str] | None] = {}
        if index.is_file():
            data = read_json(index, "safetensors index")
            weight_map = data.get("weight_map") if isinstance(data, dict) else None
            if not isinstance(weight_map, dict) or not weight_map:
                raise SampleError(f"{index}: field 'weight_map' is missing or empty (expected {{tensor: shard file}})")
            for key, name in weight_map.items():
                if not isinstance(name, str) or Path(name).name != name:
                    raise SampleError(f"{index}: field 'weight_map' maps {key!r} to {name!r}, not a file name")
                shards.setdefault(self.directory / name, []).append(key)
            for path in shards:
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: shard named by {index} ('weight_map') does not exist")
        else:
            files = sorted(self.directory.glob("*.safetensors"))
            if not files:
                bins = [p.name for pattern in ("*.bin", "*.pt*") for p in sorted(self.directory.glob(pattern))]
                extra = f" (found {bins[:3]}: loc3r never unpickles .bin/.pt weights)" if bins else ""
                raise FileNotFoundError(f"{self.directory}: no *.safetensors weights and no {INDEX_NAME}{extra}")
            shards = {path: None for path in files}
        self.tensors: dict[str, SourceTensor] = {}
        for path, wanted in shards.items():
            try:
                with safe_open(str(path), framework="pt", device="cpu") as handle:
                    present = set(handle.keys())
                    names = wanted if wanted is not None else sorted(present)
                    for key in names:
                        if key not in present:
                            raise SampleError(
                                f"{path}: tensor {key!r} is named by {index.name} ('weight_map') but not in this shard"
                            )
                        piece = handle.get_slice(key)
                        shape = tuple(int(n) for n in piece.get_shape())
                        if key in self.tensors:
                            raise SampleError(f"{path}: tensor {key!r} is also in {self.tensors[key].shard}")
                        self.tensors[key] = SourceTensor(key, path, shape, str(piece.get_dtype()))
            except SampleError:
                raise
            except Exception as err:  # safetensors' SafetensorError: a truncated or foreign file
                raise SampleError(f"{path}: cannot read this safetensors shard (truncated or damaged?): {err}") from err

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: t.shape for k, t in self.tensors.items()}

    def stream(self, keys: Sequence[str] | None = None) -> Iterator[tuple[str, torch.Tensor]]:
        """``(key, tensor)`` for ``keys`` (default all), shard by shard, one tensor in memory at a time."""
        from safetensors import safe_open

        wanted = set(self.tensors if keys is None else keys)
        by_shard: dict[Path, list[str]] = {}
        for key in sorted(wanted):
            by_shard.setdefault(self.tensors[key].shard, []).append(key)
        for path, names in by_shard.items():
            try:
                with safe_open(str(path), framework="pt", device="cpu") as handle:
                    for key in names:
                        yield key, handle.get_tensor(key)
            except Exception as err:  # safetensors' SafetensorError (the consumer's errors never arrive here)
                raise SampleError(f"{path}: cannot read tensor data (truncated or damaged shard?): {err}") from err


# ============================================================================================ configs
def _int_field(config: dict, name: str, where: Path) -> int:
    value = config.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: field {name!r} must be a positive int, got {value!r}")
    return value


def read_llava_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of a llava_qwen checkpoint, checked: the model type, the Qwen2 sizes, a SigLIP tower and the
    ``mlp2x_gelu`` projector (the only pieces the llava_onevision backbone has)."""
    path = directory / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected a LLaVA-NeXT llava_qwen checkpoint directory)")
    config = read_json(path, "checkpoint config")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if model_type != "llava_qwen" and "LlavaQwenForCausalLM" not in architectures:
        raise ConfigError(
            f"{path}: field 'model_type' is {model_type!r} (architectures {architectures}); loc3r import reads "
            "LLaVA-NeXT 'llava_qwen' checkpoints (a Hugging Face llava_onevision checkpoint needs no import: train "
            "from it with model.init: pretrained)"
        )
    for name in _REQUIRED_TEXT_KEYS:
        _int_field(config, name, path)
    tower = config.get("mm_vision_tower") or config.get("vision_tower")
    if not isinstance(tower, str) or not tower:
        raise ConfigError(f"{path}: field 'mm_vision_tower' is missing (the vision tower's name or path)")
    if "siglip" not in tower.lower() and not (directory / tower / "config.json").is_file():
        raise ConfigError(
            f"{path}: field 'mm_vision_tower' is {tower!r}; the llava_onevision backbone has a SigLIP tower only"
        )
    projector = config.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise ConfigError(
            f"{path}: field 'mm_projector_type' is {projector!r}; the llava_onevision backbone's projector is "
            "'mlp2x_gelu' (Linear, GELU, Linear)"
        )
    return config


def _tower_config(config: dict, directory: Path, vision_config: str | Path | None) -> tuple[dict[str, Any], str]:
    """The settings of the vision tower the weights cannot tell, and where they came from."""
    if vision_config is not None:
        path = Path(vision_config)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: vision tower config does not exist (--vision-config)")
        data, origin = read_json(path, "vision tower config"), str(path)
    else:
        name = str(config.get("mm_vision_tower") or config.get("vision_tower"))
        local = next((p for p in (Path(name), directory / name) if (p / "config.json").is_file()), None)
        if local is not None:
            data, origin = read_json(local / "config.json", "vision tower config"), str(local / "config.json")
        else:
            known = KNOWN_TOWERS.get(name.rstrip("/").split("/")[-1])
            if known is None:
                raise ConfigError(
                    f"{directory / 'config.json'}: field 'mm_vision_tower' is {name!r}, which is neither a local "
                    f"directory with a config.json nor a known tower ({sorted(KNOWN_TOWERS)}); pass "
                    "--vision-config FILE (the tower's config.json) so its attention heads are known"
                )
            return dict(known), f"the public config of {name}"
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a JSON object")
    if isinstance(data.get("vision_config"), dict):  # a full SiglipConfig (text + vision)
        data = data["vision_config"]
    return data, origin


def vision_config_from_weights(
    shapes: dict[str, tuple[int, ...]], tower: dict[str, Any], origin: str, where: Path
) -> dict[str, Any]:
    """A ``siglip_vision_model`` config dict: sizes from the tower's weights, heads / eps from ``tower``."""
    prefix = VISION_PREFIX

    def shape(name: str) -> tuple[int, ...]:
        if prefix + name not in shapes:
            raise SampleError(f"{where}: tensor {prefix + name!r} is missing (the SigLIP vision tower)")
        return shapes[prefix + name]

    layers = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"encoder\.layers\.(\d+)\.", k))}
    if not layers:
        raise SampleError(f"{where}: no vision tower layers ({prefix}encoder.layers.N.*) in the weights")
    if layers != set(range(max(layers) + 1)):
        raise SampleError(f"{where}: vision tower layers {sorted(set(range(max(layers) + 1)) - layers)} are missing")
    hidden, channels, patch, _ = shape("embeddings.patch_embedding.weight")
    positions = shape("embeddings.position_embedding.weight")[0]
    side = math.isqrt(positions)
    if side * side != positions:
        raise SampleError(f"{where}: {prefix}embeddings.position_embedding.weight has {positions} rows, not a square")
    out: dict[str, Any] = {
        "model_type": "siglip_vision_model",
        "hidden_size": int(hidden),
        "intermediate_size": int(shape("encoder.layers.0.mlp.fc1.weight")[0]),
        "num_hidden_layers": max(layers) + 1,
        "num_channels": int(channels),
        "patch_size": int(patch),
        "image_size": int(side * patch),
        "vision_use_head": False,  # LLaVA replaces SigLIP's pooling head by Identity
    }
    for key in ("hidden_size", "intermediate_size", "patch_size", "image_size", "num_channels"):
        stated = tower.get(key)
        if stated is not None and stated != out[key]:
            raise ConfigError(
                f"{origin}: field {key!r} is {stated!r} but the checkpoint's tower weights say {out[key]}"
            )
    heads = tower.get("num_attention_heads")
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or hidden % heads:
        raise ConfigError(
            f"{origin}: field 'num_attention_heads' must be a positive divisor of {hidden}, got {heads!r}"
        )
    out["num_attention_heads"] = heads
    for key in ("layer_norm_eps", "hidden_act", "attention_dropout"):
        if tower.get(key) is not None:
            out[key] = tower[key]
    return out


def build_vlm_config(config: dict[str, Any], vision: dict[str, Any], vocab_rows: int, where: Path) -> Any:
    """The HF ``LlavaOnevisionConfig`` of the checkpoint (text = its Qwen2 fields, ``vocab_rows`` embedding rows)."""
    from transformers import LlavaOnevisionConfig

    text = {k: config[k] for k in _QWEN2_KEYS if k in config}
    text.update(model_type="qwen2", vocab_size=int(vocab_rows))
    mm_hidden = config.get("mm_hidden_size")
    if mm_hidden is not None and mm_hidden != vision["hidden_size"]:
        raise ConfigError(
            f"{where}: field 'mm_hidden_size' is {mm_hidden} but the tower weights are {vision['hidden_size']} wide"
        )
    extra: dict[str, Any] = {}
    if isinstance(config.get("image_grid_pinpoints"), list):
        extra["image_grid_pinpoints"] = config["image_grid_pinpoints"]
    aspect = config.get("image_aspect_ratio")
    if isinstance(aspect, str) and aspect.startswith("anyres_max"):
        extra["vision_aspect_ratio"] = aspect
    try:
        return LlavaOnevisionConfig(
            text_config=text,
            vision_config=vision,
            vision_feature_select_strategy="full",  # SigLIP has no CLS token: every patch is a feature
            vision_feature_layer=-1,  # LLaVA keeps 26 SigLIP layers and reads the last one's output
            projector_hidden_act="gelu",  # mlp2x_gelu = Linear, nn.GELU(), Linear
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            **extra,
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: cannot build the llava_onevision config from it ({err})") from err


def layout_differences(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For each token-layout setting: what the checkpoint states (or LLaVA-NeXT's default), what loc3r runs."""
    out = {}
    for key, ours in LOC3R_LAYOUT.items():
        stated = config.get(key, _LLAVA_DEFAULTS.get(key))
        out[key] = {"checkpoint": stated, "loc3r": ours, "same": stated == ours}
    return out


# ============================================================================================ the import
@dataclass
class ImportReport:
    """What ``loc3r import`` did (written as ``import_report.json`` next to the imported checkpoint)."""

    source: str
    output: str
    backbone: str = "llava_onevision"
    dtype: str = ""
    imported: int = 0
    mapped: list[dict[str, Any]] = field(default_factory=list)  # source -> target by a user rule
    unknown: list[dict[str, Any]] = field(default_factory=list)  # source keys not imported
    ignored: list[dict[str, Any]] = field(default_factory=list)  # known keys the original model does not use
    initialised: list[dict[str, Any]] = field(default_factory=list)  # loc3r keys with no source tensor
    tokens_added: list[str] = field(default_factory=list)
    embedding_rows: dict[str, int] = field(default_factory=dict)
    tied_word_embeddings: bool = False
    vision_config_from: str = ""
    layout: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _module_prefixes(model: torch.nn.Module) -> dict[int, str]:
    return {id(module): (name + "." if name else "") for name, module in model.named_modules()}


def _builtin_target(key: str, roles: dict[str, tuple[str, set[str]]]) -> tuple[str | None, str | None]:
    """``(target, ignore_reason)`` of a source key under the llava_qwen layout (``(None, None)``: unknown)."""
    if key.endswith("rotary_emb.inv_freq"):
        return None, "rotary inverse frequencies (recomputed from the config)"

    def find(role: str, rel: str, *alternatives: str) -> str | None:
        prefix, names = roles[role]
        for candidate in (rel, *alternatives):
            if candidate in names:
                return prefix + candidate
        return None

    if key.startswith(VISION_PREFIX):
        rel = key[len(VISION_PREFIX) :]
        if rel.startswith("head."):
            return None, "SigLIP pooling head (LLaVA replaces it by Identity; unused)"
        return find("vision", rel, "vision_model." + rel), None
    if key.startswith("model.mm_projector."):
        rel = key[len("model.mm_projector.") :]
        rel = re.sub(r"^0\.", "linear_1.", re.sub(r"^2\.", "linear_2.", rel))
        return find("projector", rel), None
    if key == "model.image_newline":
        return find("newline", "image_newline"), None
    if key.startswith("lm_head."):
        return find("lm_head", key[len("lm_head.") :]), None
    if key.startswith("model."):
        return find("language_model", key[len("model.") :]), None
    return None, None


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _no_init() -> contextlib.AbstractContextManager:
    """transformers' switch that skips random initialisation (every weight is loaded or reset afterwards)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers: initialise, only slower
        return contextlib.nullcontext()
    return no_init_weights()


def _load_tokenizer(tok_dir: Path, report: ImportReport, rows: int) -> tuple[Any, int]:
    """The tokenizer with loc3r's and the backbone's special tokens, and the vocabulary rows of the import."""
    from transformers import AutoTokenizer

    from loc3r.model.tokenizer import add_loc3r_special_tokens, special_tokens_for

    try:
        with _quiet_transformers():  # it reads config.json, whose model_type (llava_qwen) transformers does not know
            tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"{tok_dir}: no usable tokenizer (tokenizer.json, or vocab.json + merges.txt + tokenizer_config.json); "
            f"pass --tokenizer DIR ({err})"
        ) from err
    before = set(tokenizer.get_vocab())
    add_loc3r_special_tokens(tokenizer, "llava_onevision")
    report.tokens_added = [t for t in special_tokens_for("llava_onevision") if t not in before]
    vocab_rows = max(rows, len(tokenizer))
    report.embedding_rows = {"checkpoint": int(rows), "imported": int(vocab_rows), "tokenizer": len(tokenizer)}
    if vocab_rows > rows:
        report.warnings.append(
            f"the embedding and LM head grow from {rows} to {vocab_rows} rows for the added tokens; the new rows are "
            "the mean of the checkpoint's rows"
        )
    return tokenizer, vocab_rows


def _target_dtype(weights: SourceCheckpoint, embed_key: str, dtype: str | None, source: Path) -> torch.dtype:
    """``dtype`` if given (``--dtype``'s choices: bfloat16, float16, float32), else the checkpoint's (the dtype of
    its token embedding)."""
    source_dtype = _DTYPES.get(weights.tensors[embed_key].dtype)
    if source_dtype is None:
        raise SampleError(f"{source}: {embed_key} has dtype {weights.tensors[embed_key].dtype}, not a float type")
    return source_dtype if dtype is None else getattr(torch, dtype)


def _build_model(
    vlm_config: Any, tokenizer: Any, overrides: dict[str, Any], target_dtype: torch.dtype, seed: int, tied: bool
) -> Any:
    """The loc3r model, built without random initialisation of the backbone in ``target_dtype`` (its heads
    initialised from ``seed``)."""
    from loc3r.model.backbones import get_backbone
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import special_token_ids

    adapter = get_backbone("llava_onevision")
    ids = special_token_ids(tokenizer, "llava_onevision")
    adapter.set_token_ids(vlm_config, ids)
    text_config = vlm_config.get_text_config()
    text_config.eos_token_id = ids[adapter.eos_token]
    text_config.pad_token_id = ids[adapter.pad_token]
    try:
        loc3r_config = Loc3rForConditionalGeneration._make_config("llava_onevision", vlm_config, tokenizer, **overrides)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"--set: invalid loc3r config ({err})") from err
    with _default_dtype(target_dtype), _no_init(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Loc3rForConditionalGeneration(loc3r_config)
    with torch.random.fork_rng(devices=[]):  # loc3r's own heads: their initialisation (no_init skipped it)
        torch.manual_seed(seed)
        for name, child in model.named_children():
            if name != "vlm":
                for module in child.modules():
                    model._init_weights(module)
    if tied:  # no_init_weights also skips transformers' tying, which runs inside init_weights
        model.vlm.tie_weights()
    return model


def _roles(model: Any, adapter: Any) -> dict[str, tuple[str, set[str]]]:
    """Backbone part -> (its key prefix in the loc3r model, its own keys), for :func:`_builtin_target`."""
    vlm = model.vlm
    prefixes = _module_prefixes(model)

    def role(module: torch.nn.Module) -> tuple[str, set[str]]:
        return prefixes[id(module)], set(module.state_dict().keys())

    newline_owner = next(m for m in vlm.modules() if isinstance(getattr(m, "image_newline", None), torch.nn.Parameter))
    return {
        "vision": role(adapter.vision_modules(vlm)[0]),
        "projector": role(adapter.projector_modules(vlm)[0]),
        "language_model": role(adapter.language_model(vlm)),
        "lm_head": role(adapter.lm_head(vlm)),
        "newline": (prefixes[id(newline_owner)], {"image_newline"}),
    }


def _plan(
    weights: SourceCheckpoint,
    shapes: dict[str, tuple[int, ...]],
    rules: Sequence[MapRule],
    roles: dict[str, tuple[str, set[str]]],
    params: dict[str, torch.Tensor],
    tied_head: str | None,
    rows: tuple[int, int],
    report: ImportReport,
) -> dict[str, str]:
    """Source key -> loc3r key for every tensor to import (``rows``: the embedding's rows in the checkpoint and in
    the import); the ignored, unknown and rule-mapped keys go into ``report``."""
    source = weights.directory
    plan: dict[str, str] = {}
    claimed: dict[str, str] = {}
    for key in sorted(shapes):
        target, rule = None, None
        for candidate in rules:
            target = candidate.apply(key)
            if target is not None:
                rule = candidate
                break
        reason = None
        if target is None:
            target, reason = _builtin_target(key, roles)
        elif target not in params:
            heads = sorted(k for k in params if not k.startswith("vlm."))
            raise ConfigError(
                f"{rule.origin}: maps {key!r} to {target!r}, which the loc3r model does not have "
                f"(its own keys: {heads}; backbone keys start with 'vlm.')"
            )
        if reason is not None:
            report.ignored.append({"key": key, "reason": reason})
            continue
        if target is None:
            t = weights.tensors[key]
            report.unknown.append({"key": key, "shape": list(t.shape), "dtype": t.dtype, "shard": t.shard.name})
            continue
        if target == tied_head:
            report.ignored.append(
                {"key": key, "reason": "tie_word_embeddings is true: the LM head is the token embedding"}
            )
            continue
        if target in claimed:
            raise SampleError(f"{source}: {key!r} and {claimed[target]!r} both map to {target!r}")
        want = tuple(params[target].shape)
        have = shapes[key]
        grows = have[1:] == want[1:] and len(have) == 2 and have[0] == rows[0] and want[0] == rows[1]
        if have != want and not grows:
            by = f" (by {rule.origin})" if rule is not None else ""
            raise SampleError(f"{source}: {key!r} has shape {list(have)} but {target!r}{by} is {list(want)}")
        claimed[target] = key
        plan[key] = target
        if rule is not None:
            report.mapped.append({"source": key, "target": target, "rule": str(rule)})
    return plan


def _copy_weights(
    weights: SourceCheckpoint,
    plan: dict[str, str],
    params: dict[str, torch.Tensor],
    report: ImportReport,
    progress: bool,
) -> set[str]:
    """Stream the planned tensors into the model's parameters; returns the loc3r keys filled."""
    from tqdm.auto import tqdm

    filled: set[str] = set()
    with torch.no_grad():
        for key, tensor in tqdm(weights.stream(list(plan)), total=len(plan), desc="import", disable=not progress):
            target = plan[key]
            param = params[target]
            if tensor.dtype != param.dtype:
                report.warnings.append(f"{key}: {str(tensor.dtype).replace('torch.', '')} cast to {report.dtype}")
            if tensor.shape[0] != param.shape[0]:  # the embedding / LM head grew for the added tokens
                param[: tensor.shape[0]].copy_(tensor)
                param[tensor.shape[0] :].copy_(tensor.float().mean(dim=0, keepdim=True).to(param.dtype))
            else:
                param.copy_(tensor)
            filled.add(target)
            del tensor
    return filled


def _check_complete(
    source: Path,
    config: dict[str, Any],
    params: dict[str, torch.Tensor],
    filled: set[str],
    lm_head_key: str,
    tied_head: str | None,
    report: ImportReport,
) -> None:
    """Every backbone tensor must come from the checkpoint (loc3r's heads may be new); the new heads, layout
    differences and unknown keys go into ``report``."""
    missing = sorted(k for k in params if k.startswith("vlm.") and k not in filled and k != tied_head)
    if missing:
        hint = ""
        if lm_head_key in missing:
            hint = " (no lm_head.weight and tie_word_embeddings is false in config.json)"
        raise SampleError(
            f"{source}: the checkpoint has no tensor for {len(missing)} backbone weight(s) {missing[:6]}"
            f"{' ...' if len(missing) > 6 else ''}{hint}"
        )
    report.initialised = [
        {"key": k, "shape": list(params[k].shape)}
        for k in sorted(params)
        if not k.startswith("vlm.") and k not in filled
    ]
    report.layout = layout_differences(config)
    for key, entry in report.layout.items():
        if not entry["same"]:
            report.warnings.append(
                f"token layout: the checkpoint has {key} = {entry['checkpoint']!r} but loc3r's llava_onevision "
                f"backbone runs {entry['loc3r']!r}; the imported model sees a layout it was not trained with "
                "(expect lower scores until it is fine-tuned)"
            )
    if report.unknown:
        report.warnings.append(
            f"{len(report.unknown)} checkpoint tensor(s) were not imported (listed under 'unknown'); place them with "
            "--map OLD=NEW or --map-file FILE"
        )


def import_llava_qwen(
    source: str | Path,
    output: str | Path,
    rules: Sequence[MapRule] = (),
    tokenizer_dir: str | Path | None = None,
    vision_config: str | Path | None = None,
    config_overrides: dict[str, Any] | None = None,
    num_frames: int | None = 32,
    dtype: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ImportReport:
    """Convert the llava_qwen checkpoint ``source`` into a loc3r checkpoint directory ``output`` (see the module
    docstring); returns the report, also written to ``output/import_report.json``.

    ``config_overrides``: :class:`~loc3r.model.configuration_loc3r.Loc3rConfig` fields (objectives, camera prior,
    ...) of the imported model; ``num_frames``: frames per clip recorded with it (the paper's 32); ``dtype``: cast the
    weights (default: keep the checkpoint's).
    """
    from loc3r.model.backbones import get_backbone

    source, output = Path(source), Path(output)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: checkpoint directory does not exist")
    if output.resolve() == source.resolve():
        raise ConfigError(f"--out {output}: must differ from the source checkpoint directory")
    if (output / "config.json").exists():
        raise ConfigError(f"--out {output}: already holds a checkpoint (config.json); choose an empty directory")
    where = source / "config.json"
    config = read_llava_config(source)
    weights = SourceCheckpoint(source)
    shapes = weights.shapes()
    report = ImportReport(source=str(source), output=str(output))

    # --- the vision tower and the LLM config
    tower, report.vision_config_from = _tower_config(config, source, vision_config)
    vision = vision_config_from_weights(shapes, tower, report.vision_config_from, source)
    embed_key = "model.embed_tokens.weight"
    if embed_key not in shapes:
        raise SampleError(f"{source}: tensor {embed_key!r} (the token embedding) is missing from the weights")
    rows, width = shapes[embed_key]
    if width != config["hidden_size"]:
        raise ConfigError(f"{where}: field 'hidden_size' is {config['hidden_size']} but {embed_key} is {width} wide")
    if rows != config["vocab_size"]:
        raise ConfigError(f"{where}: field 'vocab_size' is {config['vocab_size']} but {embed_key} has {rows} rows")

    # --- the tokenizer, then the loc3r model in the target dtype
    adapter = get_backbone("llava_onevision")
    tokenizer, vocab_rows = _load_tokenizer(Path(tokenizer_dir) if tokenizer_dir is not None else source, report, rows)
    tied = bool(config.get("tie_word_embeddings", False))
    report.tied_word_embeddings = tied
    target_dtype = _target_dtype(weights, embed_key, dtype, source)
    report.dtype = str(target_dtype).replace("torch.", "")
    vlm_config = build_vlm_config(config, vision, vocab_rows, where)
    model = _build_model(vlm_config, tokenizer, dict(config_overrides or {}), target_dtype, seed, tied)
    vlm = model.vlm
    if tied and adapter.lm_head(vlm).weight is not adapter.language_model(vlm).embed_tokens.weight:
        raise ValueError(f"{where}: tie_word_embeddings is true but the built model does not tie its LM head")

    # --- where each source key goes, the copy, the completeness check
    roles = _roles(model, adapter)
    params = dict(model.state_dict(keep_vars=True))
    tied_head = roles["lm_head"][0] + "weight" if tied else None
    plan = _plan(weights, shapes, rules, roles, params, tied_head, (rows, vocab_rows), report)
    filled = _copy_weights(weights, plan, params, report, progress)
    report.imported = len(filled)
    _check_complete(source, config, params, filled, roles["lm_head"][0] + "weight", tied_head, report)

    # --- write: weights + config + tokenizer + processor settings (what from_pretrained reads back strictly)
    model.tokenizer = tokenizer
    model.preprocessing = adapter.default_preprocessing(model.config.vlm_config, source)
    model.num_frames = num_frames
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, max_shard_size="5GB")
    write_json(output / REPORT_NAME, report.to_dict())
    return report


def format_report(report: ImportReport) -> str:
    """The listing printed by ``loc3r import``: counts, unknown keys with shapes, new heads, warnings."""
    lines = [
        f"imported {report.imported} tensors ({report.dtype}) from {report.source} into {report.output} "
        f"(backbone {report.backbone}; vision tower settings from {report.vision_config_from})",
        f"tokens added: {report.tokens_added or 'none'}; embedding rows {report.embedding_rows}",
    ]
    if report.mapped:
        lines.append(f"placed by mapping rules ({len(report.mapped)}):")
        lines += [f"  {m['source']} -> {m['target']}   [{m['rule']}]" for m in report.mapped]
    if report.unknown:
        lines.append(f"unknown keys, NOT imported ({len(report.unknown)}):")
        lines += [f"  {u['key']}  {u['shape']} {u['dtype']}  ({u['shard']})" for u in report.unknown]
    if report.initialised:
        lines.append(f"loc3r keys with no checkpoint tensor, freshly initialised ({len(report.initialised)}):")
        lines += [f"  {i['key']}  {i['shape']}" for i in report.initialised]
    if report.ignored:
        lines.append(
            f"ignored ({len(report.ignored)}): " + "; ".join(f"{i['key']} ({i['reason']})" for i in report.ignored[:5])
        )
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    lines.append(f"report: {Path(report.output) / REPORT_NAME}")
    return "\n".join(lines)


def json_report(report: ImportReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
