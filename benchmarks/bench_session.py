"""Encode once, ask many: seconds per question with the cached video prefix (``Loc3rPredictor.session``) vs the
uncached path (``Loc3rPredictor.predict``, the whole prompt every time), on CPU.

Two settings (random-weight models of the real HF class; speed does not depend on the weights):

* ``tiny``: the CPU demo's model (tiny Qwen2.5-VL, hidden 64, 2 layers) on 8 frames at 112x112 — 64 vision tokens.
* ``7b-ratio``: the token counts of a 32-frame Qwen2.5-VL-7B prompt — 32 frames at 392x392 give 16 temporal groups x
  196 = 3,136 vision tokens in front of a few tens of question tokens (LLaVA-Video-7B: 32 x 196 = 6,272) — on an
  LLM scaled down to fit a CPU (hidden ``--hidden``, ``--layers`` layers, head_dim 64; vision tower 2 blocks of
  width 64). The real 7B vision tower (32 blocks, width 1280) is skipped by the cached path too, so shrinking it
  makes the measured speed-up smaller than the real one, not larger.

Per setting: ``uncached`` = ``predict`` per question (processor + vision tower + LLM over the whole prompt + heads);
``encode`` = building the session once (processor + vision tower + LLM over the video prefix); ``cached`` =
``session.ask`` per question (processor for the text + LLM over the question tokens on a copy of the prefix's KV
cache + heads). Both at ``max_new_tokens=0`` (the situation heads' read-out: position, heading, layout) and with a
``--answer-tokens`` greedy answer (each generated token costs the same on both paths, so the ratio shrinks).
Median over ``--questions`` SQA3D-style (situation, question) pairs, after one warm-up.

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_session.py
    python benchmarks/bench_session.py --settings tiny --questions 20
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import date

QUERIES = [
    ("I am sitting on the bed facing the window.", "What is on my left?"),
    ("I am standing next to the table, facing the sink.", "How many chairs are in front of me?"),
    ("I am washing my hands at the sink with the door behind me.", "Which way should I turn to reach the sofa?"),
    ("I am sitting on the sofa facing the television.", "Is the lamp on my right side?"),
    ("I am standing by the door looking into the room.", "What colour is the chair in front of me?"),
    ("I am lying on the bed with my head next to the nightstand.", "Can I reach the lamp without getting up?"),
]


def _predictor(setting: str, hidden: int, layers: int):
    from loc3r.apps.infer import Loc3rPredictor
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    corpus = [s + " " + q for s, q in QUERIES] * 4
    tok = build_tiny_tokenizer(corpus, vocab_size=600, backbone="qwen2_5_vl")
    overrides: dict = {}
    if setting == "7b-ratio":
        overrides = {
            "text_config": dict(hidden_size=hidden, intermediate_size=hidden * 53 // 10, num_hidden_layers=layers,
                                num_attention_heads=hidden // 64, num_key_value_heads=max(1, hidden // 448),
                                max_position_embeddings=32768),
            "vision_config": dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2),
        }  # fmt: skip
    model = Loc3rForConditionalGeneration.tiny(
        "qwen2_5_vl", tok, seed=0, layout_objective=True, situation_objective=True, vlm_overrides=overrides
    )
    if setting == "7b-ratio":  # 392 x 392 frames = 14 x 14 merged tokens each, as a 7B checkpoint's processor gives
        factor = 28
        model.preprocessing.update(min_pixels=factor * factor, max_pixels=14 * 14 * factor * factor)
    model.eval()
    frames, size = (8, 112) if setting == "tiny" else (32, 392)
    return Loc3rPredictor(model, num_frames=frames), frames, size


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _measure(setting: str, args: argparse.Namespace) -> list[tuple]:
    """Rows ``(setting, prefix tokens, question tokens, answer tokens, uncached s, encode s, cached s, speed-up)``."""
    import numpy as np
    import torch

    predictor, num_frames, size = _predictor(setting, args.hidden, args.layers)
    frames = np.random.default_rng(0).integers(0, 256, size=(num_frames, size, size, 3), dtype=np.uint8)
    queries = [QUERIES[i % len(QUERIES)] for i in range(args.questions)]
    rows = []
    with torch.inference_mode():
        predictor.predict(frames, *queries[0], max_new_tokens=0)  # warm-up
        encode, session = _time(lambda: predictor.session(frames), 3 if setting == "tiny" else 1)
        session.ask(*queries[0], max_new_tokens=0)
        proc = predictor.processor
        text_tokens = [len(proc._encode_text(proc.user_text(predictor._sample(frames, None, None, "b", s, q))))
                       for s, q in queries]  # fmt: skip
        for new in (0, args.answer_tokens):
            unc = [_time(lambda q=q, n=new: predictor.predict(frames, *q, max_new_tokens=n), 1)[0] for q in queries]
            cac = [_time(lambda q=q, n=new: session.ask(*q, max_new_tokens=n), 1)[0] for q in queries]
            u, c = statistics.median(unc), statistics.median(cac)
            rows.append((setting, session.num_prefix_tokens, statistics.median(text_tokens), new, u, encode, c, u / c))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="*", default=["tiny", "7b-ratio"])
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--answer-tokens", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()

    import logging

    import torch

    logging.getLogger("loc3r").setLevel(logging.WARNING)
    rows = []
    for setting in args.settings:
        rows.extend(_measure(setting, args))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, date {date.today()}")  # fmt: skip
    print("| setting | prefix tokens | question tokens (median) | answer tokens | uncached s/question | "
          "session encode s (once) | cached s/question | speed-up per question |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.0f} | {r[3]} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.4f} | {r[7]:.1f}x |")


if __name__ == "__main__":
    main()
