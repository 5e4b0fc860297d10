"""Why is demo localization at chance? Diagnostics on a finished ``loc3r demo`` output directory.

    python benchmarks/diagnose_demo.py runs/demo [--variants lm_only cue_injection loc3r] [--max-loc 200]

    python benchmarks/diagnose_demo.py runs/demo --base src/loc3r/assets/loc3r-tiny   # the pretrained base only

Prints three tables (numbers, not opinions):

1. **Groundability of the data** — per split, the share of situations whose named objects are all visible in
   the clip (``scene.json: first_seen_frame``), and two geometric heuristics on the situations: "the room
   centre" and "the centre of the first named object" (what a model that only finds the named anchor object
   would score; it needs no learning of the geometry, only recognition).
2. **Memorisation gap** — each variant's localization on training rooms vs held-out rooms.
3. **Recognition probe** — does a vision token know what it sees? A softmax probe on the frozen vision-token
   embeddings (after the merger, before the LLM) predicts the category of the object under the token's
   footprint (majority instance of its pixels, background = walls/floor), fitted on training rooms and scored
   on held-out rooms with balanced accuracy (mean recall per class); the trained checkpoint vs the same
   architecture at random initialisation vs always answering the most frequent class. If training does not
   raise the probe above random initialisation, the vision tower has not learned to recognise objects, and no
   localization objective can ground "the sofa".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image


def _annotations(root: Path, split: str) -> list[dict[str, Any]]:
    data = json.loads(next((root / "sqa3d").glob(f"*annotations_{split}_*.json")).read_text())
    return data["annotations"] if isinstance(data, dict) else data


def _instances(root: Path, scene_id: str) -> dict[int, tuple[str, np.ndarray]]:
    meta = json.loads((root / "scans" / scene_id / "meta_info.json").read_text())[scene_id]
    return {
        int(o["instance_id"]): (category, np.asarray(o["centroid"][:2], dtype=np.float64))
        for category, objs in meta["object_bbox"].items()
        for o in objs
    }


def groundability(root: Path, splits: list[str]) -> list[str]:
    rows = [
        "| split | situations | all named objects visible | room centre Acc@1.0m | first named object Acc@0.5m "
        "| first named object Acc@1.0m |",
        "|---|---|---|---|---|---|",
    ]
    for split in splits:
        seen_keys: set[tuple[str, float, float]] = set()
        visible, near_err, centre_err = [], [], []
        for a in _annotations(root, split):
            key = (a["scene_id"], a["position"]["x"], a["position"]["y"])
            if key in seen_keys:
                continue
            seen_keys.add(key)
            scene = json.loads((root / "scans" / a["scene_id"] / "scene.json").read_text())
            first_seen = {int(k) for k in scene["first_seen_frame"]}
            visible.append(set(a["referenced_instances"]) <= first_seen)
            objects = _instances(root, a["scene_id"])
            meta = json.loads((root / "scans" / a["scene_id"] / "meta_info.json").read_text())[a["scene_id"]]
            agent = np.array([a["position"]["x"], a["position"]["y"]])
            near_err.append(np.linalg.norm(objects[a["referenced_instances"][0]][1] - agent))
            centre_err.append(np.linalg.norm(np.asarray(meta["room_center"][:2]) - agent))
        if not visible:
            continue
        ne, ce = np.asarray(near_err), np.asarray(centre_err)
        rows.append(
            f"| {split} | {len(visible)} | {100 * np.mean(visible):.1f} % | {100 * (ce < 1).mean():.1f} | "
            f"{100 * (ne < 0.5).mean():.1f} | {100 * (ne < 1).mean():.1f} |"
        )
    return rows


def memorisation(out: Path, root: Path, variants: list[str], frames: int, max_loc: int) -> list[str]:
    from loc3r.benchmarks.synthrooms.task import score_synth, synth_eval_config
    from loc3r.evaluate.runner import evaluate, load_model

    rows = [
        "| variant | split | Acc@0.5m | Acc@1.0m | Acc@15° | Acc@30° | median pos err (m) |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        final = out / "runs" / f"{variant}-seed0" / "final"
        model = load_model(final)
        for split in ("train", "test"):
            config = synth_eval_config(
                final, root, split, frames, out / "eval", 16, {"loc": max_loc}, benchmark="synth_localization"
            )
            s = score_synth(evaluate(model, config, progress=False))[split]
            rows.append(
                f"| {variant} | {split} | {s['acc@0.5m']:.1f} | {s['acc@1.0m']:.1f} | {s['acc@15deg']:.1f} | "
                f"{s['acc@30deg']:.1f} | {s['median_pos_err_m']:.2f} |"
            )
    return rows


def _token_dataset(model: Any, root: Path, split: str, frames: int, classes: dict[str, int]) -> tuple[Any, Any]:
    """Vision-token embeddings [N, D] and the category class of each token's footprint [N]."""
    from loc3r.benchmarks.synthrooms.reader import build_synth
    from loc3r.data.spec import DatasetSpec

    dataset = build_synth(DatasetSpec(kind="synth", root=root, split=split), num_frames=frames, tasks=("vsi",))
    first: dict[str, int] = {}
    for i, record in enumerate(dataset.records):  # one clip per scan (records hold no frames)
        first.setdefault(record.scene_name, i)
    processor = model.build_processor(mode="eval")
    feats, labels = [], []
    for scene_id, i in first.items():
        sample = dataset[i]
        objects = _instances(root, scene_id)
        batch = processor([sample])
        with torch.no_grad():  # the vision tower + merger only (no 3D cue, no LLM)
            pixels = {"pixel_values_videos": batch["pixel_values_videos"], "video_grid_thw": batch["video_grid_thw"]}
            tokens = model.adapter.encode_video(model.vlm, pixels).float().numpy()
        masks = np.stack(
            [
                np.asarray(Image.open(root / "scans" / scene_id / "instance" / f"{int(f)}.png"))
                for f in sample.frame_indices
            ]
        )
        k = 0
        for seg in batch.metadata[0].segments:
            h, w = masks.shape[1:]
            for r in range(seg.grid_h):
                for c in range(seg.grid_w):
                    cell = masks[
                        list(seg.frame_indices),
                        r * h // seg.grid_h : (r + 1) * h // seg.grid_h,
                        c * w // seg.grid_w : (c + 1) * w // seg.grid_w,
                    ]
                    ids, counts = np.unique(cell, return_counts=True)
                    iid = int(ids[np.argmax(counts)])
                    category = objects[iid][0] if iid in objects else "background"
                    labels.append(classes.setdefault(category, len(classes)))
                    feats.append(tokens[k])
                    k += 1
            k += seg.extra_tokens
    return np.stack(feats), np.asarray(labels)


