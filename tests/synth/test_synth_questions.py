"""Tests of SynthRooms free space, situations and questions (hand-written layouts, no scene generator)."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
from shapely.geometry import Point

from loc3r.data.schema import SampleError, SceneLayout, SceneObject
from loc3r.synthrooms.freespace import free_space, is_free, sample_free_points
from loc3r.synthrooms.meta_info import layout_from_entry, layout_to_entry
from loc3r.synthrooms.questions import (
    VSI_QUESTION_TYPES,
    SituatedQuestion,
    box_distance,
    generate_situated_questions,
    generate_situations,
    generate_vsi_questions,
)
from loc3r.synthrooms.writer import SynthSettings


def _box(category: str, iid: int, x: float, y: float, sx: float, sy: float, sz: float, **kw) -> SceneObject:
    bottom = kw.pop("bottom", 0.0)
    return SceneObject(category, iid, np.array([x, y, bottom + sz / 2]), np.array([sx, sy, sz]), **kw)


def _rect_room(w: float = 6.0, d: float = 5.0, objects: list[SceneObject] | None = None) -> SceneLayout:
    poly = np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=float)
    return SceneLayout("room", poly, 2.8, objects or [])


# ---------------------------------------------------------------------------------------------- free space


def test_free_space_clearance_and_blocking() -> None:
    bed = _box("bed", 1, 2.0, 2.0, 2.0, 1.6, 0.6, yaw=0.4)
    window = _box("window", 2, 0.05, 2.5, 0.1, 1.2, 1.0, bottom=0.9)  # high up: does not block
    layout = _rect_room(objects=[bed, window])
    free = free_space(layout, clearance=0.3)
    pts = sample_free_points(free, np.random.default_rng(0), 2000)
    assert pts.shape == (2000, 2)
    assert is_free(free, pts).all()
    floor_poly = layout.floor_polygon
    # at least clearance from walls and from the bed footprint, everywhere
    assert (pts.min(axis=0) >= 0.3 - 1e-9).all() and (pts.max(axis=0) <= floor_poly.max(axis=0) - 0.3 + 1e-9).all()
    from shapely.geometry import Polygon

    bed_poly = Polygon(bed.corners_xy())
    assert min(bed_poly.distance(Point(p)) for p in pts[:300]) >= 0.3 - 1e-6
    assert not is_free(free, np.array([2.0, 2.0]))
    # the window near the wall does not remove space beyond the wall clearance
    assert is_free(free, np.array([0.45, 2.5]))
    # uniformity: fraction in the left half of the free region matches its area fraction
    left = free.intersection(Polygon([[0, 0], [3, 0], [3, 5], [0, 5]])).area / free.area
    assert abs((pts[:, 0] < 3).mean() - left) < 0.05


def test_free_space_degenerate() -> None:
    tiny = _rect_room(0.5, 0.5)
    free = free_space(tiny, clearance=0.3)
    assert free.is_empty
    with pytest.raises(ValueError, match="empty"):
        sample_free_points(free, np.random.default_rng(0), 3)
    # a self-intersecting floor and a non-finite box are refused where layouts enter (the meta_info reader)
    bad = {"object_bbox": {}, "floor_polygon": [[0, 0], [1, 1], [0, 1], [1, 0]]}
    with pytest.raises(SampleError, match="'bad'.*'floor_polygon' is self-intersecting"):
        layout_from_entry("bad", bad)
    nan_obj = layout_to_entry(_rect_room(objects=[_box("chair", 7, 1, 1, 0.5, 0.5, 0.9)]))
    nan_obj["object_bbox"]["chair"][0]["centroid"][0] = float("nan")
    with pytest.raises(SampleError, match=r"object 'chair'\[0\]: field 'centroid' has non-finite"):
        layout_from_entry("r", nan_obj)


def test_sample_free_points_deterministic() -> None:
    free = free_space(_rect_room(objects=[_box("table", 1, 3, 2.5, 1.2, 0.8, 0.75)]))
    a = sample_free_points(free, np.random.default_rng(5), 50)
    b = sample_free_points(free, np.random.default_rng(5), 50)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------- scenes for tests
# Hand-written random layouts (this test does not depend on the SynthRooms scene generator).
_CATS = {  # category: (size xyz, bottom z, count range, on a wall)
    "bed": ((2.0, 1.6, 0.6), 0.0, (0, 1), False),
    "sofa": ((2.0, 0.9, 0.8), 0.0, (0, 1), False),
    "chair": ((0.5, 0.5, 0.9), 0.0, (0, 4), False),
    "table": ((1.2, 0.8, 0.75), 0.0, (0, 2), False),
    "desk": ((1.4, 0.7, 0.75), 0.0, (0, 1), False),
    "cabinet": ((0.8, 0.5, 1.0), 0.0, (0, 2), False),
    "bookshelf": ((1.0, 0.35, 1.8), 0.0, (0, 1), False),
    "lamp": ((0.3, 0.3, 1.5), 0.0, (0, 2), False),
    "plant": ((0.4, 0.4, 0.9), 0.0, (0, 2), False),
    "box": ((0.4, 0.4, 0.4), 0.0, (0, 2), False),
    "fridge": ((0.7, 0.7, 1.8), 0.0, (0, 1), False),
    "trash bin": ((0.3, 0.3, 0.5), 0.0, (0, 1), False),
    "tv": ((1.2, 0.1, 0.7), 1.0, (0, 1), True),
    "window": ((1.2, 0.1, 1.2), 0.9, (0, 2), True),
    "door": ((0.9, 0.1, 2.0), 0.0, (0, 1), True),
}
_PLURAL = {"bookshelf": "bookshelves", "box": "boxes", "trash bin": "trash bins"}
_COLOURS = [
    ("red", (200, 30, 30)),
    ("green", (30, 160, 60)),
    ("blue", (30, 60, 200)),
    ("white", (240, 240, 240)),
    ("black", (20, 20, 20)),
]


def random_layout(seed: int) -> SceneLayout:
    """A rectangular room with non-overlapping boxes of typical sizes (wall objects on the walls)."""
    from shapely.geometry import Polygon

    rng = np.random.default_rng(seed)
    w, d = rng.uniform(3.5, 8.0, 2)
    floor = np.array([[0, 0], [w, 0], [w, d], [0, d]], float)
    room = Polygon(floor).buffer(1e-6)
    objs: list[SceneObject] = []
    placed: list = []
    for cat, (size, bottom, (lo, hi), wall) in _CATS.items():
        for _ in range(int(rng.integers(lo, hi + 1))):
            for _try in range(30):
                sx, sy, sz = size
                if wall:
                    side = int(rng.integers(4))
                    if side in (0, 2):
                        x, y, yaw = (
                            rng.uniform(sx / 2 + 0.1, w - sx / 2 - 0.1),
                            (sy / 2 if side == 0 else d - sy / 2),
                            0.0,
                        )
                    else:
                        x, y, yaw = (
                            (sy / 2 if side == 3 else w - sy / 2),
                            rng.uniform(sx / 2 + 0.1, d - sx / 2 - 0.1),
                            np.pi / 2,
                        )
                else:
                    x, y, yaw = rng.uniform(0.3, w - 0.3), rng.uniform(0.3, d - 0.3), float(rng.uniform(-np.pi, np.pi))
                cname, rgb = _COLOURS[int(rng.integers(len(_COLOURS)))]
                obj = SceneObject(
                    cat, len(objs) + 1, np.array([x, y, bottom + sz / 2]), np.array(size), yaw, rgb, cname
                )
                fp = Polygon(obj.corners_xy())
                if not room.contains(fp) or any(fp.buffer(0.05).intersects(p) for p in placed):
                    continue
                placed.append(fp)
                objs.append(obj)
                break
    return SceneLayout(f"scene{seed}", floor, 2.8, objs)


def fake_video(layout: SceneLayout, seed: int, frames: int = 32) -> tuple[dict[int, int], np.ndarray]:
    """A camera walk through free space and the first frame in which each object is 'seen' (< 2.5 m away)."""
    free = free_space(layout)
    way = sample_free_points(free, np.random.default_rng(seed), 6)
    t = np.linspace(0, 5, frames)
    cams = np.stack(
        [np.interp(t, np.arange(6), way[:, 0]), np.interp(t, np.arange(6), way[:, 1]), np.full(frames, 1.5)], 1
    )
    first: dict[int, int] = {}
    for obj in layout.objects:
        dist = np.array([Polygon_of(obj).distance(Point(c[:2])) for c in cams])
        hit = np.flatnonzero(dist < 2.5)
        if len(hit):
            first[obj.instance_id] = int(hit[0])
    return first, cams


# ---------------------------------------------------------------------------------------------- independent geometry
def Polygon_of(obj: SceneObject):  # noqa: N802 - reads like a constructor
    from shapely.geometry import Polygon

    return Polygon(obj.corners_xy())


def names_of(layout: SceneLayout) -> dict[str, SceneObject]:
    """name -> object, recomputed: category if unique, else colour + category if that is unique."""
    out: dict[str, SceneObject] = {}
    for obj in layout.objects:
        same = [o for o in layout.objects if o.category == obj.category]
        if len(same) == 1:
            out[obj.category] = obj
        elif obj.color_name and sum(o.color_name == obj.color_name for o in same) == 1:
            out[f"{obj.color_name} {obj.category}"] = obj
    return out


def rel_deg(pos: np.ndarray, yaw: float, target: np.ndarray) -> float:
    """Relative bearing in degrees in (-180, 180], + = counter-clockwise = left."""
    ang = math.degrees(math.atan2(target[1] - pos[1], target[0] - pos[0]) - yaw)
    return (ang + 180.0) % 360.0 - 180.0


def sector(deg: float) -> str:
    if abs(deg) <= 45:
        return "front"
    if abs(deg) >= 135:
        return "behind"
    return "left" if deg > 0 else "right"


def floor_dist(obj: SceneObject, pos: np.ndarray) -> float:
    return Polygon_of(obj).distance(Point(pos[:2]))


def box_dist_projection(a: SceneObject, b: SceneObject, iters: int = 3000) -> float:
    """Closest distance of two oriented boxes by alternating projections (converges for convex sets)."""

    def project(obj: SceneObject, p: np.ndarray) -> np.ndarray:
        c, s = math.cos(obj.yaw), math.sin(obj.yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
        local = rot.T @ (p - obj.center)
        return rot @ np.clip(local, -obj.size / 2, obj.size / 2) + obj.center

    y = np.asarray(b.center, float)
    for _ in range(iters):
        x = project(a, y)
        y_new = project(b, x)
        if np.allclose(y_new, y, atol=1e-10):
            break
        y = y_new
    return float(np.linalg.norm(project(a, y) - y))


# ---------------------------------------------------------------------------------------------- situations
_SIDE = {"in front of me": "front", "on my left": "left", "on my right": "right", "behind me": "behind"}
_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_TEXT_RE = re.compile(
    r"^I am standing (?:next to the (?P<near>[a-z ]+?)|between the (?P<a>[a-z ]+?) and the (?P<b>[a-z ]+?)), "
    r"facing the (?P<face>[a-z ]+?)(?:, with (?P<sides>.+))?\.$"
)
_SIDE_RE = re.compile(
    r"the ([a-z ]+?) (on my immediate left|on my immediate right|right behind me|on my left|on my right|behind me)"
)
_SIDE_WORDS = {
    "on my left": ("left", False),
    "on my right": ("right", False),
    "behind me": ("behind", False),
    "on my immediate left": ("left", True),
    "on my immediate right": ("right", True),
    "right behind me": ("behind", True),
}


def parse_situation(text: str) -> dict:
    m = _TEXT_RE.match(text)
    assert m, f"unparsable situation text: {text!r}"
    sides = [(n, *_SIDE_WORDS[w]) for n, w in _SIDE_RE.findall(m["sides"])] if m["sides"] else []
    return {"near": m["near"], "between": (m["a"], m["b"]) if m["a"] else None, "face": m["face"], "sides": sides}


def text_holds(rel: dict, names: dict[str, SceneObject], pos: np.ndarray, yaw: float) -> bool:
    """Whether the parsed text is true for pose (pos, yaw) with the documented verification thresholds."""
    if rel["near"] and floor_dist(names[rel["near"]], pos) > 1.0:
        return False
    if rel["between"]:
        a, b = (names[n] for n in rel["between"])
        gap = abs((rel_deg(pos, 0.0, a.center) - rel_deg(pos, 0.0, b.center) + 180) % 360 - 180)
        if gap < 140 or floor_dist(a, pos) > 1.5 or floor_dist(b, pos) > 1.5:
            return False
    face = names[rel["face"]]
    if abs(rel_deg(pos, yaw, face.center)) > 20 or floor_dist(face, pos) < 0.5:
        return False
    for n, side, close in rel["sides"]:
        if sector(rel_deg(pos, yaw, names[n].center)) != side or (close and floor_dist(names[n], pos) > 1.0):
            return False
    return True


@pytest.mark.parametrize("seed", [0, 4, 5, 7])
def test_situations_follow_from_geometry(seed: int) -> None:
    layout = random_layout(seed)
    free = free_space(layout)
    names = names_of(layout)
    records = generate_situations(layout, np.random.default_rng(seed), 4, 5)
    assert len(records) >= 1, "a furnished room should give situations"
    probe_rng = np.random.default_rng(99)
    for rec in records:
        assert rec.position.shape == (3,) and rec.position[2] == 0.0
        assert is_free(free, rec.position[:2])
        assert -math.pi <= rec.yaw < math.pi
        rel = parse_situation(rec.text)
        named = [rel["near"], *(rel["between"] or ()), rel["face"], *(n for n, _, _ in rel["sides"])]
        named = [n for n in named if n]
        assert all(n in names for n in named), f"{rec.text!r} names an object that is not (uniquely) in the scene"
        assert sorted(names[n].instance_id for n in named) == sorted(rec.referenced_instances)
        assert text_holds(rel, names, rec.position, rec.yaw)
        # localisation: every free pose for which the text holds is within 1 m and 30 degrees of the truth
        pts = sample_free_points(free, probe_rng, 3000)
        yaws = probe_rng.uniform(-math.pi, math.pi, 3000)
        for p, y in zip(pts, yaws, strict=True):
            if text_holds(rel, names, p, y):
                assert np.hypot(*(p - rec.position[:2])) <= 1.0 + 1e-9
                assert abs((math.degrees(y - rec.yaw) + 180) % 360 - 180) <= 30 + 1e-9
        assert 1 <= len(rec.questions) <= 5
        for q in rec.questions:
            check_situated_answer(layout, rec.position, rec.yaw, q)


def check_situated_answer(layout: SceneLayout, pos: np.ndarray, yaw: float, q: SituatedQuestion) -> None:
    """Recompute the answer of a situated question from the layout."""
    names = names_of(layout)
    text = q.question
    if m := re.fullmatch(r"What is the nearest object (in front of me|on my left|on my right|behind me)\?", text):
        sec = _SIDE[m[1]]
        inside = sorted(
            (floor_dist(o, pos), o.category) for o in layout.objects if sector(rel_deg(pos, yaw, o.center)) == sec
        )
        assert inside and inside[0][1] == q.answer, text
        assert all(d >= inside[0][0] + 0.5 for d, c in inside[1:] if c != q.answer)
        assert q.answer_type == "other"
    elif m := re.fullmatch(r"How many ([a-z ]+) are (in front of me|on my left|on my right|behind me)\?", text):
        plural = {_PLURAL.get(c, c + "s"): c for c in _CATS}
        cat = plural[m[1]]
        n = sum(sector(rel_deg(pos, yaw, o.center)) == _SIDE[m[2]] for o in layout.objects if o.category == cat)
        assert q.answer == _WORDS[n] and q.answer_type == "number", text
    elif m := re.fullmatch(r"Which direction should I go to reach the ([a-z ]+)\?", text):
        word = {"front": "forward", "left": "left", "right": "right", "behind": "backward"}
        assert q.answer == word[sector(rel_deg(pos, yaw, names[m[1]].center))], text
    elif m := re.fullmatch(r"Is the ([a-z ]+?) (in front of me|on my left|on my right|behind me)\?", text):
        truth = sector(rel_deg(pos, yaw, names[m[1]].center)) == _SIDE[m[2]]
        assert q.answer == ("yes" if truth else "no") and q.answer_type == "yes/no", text
    elif m := re.fullmatch(r"How many meters away from me is the ([a-z ]+)\?", text):
        assert q.answer == _WORDS[round(floor_dist(names[m[1]], pos))] and q.answer_type == "number", text
    else:
        raise AssertionError(f"unknown situated question {text!r}")


def test_situated_questions_hand_written_scene() -> None:
    """Agent at (2, 2) facing +x: chair ahead, sofa on the left (+y), fridge on the right, bed behind."""
    objects = [
        _box("chair", 1, 4.5, 2.0, 0.5, 0.5, 0.9),
        _box("sofa", 2, 2.0, 4.3, 2.0, 0.9, 0.8),
        _box("fridge", 3, 2.0, 0.45, 0.7, 0.7, 1.8),
        _box("bed", 4, 0.0 + 0.9, 2.0, 1.6, 2.0, 0.6, yaw=0.0),
    ]
    layout = _rect_room(6.0, 5.0, objects)
    qs = generate_situated_questions(layout, np.array([2.0, 2.0, 0.0]), 0.0, np.random.default_rng(0), 40)
    got = {q.question: q.answer for q in qs}
    expected = {
        "Is the sofa on my left?": "yes",
        "Is the fridge on my right?": "yes",
        "Is the bed behind me?": "yes",
        "Is the chair on my left?": "no",
        "Which direction should I go to reach the fridge?": "right",
        "Which direction should I go to reach the chair?": "forward",
        "How many meters away from me is the chair?": "two",
        "What is the nearest object on my left?": "sofa",
    }
    asked = {k: v for k, v in expected.items() if k in got}
    assert len(asked) >= 3
    assert all(got[k] == v for k, v in asked.items()), {k: (got[k], v) for k, v in asked.items()}
    for q in qs:
        check_situated_answer(layout, np.array([2.0, 2.0, 0.0]), 0.0, q)


# ---------------------------------------------------------------------------------------------- VSI-Bench
def _option(rec: dict) -> str:
    letter = rec["ground_truth"]
    assert re.fullmatch(r"[A-D]", letter)
    texts = {o.split(". ", 1)[0]: o.split(". ", 1)[1] for o in rec["options"]}
    assert sorted(texts) == list("ABCD"[: len(rec["options"])])
    assert len(set(texts.values())) == len(texts), "duplicate options"
    return texts[letter]


def check_vsi_record(layout: SceneLayout, first: dict[int, int], cams: np.ndarray, rec: dict) -> None:
    """Recompute a VSI-Bench record's answer from the layout, independently of the generator."""
    assert set(rec) == {"question_type", "question", "options", "ground_truth"}
    by_cat: dict[str, list[SceneObject]] = {}
    for o in layout.objects:
        by_cat.setdefault(o.category, []).append(o)
    seen = {o.category for o in layout.objects if o.instance_id in first}
    qtype, q = rec["question_type"], rec["question"]

    def single(cat: str) -> SceneObject:
        assert cat in seen and len(by_cat[cat]) == 1, f"{cat!r} must be a single, seen instance"
        return by_cat[cat][0]

    def cat_dist(a: str, b: str) -> float:
        return min(box_dist_projection(x, y) for x in by_cat[a] for y in by_cat[b])

    if qtype == "object_counting":
        cat = re.fullmatch(r"How many ([a-z ]+)\(s\) are in this room\?", q)[1]
        assert rec["options"] is None and int(rec["ground_truth"]) == len(by_cat[cat]) >= 2
        assert all(o.instance_id in first for o in by_cat[cat])
    elif qtype == "object_abs_distance":
        a, b = re.search(r"between the ([a-z ]+) and the ([a-z ]+) \(in meters\)", q).groups()
        single(a), single(b)
        assert abs(float(rec["ground_truth"]) - cat_dist(a, b)) <= 0.05 + 1e-3
    elif qtype == "object_size_estimation":
        cat = re.search(r"of the ([a-z ]+), measured in centimeters", q)[1]
        assert int(rec["ground_truth"]) == round(100 * max(single(cat).size))
    elif qtype == "room_size_estimation":
        x, y = layout.floor_polygon.T
        area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
        assert abs(float(rec["ground_truth"]) - area) <= 0.05 + 1e-9
    elif qtype == "object_rel_distance":
        choices, target = re.search(r"objects \(([a-z ,]+)\) is the closest to the ([a-z ]+)\?", q).groups()
        single(target)
        dists = {c: cat_dist(target, c) for c in choices.split(", ")}
        assert all(c in seen for c in dists) and len(dists) == 4
        best = _option(rec)
        assert all(d >= dists[best] + 0.2 - 1e-3 for c, d in dists.items() if c != best), (q, dists)
    elif qtype.startswith("object_rel_direction"):
        p, o, qq = re.search(r"standing by the ([a-z ]+) and facing the ([a-z ]+), is the ([a-z ]+?) to ", q).groups()
        po, oo, qo = single(p), single(o), single(qq)
        ang = (rel_deg(po.center, 0.0, qo.center) - rel_deg(po.center, 0.0, oo.center)) % 360.0  # CCW from facing
        if qtype.endswith("hard"):
            truth = ["front-left", "back-left", "back-right", "front-right"][int(ang // 90)]
        elif qtype.endswith("medium"):
            truth = "left" if ang < 135 else ("back" if ang < 225 else "right")
        else:
            assert ang < 80 or ang > 280, "easy questions only ask about objects ahead"
            truth = "left" if ang < 180 else "right"
        assert _option(rec) == truth, (q, ang)
    elif qtype == "route_planning":
        m = re.match(
            r"You are a robot beginning at the ([a-z ]+) facing the ([a-z ]+)\. "
            r"You want to navigate to the ([a-z ]+)\.",
            q,
        )
        start, facing, dest = m.groups()
        steps = re.findall(r"\d+\. (\[please fill in\]|Go forward until the [a-z ]+\.)", q)
        # recompute the turns: at the start and at each waypoint, from the current heading to the next leg
        here, ahead = single(start).center, single(facing).center
        heading = math.degrees(math.atan2(ahead[1] - here[1], ahead[0] - here[0]))
        turns: list[str] = []
        legs = re.findall(r"Go forward until the ([a-z ]+)\.", q)
        assert legs[-1] == dest
        first_is_turn = steps[0] == "[please fill in]"
        assert first_is_turn or facing == legs[0], "without a first turn the robot faces the first waypoint"
        assert steps.count("[please fill in]") == 2
        for k, leg in enumerate(legs):
            nxt = single(leg).center
            new_heading = math.degrees(math.atan2(nxt[1] - here[1], nxt[0] - here[0]))
            delta = (new_heading - heading + 180) % 360 - 180
            if k > 0 or first_is_turn:
                turns.append("Turn Back" if abs(delta) >= 135 else ("Turn Left" if delta > 0 else "Turn Right"))
            heading, here = new_heading, nxt
        assert _option(rec) == ", ".join(turns), q
    elif qtype == "obj_appearance_order":
        order = _option(rec).split(", ")
        frames = [min(first[o.instance_id] for o in by_cat[c] if o.instance_id in first) for c in order]
        assert frames == sorted(frames) and len(set(frames)) == 4
    else:
        raise AssertionError(f"unknown question type {qtype}")


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_vsi_questions_follow_from_geometry(seed: int) -> None:
    layout = random_layout(seed)
    first, cams = fake_video(layout, seed + 10)
    recs = generate_vsi_questions(layout, np.random.default_rng(seed), first, cams, 2)
    types = {r["question_type"] for r in recs}
    assert "room_size_estimation" in types and len(types) >= 6, types
    for rec in recs:
        assert rec["question_type"] in VSI_QUESTION_TYPES
        check_vsi_record(layout, first, cams, rec)


def test_vsi_only_asks_about_seen_objects() -> None:
    layout = random_layout(7)
    first, cams = fake_video(layout, 3)
    some = dict(list(sorted(first.items()))[: max(1, len(first) // 2)])
    recs = generate_vsi_questions(layout, np.random.default_rng(0), some, cams, 3)
    unseen = {o.category for o in layout.objects} - {o.category for o in layout.objects if o.instance_id in some}
    for rec in recs:
        for cat in unseen:
            assert not re.search(rf"\b{cat}\b", rec["question"] + " ".join(rec["options"] or [])), (cat, rec)
        check_vsi_record(layout, some, cams, rec)


# ---------------------------------------------------------------------------------------------- balance, errors
def _chi2_uniform(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


# chi-square critical values at p = 0.001 for 1, 2, 3 degrees of freedom
_CHI2_CRIT = {1: 10.83, 2: 13.82, 3: 16.27}


def test_answer_distributions_are_balanced() -> None:
    letters: dict[int, Counter] = {2: Counter(), 3: Counter(), 4: Counter()}
    situated: dict[str, Counter] = {"is_on_side": Counter(), "direction_to": Counter(), "object_on_side": Counter()}
    medium = Counter()
    for seed in range(40):
        layout = random_layout(1000 + seed)
        first, cams = fake_video(layout, seed)
        for rec in generate_vsi_questions(layout, np.random.default_rng(seed), first, cams, 2):
            if rec["options"]:
                letters[len(rec["options"])][rec["ground_truth"]] += 1
            if rec["question_type"] == "object_rel_direction_medium":
                medium[_option(rec)] += 1
        for sit in generate_situations(layout, np.random.default_rng(seed), 3, 5):
            for q in sit.questions:
                if q.question_type == "object_on_side":
                    situated[q.question_type][q.question.split("object ")[1]] += 1
                elif q.question_type in situated:
                    situated[q.question_type][q.answer] += 1
    checks = {f"letters{n}": c for n, c in letters.items()} | situated | {"rel_direction_medium": medium}
    sizes = {"letters2": 2, "letters3": 3, "letters4": 4, "is_on_side": 2, "direction_to": 4, "object_on_side": 4}
    sizes["rel_direction_medium"] = 3
    for name, counter in checks.items():
        counts = [counter[k] for k in sorted(counter)]
        assert len(counts) == sizes[name], (name, counter)
        assert sum(counts) >= 10 * len(counts), (name, counter)
        assert _chi2_uniform(counts) < _CHI2_CRIT[len(counts) - 1], (name, counter)


def test_deterministic_from_seed() -> None:
    layout = random_layout(11)
    first, cams = fake_video(layout, 1)
    a = generate_situations(layout, np.random.default_rng(5), 3, 4)
    b = generate_situations(layout, np.random.default_rng(5), 3, 4)
    assert [(r.text, r.yaw, r.position.tolist(), r.questions) for r in a] == [
        (r.text, r.yaw, r.position.tolist(), r.questions) for r in b
    ]
    assert generate_vsi_questions(layout, np.random.default_rng(5), first, cams, 3) == generate_vsi_questions(
        layout, np.random.default_rng(5), first, cams, 3
    )


def test_degenerate_layouts() -> None:
    empty = _rect_room(5.0, 4.0, [])
    rng = np.random.default_rng(0)
    assert generate_situations(empty, rng, 5, 3) == []
    recs = generate_vsi_questions(empty, rng, {}, np.zeros((4, 3)), 3)
    assert [r["question_type"] for r in recs] == ["room_size_estimation"] and recs[0]["ground_truth"] == "20.0"
    tiny = _rect_room(0.5, 0.5, [_box("chair", 1, 0.25, 0.25, 0.3, 0.3, 0.5), _box("lamp", 2, 0.1, 0.1, 0.1, 0.1, 1)])
    assert generate_situations(tiny, rng, 5, 3) == []
    assert generate_situations(random_layout(3), rng, 0, 3) == []
    dup = _rect_room(objects=[_box("chair", 1, 1, 1, 0.5, 0.5, 0.9), _box("sofa", 1, 3, 3, 2, 1, 0.8)])
    with pytest.raises(SampleError, match="instance_id"):  # refused where layouts enter (meta_info reader)
        layout_from_entry(dup.scene_id, layout_to_entry(dup))
    layout = random_layout(4)
    with pytest.raises(SampleError, match="camera_positions"):
        generate_vsi_questions(layout, rng, {}, np.full((3, 3), np.nan), 2)
    with pytest.raises(SampleError, match="unknown instance 999"):
        generate_vsi_questions(layout, rng, {999: 0}, np.zeros((3, 3)), 2)
    with pytest.raises(ValueError):  # negative counts are refused by the generator's settings
        SynthSettings(situations_per_scene=-1)


def test_situations_only_name_visible_objects() -> None:
    layout = random_layout(7)
    visible = {o.instance_id for o in layout.objects if o.instance_id % 3 != 0}
    names = names_of(layout)
    hidden_names = {n for n, o in names.items() if o.instance_id not in visible}
    hidden_cats = {o.category for o in layout.objects if o.instance_id not in visible}
    records = generate_situations(layout, np.random.default_rng(1), 4, 6, visible_instances=visible)
    assert records
    for rec in records:
        assert set(rec.referenced_instances) <= visible
        rel = parse_situation(rec.text)
        assert not {rel["near"], *(rel["between"] or ()), rel["face"]} & hidden_names
        for q in rec.questions:
            assert not any(re.search(rf"the {re.escape(n)}\?", q.question) for n in hidden_names), q
            if q.question_type == "count_in_sector":
                assert not any(_PLURAL.get(c, c + "s") in q.question for c in hidden_cats), q
            if q.question_type == "object_on_side":
                nearest = [o for o in layout.objects if o.category == q.answer]
                assert any(o.instance_id in visible for o in nearest)
            check_situated_answer(layout, rec.position, rec.yaw, q)
    with pytest.raises(SampleError, match="visible_instances"):
        generate_situations(layout, np.random.default_rng(1), 2, 2, visible_instances={12345})


def test_vsi_relative_direction_hand_written() -> None:
    """Standing by the sofa (1, 1) facing the fridge (4, 1), i.e. +x: the plant at (2, 3) is ahead on the left."""
    layout = _rect_room(
        6.0,
        5.0,
        [
            _box("sofa", 1, 1.0, 1.0, 0.6, 0.6, 0.8),
            _box("fridge", 2, 4.0, 1.0, 0.6, 0.6, 1.8),
            _box("plant", 3, 2.0, 3.0, 0.4, 0.4, 0.9),
        ],
    )
    first = {1: 0, 2: 1, 3: 2}
    recs = generate_vsi_questions(layout, np.random.default_rng(0), first, np.zeros((3, 3)), 50)
    expected = {"hard": "front-left", "medium": "left", "easy": "left"}
    found = 0
    for rec in recs:
        if "standing by the sofa and facing the fridge, is the plant" in rec["question"]:
            assert _option(rec) == expected[rec["question_type"].rsplit("_", 1)[1]]
            found += 1
    assert found == 3


def test_box_distance_matches_projection() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = SceneObject("a", 1, rng.uniform(0, 3, 3), rng.uniform(0.2, 1.5, 3), float(rng.uniform(-3, 3)))
        b = SceneObject("b", 2, rng.uniform(0, 3, 3), rng.uniform(0.2, 1.5, 3), float(rng.uniform(-3, 3)))
        assert box_distance(a, b) == pytest.approx(box_dist_projection(a, b), abs=1e-4)
    table = _box("table", 1, 1, 1, 1.2, 0.8, 0.75)
    lamp_on_table = _box("lamp", 2, 1.2, 1, 0.3, 0.3, 0.5, bottom=0.75)
    assert box_distance(table, lamp_on_table) == 0.0
