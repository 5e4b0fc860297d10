"""Beacon3D (Huang et al., CVPR 2025) files: the object-centric QA metadata and its ScanQA-format records.

``metadata_<domain>_qa.json`` = ``{scene_id: {class: {obj_id: {"grounding_text": [str], "qa": [{"question",
"answer", "tag", "extra_knowledge"}]}}}}``; the benchmark's ``qa_to_scanqa_format.py`` turns it into the
ScanQA-format ``<domain>_qa.json`` that models read (``question_id = f"{scene}_{obj_id}_{i}_{tag}_{extra}"``, a
question text repeated in one scene kept once). :func:`beacon3d_records` rebuilds exactly those records and ids from
the metadata, so the metadata alone is the reference (scoring: :mod:`loc3r.benchmarks.beacon3d.metric`); the
ScanQA-format file is read by :mod:`loc3r.benchmarks.scanqa.reader` like any ScanQA file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loc3r.data.schema import SampleError


@dataclass(frozen=True)
class Beacon3DItem:
    """One metadata QA entry: the object it belongs to and the ScanQA-format id its prediction has."""

    question_id: str
    scene_id: str
    object_id: str
    object_class: str
    question: str
    answer: str
    tag: str
    extra_knowledge: int


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SampleError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def beacon3d_records(
    metadata: Any,
    *,
    source: str = "metadata",
    object_classes: Mapping[str, Mapping[str, str]] | None = None,
    strict: bool = False,
    problems: list[str] | None = None,
) -> tuple[list[Beacon3DItem], list[dict[str, Any]]]:
    """The metadata's QA entries and the ScanQA-format records of ``qa_to_scanqa_format.py``.

    Returns ``(items, scanqa_records)``: every metadata QA entry in file order (its ``question_id`` is the id of
    the first entry with the same question text in that scene), and the deduplicated ScanQA-format records.
    ``object_classes`` (``obj_id_to_class.json``: ``{scene: {obj_id: class}}``) checks the object ids: an object
    id missing from it is a bad record — skipped with a message in ``problems`` (or an error with ``strict``).
    Errors name the file, the scene / class / object and the field.
    """
    items: list[Beacon3DItem] = []
    scanqa: list[dict[str, Any]] = []
    first_id: dict[tuple[str, str], str] = {}
    for scene_id, classes in _mapping(metadata, source).items():
        for obj_class, objects in _mapping(classes, f"{source}: scene {scene_id!r}").items():
            for obj_id, entry in _mapping(objects, f"{source}: scene {scene_id!r}, class {obj_class!r}").items():
                where = f"{source}: scene {scene_id!r}, class {obj_class!r}, object {obj_id!r}"
                try:
                    if not str(obj_id).strip().lstrip("-").isdigit():
                        raise SampleError(f"{where}: the object id {obj_id!r} is not an integer")
                    if object_classes is not None and str(obj_id) not in object_classes.get(scene_id, {}):
                        raise SampleError(
                            f"{where}: field 'object_id': unknown object id {obj_id!r} (not in obj_id_to_class for "
                            f"scene {scene_id!r})"
                        )
                    qa = _mapping(entry, where).get("qa")
                    if not isinstance(qa, list) or not qa:
                        raise SampleError(f"{where}: field 'qa' must be a non-empty list")
                    parsed = []
                    for i, q in enumerate(qa):
                        here = f"{where}, qa[{i}]"
                        q = _mapping(q, here)
                        for key in ("question", "answer", "tag"):
                            if not isinstance(q.get(key), str) or not q[key].strip():
                                raise SampleError(
                                    f"{here}: field {key!r} must be a non-empty string, got {q.get(key)!r}"
                                )
                        extra = q.get("extra_knowledge", 0)
                        if isinstance(extra, bool) or extra not in (0, 1):
                            raise SampleError(f"{here}: field 'extra_knowledge' must be 0 or 1, got {extra!r}")
                        parsed.append((i, q["question"], q["answer"], q["tag"], int(extra)))
                except SampleError as err:
                    if strict or problems is None:
                        raise
                    problems.append(str(err))
                    continue
                for i, question, answer, tag, extra in parsed:
                    key = (scene_id, question)
                    if key not in first_id:
                        qid = f"{scene_id}_{obj_id}_{i}_{tag}_{extra}"
                        first_id[key] = qid
                        record = {
                            "question_id": qid,
                            "scene_id": scene_id,
                            "question": question,
                            "object_ids": [int(obj_id)],
                            "answers": [answer],
                        }
                        if object_classes is not None:
                            record["object_names"] = [object_classes[scene_id][str(obj_id)]]
                        scanqa.append(record)
                    items.append(
                        Beacon3DItem(first_id[key], scene_id, str(obj_id), obj_class, question, answer, tag, extra)
                    )
    if not items:
        raise SampleError(f"{source}: no Beacon3D QA entries")
    return items, scanqa
