"""``loc3r prepare`` speed and the choice of the cache format.

Usage::

    python benchmarks/bench_prepare.py            # 3 scenes x 32 frames at 640x480 (~1-2 min on 2 cores)
    python benchmarks/bench_prepare.py --quick    # 2 scenes x 16 frames

1. Data: ``loc3r synth --size 640x480 --no-video`` scenes (ScanNet SensReader layout: JPEG colour, uint16 mm
   depth PNG, pose txt), generated once into a temp folder (or ``--data DIR`` to reuse).
2. **Preparation throughput** (frames/s): ``prepare_dataset("scannet", ...)`` with T = all frames of each
   scan, world points on the default 96x128 grid, into a fresh cache; median of ``--repeats`` runs, for
   ``workers`` 1 and 2, with frames stored at the file size and resized to 384x384 (the paper's input).
3. **Cache format** for one prepared clip (frames uint8, points float32, poses float64): safetensors,
   ``np.savez``, ``np.savez_compressed`` and Parquet (pyarrow, one row per frame, zstd): bytes on disk, write
   time and full read time (into numpy arrays, page cache warm), median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from loc3r.data.cache import clip_path, read_scannet_clip
from loc3r.data.prepare import PrepareOptions, prepare_dataset


def make_data(root: Path, scenes: int, frames: int) -> Path:
    cmd = [sys.executable, "-m", "loc3r.cli", "synth", "--out", str(root), "--scenes", str(scenes)]
    cmd += ["--frames", str(frames), "--size", "640x480", "--no-video", "--quiet", "--workers", "2"]
    cmd += ["--val-fraction", "0", "--test-fraction", "0", "--no-novel-view"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return root / "scans"


def bench_prepare(scans: Path, frames: int, repeats: int, workers: int, image_size: tuple[int, int] | None) -> dict:
    rates, sizes = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            opts = PrepareOptions("scannet", scans, Path(out), num_frames=frames, image_size=image_size)
            opts.workers, opts.progress = workers, False
            result = prepare_dataset(opts)
            assert result.report.ok and result.clips_written == result.clips_total, result.summary()
            rates.append(result.frames_per_second)
            sizes.append(result.bytes_written / max(1, result.frames_written))
    return {"fps": statistics.median(rates), "min": min(rates), "max": max(rates), "bytes_per_frame": sizes[0]}


def _parquet_write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = arrays["frames"].shape[0]
    cols = {k: pa.array([v[i].tobytes() for i in range(t)], type=pa.binary()) for k, v in arrays.items()}
    pq.write_table(pa.table(cols), path, compression="zstd")


def _parquet_read(path: Path, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {
        k: np.stack([np.frombuffer(b, dtype=v.dtype).reshape(v.shape[1:]) for b in table.column(k).to_pylist()])
        for k, v in like.items()
    }


def bench_formats(arrays: dict[str, np.ndarray], repeats: int) -> list[tuple[str, int, float, float]]:
    from safetensors.numpy import load_file, save_file

    def npz_read(path: Path) -> dict[str, np.ndarray]:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    formats = {
        "safetensors": (lambda p: save_file(arrays, str(p)), lambda p: load_file(str(p))),
        "npz": (lambda p: np.savez(p, **arrays), npz_read),
        "npz (compressed)": (lambda p: np.savez_compressed(p, **arrays), npz_read),
        "parquet (zstd)": (lambda p: _parquet_write(p, arrays), lambda p: _parquet_read(p, arrays)),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (write, read) in formats.items():
            path = Path(tmp) / f"clip_{len(rows)}.bin"
            writes, reads = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                write(path)
                writes.append(time.perf_counter() - t0)
                if not path.exists():  # np.savez appends .npz
                    path = path.with_suffix(path.suffix + ".npz")
                t0 = time.perf_counter()
                back = read(path)
                reads.append(time.perf_counter() - t0)
                assert all(np.array_equal(back[k], v, equal_nan=True) for k, v in arrays.items()), name
            rows.append((name, path.stat().st_size, statistics.median(writes), statistics.median(reads)))
            path.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", default=None, help="reuse a `loc3r synth --size 640x480` directory")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scenes, frames = (2, 16) if args.quick else (3, 32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else Path(tmp) / "synth"
        t0 = time.perf_counter()
        scans = root / "scans" if args.data else make_data(root, scenes, frames)
        if args.data:
            frames = len(list(next(p for p in scans.iterdir() if p.is_dir()).joinpath("color").glob("*.jpg")))
        gen_s = time.perf_counter() - t0
        n_scenes = sum(1 for p in scans.iterdir() if p.is_dir())
        print(
            f"# bench_prepare: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
        )
        print(f"# data: {n_scenes} scenes x {frames} frames at 640x480 (generated in {gen_s:.0f} s)\n")
        print("| stored frames | workers | prepare frames/s (median) | min-max | MiB per frame |")
        print("|---|---|---|---|---|")
        for size in (None, (384, 384)):
            for workers in (1, 2):
                r = bench_prepare(scans, frames, args.repeats, workers, size)
                label = "640x480 (file)" if size is None else "384x384"
                print(
                    f"| {label} | {workers} | {r['fps']:.1f} | {r['min']:.1f}-{r['max']:.1f} | "
                    f"{r['bytes_per_frame'] / 2**20:.2f} |"
                )
        with tempfile.TemporaryDirectory() as out:
            opts = PrepareOptions("scannet", scans, Path(out), num_frames=frames, progress=False)
            prepare_dataset(opts)
            scene = sorted(p.name for p in scans.iterdir() if p.is_dir())[0]
            clip = read_scannet_clip(clip_path(out, scene))
        arrays = {"frames": clip.frames, "points": clip.points, "poses": clip.poses}
        shapes = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in arrays.items())
        print(f"\n# one clip: {shapes}\n")
        print("| format | size (MiB) | write (ms) | read (ms) |")
        print("|---|---|---|---|")
        for name, size, w, r in bench_formats(arrays, args.repeats):
            print(f"| {name} | {size / 2**20:.2f} | {w * 1e3:.1f} | {r * 1e3:.1f} |")


if __name__ == "__main__":
    main()
