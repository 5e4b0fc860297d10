"""What a SynthRooms clip shows: object coverage of its frames, the share of the room's objects it sees, the
situations kept per room, and how far the camera moves and turns between frames.

Usage::

    python benchmarks/synth_coverage.py DIR [DIR ...]          # one row per directory and trajectory family
    python benchmarks/synth_coverage.py DIR --markdown         # the table as Markdown (for RESULTS.md)

``DIR`` is a ``loc3r synth`` output folder (see the docstring of :mod:`loc3r.synthrooms.writer`). Every scan's
``instance/<i>.png`` (0 = room shell, k >= 1 = object k), ``pose/<i>.txt`` and ``scene.json`` are read; the figures,
over the scans of one trajectory family (``walk`` = the ``_00`` scans, ``novel_view`` = the test rooms' ``_01``
rescans), are:

* ``frames obj>=2%``: frames in which at least one object covers >= 2 % of the pixels (%);
* ``frames <5% obj``: frames whose object pixels (all objects together) are under 5 % — walls, floor, ceiling (%);
* ``objs/frame >=2%; >=min``: objects per frame covering >= 2 % of the pixels, and with at least the writer's
  visibility threshold of pixels (``SynthSettings.min_pixels``: max(4, 0.2 % of the image) unless set), the
  threshold that decides which objects a situation or question may name;
* ``room objs seen any; >=min``: objects of the room (its ``meta_info.json``) shown in at least one frame of the
  clip by at least one pixel, and by at least the writer's threshold, as a share of the room's objects, averaged
  over scans (%); the latter is checked against the writer's ``first_seen_frame``;
* ``situations``: situations kept per scan, mean, and as a share of ``situations_per_scene`` asked for;
* ``step m`` / ``turn deg``: camera-centre translation and rotation angle between consecutive frames, mean and
  max; ``height m`` / ``pitch deg``: camera height above the floor and pitch of the optical axis (up positive),
  5th-95th percentiles.

``--ceiling`` adds ``visible at all``: the share of the room's objects that any candidate view of the
``frame_objects`` policy shows with >= 0.4 % of its pixels (:func:`loc3r.synthrooms.trajectory.object_visibility`,
from the scan's ``meta_info.json``) — objects that no camera in the walkable space can see (boxes of real layouts
behind the room's walls or inside other boxes) bound ``room objs seen`` of every policy.

The coverage figures do not depend on the palette (``--category-colors`` changes colours only). Two palette-dependent
probes, each fitted on the ``train`` rooms and scored on the held-out ``test`` rooms with balanced accuracy (mean
recall per category, as in ``benchmarks/diagnose_demo.py``):

* ``--colour-probe``: how much an object's raw pixel colours tell its category — a softmax probe on the mean and
  standard deviation of the RGB of its pixels in a frame (every object shown with the writer's threshold of pixels);
* ``--tower-probe BASE``: the recognition probe of ``benchmarks/diagnose_demo.py`` (a softmax probe on the frozen
  vision tokens of the pretrained base ``BASE``, e.g. ``src/loc3r/assets/loc3r-tiny``, predicting the category
  under each token, background included) for the base and for the same architecture at random initialisation.
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

from loc3r.core.io import read_json

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
    visible_at_all: list[float] = field(default_factory=list)
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


def visible_at_all(root: Path, scene_id: str, settings: dict) -> float:
    """Share of the scan's objects some ``frame_objects`` candidate view shows (see the module docstring)."""
    from loc3r.synthrooms.meta_info import layout_from_entry
    from loc3r.synthrooms.trajectory import _FO_SEEN, object_visibility

    layout = layout_from_entry(scene_id, read_json(root / "scans" / scene_id / "meta_info.json")[scene_id])
    share = object_visibility(
        layout, np.random.default_rng(0), float(settings["hfov_deg"]), int(settings["width"]) / int(settings["height"])
    )
    return float((share >= _FO_SEEN).mean()) if len(share) else 1.0


def dataset_stats(root: Path, ceiling: bool = False) -> tuple[dict[str, FamilyStats], dict]:
    index = read_json(root / "synthrooms.json")
    settings = index["settings"]
    width, height = int(settings["width"]), int(settings["height"])
    min_pixels = int(settings.get("min_visible_pixels") or 0) or max(4, int(0.002 * width * height))
    families: dict[str, FamilyStats] = defaultdict(FamilyStats)
    for scene_id, scene in sorted(index["scenes"].items()):
        fam = families[scene["trajectory"]]
        fam.scans += 1
        scan_stats(root / "scans" / scene_id, min_pixels, fam)
        if ceiling:
            fam.visible_at_all.append(visible_at_all(root, scene_id, settings))
    return dict(families), settings


COLUMNS = (
    "world", "policy", "family", "scans", "frames obj>=2%", "frames <5% obj", "objs/frame >=2%; >=min",
    "room objs seen any; >=min", "visible at all",
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
        f"{np.mean(s.large_objects_per_frame):.2f}; {np.mean(s.objects_per_frame):.2f}",
        f"{100.0 * np.mean(s.any_pixel_share):.1f}; {100.0 * np.mean(s.seen_share):.1f}",
        f"{100.0 * np.mean(s.visible_at_all):.1f}" if s.visible_at_all else "-",
        f"{sit:.1f} / {asked} ({100.0 * sit / max(asked, 1):.0f} %)",
        f"{steps.mean():.2f} / {steps.max():.2f}",
        f"{turns.mean():.1f} / {turns.max():.1f}",
        f"{np.percentile(s.heights, 5):.2f}-{np.percentile(s.heights, 95):.2f}",
        f"{np.percentile(s.pitches, 5):.0f} to {np.percentile(s.pitches, 95):.0f}",
    ]


