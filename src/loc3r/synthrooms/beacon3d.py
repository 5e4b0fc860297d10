"""SynthRooms rooms as a Beacon3D QA test set, in Beacon3D's own file format.

Beacon3D (Huang et al., CVPR 2025) is object-centric: each object of a scene has three grounding texts that
refer to it and three questions about it, each tagged with a knowledge type (``class``, ``appearance``,
``geometry``, ``spatial``, ``existence``) and ``extra_knowledge`` (0/1: whether answering needs knowledge beyond
the referred object). The files written here are the benchmark's (see :mod:`loc3r.benchmarks.beacon3d.metric`):

* ``metadata_synthrooms_qa.json``: ``{scene_id: {category: {instance_id: {"grounding_text": [...], "qa": [...]}}}}``;
* ``synthrooms_qa.json``: the ScanQA-format records of ``qa_to_scanqa_format.py`` (what a model reads: loc3r's
  ScanQA loader reads this file as a ScanQA file);
* ``obj_id_to_class.json``: ``{scene_id: {instance_id: category}}``.

Questions come from the exact layout (SynthRooms ground truth), about objects named uniquely (by category, or
colour + category) and seen in the clip when the visible set is given:

* ``appearance`` — "What color is the {name}?" → its colour word (only when the name has no colour);
* ``geometry`` — "Is the {name} taller or shorter than the {other}?" (height difference ≥ 10 cm);
* ``spatial`` — "Is the {name} close to the {other}?" (yes: box distance < 0.5 m, no: > 1.5 m);
* ``existence`` — "Is there a {category} next to the {name}?" (yes: the nearest object of that category is
  within 0.5 m; no: no object of that category in the room);
* ``class`` — "What is the object closest to the {name}?" (the nearest object, 0.3 m closer than the second).

Deterministic from the seed: one ``numpy`` generator per scene from ``SeedSequence((seed, scene index))``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms.questions import box_distance, object_names

_CLOSE_M, _FAR_M = 0.5, 1.5


def _height(obj: SceneObject) -> float:
    return float(obj.center[2] + obj.size[2] / 2)


def _qa(question: str, answer: str, tag: str, extra_knowledge: int) -> dict[str, Any]:
    return {"question": question, "answer": answer, "tag": tag, "extra_knowledge": extra_knowledge}


def _questions(obj: SceneObject, name: str, layout: SceneLayout, names: Mapping[int, str]) -> list[dict[str, Any]]:
    others = [o for o in layout.objects if o.instance_id != obj.instance_id]
    named = [o for o in others if o.instance_id in names and names[o.instance_id] != name]
    dist = {o.instance_id: box_distance(obj, o) for o in others}
    out: list[dict[str, Any]] = []
    if obj.color_name and obj.color_name not in name:  # "What color is the white bed?" answers itself
        out.append(_qa(f"What color is the {name}?", obj.color_name.capitalize(), "appearance", 0))
    for o in sorted(named, key=lambda o: abs(_height(o) - _height(obj)), reverse=True)[:1]:
        if abs(_height(o) - _height(obj)) >= 0.1:
            answer = "Taller" if _height(obj) > _height(o) else "Shorter"
            out.append(_qa(f"Is the {name} taller or shorter than the {names[o.instance_id]}?", answer, "geometry", 1))
    for o in sorted(named, key=lambda o: dist[o.instance_id]):
        d = dist[o.instance_id]
        if d < _CLOSE_M or d > _FAR_M:
            answer = "Yes" if d < _CLOSE_M else "No"
            out.append(_qa(f"Is the {name} close to the {names[o.instance_id]}?", answer, "spatial", 1))
            break
    near_cats = sorted({o.category for o in others if dist[o.instance_id] < _CLOSE_M} - {obj.category})
    if near_cats:
        out.append(_qa(f"Is there a {near_cats[0]} next to the {name}?", "Yes", "existence", 1))
    if len(others) >= 2:
        ranked = sorted(others, key=lambda o: dist[o.instance_id])
        if dist[ranked[1].instance_id] - dist[ranked[0].instance_id] >= 0.3 and ranked[0].category != obj.category:
            out.append(_qa(f"What is the object closest to the {name}?", ranked[0].category.capitalize(), "class", 0))
    return out


def _grounding_texts(obj: SceneObject, name: str, layout: SceneLayout, names: Mapping[int, str]) -> list[str]:
    texts = [f"the {name}"]
    if obj.color_name and not name.startswith(obj.color_name):
        texts.append(f"the {obj.color_name} {obj.category}")
    others = sorted(
        (o for o in layout.objects if o.instance_id != obj.instance_id and o.instance_id in names),
        key=lambda o: box_distance(obj, o),
    )
    for o in others[:2]:
        texts.append(f"the {name} near the {names[o.instance_id]}")
    return texts[:3]


def beacon3d_scene(
    layout: SceneLayout, rng: np.random.Generator, visible_instances: Collection[int] | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """One scene's metadata entry ``{category: {instance_id: {"grounding_text", "qa"}}}``: every uniquely named
    (and, when ``visible_instances`` is given, seen) object with at least 3 answerable questions gets 3 of them
    (distinct knowledge types, drawn by ``rng``)."""
    names = object_names(layout)
    if visible_instances is not None:
        names = {k: v for k, v in names.items() if k in set(visible_instances)}
    entry: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in layout.objects:
        if obj.instance_id not in names:
            continue
        candidates = _questions(obj, names[obj.instance_id], layout, names)
        if len(candidates) < 3:
            continue
        picked = sorted(rng.choice(len(candidates), size=3, replace=False).tolist())
        entry.setdefault(obj.category, {})[str(obj.instance_id)] = {
            "grounding_text": _grounding_texts(obj, names[obj.instance_id], layout, names),
            "qa": [candidates[i] for i in picked],
        }
    return entry


def beacon3d_files(
    layouts: Sequence[SceneLayout], seed: int, visible: Mapping[str, Collection[int]] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, str]]]:
    """``(metadata, scanqa_records, obj_id_to_class)`` of a split, in Beacon3D's formats (module docstring)."""
    from loc3r.benchmarks.beacon3d.reader import beacon3d_records

    metadata: dict[str, Any] = {}
    classes: dict[str, dict[str, str]] = {}
    for index, layout in enumerate(layouts):
        rng = np.random.default_rng(np.random.SeedSequence((seed, index, 3)))
        entry = beacon3d_scene(layout, rng, None if visible is None else visible.get(layout.scene_id))
        if entry:
            metadata[layout.scene_id] = entry
            classes[layout.scene_id] = {str(o.instance_id): o.category for o in layout.objects}
    records = beacon3d_records(metadata, object_classes=classes)[1] if metadata else []
    return metadata, records, classes
