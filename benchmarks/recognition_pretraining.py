"""Can the demo's tiny from-scratch VLM learn to recognise SynthRooms objects at all? (an experiment, CPU)

    python benchmarks/recognition_pretraining.py --rooms-dir /tmp/rec --demo-data runs/demo/synthrooms \\
        --out /tmp/recog --steps 5000

1. Generates ``--rooms`` SynthRooms rooms with a different seed from the demo's (no situations or questions, so
   it is fast; 5 % held out), unless ``--rooms-dir`` already holds them.
2. Trains the demo's ``lm_only`` tiny Qwen2.5-VL (same width, frames, image size, LR) with the real recipe on
   the most direct recognition task there is: *"Which objects appear in the video, in the order they first
   appear?"* → ``"door, tv, beige armchair"`` (the visible objects' names in order of first appearance; 4/5
   of the samples), mixed with the demo's training samples (1/5, so the tokenizer and the prompts match).
3. Scores the object lists on held-out rooms and on training rooms: exact match and set-F1 (names, order
   ignored). If both stay at the level of a fixed answer ("door, window, ..."), the model has not learned to
   recognise objects — and a situation such as "I am standing next to the sofa" cannot be grounded in a new
   room by any objective on top of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from loc3r.data.registry import register_dataset
from loc3r.data.schema import ClipSample

QUESTION = "Which objects appear in the video, in the order they first appear?"
TASK = "synth_objects"


class ObjectListDataset(Dataset):
    """One sample per scan: the visible objects' names (unique names, as situations use them) in order of first
    appearance in the clip (``scene.json: first_seen_frame``)."""

    def __init__(self, root: str | Path, split: str, num_frames: int) -> None:
        from loc3r.data.scannet import ScanNetFrameSource
        from loc3r.synthrooms.meta_info import layout_from_entry
        from loc3r.synthrooms.questions import object_names
        from loc3r.synthrooms.writer import read_index

        root = Path(root)
        index = read_index(root)
        self.scenes = list(index["splits"][split])
        first = index["scenes"][self.scenes[0]]
        size = (int(first["height"]), int(first["width"]))
        self.frames = ScanNetFrameSource(root / "scans", num_frames=num_frames, points_size=size)
        self.answers: dict[str, str] = {}
        for scene_id in self.scenes:
            scan = root / "scans" / scene_id
            meta = json.loads((scan / "meta_info.json").read_text())
            names = object_names(layout_from_entry(scene_id, meta[scene_id], source=str(scan / "meta_info.json")))
            first_seen = json.loads((scan / "scene.json").read_text())["first_seen_frame"]
            order = sorted((frame, int(iid)) for iid, frame in first_seen.items() if int(iid) in names)
            self.answers[scene_id] = ", ".join(names[iid] for _, iid in order)

    def texts(self) -> list[str]:  # for the tiny tokenizer, without loading frames
        return [QUESTION, *self.answers.values()]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> ClipSample:
        scene_id = self.scenes[index]
        clip = self.frames.clip(scene_id)
        answer = self.answers[scene_id]
        return ClipSample(
            sample_id=f"objects-{scene_id}",
            scene_id=scene_id,
            task=TASK,
            frames=clip.frames,
            question=QUESTION,
            answer=answer,
            answers=[answer],
            poses=clip.poses,
            points=clip.points,
            frame_indices=clip.frame_ids,
        ).validate()


@register_dataset(TASK)
def build_object_lists(spec: Any, num_frames: int, **_: Any) -> Dataset:
    return ObjectListDataset(spec.root, spec.split, num_frames)


def score_lists(model: Any, dataset: ObjectListDataset, indices: list[int]) -> dict[str, float]:
    from loc3r.evaluate.runner import predict_samples

    samples = [dataset[i] for i in indices]
    exact, f1 = [], []
    for sample, (pred, _) in zip(samples, predict_samples(model, samples, 48, 16), strict=True):
        truth = [x.strip() for x in sample.answer.split(",") if x.strip()]
        guess = [x.strip() for x in (pred.answer or "").split(",") if x.strip()]
        exact.append(truth == guess)
        common = len(set(truth) & set(guess))
        f1.append(0.0 if not common else 2 * common / (len(set(truth)) + len(set(guess))))
    return {"exact": 100 * float(np.mean(exact)), "set_f1": float(np.mean(f1)), "n": len(samples)}


def main() -> None:
    from loc3r.apps.demo import DEFAULT, _recipe
    from loc3r.data.spec import DatasetSpec
    from loc3r.evaluate.runner import load_model
    from loc3r.synthrooms.writer import generate_dataset
    from loc3r.train.recipe import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms-dir", type=Path, required=True, help="recognition rooms (generated if absent)")
    parser.add_argument("--rooms", type=int, default=1500)
    parser.add_argument("--demo-data", type=Path, required=True, help="a demo's synthrooms directory (tokenizer)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=DEFAULT.steps)
    args = parser.parse_args()
    torch.set_num_threads(1)
    s = dataclasses.replace(DEFAULT, steps=args.steps)
    rooms = dataclasses.replace(
        s.data, num_scenes=args.rooms, seed=1000, val_fraction=0.0, test_fraction=0.05, novel_view=False,
        situations_per_scene=0, questions_per_situation=0, vsi_questions_per_type=0, write_video=False,
    )  # fmt: skip
    generate_dataset(args.rooms_dir, rooms, progress=True)
    cfg = _recipe(args.demo_data, args.out, "lm_only", s, 0)
    cfg.data.train = [
        DatasetSpec(kind=TASK, root=args.rooms_dir, split="train", weight=4.0),
        DatasetSpec(kind="synth", root=args.demo_data, split="train", weight=1.0),
    ]
    model = load_model(train(cfg).final_dir)
    held_out = ObjectListDataset(args.rooms_dir, "test", s.frames)
    seen = ObjectListDataset(args.rooms_dir, "train", s.frames)
    rows = {
        "held-out rooms": score_lists(model, held_out, list(range(len(held_out)))),
        "training rooms": score_lists(model, seen, list(range(0, len(seen), max(len(seen) // 75, 1)))),
    }
    print(f"# recognition pretraining: {args.steps} steps, {len(seen)} training rooms")
    print(f"# settings: {dataclasses.asdict(s)}")
    print("| rooms | exact list (%) | set-F1 | n |\n|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['exact']:.1f} | {r['set_f1']:.3f} | {r['n']} |")


if __name__ == "__main__":
    main()
