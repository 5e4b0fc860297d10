"""``loc3r base``: check or export the pretrained tiny base (loc3r-tiny) that ``loc3r demo`` fine-tunes.

Example::

    loc3r base verify                                  # the shipped base matches its SHA256SUMS
    loc3r base export runs/base/loc3r_tiny/final --out src/loc3r/assets/loc3r-tiny --metrics recognition.md

See :mod:`loc3r.apps.pretrained_base`.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "base",
        help="verify or export the pretrained tiny base (loc3r-tiny) the demo fine-tunes",
        description="Verify the shipped loc3r-tiny base against its SHA256SUMS, or export a finished "
        "`loc3r train configs/base/loc3r_tiny.yaml` run as a base directory (float16 weights, tokenizer, "
        "processor settings, a model card written from the run, SHA256SUMS).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check a base directory against its SHA256SUMS")
    verify.add_argument("path", nargs="?", default=None, help="base directory (default: the shipped loc3r-tiny)")
    export = actions.add_parser("export", help="write a base directory from a training run's final model")
    export.add_argument("final", help="the run's final/ directory (its parent holds config.yaml, metrics.jsonl)")
    export.add_argument("--out", required=True, help="base directory to (re)write, e.g. src/loc3r/assets/loc3r-tiny")
    export.add_argument("--metrics", default=None, help="a Markdown file of measured metrics to put in the card")
    export.add_argument("--note", default="", help="one line on the machine / run (goes into the card)")
    p.set_defaults(func=_run)


def _portable_paths(config_text: str) -> str:
    """The run's config with absolute paths (``/home/me/data/...``) replaced by ``<NAME>`` placeholders, so the card
    shipped with the weights names no machine's folders: ``pretrained_dir: /x/loc3r-tiny-stage1`` becomes
    ``pretrained_dir: <loc3r-tiny-stage1>``."""
    import re

    return re.sub(
        r"(?m)(:\s*)(/[^\s#,\]\}]+)", lambda m: f"{m.group(1)}<{m.group(2).rstrip('/').split('/')[-1]}>", config_text
    )


def _card(final: str, metrics: str | None, note: str) -> str:
    from pathlib import Path

    from loc3r.core.io import read_jsonl

    run = Path(final).parent
    config = (run / "config.yaml").read_text() if (run / "config.yaml").is_file() else "(config.yaml not found)"
    config = _portable_paths(config)
    rows = read_jsonl(run / "metrics.jsonl", "metrics") if (run / "metrics.jsonl").is_file() else []
    train = [r for r in rows if "train/loss" in r]
    val = [r for r in rows if any(k.startswith("val/") for k in r)]
    last = train[-1] if train else {}
    nan = float("nan")
    lines = [
        "# loc3r-tiny — the pretrained tiny base of loc3r's CPU demo",
        "",
        "A Qwen2.5-VL-class video VLM (the real `Qwen2_5_VLForConditionalGeneration` at tiny size) pretrained from "
        "random initialisation on SynthRooms **recognition** tasks with **no spatial supervision**: object listing "
        "in order of appearance, presence, counting, colour questions, short captions, and a dense per-token "
        "object-category loss on the vision tower's output. That dense loss is a *stand-in for a pretrained image "
        "encoder* (the paper starts from LLaVA-Video-7B, whose SigLIP tower already recognises objects); it is not "
        "part of the loc3r method. No BEV targets, no situations, no positions, distances or directions appear in "
        "any training text (tested in tests/train/test_pretraining.py), so every spatial skill the demo compares "
        "comes from each variant's own fine-tuning. The rooms are generated with another seed than every demo room "
        "(data seed 1000 vs the demo's 0); the VSI-Bench / ScanNet validation layouts were never used.",
        "",
        f"- steps: {last.get('step', '?')} (batch 8), final train loss {last.get('train/loss', nan):.3f} "
        f"(CE {last.get('train/loss_ce', nan):.3f}, recognition {last.get('train/loss_rec', nan):.3f})",
    ]
    if val:
        v = val[-1]
        lines.append("- last validation: " + ", ".join(f"{k} {v[k]:.3f}" for k in sorted(v) if k.startswith("val/")))
    if note:
        lines.append(f"- run: {note}")
    lines += [
        "",
        "## Measured recognition (rooms the base never saw)",
        "",
        Path(metrics).read_text().strip() if metrics else "(not measured)",
        "",
        "## Reproduce",
        "",
        "```bash",
        "loc3r synth --out data/pretrain --scenes 2400 --frames 8 --size 112x112 --seed 1000 --min-objects 5 \\",
        "    --max-objects 24 --min-side 2.5 --max-side 7.5 --situations 0 --vsi-per-type 0 --no-novel-view \\",
        "    --val-fraction 0.03 --test-fraction 0 --no-video --workers 2",
        "OMP_NUM_THREADS=1 loc3r train configs/base/loc3r_tiny.yaml        # add --resume after an interruption",
        "python benchmarks/diagnose_demo.py runs/demo --base runs/base/loc3r_tiny/final   # recognition metrics",
        "loc3r base export runs/base/loc3r_tiny/final --out src/loc3r/assets/loc3r-tiny --metrics recognition.md",
        "```",
        "",
        "## Training recipe (config.yaml of the run)",
        "",
        "```yaml",
        config.strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from loc3r.apps.pretrained_base import BASE_DIR, export_base, verify_base

    if args.action == "verify":
        hashes = verify_base(args.path or BASE_DIR)
        for name, digest in hashes.items():
            print(f"{digest}  {name}")
        print(f"loc3r base: {args.path or BASE_DIR} matches its SHA256SUMS")
        return 0
    hashes = export_base(args.final, args.out, _card(args.final, args.metrics, args.note))
    print(f"loc3r base: wrote {args.out} (model.safetensors sha256 {hashes['model.safetensors']})")
    return 0
