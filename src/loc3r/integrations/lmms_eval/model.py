"""The ``loc3r`` lmms-eval chat model: a loc3r checkpoint answering lmms-eval requests.

Two kinds of documents reach :meth:`Loc3rLmms.generate_until`:

* **loc3r task documents** (``loc3r_*`` tasks, they carry ``loc3r_config`` / ``loc3r_index``): the sample is
  rebuilt by loc3r's loader from the document's evaluation config (:func:`.docs.load_benchmark`) — same clip,
  poses, situation and camera prior as ``loc3r eval --config`` — and asked the document's pinned ``prompt`` (the
  message text for other models also holds the situation; loc3r puts it in its own slot before ``<Pos> <Ori>``).
  Documents of a task with ``pose_response`` (``loc3r_sqa3d_localization``) get the heads' pose as a JSON record
  (package docstring), no text.
* **any other task** (lmms-eval's ``vsibench``, ...): the message's video (a file, a frame folder or a ScanNet-style
  scan folder, :func:`loc3r.apps.infer.load_frames`, ``num_frames`` frames) or images, and its text as the question;
  no situation (the processor's pseudo-situation).

Either way the batch goes through :func:`loc3r.evaluate.runner.predict_samples` (the ``loc3r eval`` path: one
video prefix per clip, its questions ``batch_size`` at a time), grouped by ``max_new_tokens``. Greedy decoding
only; lmms-eval's ``until`` stop strings are not applied (``loc3r eval`` applies none either).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from lmms_eval.api.model import lmms
from tqdm import tqdm

from loc3r.core.errors import ConfigError, SampleError

_log = logging.getLogger("loc3r.integrations.lmms_eval")


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")


class Loc3rLmms(lmms):
    """lmms-eval chat model over a loc3r checkpoint directory (see the module docstring)."""

    is_simple = False

    def __init__(
        self,
        pretrained: str | None = None,
        num_frames: int | str | None = None,
        batch_size: int | str | None = 1,
        device: str | None = None,
        max_batch_size: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from loc3r.model.loading import load_model

        if kwargs:
            raise ConfigError(
                f"loc3r lmms-eval model: unknown --model_args {sorted(kwargs)}; "
                "known: pretrained, num_frames, batch_size, device"
            )
        if not pretrained:
            raise ConfigError("loc3r lmms-eval model: --model_args pretrained=CHECKPOINT_DIR is required")
        path = Path(pretrained)
        if not path.is_dir():
            raise FileNotFoundError(f"loc3r lmms-eval model: checkpoint directory {path} does not exist")
        self.model = load_model(path)
        if device:
            self.model.to(device)
        self.checkpoint = path
        self.num_frames = int(num_frames) if num_frames else int(self.model.num_frames or 32)
        try:
            self.batch_size = max(1, int(batch_size or 1))
        except ValueError as err:
            raise ConfigError(f"loc3r lmms-eval model: batch_size must be an integer, got {batch_size!r}") from err
        self._processors: dict[str | None, Any] = {}

    # ---------------------------------------------------------------------------------------------- samples

    def _processor(self, camera_root: Any = None) -> Any:
        key = None if camera_root is None else str(camera_root)
        if key not in self._processors:
            camera = {} if key is None else {"camera_root": key}
            self._processors[key] = self.model.build_processor(mode="eval", **camera)
        return self._processors[key]

    def _loc3r_sample(self, doc: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``(original sample, prompted sample, benchmark)`` of a loc3r task document."""
        from loc3r.integrations.lmms_eval.docs import load_benchmark, task_of_benchmark

        bench = load_benchmark(doc["loc3r_config"])
        if task_of_benchmark(doc["loc3r_benchmark"]).pose_response:
            bench.task.check_model(self.model, self.checkpoint)
        sample = bench.dataset[int(doc["loc3r_index"])]
        if sample.question.strip() != str(doc["question"]).strip():
            raise SampleError(
                f"{bench.path}: sample {doc['loc3r_index']} asks {sample.question!r} but the lmms-eval document asks "
                f"{doc['question']!r}: the documents are stale (clear lmms-eval's request cache)"
            )
        prompted = bench.task.build_prompt(sample, bench.config)
        return sample, dataclasses.replace(prompted, question=doc["prompt"]), bench

    def _message_sample(self, messages: list[dict[str, Any]], name: str) -> Any:
        """A sample from chat messages: the video / images and the text (other lmms-eval tasks)."""
        from loc3r.apps.infer import load_frames
        from loc3r.data.schema import ClipSample

        videos, images, texts = [], [], []
        for message in messages:
            content = message.get("content")
            items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for item in items:
                kind, url = item.get("type"), item.get("url")
                if kind == "video":
                    videos.append(url)
                elif kind == "image":
                    images.append(url)
                elif kind == "text":
                    texts.append(str(item.get("text", "")))
        if len(videos) > 1 or (videos and images):
            raise SampleError(f"{name}: the loc3r model takes one video or a set of images per request")
        if videos:
            source = videos[0]
        elif images and all(isinstance(i, str | Path) for i in images):
            source = [str(i) for i in images]
        elif images:  # PIL images
            source = np.stack([np.asarray(i.convert("RGB")) for i in images])
        else:
            raise SampleError(f"{name}: the request has no video or image for the loc3r model")
        frames, poses, points, scene_id = load_frames(source, self.num_frames)
        return ClipSample(sample_id=name, scene_id=scene_id, task="lmms_eval", frames=frames,
                          question="\n".join(t for t in texts if t.strip()), poses=poses, points=points)  # fmt: skip

    # ---------------------------------------------------------------------------------------------- requests

    def generate_until(self, requests: list[Any]) -> list[str]:
        from loc3r.evaluate.runner import predict_samples
        from loc3r.integrations.lmms_eval.docs import task_of_benchmark

        out: list[str | None] = [None] * len(requests)
        groups: dict[tuple[int, str | None], list[tuple[int, Any, Any, Any]]] = defaultdict(list)
        bar = tqdm(total=len(requests), desc="loc3r responding", disable=self.rank != 0)
        for i, request in enumerate(requests):
            _ctx, doc_to_messages, gen_kwargs, doc_id, task, split = request.args
            gen_kwargs = dict(gen_kwargs or {})
            name = f"{task}/{split}/{doc_id}"
            if _as_bool(gen_kwargs.get("do_sample", False)) or int(gen_kwargs.get("num_beams", 1) or 1) != 1:
                raise ConfigError(
                    f"lmms-eval task {task!r}: generation_kwargs ask for do_sample={gen_kwargs.get('do_sample')}, "
                    f"num_beams={gen_kwargs.get('num_beams')}; the loc3r model decodes greedily only"
                )
            doc = self.task_dict[task][split][doc_id]
            try:
                if "loc3r_config" in doc:
                    original, prompted, bench = self._loc3r_sample(doc)
                    camera_root = bench.config.camera_root
                    localization = task_of_benchmark(doc["loc3r_benchmark"]).pose_response
                    new_tokens = 0 if localization else int(gen_kwargs.get("max_new_tokens", 16))
                    handler = bench.task if localization else None
                else:
                    prompted = self._message_sample(doc_to_messages(doc), name)
                    original, camera_root, handler = prompted, None, None
                    new_tokens = int(gen_kwargs.get("max_new_tokens", 16))
            except SampleError as err:  # as `loc3r eval`: a sample that cannot be loaded is named and skipped
                _log.warning("%s: sample skipped (empty response): %s", name, err)
                out[i] = ""
                bar.update(1)
                continue
            groups[(new_tokens, None if camera_root is None else str(camera_root))].append(
                (i, original, prompted, handler)
            )
        for (new_tokens, camera_root), items in groups.items():
            processor = self._processor(camera_root)
            predictions = predict_samples(
                self.model, [p for _, _, p, _ in items], new_tokens, self.batch_size, processor
            )
            for (i, original, _, handler), (pred, _) in zip(items, predictions, strict=True):
                if handler is None:
                    out[i] = pred.answer or ""
                else:
                    try:
                        out[i] = json.dumps(handler.record(original, pred))
                    except SampleError as err:
                        _log.warning("%s: no pose record (empty response): %s", original.sample_id, err)
                        out[i] = ""
                bar.update(1)
        bar.close()
        return [o if o is not None else "" for o in out]

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("the loc3r lmms-eval model answers generate_until tasks only")

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("the loc3r lmms-eval model answers single-round generate_until tasks only")