def _probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, num_classes: int) -> float:
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    x_tr = torch.tensor((xtr - mu) / sd, dtype=torch.float32)
    x_te = torch.tensor((xte - mu) / sd, dtype=torch.float32)
    y_tr = torch.tensor(ytr)
    weight = torch.zeros(x_tr.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=300)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x_tr @ weight + bias, y_tr) + 1e-3 * (weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    pred = (x_te @ weight + bias).argmax(1).numpy()
    return _balanced_accuracy(yte, pred)


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y`` (background dominates the tokens, so plain accuracy
    says little: always answering "background" is right for ~90 % of them)."""
    return float(100 * np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def recognition(out: Path, root: Path, variants: list[str], frames: int) -> list[str]:
    from loc3r.evaluate.runner import load_model
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    rows = [
        "| variant | vision weights | probe balanced accuracy, held-out rooms (%) | most frequent class (%) "
        "| background tokens (%) | tokens train / test |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants:
        run = out / "runs" / f"{variant}-seed0"
        trained = load_model(run / "final")
        recipe = yaml.safe_load((run / "config.yaml").read_text())["model"]
        tiny = dict(recipe.get("tiny") or {})
        tiny.pop("vocab_size", None)
        random_init = Loc3rForConditionalGeneration.tiny(
            trained.config.backbone, trained.tokenizer, seed=1234, vlm_overrides=tiny, **(recipe.get("loc3r") or {})
        )
        random_init.preprocessing = trained.preprocessing
        random_init.eval()
        for name, model in (("trained", trained), ("random init", random_init)):
            classes: dict[str, int] = {}
            xtr, ytr = _token_dataset(model, root, "train", frames, classes)
            xte, yte = _token_dataset(model, root, "test", frames, classes)
            acc = _probe(xtr, ytr, xte, yte, len(classes))
            background = float(100 * (yte == classes.get("background", -1)).mean())
            majority = _balanced_accuracy(yte, np.full_like(yte, np.bincount(ytr, minlength=len(classes)).argmax()))
            rows.append(
                f"| {variant} | {name} | {acc:.1f} | {majority:.1f} | {background:.1f} | {len(ytr)} / {len(yte)} |"
            )
    return rows


def _set_f1(predicted: set[str], truth: set[str]) -> float:
    if not predicted and not truth:
        return 1.0
    hits = len(predicted & truth)
    return 0.0 if hits == 0 else 2 * hits / (len(predicted) + len(truth))


def object_listing(model: Any, root: Path, split: str, frames: int, max_scans: int | None = None) -> dict[str, float]:
    """The base's answers to "Which objects appear in the video, in the order they first appear?" on ``split``'s
    scans: mean set-F1 of the named categories (order ignored) and exact-match rate (order included)."""
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    dataset = SynthPretrainDataset(root, split, frames, tasks=("objects",), recognition_labels=False)
    n = len(dataset) if max_scans is None else min(max_scans, len(dataset))
    processor = model.build_processor(mode="eval")
    f1s, exact = [], []
    for lo in range(0, n, 16):
        samples = [dataset[i] for i in range(lo, min(n, lo + 16))]
        for sample, pred in zip(samples, model.predict(processor(samples), max_new_tokens=48), strict=True):
            names = [x.strip() for x in pred.answer.split(",") if x.strip()]
            truth = [x.strip() for x in (sample.answer or "").split(",") if x.strip()]
            f1s.append(_set_f1(set(names), set(truth)))
            exact.append(names == truth)
    return {"set_f1": float(np.mean(f1s)), "exact": float(100 * np.mean(exact)), "scans": float(n)}


def base_recognition(base_dir: Path, root: Path, frames: int, max_scans: int | None = None) -> list[str]:
    """Recognition of a pretrained base (e.g. loc3r-tiny) on rooms it never saw: the token probe of table 3 (fitted
    on ``root``'s training rooms, scored on its held-out rooms) for the base and for the same architecture at random
    initialisation, the base's own recognition head, and object listing (set-F1) on held-out and training rooms."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    base = Loc3rForConditionalGeneration.from_pretrained(base_dir, dtype=torch.float32)  # shipped as float16
    base.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        random_init = Loc3rForConditionalGeneration(base.config)
    random_init.tokenizer, random_init.preprocessing = base.tokenizer, base.preprocessing
    random_init.eval()
    rows = [
        "| model | probe balanced acc., held-out rooms (%) | own head balanced acc. (%) | listing set-F1 held-out "
        "| listing set-F1 train | listing exact (%) held-out | most frequent class (%) | tokens train / test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, model in (("base", base), ("random init", random_init)):
        classes: dict[str, int] = {}
        xtr, ytr = _token_dataset(model, root, "train", frames, classes)
        xte, yte = _token_dataset(model, root, "test", frames, classes)
        probe = _probe(xtr, ytr, xte, yte, len(classes))
        majority = _balanced_accuracy(yte, np.full_like(yte, np.bincount(ytr, minlength=len(classes)).argmax()))
        head = "-"
        if model.recognition_head is not None and model.config.recognition_classes:
            with torch.no_grad():
                logits = model.recognition_head(torch.tensor(xte)).numpy()
            own = list(model.config.recognition_classes)
            names = {v: k for k, v in classes.items()}
            truth = np.array([own.index(names[c]) if names[c] in own else -1 for c in yte])
            head = f"{_balanced_accuracy(truth, logits.argmax(1)):.1f}"
        held = object_listing(model, root, "test", frames, max_scans)
        train = object_listing(model, root, "train", frames, max_scans)
        rows.append(
            f"| {name} | {probe:.1f} | {head} | {held['set_f1']:.3f} | {train['set_f1']:.3f} | {held['exact']:.1f} "
            f"| {majority:.1f} | {len(ytr)} / {len(yte)} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_dir", type=Path, help="a loc3r demo --out directory (or a SynthRooms root with --base)")
    parser.add_argument(
        "--base",
        type=Path,
        default=None,
        help="only measure the recognition of this pretrained base checkpoint on demo_dir's rooms (train = probe "
        "fitting, test = held-out); demo_dir may be a demo output or a SynthRooms root",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames per clip with --base (default 8)")
    parser.add_argument("--max-scans", type=int, default=None, help="listing: at most this many scans per split")
    parser.add_argument("--variants", nargs="+", default=None, help="default: every trained variant")
    parser.add_argument("--max-loc", type=int, default=200, help="localization samples per split (default 200)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["data", "memorisation", "recognition"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.base is not None:
        root = args.demo_dir / "synthrooms" if (args.demo_dir / "synthrooms").is_dir() else args.demo_dir
        print(f"# recognition of base {args.base} on {root} ({args.frames} frames)\n")
        print("\n".join(base_recognition(args.base, root, args.frames, args.max_scans)))
        return
    results = json.loads((args.demo_dir / "results.json").read_text())
    settings = results["_info"]["settings"]
    frames = int(settings["data"]["frames"] if "data" in settings else settings["frames"])  # DemoSettings.data
    variants = args.variants or list(results["_info"]["settings"]["variants"])
    root = args.demo_dir / "synthrooms"
    print(f"# diagnose {args.demo_dir}: variants {variants}, {frames} frames")
    if "data" not in args.skip:
        print("\n## 1. groundability of the situations\n")
        print("\n".join(groundability(root, ["train", "test", "test_novel_view"])))
    if "memorisation" not in args.skip:
        print("\n## 2. localization on training rooms vs held-out rooms\n")
        print("\n".join(memorisation(args.demo_dir, root, variants, frames, args.max_loc)))
    if "recognition" not in args.skip:
        print("\n## 3. recognition probe on the vision tokens\n")
        print("\n".join(recognition(args.demo_dir, root, variants, frames)))


if __name__ == "__main__":
    main()
