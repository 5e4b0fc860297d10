"""SynthRooms speed: frames rendered per second per core, per-stage cost of a scan, scans per minute end to end.

Usage::

    python benchmarks/bench_synth.py                 # full table (about 2 minutes on 2 cores)
    python benchmarks/bench_synth.py --quick         # fewer scenes / frames

Render throughput is measured in one process pinned to one core (``os.sched_setaffinity``) with CPU time
(``time.process_time``) and wall time, over walk trajectories of several generated rooms; the table shows
the median over rooms. End to end = ``generate_dataset`` (layout, trajectory, render, situations, VSI
questions, JPEG/PNG/mp4/JSON writing) with the default settings (32 frames, 128x128) into a fresh directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from loc3r.core.geometry import camera_center
from loc3r.synthrooms.mesh import build_scene_mesh
from loc3r.synthrooms.questions import generate_situations, generate_vsi_questions
from loc3r.synthrooms.render import SceneRenderer, make_intrinsic
from loc3r.synthrooms.scene import generate_layout
from loc3r.synthrooms.trajectory import sample_walk
from loc3r.synthrooms.writer import SynthSettings, generate_dataset


def bench_render(num_rooms: int, frames: int, sizes: list[tuple[int, int]], shadows: bool) -> dict:
    out: dict[tuple[int, int], list[tuple[float, float]]] = {s: [] for s in sizes}
    for room in range(num_rooms):
        layout = generate_layout(f"bench{room}", np.random.default_rng(1000 + room))
        renderer = SceneRenderer(build_scene_mesh(layout), shadows=shadows)
        poses = sample_walk(layout, np.random.default_rng(room), frames).poses
        for w, h in sizes:
            k = make_intrinsic(w, h)
            renderer.render(poses[0], k, w, h)  # warm the ray cache
            c0, t0 = time.process_time(), time.perf_counter()
            for pose in poses:
                renderer.render(pose, k, w, h)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            out[(w, h)].append((frames / cpu, frames / wall))
    return {
        s: (statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals)) for s, vals in out.items()
    }


def bench_stages(num_rooms: int, frames: int) -> dict[str, float]:
    """Median milliseconds per scan of each stage (default settings, 128x128)."""
    stages: dict[str, list[float]] = {
        k: [] for k in ("layout", "mesh+bvh", "trajectory", "render", "situations", "vsi_questions")
    }
    for room in range(num_rooms):
        rng = np.random.default_rng(2000 + room)
        t = time.perf_counter()
        layout = generate_layout(f"stage{room}", rng)
        stages["layout"].append(time.perf_counter() - t)
        t = time.perf_counter()
        renderer = SceneRenderer(build_scene_mesh(layout))
        stages["mesh+bvh"].append(time.perf_counter() - t)
        t = time.perf_counter()
        poses = sample_walk(layout, rng, frames).poses
        stages["trajectory"].append(time.perf_counter() - t)
        k = make_intrinsic(128, 128)
        t = time.perf_counter()
        inst = [renderer.render(p, k, 128, 128).instance for p in poses]
        stages["render"].append(time.perf_counter() - t)
        seen: dict[int, int] = {}
        for i, m in enumerate(inst):
            for iid in np.unique(m):
                if iid and int(iid) not in seen:
                    seen[int(iid)] = i
        t = time.perf_counter()
        generate_situations(layout, rng, 8, 4)
        stages["situations"].append(time.perf_counter() - t)
        t = time.perf_counter()
        generate_vsi_questions(layout, rng, seen, camera_center(poses), 2)
        stages["vsi_questions"].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in stages.items()}


def bench_end_to_end(num_scenes: int, workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = SynthSettings(num_scenes=num_scenes, seed=7)
        t = time.perf_counter()
        summary = generate_dataset(Path(tmp) / "ds", settings, workers=workers, progress=False)
        wall = time.perf_counter() - t
        scans = len(summary.written)
    return scans / wall * 60.0, scans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rooms, frames, e2e = (3, 16, 4) if args.quick else (6, 32, 10)
    print(
        f"# SynthRooms benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})  # one core for the per-core render numbers
    print("\n| resolution | shadows | frames/s/core (CPU time) | frames/s (wall, 1 core) |")
    print("|---|---|---|---|")
    for shadows in (True, False):
        res = bench_render(rooms, frames, [(128, 128), (640, 480)], shadows)
        for (w, h), (cpu, wall) in res.items():
            print(f"| {w}x{h} | {'on' if shadows else 'off'} | {cpu:.0f} | {wall:.0f} |")
    print(f"\nPer-scan stages (median of {rooms} rooms, {frames} frames at 128x128, 1 core), ms:\n")
    stages = bench_stages(rooms, frames)
    print("| " + " | ".join(stages) + " |")
    print("|" + "---|" * len(stages))
    print("| " + " | ".join(f"{v:.0f}" for v in stages.values()) + " |")
    os.sched_setaffinity(0, affinity)
    print("\n| end to end (32 frames, 128x128, default settings) | workers | scans | scans/min |")
    print("|---|---|---|---|")
    for workers in sorted({1, min(2, len(affinity))}):
        rate, scans = bench_end_to_end(e2e, workers)
        print(f"| generate_dataset | {workers} | {scans} | {rate:.1f} |")


if __name__ == "__main__":
    main()
