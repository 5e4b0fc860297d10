"""What a general video VLM learns before loc3r fine-tunes it: recognition tasks on SynthRooms, with NO spatial
supervision (the training data of the shipped base ``loc3r-tiny``, ``configs/base/loc3r_tiny.yaml``).

The paper fine-tunes a *pretrained* VLM whose vision tower already recognises objects and whose LLM already ties
words to what it sees. A tiny model trained from nothing learns neither on the CPU (benchmarks/RESULTS.md, "Why
localization does not generalise"), so loc3r-tiny is pretrained first on the kinds of tasks a general video VLM is
trained on. Every text here is free of positions, distances, directions and sizes: the spatial skills the demo
compares must come from each variant's own fine-tuning, or the comparison would mean nothing.

Tasks (one sample per scan and task; ``dataset[i]`` is scan ``i // len(tasks)``, task ``tasks[i % len(tasks)]``,
deterministic):

* ``objects``  — "Which objects appear in the video, in the order they first appear?" -> "door, sofa, lamp"
  (categories, each once, in order of the frame in which an instance is first seen);
* ``presence`` — "Is there a {category} in the video?" -> "yes" / "no" (half of the scans ask about a category
  seen in the clip, half about one that is not);
* ``count``    — "How many {plural} are in the video?" -> "2" (instances of a category seen in the clip);
* ``color``    — "What color is the {category}?" -> "green" (a category seen exactly once in the clip);
* ``caption``  — "Describe the video in one sentence." -> "A room with a sofa, two chairs and a door."

Every sample also carries per-pixel category labels (``ClipSample.pixel_labels`` from the scan's instance masks;
``background`` for the room shell), the targets of the dense per-token recognition loss on the vision tower —
the stand-in for a pretrained image encoder. "Seen in the clip" means at least the writer's visibility threshold of
pixels in one of the clip's frames (``scene.json: first_seen_frame``); the clip is every rendered frame of the scan
(render the pretraining set with ``--frames`` equal to the recipe's ``data.num_frames``, which is checked).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from loc3r.data.schema import ClipSample, SampleError
from loc3r.synthrooms.questions import _plural

PRETRAIN_TASKS = ("objects", "presence", "count", "color", "caption")
BACKGROUND = "background"  # the room shell (floor, walls, ceiling): instance id 0 in the masks

_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
QUESTIONS = {
    "objects": "Which objects appear in the video, in the order they first appear?",
    "presence": "Is there a {category} in the video?",
    "count": "How many {plural} are in the video?",
    "color": "What color is the {category}?",
    "caption": "Describe the video in one sentence.",
}


def recognition_classes() -> list[str]:
    """The class list of the recognition objective: ``background`` then every SynthRooms category, in catalog
    order (what ``Loc3rConfig.recognition_classes`` of loc3r-tiny holds)."""
    from loc3r.synthrooms.catalog import CATEGORIES

    return [BACKGROUND, *CATEGORIES]


def _counted(category: str, n: int) -> str:
    if n == 1:
        return ("an " if category[0] in "aeiou" else "a ") + category
    return f"{_NUMBER_WORDS.get(n, str(n))} {_plural(category)}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _Scan:
    """What the tasks need of one scan: categories by instance, colours, first-seen frames."""

    def __init__(self, scan_dir: Path) -> None:
        self.dir = scan_dir
        meta_path = scan_dir / "meta_info.json"
        scene_path = scan_dir / "scene.json"
        try:
            meta = json.loads(meta_path.read_text())
            scene = json.loads(scene_path.read_text())
        except (OSError, ValueError) as err:
            raise SampleError(f"{scan_dir}: unreadable meta_info.json / scene.json ({err})") from err
        self.scene_id = str(scene.get("scene_id", scan_dir.name))
        entry = meta.get(self.scene_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("object_bbox"), dict):
            raise SampleError(f"{meta_path}: record {self.scene_id!r}: field 'object_bbox' missing")
        self.category: dict[int, str] = {}
        self.color: dict[int, str] = {}
        for category, boxes in entry["object_bbox"].items():
            for k, box in enumerate(boxes):
                if "instance_id" not in box:
                    raise SampleError(f"{meta_path}: object_bbox[{category!r}][{k}]: field 'instance_id' missing")
                iid = int(box["instance_id"])
                self.category[iid] = category
                self.color[iid] = str(box.get("color_name") or "")
        first = scene.get("first_seen_frame")
        if not isinstance(first, dict):
            raise SampleError(f"{scene_path}: field 'first_seen_frame' missing")
        self.first_seen = {int(k): int(v) for k, v in first.items() if int(k) in self.category}
        self.num_frames = int(scene.get("num_frames", 0))

    def seen_in_order(self) -> list[int]:
        return [iid for iid, _ in sorted(self.first_seen.items(), key=lambda kv: (kv[1], kv[0]))]


class SynthPretrainDataset(Dataset):
    """The pretraining tasks of one SynthRooms split (module docstring)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        num_frames: int,
        tasks: tuple[str, ...] = PRETRAIN_TASKS,
        recognition_labels: bool = True,
    ) -> None:
        from loc3r.data.scannet import ScanNetFrameSource
        from loc3r.synthrooms.catalog import CATEGORIES
        from loc3r.synthrooms.writer import read_index

        self.root = Path(root)
        unknown = sorted(set(tasks) - set(PRETRAIN_TASKS))
        if unknown or not tasks:
            raise SampleError(
                f"dataset synth_pretrain at {self.root}: option 'tasks' must be a non-empty subset of "
                f"{PRETRAIN_TASKS}, got {list(tasks)}"
            )
        self.tasks = tuple(tasks)
        try:
            index = read_index(self.root)
        except (OSError, ValueError, RuntimeError) as err:
            raise SampleError(f"dataset synth_pretrain at {self.root}: not a SynthRooms directory ({err})") from err
        if split not in index.get("splits", {}):
            raise SampleError(f"dataset synth_pretrain at {self.root}: no split {split!r}")
        self.scenes = list(index["splits"][split])
        self.split = split
        rendered = int(index.get("settings", {}).get("frames", num_frames))
        if rendered != num_frames:
            raise SampleError(
                f"dataset synth_pretrain at {self.root}: scans have {rendered} frames but data.num_frames is "
                f"{num_frames}; the tasks describe every rendered frame, so render with --frames {num_frames}"
            )
        self.num_frames = num_frames
        self.recognition_labels = recognition_labels
        self.classes = recognition_classes()
        self._class_index = {name: k for k, name in enumerate(self.classes)}
        self._vocabulary = list(CATEGORIES)
        self.frames = ScanNetFrameSource(self.root / "scans", num_frames=num_frames, points_size=None, cache_size=2)

    def __len__(self) -> int:
        return len(self.scenes) * len(self.tasks)

    # ---------------------------------------------------------------------------------------------------- texts
    def _rng(self, scene_id: str, task: str) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(f"{scene_id}/{task}".encode()))

    def question_answer(self, scan: _Scan, task: str) -> tuple[str, str]:
        """The (question, answer) of ``task`` on ``scan`` (deterministic)."""
        rng = self._rng(scan.scene_id, task)
        order = scan.seen_in_order()
        seen_cats = list(dict.fromkeys(scan.category[i] for i in order))
        counts = Counter(scan.category[i] for i in order)
        if task == "objects":
            return QUESTIONS["objects"], ", ".join(seen_cats) if seen_cats else "none"
        if task == "presence":
            absent = [c for c in self._vocabulary if c not in counts]
            ask_seen = bool(seen_cats) and (not absent or rng.random() < 0.5)
            category = (
                seen_cats[int(rng.integers(len(seen_cats)))] if ask_seen else absent[int(rng.integers(len(absent)))]
            )
            return QUESTIONS["presence"].format(category=category), "yes" if ask_seen else "no"
        if task == "count":
            if not seen_cats:
                category = self._vocabulary[int(rng.integers(len(self._vocabulary)))]
                return QUESTIONS["count"].format(plural=_plural(category)), "0"
            category = seen_cats[int(rng.integers(len(seen_cats)))]
            return QUESTIONS["count"].format(plural=_plural(category)), str(counts[category])
        if task == "color":
            single = [i for i in order if counts[scan.category[i]] == 1 and scan.color[i]]
            if not single:  # nothing to ask a colour about: ask for the list instead
                return self.question_answer(scan, "objects")
            iid = single[int(rng.integers(len(single)))]
            return QUESTIONS["color"].format(category=scan.category[iid]), scan.color[iid]
        if not seen_cats:  # caption (the tasks are checked in __init__)
            return QUESTIONS["caption"], "An empty room."
        return QUESTIONS["caption"], "A room with " + _join([_counted(c, counts[c]) for c in seen_cats]) + "."

    def texts(self) -> list[str]:
        """Every question and answer (for the tiny tokenizer), without loading frames."""
        out: list[str] = []
        for scene_id in self.scenes:
            scan = _Scan(self.root / "scans" / scene_id)
            for task in self.tasks:
                out.extend(self.question_answer(scan, task))
        return out

    # ---------------------------------------------------------------------------------------------------- labels
    def _labels(self, scan: _Scan, frame_ids: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """``[T, h, w] int16`` class indices from the instance masks (0 = background)."""
        lut = np.zeros(max(scan.category, default=0) + 1, dtype=np.int16)
        for iid, category in scan.category.items():
            lut[iid] = self._class_index.get(category, -1)
        out = []
        for fid in frame_ids:
            path = scan.dir / "instance" / f"{int(fid)}.png"
            try:
                with Image.open(path) as im:
                    inst = np.asarray(im).astype(np.int64)
            except (OSError, ValueError) as err:
                raise SampleError(f"{path}: unreadable instance mask ({err})") from err
            if inst.shape != shape:
                raise SampleError(
                    f"{path}: instance mask is {inst.shape[1]}x{inst.shape[0]}, the frame {shape[1]}x{shape[0]}"
                )
            if inst.max(initial=0) >= len(lut):
                raise SampleError(f"{path}: instance id {int(inst.max())} is not in meta_info.json's object_bbox")
            out.append(lut[inst])
        return np.stack(out)

    def __getitem__(self, index: int) -> ClipSample:
        scene_id = self.scenes[index // len(self.tasks)]
        task = self.tasks[index % len(self.tasks)]
        scan = _Scan(self.root / "scans" / scene_id)
        clip = self.frames.clip(scene_id)
        if clip.frames.shape[0] != scan.num_frames:
            raise SampleError(
                f"{scan.dir}: the clip has {clip.frames.shape[0]} valid frames of {scan.num_frames}; the pretraining "
                "tasks describe every frame"
            )
        question, answer = self.question_answer(scan, task)
        labels = self._labels(scan, clip.frame_ids, clip.frames.shape[1:3]) if self.recognition_labels else None
        return ClipSample(
            sample_id=f"pretrain-{task}-{scene_id}",
            scene_id=scene_id,
            task=f"pretrain_{task}",
            frames=clip.frames,
            question=question,
            answer=answer,
            answers=[answer],
            poses=clip.poses,
            frame_indices=clip.frame_ids,
            pixel_labels=labels,
            label_names=self.classes if labels is not None else None,
        ).validate()

    def __repr__(self) -> str:
        return f"SynthPretrainDataset({self.root}, split={self.split!r}, scans={len(self.scenes)}, tasks={self.tasks})"
