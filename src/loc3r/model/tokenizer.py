"""Tokenizers: loc3r's special tokens, a tiny trained tokenizer for from-scratch models, and helpers.

loc3r adds three special tokens to the backbone's vocabulary:

* ``<Pos>`` and ``<Ori>``: the situation tokens; their final hidden states feed the position / orientation heads.
* ``<Cam>``: the camera-prior placeholder, one per frame, replaced by ``f_cam(z_t)`` in the input embeddings.

The backbone's own placeholders (Qwen2.5-VL ``<|vision_start|> <|video_pad|> <|vision_end|>``, LLaVA-OneVision
``<video>``) and chat tokens (``<|im_start|> <|im_end|> <|endoftext|>``) must also be single special tokens.

Real checkpoints already have a tokenizer: :func:`add_loc3r_special_tokens` adds what is missing (the model then
resizes its embeddings). Tiny from-scratch models use :func:`build_tiny_tokenizer`: a byte-level BPE trained with
the ``tokenizers`` library on the project's own texts, wrapped as a transformers fast tokenizer and saved with
every checkpoint (``tokenizer.json``).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from loc3r.model.backbones import get_backbone

POS_TOKEN = "<Pos>"
ORI_TOKEN = "<Ori>"
CAMERA_TOKEN = "<Cam>"
LOC3R_SPECIAL_TOKENS = (POS_TOKEN, ORI_TOKEN, CAMERA_TOKEN)


def special_tokens_for(backbone: str) -> list[str]:
    """All special tokens a tokenizer for ``backbone`` must hold: the backbone's, then loc3r's."""
    adapter = get_backbone(backbone)
    return list(dict.fromkeys([*adapter.backbone_special_tokens, *LOC3R_SPECIAL_TOKENS]))


def build_tiny_tokenizer(texts: Iterable[str], vocab_size: int, backbone: str) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` for a from-scratch tiny model of ``backbone``.

    Byte-level BPE never produces an unknown token (any string, digits and punctuation included, is encodable),
    which matters for coordinate answers of the plain-LM baseline. Special tokens get the first ids, in the
    order of :func:`special_tokens_for`. ``vocab_size`` is an upper bound (a small corpus yields fewer merges).
    """
    specials = special_tokens_for(backbone)
    adapter = get_backbone(backbone)
    if vocab_size < len(specials) + 256 + 1:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: it must hold {len(specials)} special tokens + 256 bytes"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=adapter.eos_token,
        pad_token=adapter.pad_token,
        additional_special_tokens=[t for t in specials if t not in (adapter.eos_token, adapter.pad_token)],
    )
    fast.padding_side = "right"
    return fast


def add_loc3r_special_tokens(tokenizer: PreTrainedTokenizerBase, backbone: str) -> int:
    """Add the missing loc3r (and backbone) special tokens to an existing tokenizer; returns how many were added.

    The caller must resize the model's embeddings to ``len(tokenizer)`` afterwards
    (:meth:`Loc3rForConditionalGeneration.from_backbone_pretrained` does).
    """
    vocab = tokenizer.get_vocab()
    missing = [AddedToken(t, special=True, normalized=False) for t in special_tokens_for(backbone) if t not in vocab]
    added = tokenizer.add_tokens(missing, special_tokens=True) if missing else 0
    if tokenizer.pad_token is None:
        tokenizer.pad_token = get_backbone(backbone).pad_token
    return added


def special_token_ids(tokenizer: PreTrainedTokenizerBase, backbone: str) -> dict[str, int]:
    """Map every required special token to its id; a missing one is an error naming it."""
    vocab = tokenizer.get_vocab()
    out: dict[str, int] = {}
    for token in special_tokens_for(backbone):
        if token not in vocab:
            raise ValueError(
                f"tokenizer has no token {token!r} required by backbone {backbone!r}; "
                "call loc3r.model.tokenizer.add_loc3r_special_tokens(tokenizer, backbone) first"
            )
        out[token] = int(vocab[token])
    return out
