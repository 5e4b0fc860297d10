"""Per demo variant on CPU: training throughput (samples/s) and inference latency per query, split into
reading the inputs from disk, the processor and the model — which shows what ``cue_injection``'s depth
preprocessing costs at inference compared with ``loc3r`` (video only).

* Training: the demo's recipe (:func:`loc3r.apps.demo._recipe`: tiny Qwen2.5-VL from scratch, the demo's loss weights,
  batch 8) for ``--steps`` steps on a generated SynthRooms set; samples/s = the recipe's ``train/samples_per_s``
  (training steps only), median after ``--warmup`` steps.
* Inference, per query (batch 1, ``--queries`` situated localization queries of held-out rooms, median):
  ``read`` = frames (JPEG) + poses from disk, plus depth PNGs → world points for ``cue_injection`` (the only
  variant that needs depth at inference); ``processor`` = preprocessing, anchor frame, prompt, (cue pooling);
  ``model`` = :meth:`predict` with the localization head read-out (``max_new_tokens=0``) for head variants, and
  with text decoding of the coordinates (``max_new_tokens=24``) for ``lm_only``. Models are the trained demo
  checkpoints of this run.

Run::

    python benchmarks/bench_variants.py                  # 8 frames 64x64 (the demo's setting)
    python benchmarks/bench_variants.py --steps 60 --queries 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--variants", nargs="*", default=None)
    args = parser.parse_args()

    import logging

    import torch

    from loc3r.apps.demo import DEFAULT, VARIANTS, _recipe
    from loc3r.benchmarks.synthrooms.task import synth_eval_sets
    from loc3r.data.scannet import ScanNetScene
    from loc3r.evaluate.runner import load_model
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset
    from loc3r.train.recipe import train

    logging.getLogger("loc3r").setLevel(logging.WARNING)
    variants = args.variants or list(VARIANTS)
    s = dataclasses.replace(DEFAULT.with_data(num_scenes=args.scenes), steps=args.steps)
    tmp = Path(tempfile.mkdtemp(prefix="bench_variants_"))
    try:
        data = tmp / "synth"
        generate_dataset(
            data,
            SynthSettings(num_scenes=s.data.num_scenes, frames=s.frames, width=s.size, height=s.size, write_video=False,
                          test_fraction=0.25, situations_per_scene=4),
            progress=False,
        )  # fmt: skip
        sets = synth_eval_sets(data, "test", s.frames)
        loc = sets["loc"]
        n = min(args.queries, len(loc))
        rows = []
        for name in variants:
            out = tmp / name
            train(_recipe(data, out, name, s, seed=0))
            metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            sps = statistics.median(m["train/samples_per_s"] for m in metrics if m["step"] > args.warmup)
            model = load_model(out / "final")
            processor = model.build_processor(mode="eval")
            cfg = model.config
            t_read, t_proc, t_model = [], [], []
            for i in range(n):
                proto = loc[i]
                t0 = time.perf_counter()
                clip = ScanNetScene(data / "scans" / proto.scene_id).load_clip(
                    s.frames, points_size=(s.size, s.size) if cfg.cue_injection else None
                )
                t1 = time.perf_counter()
                sample = dataclasses.replace(proto, frames=clip.frames, poses=clip.poses, points=clip.points)
                with torch.inference_mode():
                    batch = processor([sample], mode="eval")
                    t2 = time.perf_counter()
                    model.predict(batch, max_new_tokens=0 if cfg.situation_enabled else 24)
                t3 = time.perf_counter()
                t_read.append(t1 - t0)
                t_proc.append(t2 - t1)
                t_model.append(t3 - t2)
            med = [1000 * statistics.median(v) for v in (t_read, t_proc, t_model)]
            rows.append((name, sps, *med, sum(med)))
        print(
            f"# bench_variants: tiny qwen2_5_vl (demo setting: hidden {s.hidden_size}, {s.layers} layers), {s.frames} "
            f"frames {s.size}x{s.size}, train batch {s.batch_size}, {args.steps} steps; "
            f"inference batch 1, {n} queries; "
            f"torch {torch.__version__} threads {torch.get_num_threads()}, {platform.machine()} {os.cpu_count()} cpus, "
            f"{date.today()}"
        )
        print("| variant | train samples/s | read ms | processor ms | model ms | total ms/query |")
        print("|---|---|---|---|---|---|")
        for name, sps, r, p, m, tot in rows:
            print(f"| {name} | {sps:.1f} | {r:.1f} | {p:.1f} | {m:.1f} | {tot:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