def _split_scans(root: Path, split: str) -> list[str]:
    return list(read_json(root / "synthrooms.json")["splits"][split])


def _colour_features(root: Path, scene_id: str, min_pixels: int) -> tuple[list[np.ndarray], list[str]]:
    scan = root / "scans" / scene_id
    meta = read_json(scan / "meta_info.json")[scene_id]
    category = {int(o["instance_id"]): name for name, boxes in meta["object_bbox"].items() for o in boxes}
    feats, labels = [], []
    for i in range(int(read_json(scan / "scene.json")["num_frames"])):
        inst = np.asarray(Image.open(scan / "instance" / f"{i}.png"))
        rgb = np.asarray(Image.open(scan / "color" / f"{i}.jpg").convert("RGB"), dtype=np.float64) / 255.0
        counts = np.bincount(inst.ravel())
        for iid in np.flatnonzero(counts >= min_pixels):
            if iid == 0 or int(iid) not in category:
                continue
            px = rgb[inst == iid]
            feats.append(np.concatenate([px.mean(0), px.std(0)]))
            labels.append(category[int(iid)])
    return feats, labels


def colour_probe(root: Path) -> tuple[float, float, int, int]:
    """Balanced accuracy (%) of the colour probe on held-out rooms, of the most frequent class, the sample counts."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from diagnose_demo import _balanced_accuracy, _probe

    settings = read_json(root / "synthrooms.json")["settings"]
    min_pixels = int(settings.get("min_visible_pixels") or 0) or max(
        4, int(0.002 * int(settings["width"]) * int(settings["height"]))
    )
    data = {}
    for split in ("train", "test"):
        feats, labels = [], []
        for scene_id in _split_scans(root, split):
            f, lab = _colour_features(root, scene_id, min_pixels)
            feats += f
            labels += lab
        data[split] = (np.asarray(feats), labels)
    classes = {c: k for k, c in enumerate(sorted(set(data["train"][1]) | set(data["test"][1])))}
    ytr = np.array([classes[c] for c in data["train"][1]])
    yte = np.array([classes[c] for c in data["test"][1]])
    acc = _probe(data["train"][0], ytr, data["test"][0], yte, len(classes))
    majority = _balanced_accuracy(yte, np.full_like(yte, np.bincount(ytr, minlength=len(classes)).argmax()))
    return acc, majority, len(ytr), len(yte)


def tower_probe(root: Path, base_dir: Path, frames: int) -> list[tuple[str, float, float]]:
    """(model, probe balanced accuracy %, most frequent class %) for the base and its architecture at random init."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from diagnose_demo import _balanced_accuracy, _probe, _token_dataset

    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    base = Loc3rForConditionalGeneration.from_pretrained(base_dir, dtype=torch.float32)
    base.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        random_init = Loc3rForConditionalGeneration(base.config)
    random_init.tokenizer, random_init.preprocessing = base.tokenizer, base.preprocessing
    random_init.eval()
    out = []
    for name, model in (("base", base), ("random init", random_init)):
        classes: dict[str, int] = {}
        xtr, ytr = _token_dataset(model, root, "train", frames, classes)
        xte, yte = _token_dataset(model, root, "test", frames, classes)
        acc = _probe(xtr, ytr, xte, yte, len(classes))
        majority = _balanced_accuracy(yte, np.full_like(yte, np.bincount(ytr, minlength=len(classes)).argmax()))
        out.append((name, acc, majority))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="loc3r synth output folders")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--ceiling", action="store_true", help="also the share of objects any candidate view shows")
    ap.add_argument("--colour-probe", action="store_true", help="also the raw-colour category probe per directory")
    ap.add_argument("--tower-probe", type=Path, default=None, metavar="BASE", help="also the vision-token probe")
    args = ap.parse_args(argv)
    rows = []
    for root in args.dirs:
        families, settings = dataset_stats(root, args.ceiling)
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
    for root in args.dirs if args.colour_probe else []:
        acc, majority, n_tr, n_te = colour_probe(root)
        palette = (
            "category colours" if read_json(root / "synthrooms.json")["settings"].get("category_colors") else "plain"
        )
        print(
            f"colour probe {root.name} ({palette}): balanced accuracy {acc:.1f} % on held-out rooms "
            f"(most frequent class {majority:.1f} %; objects-in-frames train {n_tr} / test {n_te})"
        )
    for root in args.dirs if args.tower_probe is not None else []:
        frames = int(read_json(root / "synthrooms.json")["settings"]["frames"])
        for name, acc, majority in tower_probe(root, args.tower_probe, frames):
            print(
                f"tower probe {root.name} {name}: balanced accuracy {acc:.1f} % (most frequent class {majority:.1f} %)"
            )
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip())
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(COLUMNS, r, strict=True)) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
