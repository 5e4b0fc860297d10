"""``loc3r import``: a LLaVA-NeXT ``llava_qwen`` checkpoint (LLaVA-Video-7B-Qwen2, Loc3R-VLM) → a loc3r checkpoint.

Example::

    loc3r import /ckpt/LLaVA-Video-7B-Qwen2 --out runs/imported/llava_video_7b
    loc3r import /ckpt/Loc3R-VLM --out runs/imported/loc3r_vlm --set camera_prior=file --set camera_feature_dim=768 \\
        --map 'model\\.pos_head\\.0\\.=position_head.mlp.fc1.' --map-file head_keys.txt

The checkpoint's keys that the llava_qwen layout does not explain are listed (printed, and in
``OUT/import_report.json`` with shapes); ``--map OLD=NEW`` (a regular expression matched at the start of the key,
a plain prefix is one; repeatable) or ``--map-file FILE`` (lines ``OLD=NEW`` or a JSON object) places them onto the
loc3r keys the listing shows. See :mod:`loc3r.model.importers.llava_qwen` for the layout, the tokens added and the
token-layout warnings.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="convert a LLaVA-NeXT llava_qwen checkpoint (LLaVA-Video, Loc3R-VLM) into a loc3r checkpoint",
        description="Convert a LLaVA-NeXT 'llava_qwen' checkpoint (sharded safetensors + index, config.json, "
        "tokenizer) into a loc3r checkpoint of the llava_onevision backbone. Unknown keys are listed and not "
        "imported unless --map / --map-file places them.",
    )
    p.add_argument("source", help="the checkpoint directory (config.json, *.safetensors [+ index], tokenizer)")
    p.add_argument("--out", required=True, help="output directory (must not hold a checkpoint yet)")
    p.add_argument("--map", dest="maps", action="append", default=[], metavar="OLD=NEW",
                   help="place a source key: OLD a regular expression (or plain prefix) matched at the start of "
                   "the key, replaced by NEW (a loc3r key prefix); repeatable, tried in order before the built-in "
                   "layout")  # fmt: skip
    p.add_argument("--map-file", default=None, help="mapping rules: text lines OLD=NEW (# comments) or a JSON object")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a Loc3rConfig field of the imported model (value parsed as YAML), e.g. --set "
                   "camera_prior=file --set camera_feature_dim=768")  # fmt: skip
    p.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the checkpoint directory)")
    p.add_argument("--vision-config", default=None,
                   help="the vision tower's config.json (when mm_vision_tower is neither a local directory nor a "
                   "known tower)")  # fmt: skip
    p.add_argument("--num-frames", type=int, default=32, help="frames per clip recorded with the model (default 32)")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                   help="cast the weights (default: keep the checkpoint's dtype)")  # fmt: skip
    p.add_argument("--verify", action="store_true",
                   help="load the written checkpoint back strictly (needs memory for a second copy)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the listing")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from loc3r.core.config import ConfigError, apply_overrides
    from loc3r.model.importers.llava_qwen import (
        format_report,
        import_llava_qwen,
        json_report,
        parse_map_rules,
        read_map_file,
    )

    if args.num_frames is not None and args.num_frames < 1:
        raise ConfigError(f"--num-frames must be >= 1, got {args.num_frames}")
    rules = parse_map_rules(args.maps)
    if args.map_file:
        rules += read_map_file(args.map_file)
    report = import_llava_qwen(
        args.source,
        args.out,
        rules=rules,
        tokenizer_dir=args.tokenizer,
        vision_config=args.vision_config,
        config_overrides=apply_overrides({}, args.overrides),  # Loc3rConfig fields, values as YAML
        num_frames=args.num_frames,
        dtype=args.dtype,
    )
    if args.verify:
        from loc3r.model.loading import load_model

        load_model(args.out)
    print(json_report(report) if args.json else format_report(report))
    return 0
