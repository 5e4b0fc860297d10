"""What a SynthRooms clip shows: object coverage of its frames, the share of the room's objects it sees, the
situations kept per room, and how far the camera moves and turns between frames.

Usage::

    python benchmarks/synth_coverage.py DIR [DIR ...]          # one row per directory and trajectory family
    python benchmarks/synth_coverage.py DIR --markdown         # the table as Markdown (for RESULTS.md)

``DIR`` is a ``loc3r synth`` output folder (see the docstring of :mod:`loc3r.data.synth.writer`). Every scan's
``instance/<i>.png`` (0 = room shell, k >= 1 = object k), ``pose/<i>.txt`` and ``scene.json`` are read; the figures,
over the scans of one trajectory family (``walk`` = the ``_00`` scans, ``novel_view`` = the test rooms' ``_01``
rescans), are:

* ``frames obj>=2%``: frames in which at least one object covers >= 2 % of the pixels (%);
* ``frames <5% obj``: frames whose object pixels (all objects together) are under 5 % — walls, floor, ceiling (%);
* ``objs/frame >=2% | >=min``: objects per frame covering >= 2 % of the pixels, and with at least the writer's
  visibility threshold of pixels (``SynthSettings.min_pixels``: max(4, 0.2 % of the image) unless set), the
  threshold that decides which objects a situation or question may name;
* ``room objs seen any | >=min``: objects of the room (its ``meta_info.json``) shown in at least one frame of the
  clip by at least one pixel, and by at least the writer's threshold, as a share of the room's objects, averaged
  over scans (%); the latter is checked against the writer's ``first_seen_frame``;
* ``situations``: situations kept per scan, mean, and as a share of ``situations_per_scene`` asked for;
* ``step m`` / ``turn deg``: camera-centre translation and rotation angle between consecutive frames, mean and
  max; ``height m`` / ``pitch deg``: camera height above the floor and pitch of the optical axis (up positive),
  5th-95th percentiles.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from loc3r.io import read_json

FRAME_OBJECT_SHARE = 0.02  # an object "frames" a frame when it covers this share of its pixels
WALL_SHARE = 0.05  # a frame with fewer object pixels than this share shows walls / floor


@dataclass
class FamilyStats:
    scans: int = 0
    frames: int = 0
    framed: int = 0
    walls: int = 0
    objects_per_frame: list[float] = field(default_factory=list)
    large_objects_per_frame: list[float] = field(default_factory=list)
    seen_share: list[float] = field(default_factory=list)
    any_pixel_share: list[float] = field(default_factory=list)
    situations: list[int] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    turns: list[float] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    pitches: list[float] = field(default_factory=list)
    mismatches: int = 0  # scans whose seen objects differ from the writer's first_seen_frame


def _rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _num_objects(meta_path: Path) -> int:
    meta = read_json(meta_path)
    (entry,) = meta.values()
    return sum(len(boxes) for boxes in entry["object_bbox"].values())


def scan_stats(scan: Path, min_pixels: int, stats: FamilyStats) -> None:
    """Add one scan's figures to ``stats``."""
    summary = read_json(scan / "scene.json")
    n_frames = int(summary["num_frames"])
    n_objects = _num_objects(scan / "meta_info.json")
    seen: set[int] = set()
    any_pixel: set[int] = set()
    for i in range(n_frames):
        inst = np.asarray(Image.open(scan / "instance" / f"{i}.png"))
        counts = np.bincount(inst.ravel())
        counts[0] = 0
        total = inst.size
        stats.frames += 1
        stats.framed += int(counts.max(initial=0) >= FRAME_OBJECT_SHARE * total)
        stats.walls += int(counts.sum() < WALL_SHARE * total)
        visible = {int(k) for k in np.flatnonzero(counts >= min_pixels)}
        stats.objects_per_frame.append(len(visible))
        stats.large_objects_per_frame.append(int((counts >= FRAME_OBJECT_SHARE * total).sum()))
        seen |= visible
        any_pixel |= {int(k) for k in np.flatnonzero(counts)}
    if seen != {int(k) for k in summary.get("first_seen_frame", {})}:
        stats.mismatches += 1
    stats.seen_share.append(len(seen) / max(n_objects, 1))
    stats.any_pixel_share.append(len(any_pixel) / max(n_objects, 1))
    stats.situations.append(int(summary["num_situations"]))
    poses = [np.loadtxt(scan / "pose" / f"{i}.txt") for i in range(n_frames)]
    for a, b in zip(poses[:-1], poses[1:], strict=True):
        stats.steps.append(float(np.linalg.norm(b[:3, 3] - a[:3, 3])))
        stats.turns.append(_rotation_angle_deg(a[:3, :3], b[:3, :3]))
    for p in poses:
        stats.heights.append(float(p[2, 3]))
        stats.pitches.append(float(np.degrees(np.arcsin(np.clip(p[2, 2], -1.0, 1.0)))))


def dataset_stats(root: Path) -> tuple[dict[str, FamilyStats], dict]:
    index = read_json(root / "synthrooms.json")
    settings = index["settings"]
    width, height = int(settings["width"]), int(settings["height"])
    min_pixels = int(settings.get("min_visible_pixels") or 0) or max(4, int(0.002 * width * height))
    families: dict[str, FamilyStats] = defaultdict(FamilyStats)
    for scene_id, scene in sorted(index["scenes"].items()):
        fam = families[scene["trajectory"]]
        fam.scans += 1
        scan_stats(root / "scans" / scene_id, min_pixels, fam)
    return dict(families), settings


COLUMNS = (
    "world", "policy", "family", "scans", "frames obj>=2%", "frames <5% obj", "objs/frame >=2% | >=min",
    "room objs seen any | >=min",
    "situations kept / asked", "step m mean / max", "turn deg mean / max", "height m p5-p95", "pitch deg p5-p95",
)  # fmt: skip


def row(name: str, family: str, s: FamilyStats, settings: dict) -> list[str]:
    asked = int(settings["situations_per_scene"])
    sit = float(np.mean(s.situations)) if s.situations else 0.0
    steps = np.asarray(s.steps or [0.0])
    turns = np.asarray(s.turns or [0.0])
    return [
        name,
        str(settings.get("camera_policy", "walk")),
        family,
        str(s.scans),
        f"{100.0 * s.framed / max(s.frames, 1):.1f}",
        f"{100.0 * s.walls / max(s.frames, 1):.1f}",
        f"{np.mean(s.large_objects_per_frame):.2f} | {np.mean(s.objects_per_frame):.2f}",
        f"{100.0 * np.mean(s.any_pixel_share):.1f} | {100.0 * np.mean(s.seen_share):.1f}",
        f"{sit:.1f} / {asked} ({100.0 * sit / max(asked, 1):.0f} %)",
        f"{steps.mean():.2f} / {steps.max():.2f}",
        f"{turns.mean():.1f} / {turns.max():.1f}",
        f"{np.percentile(s.heights, 5):.2f}-{np.percentile(s.heights, 95):.2f}",
        f"{np.percentile(s.pitches, 5):.0f} to {np.percentile(s.pitches, 95):.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="loc3r synth output folders")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    rows = []
    for root in args.dirs:
        families, settings = dataset_stats(root)
        for family, stats in sorted(families.items(), key=lambda kv: kv[0] != "walk"):
            rows.append(row(root.name, family, stats, settings))
            if stats.mismatches:
                print(
                    f"warning: {root}: {stats.mismatches} {family} scans see other objects than their scene.json's "
                    "first_seen_frame",
                    file=sys.stderr,
                )
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip())
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(COLUMNS, r, strict=True)) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
