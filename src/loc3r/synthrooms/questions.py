"""Situations, situated (SQA3D-style) questions and VSI-Bench-style questions from exact scene geometry.

Everything here is computed from a :class:`~loc3r.data.schema.SceneLayout` in the world frame (z up,
floor z = 0, metres; DESIGN.md §3). Answers follow from the geometry by the definitions below; the
thresholds are module constants so that tests, loaders and users can read them.

Egocentric conventions (situations and situated questions)
----------------------------------------------------------
The agent stands at ``p`` (floor, z = 0) and faces the world yaw ``θ`` (``atan2(f_y, f_x)``). The
*relative bearing* of a point ``q`` is ``β = wrap(atan2(q_y - p_y, q_x - p_x) - θ)`` in [-π, π):
β > 0 is counter-clockwise seen from above, i.e. to the agent's **left** (left = +90°). Objects are
located by the floor projection of their box centre. Sectors:

* front:  ``|β| <= FRONT_MAX_DEG`` (45°)
* left:   ``FRONT_MAX_DEG < β < BACK_MIN_DEG`` (45°..135°)
* right:  ``-BACK_MIN_DEG < β < -FRONT_MAX_DEG``
* behind: ``|β| >= BACK_MIN_DEG`` (135°)

An object within ``SECTOR_MARGIN_DEG`` (10°) of a sector boundary is ambiguous: a question whose
answer depends on such an object is not asked. Distances from the agent are floor-plane distances to
the object's footprint rectangle (0 inside it).

Object names
------------
An object is *referable* if its name is unique in the scene: its category when the category occurs once
("the sofa"), else "<colour_name> <category>" when that pair is unique ("the green chair"); otherwise it
is never named. VSI-Bench questions, like the benchmark, only name categories that occur exactly once.

Situations
----------
A situation is a pose ``(p, θ)`` in the free space (:func:`loc3r.synthrooms.freespace.free_space`,
default clearance) with a text built from *relations* that each hold for the pose with a safety
margin at generation time and are checked with the looser *verification* thresholds:

* ``next to A``: floor distance to A's footprint <= ``NEAR_MAX_DIST`` (generation ``NEAR_GEN_DIST``).
* ``between A and B``: the angle A-p-B (between the bearings of the two centres) >=
  ``BETWEEN_MIN_ANGLE_DEG`` and both footprints within ``BETWEEN_MAX_DIST``.
* ``facing C``: ``|β_C| <= FACING_TOL_DEG`` (generation ``FACING_GEN_TOL_DEG``), C at least
  ``FACING_MIN_DIST`` away.
* ``with D on my left / on my right / behind me``: D's centre in that sector (generation: at least
  ``SECTOR_MARGIN_DEG`` inside it).
* ``with D on my immediate left / on my immediate right / right behind me``: as above and D's footprint
  within ``NEAR_MAX_DIST`` (generation ``NEAR_GEN_DIST``).

Localisation criterion (why a text "pins the pose down"): a situation is kept only if **every** pose
(any free position, any yaw) for which all relations of its text hold is within
``SITUATION_MAX_POS_SPREAD`` (1 m) and ``SITUATION_MAX_YAW_SPREAD_DEG`` (30°) of the true pose — anyone
reading the text lands within the SQA3D Acc@1.0m / Acc@30° tolerances (Acc@0.5m / 15° are not
guaranteed). It is checked conservatively on a grid (``LOCALISE_GRID_STEP`` m, ``LOCALISE_YAW_STEP_DEG``)
whose relations are loosened by how much they can change inside a grid cell (see ``_SceneGrid``), so the
bound holds for the continuous set, not only for grid poses. Texts are tried from the shortest (anchor +
facing) to the longest (+ two side objects); the first one that localises is used. Positions inside
furniture ("sitting on the bed") are not generated because every situation position must lie in the
free space.

VSI-Bench questions
-------------------
Phrased with the VSI-Bench (thinking-in-space) templates; units as VSI-Bench: distances in metres with one
decimal, object size = longest box side in centimetres (integer), room size = floor area in m² with one
decimal. Distances between objects are exact closest-point distances between the two 3D boxes (boxes
rotate about z only, so ``d = hypot(d_floor(footprints), d_vertical(z-intervals))``). Multiple-choice
records have ``options = ["A. ...", ...]`` and ``ground_truth`` = the correct letter; numerical records
have ``options = None`` and the number as a string. Relative-direction rules follow VSI-Bench's
generator: triples of single-instance categories whose pairwise distances are in
[``REL_DIR_MIN_PAIR_DIST``, ``REL_DIR_MAX_PAIR_DIST``]; angles measured counter-clockwise at the
positioning object's centre from the direction to the orienting object's centre; skipped when the
querying centre is within ``REL_DIR_MARGIN_DEG`` of a class boundary (both sides — VSI-Bench's own
check only looks at one side) or more than one of its 4 footprint corners falls in another class.
hard = quadrants (front-left 0-90°, back-left 90-180°, back-right, front-right), medium = left [0, 135°) /
back [135°, 225°) / right, easy = left or right of the orienting object, asked only for querying objects
in the front half-plane (where "left of the X" is unambiguous in words). Route planning follows the
video: landmarks (single-instance categories the camera passes within ``ROUTE_LANDMARK_DIST``) in the
order of the camera's closest approach; straight legs between landmark centres must not cross another
blocking footprint; a turn ``Δ`` (change of heading) is "Turn Back" if ``|Δ| >= ROUTE_BACK_MIN_DEG``,
else left (Δ > 0) / right, and routes with a turn under ``ROUTE_MIN_TURN_DEG`` or within
``ROUTE_MARGIN_DEG`` of the back boundary are not asked. Appearance order uses ``first_seen_frame``
(earliest instance of each category); the four categories must first appear in four different frames.

Situated questions
------------------
``object_on_side`` "What is the nearest object on my left?" (category of the nearest footprint in the
sector; every other-category object in or within the margin of the sector is ``NEAREST_MIN_GAP`` farther),
``count_in_sector`` "How many chairs are in front of me?" (spelled-out count, as SQA3D), ``direction_to``
"Which direction should I go to reach the fridge?" (forward / left / right / backward = the sector of its
centre), ``is_on_side`` "Is the lamp behind me?" (yes / no), ``distance_to`` "How many meters away from me
is the tv?" (floor distance to the footprint rounded to whole metres, skipped within
``DISTANCE_ROUND_MARGIN`` of a .5 boundary).

Balance
-------
Every generator collects all valid candidates first, then picks questions class by class (answer classes:
sectors, yes/no, counts, directions, turns), the least used class first; ties are broken at random with
classes that have few candidates in this scene favoured (weight ``1 / sqrt(n)``: narrow classes such as
"back" are rare in every scene, so asking them whenever possible flattens the dataset-wide distribution).
The correct option goes to the least used letter. Route distractors are drawn with the turn frequencies
of the scene's valid routes, so that no option statistic (e.g. "avoid Turn Back") reveals the answer.
Residual imbalance where the geometry makes a class rare is measured and reported, not hidden.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from shapely.geometry import LineString, Polygon

from loc3r.core.geometry import wrap_angle
from loc3r.data.schema import SampleError, SceneLayout, SceneObject
from loc3r.synthrooms.freespace import (
    DEFAULT_CLEARANCE,
    _FreePointSampler,
    blocking_objects,
    free_space,
    is_free,
)

# ---------------------------------------------------------------------------------------------- constants
#: Front sector half-width: |β| <= 45° is "in front of me".
FRONT_MAX_DEG = 45.0
#: Back sector: |β| >= 135° is "behind me". Left / right are the sectors in between.
BACK_MIN_DEG = 135.0
#: Objects this close (degrees) to a sector boundary make a question ambiguous (not asked).
SECTOR_MARGIN_DEG = 10.0
#: Egocentric sectors in the order used for balancing.
SECTORS = ("front", "left", "right", "behind")

# Situation relations: verification thresholds (what the words mean) and stricter generation margins.
#: "next to A": floor distance from the agent to A's footprint (m).
NEAR_MAX_DIST = 1.0
NEAR_GEN_DIST = 0.8
#: "between A and B": angle A-agent-B (degrees) and maximum distance to each footprint (m).
BETWEEN_MIN_ANGLE_DEG = 140.0
BETWEEN_GEN_ANGLE_DEG = 150.0
BETWEEN_MAX_DIST = 1.5
BETWEEN_GEN_DIST = 1.3
#: "facing C": |β_C| tolerance (degrees); C's footprint at least FACING_MIN_DIST away.
FACING_TOL_DEG = 20.0
FACING_GEN_TOL_DEG = 10.0
FACING_MIN_DIST = 0.5
#: Localisation criterion of a situation text (see module docstring).
LOCALISE_GRID_STEP = 0.15
LOCALISE_YAW_STEP_DEG = 5.0
SITUATION_MAX_POS_SPREAD = 1.0
SITUATION_MAX_YAW_SPREAD_DEG = 30.0
#: Random poses tried per requested situation before giving up.
SITUATION_MAX_ATTEMPTS = 400

# Situated questions.
#: "What is the nearest object on my left?": the runner-up must be at least this much farther (m).
NEAREST_MIN_GAP = 0.5
#: "How far away is X?": answers are whole metres; distances within this of a .5 rounding boundary or
#: below DISTANCE_MIN are not asked.
DISTANCE_ROUND_MARGIN = 0.15
DISTANCE_MIN = 0.6

# VSI-Bench questions.
# fmt: off
VSI_QUESTION_TYPES = (
    "object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation", "object_rel_distance",
    "object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard", "route_planning",
    "obj_appearance_order",
)
# fmt: on
#: Pairs closer than this (m) are not asked about (VSI-Bench MRA divides by the ground truth).
ABS_DISTANCE_MIN = 0.3
#: "which is closest to X": the closest choice must beat the runner-up by this much (m).
REL_DISTANCE_MIN_GAP = 0.2
#: Relative direction (VSI-Bench generator's values).
REL_DIR_MIN_PAIR_DIST = 0.3
REL_DIR_MAX_PAIR_DIST = 5.0
REL_DIR_MARGIN_DEG = 10.0
#: Route planning: a landmark is on the video's route if the camera passes within this floor distance (m).
ROUTE_LANDMARK_DIST = 1.5
#: Route turns: |Δ| >= ROUTE_BACK_MIN_DEG is "Turn Back", else the sign gives left (+) / right (-);
#: a turn smaller than ROUTE_MIN_TURN_DEG or within ROUTE_MARGIN_DEG of ±135° is ambiguous.
ROUTE_BACK_MIN_DEG = 135.0
ROUTE_MIN_TURN_DEG = 30.0
ROUTE_MARGIN_DEG = 15.0
ROUTE_TURNS = ("Turn Left", "Turn Right", "Turn Back")

_LETTERS = "ABCDEFGH"
# fmt: off
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)
# fmt: on

# VSI-Bench question templates (thinking-in-space), filled with category names.
_T_COUNT = "How many {category}(s) are in this room?"
_T_SIZE = (
    "What is the length of the longest dimension (length, width, or height) of the {category}, measured in centimeters?"
)
_T_ROOM = (
    "What is the size of this room (in square meters)? "
    "If multiple rooms are shown, estimate the size of the combined space."
)
_T_ABS = (
    "Measuring from the closest point of each object, what is the direct distance between the {a} and the {b} "
    "(in meters)?"
)
_T_REL_DIST = (
    "Measuring from the closest point of each object, which of these objects ({choices}) is the closest to the "
    "{category}? If there are multiple instances of an object category, measure to the closest."
)
_T_DIR_HARD = (
    "If I am standing by the {p} and facing the {o}, is the {q} to my front-left, front-right, back-left, or "
    "back-right? The directions refer to the quadrants of a Cartesian plane (if I am standing at the origin and "
    "facing along the positive y-axis)."
)
_T_DIR_MEDIUM = (
    "If I am standing by the {p} and facing the {o}, is the {q} to my left, right, or back? An object is to my "
    "back if I would have to turn at least 135 degrees in order to face it."
)
_T_DIR_EASY = "If I am standing by the {p} and facing the {o}, is the {q} to the left or the right of the {o}?"
_T_ORDER = "What will be the first-time appearance order of the following categories in the video: {choices}?"
_T_ROUTE = (
    "You are a robot beginning at the {start} facing the {facing}. You want to navigate to the {dest}. You will "
    "perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' or "
    "'turn right.'): {actions} You have reached the final destination."
)


# ---------------------------------------------------------------------------------------------- records
@dataclass
class SituatedQuestion:
    """One SQA3D-style question about a situation.

    ``question_type`` names the generator (``object_on_side``, ``count_in_sector``, ``direction_to``,
    ``distance_to``, ``is_on_side``); ``answer_type`` is VQA's ``"other"``, ``"yes/no"`` or ``"number"``.
    Answers are lower-case words like SQA3D's (numbers spelled out: "two").
    """

    question: str
    answer: str
    question_type: str
    answer_type: str


@dataclass
class SituationRecord:
    """An agent pose with a text that localises it and questions that need it.

    ``position`` is (x, y, 0) in the world frame, in the free space; ``yaw`` is the world yaw of the
    facing direction (radians, [-π, π)); ``referenced_instances`` are the instance ids the text names.
    """

    position: np.ndarray
    yaw: float
    text: str
    referenced_instances: list[int]
    questions: list[SituatedQuestion] = field(default_factory=list)
    #: the referenced instances by role: where the agent stands (``near`` / ``between``) and what it faces
    anchor_instances: list[int] = field(default_factory=list)
    faced_instances: list[int] = field(default_factory=list)
    #: the side objects by sector (left / right / behind: ``with the lamp on my left``), every sector present
    side_instances: dict[str, list[int]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- geometry
def relative_bearing(position_xy: np.ndarray, yaw: float | np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """Relative bearing β (radians, [-π, π), + = left) of ``target_xy`` seen from ``position_xy`` facing ``yaw``.

    Broadcasts over leading dimensions: ``β = wrap(atan2(t_y - p_y, t_x - p_x) - yaw)``.
    """
    d = np.asarray(target_xy, dtype=np.float64)[..., :2] - np.asarray(position_xy, dtype=np.float64)[..., :2]
    return np.asarray(wrap_angle(np.arctan2(d[..., 1], d[..., 0]) - np.asarray(yaw, dtype=np.float64)))


def sector_of(beta: float) -> str:
    """Egocentric sector of a relative bearing (radians): front / left / right / behind (module docstring)."""
    a = abs(np.degrees(wrap_angle(beta)))
    if a <= FRONT_MAX_DEG:
        return "front"
    if a >= BACK_MIN_DEG:
        return "behind"
    return "left" if beta > 0 else "right"


def _sector_margin_deg(beta: np.ndarray | float) -> np.ndarray:
    """Distance (degrees) of relative bearing(s) to the nearest sector boundary (±45°, ±135°)."""
    a = np.abs(np.degrees(np.asarray(wrap_angle(beta))))
    return np.minimum(np.abs(a - FRONT_MAX_DEG), np.abs(a - BACK_MIN_DEG))


def footprint_distance(obj: SceneObject, xy: np.ndarray) -> np.ndarray:
    """Floor-plane distance from point(s) ``xy [..., 2]`` to the object's footprint rectangle (0 inside)."""
    d = np.asarray(xy, dtype=np.float64)[..., :2] - np.asarray(obj.center, dtype=np.float64)[:2]
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    lx = d[..., 0] * c + d[..., 1] * s
    ly = -d[..., 0] * s + d[..., 1] * c
    ex = np.maximum(np.abs(lx) - obj.size[0] / 2.0, 0.0)
    ey = np.maximum(np.abs(ly) - obj.size[1] / 2.0, 0.0)
    return np.hypot(ex, ey)


def box_distance(a: SceneObject, b: SceneObject) -> float:
    """Exact closest-point distance between two 3D boxes that rotate about z only.

    A box is footprint × [bottom, top], so the squared distance splits into a floor part (distance between
    the footprint polygons) and a vertical part (gap between the z-intervals): ``d = hypot(d_xy, d_z)``.
    """
    d_xy = Polygon(a.corners_xy()).distance(Polygon(b.corners_xy()))
    a_lo, a_hi = a.center[2] - a.size[2] / 2, a.center[2] + a.size[2] / 2
    b_lo, b_hi = b.center[2] - b.size[2] / 2, b.center[2] + b.size[2] / 2
    d_z = max(0.0, b_lo - a_hi, a_lo - b_hi)
    return float(np.hypot(d_xy, d_z))


def _xy(obj: SceneObject) -> np.ndarray:
    return np.asarray(obj.center, dtype=np.float64)[:2]


_TWO_PI = 2.0 * np.pi


def _wrap_array(theta: np.ndarray) -> np.ndarray:
    """:func:`~loc3r.core.geometry.wrap_angle` of a float64 array (a new array), bit for bit: the same operations,
    without the generic-input handling that dominated the hot loops of situation generation."""
    wrapped = np.mod(theta + np.pi, _TWO_PI)
    wrapped -= np.pi
    wrapped[wrapped >= np.pi] -= _TWO_PI
    return wrapped


@functools.cache
def _pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j < n``, in ``itertools.combinations(range(n), 2)`` order."""
    i, j = np.triu_indices(n, 1)
    return i, j


class _ObjectArrays:
    """Footprint distances and relative bearings of many objects to one pose in one vectorised call.

    Situation generation asks about every object for ~100k poses per dataset; this precomputes each object's
    centre, yaw cos / sin and half sizes once. Every element goes through exactly the floating-point
    operations of :func:`footprint_distance` / :func:`relative_bearing` (and the per-object ``np.cos`` /
    ``np.sin`` of the yaw are scalar calls as there), so results are bit-identical to the per-object calls
    (pinned by a test): decisions at thresholds, and hence generated datasets, do not change.
    """

    def __init__(self, objects: Sequence[SceneObject]) -> None:
        self.objects = list(objects)
        self.ids = [o.instance_id for o in self.objects]
        n = len(self.objects)
        self.center = np.array([_xy(o) for o in self.objects], dtype=np.float64).reshape(n, 2)
        self.cos = np.array([np.cos(o.yaw) for o in self.objects], dtype=np.float64)
        self.sin = np.array([np.sin(o.yaw) for o in self.objects], dtype=np.float64)
        self.half_x = np.array([o.size[0] / 2.0 for o in self.objects], dtype=np.float64)
        self.half_y = np.array([o.size[1] / 2.0 for o in self.objects], dtype=np.float64)
        # columns contiguous, as the per-object calls see them
        self.cx, self.cy = self.center[:, 0].copy(), self.center[:, 1].copy()

    def distances(self, xy: np.ndarray) -> np.ndarray:
        """``[N]`` floor distances from the point ``xy`` to the footprints (= ``footprint_distance`` each)."""
        dx = xy[0] - self.cx
        dy = xy[1] - self.cy
        lx = dx * self.cos + dy * self.sin
        ly = -dx * self.sin + dy * self.cos
        ex = np.maximum(np.abs(lx) - self.half_x, 0.0)
        ey = np.maximum(np.abs(ly) - self.half_y, 0.0)
        return np.hypot(ex, ey)

    def bearings(self, xy: np.ndarray, yaw: float) -> np.ndarray:
        """``[N]`` relative bearings of the centres seen from ``(xy, yaw)`` (= ``relative_bearing`` each)."""
        return _wrap_array(np.arctan2(self.cy - xy[1], self.cx - xy[0]) - np.float64(yaw))


def _sector_arrays(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``sector_of`` / ``_sector_margin_deg``: sector index into SECTORS and margin (degrees)."""
    a = np.abs(np.degrees(_wrap_array(beta)))
    margin = np.minimum(np.abs(a - FRONT_MAX_DEG), np.abs(a - BACK_MIN_DEG))
    sector = np.where(a <= FRONT_MAX_DEG, 0, np.where(a >= BACK_MIN_DEG, 3, np.where(beta > 0, 1, 2)))
    return sector, margin


def object_names(layout: SceneLayout) -> dict[int, str]:
    """Unique names of the referable objects: ``{instance_id: name}`` (module docstring, "Object names")."""
    by_cat: dict[str, list[SceneObject]] = defaultdict(list)
    for obj in layout.objects:
        by_cat[obj.category].append(obj)
    names: dict[int, str] = {}
    for cat, objs in by_cat.items():
        if len(objs) == 1:
            names[objs[0].instance_id] = cat
            continue
        colour_counts: dict[str, int] = defaultdict(int)
        for o in objs:
            colour_counts[o.color_name] += 1
        for o in objs:
            if o.color_name and colour_counts[o.color_name] == 1:
                names[o.instance_id] = f"{o.color_name} {cat}"
    return names


def _plural(category: str) -> str:
    """English plural of a category name ("bookshelf" -> "bookshelves", "box" -> "boxes")."""
    head, _, last = category.rpartition(" ")
    if last.endswith(("s", "x", "ch", "sh", "z")):
        word = last + "es"
    elif last.endswith("f"):
        word = last[:-1] + "ves"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def _number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _visible_set(layout: SceneLayout, visible_instances: Collection[int] | None) -> set[int]:
    ids = {o.instance_id for o in layout.objects}
    if visible_instances is None:
        return ids
    visible = {int(i) for i in visible_instances}
    unknown = sorted(visible - ids)
    if unknown:
        raise SampleError(f"scene {layout.scene_id!r}: 'visible_instances' names unknown instances {unknown}")
    return visible


# ---------------------------------------------------------------------------------------------- balancing
class _Balancer:
    """Least-used-first choice of answer classes and correct-option letters (ties broken by the rng)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.counts: dict[Hashable, int] = defaultdict(int)

    def order(
        self, group: str, classes: Sequence[Hashable], sizes: dict[Hashable, int] | None = None
    ) -> list[Hashable]:
        """Classes sorted by how often (group, class) was used; ties in a random order favouring the classes with
        few candidates here (``sizes``): weights ``1 / sqrt(n)``, keys ``-log(U) * sqrt(n)`` smallest first (module
        docstring, "Balance"; weights ``1 / n`` over-correct: "back" then dominates the 4-quadrant questions)."""
        sizes = sizes or {}
        weights = np.array([max(sizes.get(c, 1), 1) for c in classes], dtype=np.float64)
        keys = -np.log(self.rng.uniform(1e-12, 1.0, len(classes))) * np.sqrt(weights)
        idx = sorted(range(len(classes)), key=lambda i: (self.counts[(group, classes[i])], keys[i]))
        return [classes[i] for i in idx]

    def use(self, group: str, cls: Hashable) -> None:
        self.counts[(group, cls)] += 1

    def pick(self, group: str, candidates: Sequence[Any], key: Callable[[Any], Hashable], count: int) -> list[Any]:
        """Up to ``count`` distinct candidates, each time from the least used class that still has one."""
        pools: dict[Hashable, list[Any]] = defaultdict(list)
        for cand in candidates:
            pools[key(cand)].append(cand)
        sizes = {cls: len(pool) for cls, pool in pools.items()}
        for pool in pools.values():
            perm = self.rng.permutation(len(pool))
            pool[:] = [pool[i] for i in perm]
        out: list[Any] = []
        while len(out) < count and any(pools.values()):
            cls = self.order(group, [c for c, p in pools.items() if p], sizes)[0]
            out.append(pools[cls].pop())
            self.use(group, cls)
        return out

    def place(self, correct: str, distractors: Sequence[str]) -> tuple[list[str], str]:
        """Options ``["A. ..", ..]`` with the correct one at the least used letter; returns (options, letter)."""
        n = len(distractors) + 1
        letter = self.order(f"letters{n}", list(_LETTERS[:n]))[0]
        self.use(f"letters{n}", letter)
        perm = self.rng.permutation(len(distractors))
        rest = [distractors[i] for i in perm]
        pos = _LETTERS.index(letter)
        values = rest[:pos] + [correct] + rest[pos:]
        return [f"{_LETTERS[i]}. {v}" for i, v in enumerate(values)], letter


# ---------------------------------------------------------------------------------------------- situations
class _Relation(NamedTuple):
    """One relation of a situation text. ``kind`` in near / between / facing / side / side_near.

    A named tuple (immutable, hashable) rather than a frozen dataclass: relation tuples key the per-scene
    caches of situation generation, hashed ~10^6 times per dataset, and tuple hashing / equality run in C.
    """

    kind: str
    objects: tuple[int, ...]
    sector: str = ""


# sector -> (centre, half-width) in degrees of relative bearing, from the sector constants
_SECTOR_ARC_DEG = {
    "front": (0.0, FRONT_MAX_DEG),
    "left": ((FRONT_MAX_DEG + BACK_MIN_DEG) / 2, (BACK_MIN_DEG - FRONT_MAX_DEG) / 2),
    "right": (-(FRONT_MAX_DEG + BACK_MIN_DEG) / 2, (BACK_MIN_DEG - FRONT_MAX_DEG) / 2),
    "behind": (180.0, 180.0 - BACK_MIN_DEG),
}


class _Cells(NamedTuple):
    """The consistent cells of a relation tuple: distinct grid points (x, y) and grid yaws; ``too_wide``: the
    points are so spread that the position bound fails for every pose."""

    px: np.ndarray
    py: np.ndarray
    yaws: np.ndarray
    too_wide: bool


class _SceneGrid:
    """Conservative localisation check of a situation text on a pose grid.

    Grid points (step ``s = LOCALISE_GRID_STEP``) cover the free space dilated by ``h = s / sqrt(2)``, so
    every free position ``p`` has a grid point ``g`` with ``|p - g| <= h``; yaws are a grid of step
    ``LOCALISE_YAW_STEP_DEG`` (half step ``e``). Each relation is evaluated at ``(g, yaw_g)`` with thresholds
    loosened by how much it can change within that cell: distances by ``h`` (distance to a set is
    1-Lipschitz), the bearing of an object centre ``c`` by ``asin(min(1, h / |c - g|))`` plus ``e``. Hence
    every continuous pose for which the text holds lies in a consistent cell, and

        max_{consistent cells} |g - p_true| + h <= SITUATION_MAX_POS_SPREAD
        max_{consistent cells} |yaw_g - yaw_true| + e <= SITUATION_MAX_YAW_SPREAD_DEG

    guarantees that **every** pose satisfying the text is within the spread bounds of the true pose.
    """

    def __init__(self, free: Any, referable: dict[int, SceneObject]) -> None:
        step = LOCALISE_GRID_STEP
        self.h = step / np.sqrt(2.0)
        self.e = np.radians(LOCALISE_YAW_STEP_DEG / 2.0)
        xmin, ymin, xmax, ymax = free.bounds
        xs = np.arange(xmin - self.h + step / 2, xmax + self.h, step)
        ys = np.arange(ymin - self.h + step / 2, ymax + self.h, step)
        grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
        self.points = grid[is_free(free.buffer(self.h), grid)] if len(grid) else np.zeros((0, 2))
        self.yaws = np.radians(np.arange(-180.0, 180.0, LOCALISE_YAW_STEP_DEG))
        self.dist: dict[int, np.ndarray] = {}
        self.angle: dict[int, np.ndarray] = {}
        self.slack: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[str, _Relation], np.ndarray] = {}
        # relation tuple -> its consistent cells (None: no cell)
        self._cells: dict[tuple[_Relation, ...], _Cells | None] = {}
        for i, o in referable.items():
            d = o.center[:2] - self.points
            r = np.hypot(d[:, 0], d[:, 1])
            self.dist[i] = footprint_distance(o, self.points)
            self.angle[i] = np.arctan2(d[:, 1], d[:, 0])
            self.slack[i] = np.arcsin(np.minimum(1.0, self.h / np.maximum(r, 1e-9)))

    def _position_mask(self, rel: _Relation) -> np.ndarray:
        """Grid points where ``rel``'s distance / angle conditions may hold (cached: situation generation asks about
        the same relations tens of thousands of times)."""
        key = ("pos", rel)
        if key not in self._cache:
            h = self.h
            mask = np.ones(len(self.points), dtype=bool)
            if rel.kind in ("near", "side_near"):
                mask = self.dist[rel.objects[0]] <= NEAR_MAX_DIST + h
            elif rel.kind == "between":
                a, b = rel.objects
                gap = np.abs(wrap_angle(self.angle[a] - self.angle[b]))
                mask = gap + self.slack[a] + self.slack[b] >= np.radians(BETWEEN_MIN_ANGLE_DEG)
                mask &= (self.dist[a] <= BETWEEN_MAX_DIST + h) & (self.dist[b] <= BETWEEN_MAX_DIST + h)
            elif rel.kind == "facing":
                mask = self.dist[rel.objects[0]] >= FACING_MIN_DIST - h
            self._cache[key] = mask
        return self._cache[key]

    def _pose_mask(self, rel: _Relation) -> np.ndarray:
        """``[points, yaws]`` cells where ``rel``'s bearing condition may hold (cached)."""
        key = ("pose", rel)
        if key not in self._cache:
            # |wrap(bearing - yaw - mid)| <= half + slack  <=>  cos(bearing - mid - yaw) >= cos(min(half + slack, pi))
            obj = rel.objects[0]
            mid, half = (0.0, FACING_TOL_DEG) if rel.kind == "facing" else _SECTOR_ARC_DEG[rel.sector]
            cos_y, sin_y = np.cos(self.yaws)[None, :], np.sin(self.yaws)[None, :]
            rel_angle = self.angle[obj][:, None] - np.radians(mid)
            cos_off = np.cos(rel_angle) * cos_y + np.sin(rel_angle) * sin_y
            limit = np.minimum(np.radians(half) + self.slack[obj][:, None] + self.e, np.pi)
            self._cache[key] = cos_off >= np.cos(limit) - 1e-12
        return self._cache[key]

    def _consistent_mask(self, relations: Sequence[_Relation]) -> tuple[np.ndarray, np.ndarray]:
        """(point indices ``idx``, ``[len(idx), yaws]`` mask): the cells of :meth:`consistent`."""
        pos_ok = np.ones(len(self.points), dtype=bool)
        for rel in relations:
            pos_ok &= self._position_mask(rel)
        idx = np.flatnonzero(pos_ok)
        pose_ok = np.ones((len(idx), len(self.yaws)), dtype=bool)
        for rel in relations:
            if rel.kind in ("facing", "side", "side_near"):
                pose_ok &= self._pose_mask(rel)[idx]
        return idx, pose_ok

    def consistent(self, relations: Sequence[_Relation]) -> tuple[np.ndarray, np.ndarray]:
        """Grid cells (point index, yaw index) that may contain a pose satisfying every relation."""
        idx, pose_ok = self._consistent_mask(relations)
        pi, yi = np.nonzero(pose_ok)
        return idx[pi], yi

    def _consistent_cells(self, relations: Sequence[_Relation]) -> _Cells | None:
        """The grid points and grid yaws of :meth:`consistent`'s cells, each once; None when there is no cell.

        Memoised per relation tuple: the cells depend only on the relations, not on the pose, and generation
        tries the same texts for many poses (most ``spread`` calls of a scene repeat an earlier tuple).
        """
        key = tuple(relations)
        if key not in self._cells:
            idx, pose_ok = self._consistent_mask(relations)
            cells = None
            if pose_ok.any():
                points = self.points[idx[pose_ok.any(axis=1)]]
                px, py = points[:, 0].copy(), points[:, 1].copy()
                # Any pose is at least half the larger bounding-box side from some point, so the position bound
                # fails for every pose when that exceeds it (1e-9: far above the rounding of the exact check).
                radius = max(px.max() - px.min(), py.max() - py.min()) / 2.0
                too_wide = bool(radius + self.h > SITUATION_MAX_POS_SPREAD + 1e-9)
                cells = _Cells(px, py, self.yaws[pose_ok.any(axis=0)], too_wide)
            self._cells[key] = cells
        return self._cells[key]

    # the maxima over the distinct points / yaws of the consistent cells equal those over all cells
    def _pos_err(self, cells: _Cells, xy: np.ndarray) -> float:
        return float(np.hypot(cells.px - xy[0], cells.py - xy[1]).max() + self.h)

    def _yaw_err(self, cells: _Cells, yaw: float) -> float:
        return float(np.degrees(np.abs(_wrap_array(cells.yaws - yaw)).max() + self.e))

    def spread(self, relations: Sequence[_Relation], xy: np.ndarray, yaw: float) -> tuple[float, float]:
        """Upper bounds (m, degrees) on the position / yaw error of any pose for which the text holds."""
        cells = self._consistent_cells(relations)
        if cells is None:
            return np.inf, np.inf
        return self._pos_err(cells, xy), self._yaw_err(cells, yaw)

    def localises(self, relations: Sequence[_Relation], xy: np.ndarray, yaw: float) -> bool:
        """Whether :meth:`spread` is within ``SITUATION_MAX_POS_SPREAD`` and ``SITUATION_MAX_YAW_SPREAD_DEG``
        (same decision, computed only as far as needed)."""
        cells = self._consistent_cells(relations)
        if cells is None or cells.too_wide:
            return False
        return (
            self._pos_err(cells, xy) <= SITUATION_MAX_POS_SPREAD
            and self._yaw_err(cells, yaw) <= SITUATION_MAX_YAW_SPREAD_DEG
        )


_SIDE_WORDS = {
    "side": {"left": "on my left", "right": "on my right", "behind": "behind me"},
    "side_near": {"left": "on my immediate left", "right": "on my immediate right", "behind": "right behind me"},
}


def _situation_text(relations: Sequence[_Relation], names: dict[int, str]) -> str:
    parts: list[str] = []
    sides: list[str] = []
    for rel in relations:
        n = [names[i] for i in rel.objects]
        if rel.kind == "near":
            parts.append(f"I am standing next to the {n[0]}")
        elif rel.kind == "between":
            parts.append(f"I am standing between the {n[0]} and the {n[1]}")
        elif rel.kind == "facing":
            parts.append(f"facing the {n[0]}")
        else:  # side, side_near
            sides.append(f"the {n[0]} {_SIDE_WORDS[rel.kind][rel.sector]}")
    text = ", ".join(parts)
    if sides:
        text += ", with " + " and ".join(sides)
    return text + "."


def _candidate_texts(
    xy: np.ndarray,
    yaw: float,
    referable: _ObjectArrays,
    rng: np.random.Generator,
) -> list[list[_Relation]]:
    """Relation sets that hold for the pose with generation margins, shortest first.

    ``referable`` holds the referable objects in increasing instance id order.
    """
    beta_arr = referable.bearings(xy, yaw)
    ahead = np.abs(np.degrees(beta_arr)) <= FACING_GEN_TOL_DEG
    if not ahead.any():
        return []  # most random poses face no object: skip the distances
    dist_arr = referable.distances(xy)
    facing_idx = (ahead & (dist_arr >= FACING_MIN_DIST)).nonzero()[0]
    if not len(facing_idx):
        return []
    ids = referable.ids
    dist = dist_arr.tolist()
    anchors: list[_Relation] = [_Relation("near", (ids[k],)) for k in (dist_arr <= NEAR_GEN_DIST).nonzero()[0].tolist()]
    close = (dist_arr <= BETWEEN_GEN_DIST).nonzero()[0]
    if len(close) >= 2:
        # pairs in itertools.combinations order
        ia, ib = _pair_indices(len(close))
        a_idx, b_idx = close[ia], close[ib]
        ang = np.abs(np.degrees(_wrap_array(beta_arr[a_idx] - beta_arr[b_idx])))
        wide = ang >= BETWEEN_GEN_ANGLE_DEG
        for a, b in zip(a_idx[wide].tolist(), b_idx[wide].tolist(), strict=True):
            anchors.append(_Relation("between", (ids[a], ids[b])))
    if not anchors:
        return []
    sector, margin = _sector_arrays(beta_arr)
    side_objs: list[_Relation] = []
    for k in ((sector != 0) & (margin >= SECTOR_MARGIN_DEG)).nonzero()[0].tolist():
        kind = "side_near" if dist[k] <= NEAR_GEN_DIST else "side"
        side_objs.append(_Relation(kind, (ids[k],), SECTORS[sector[k]]))
    anchors = [anchors[k] for k in rng.permutation(len(anchors))]
    # random order, but close ("immediate") side objects first: they localise best
    side_objs = [side_objs[k] for k in rng.permutation(len(side_objs))]
    side_objs.sort(key=lambda rel: rel.kind != "side_near")
    face_rel = _Relation("facing", (ids[int(facing_idx[np.argmin(np.abs(beta_arr[facing_idx]))])],))
    out: list[list[_Relation]] = []
    for n_sides in range(3):
        for anchor in anchors:
            used = set(anchor.objects) | set(face_rel.objects)
            if face_rel.objects[0] in anchor.objects:
                continue
            usable = [s for s in side_objs if s.objects[0] not in used]
            for combo in itertools.islice(itertools.combinations(usable, n_sides), 6):
                out.append([anchor, face_rel, *combo])
    return out


def generate_situations(
    layout: SceneLayout,
    rng: np.random.Generator,
    num_situations: int,
    questions_per_situation: int,
    visible_instances: Collection[int] | None = None,
) -> list[SituationRecord]:
    """Up to ``num_situations`` agent poses (uniform in ``free_space(layout)``, uniform yaw), each with a text that
    localises it and situated questions (module docstring); fewer, possibly none, when the scene does not allow it.

    ``visible_instances`` (optional, e.g. the keys of the render's ``first_seen_frame``): only these
    objects are named in texts and questions, and counts are asked only about categories whose instances
    are all visible, so that everything a question needs is in the video. Name uniqueness is still decided
    over all objects of the scene. ``None`` = every object counts as visible.
    """
    if num_situations <= 0:
        return []
    free = free_space(layout, DEFAULT_CLEARANCE)
    visible = _visible_set(layout, visible_instances)
    names = {i: n for i, n in object_names(layout).items() if i in visible}
    if free.is_empty or free.area <= 0 or len(names) < 2:
        return []
    referable = {o.instance_id: o for o in layout.objects if o.instance_id in names}
    grid = _SceneGrid(free, referable)
    referable_arrays = _ObjectArrays([referable[i] for i in sorted(referable)])
    sampler = _FreePointSampler(free)
    texts: dict[tuple[_Relation, ...], str] = {}
    balancer = _Balancer(rng)
    records: list[SituationRecord] = []
    used_texts: set[str] = set()
    attempts = 0
    while len(records) < num_situations and attempts < SITUATION_MAX_ATTEMPTS * num_situations:
        attempts += 1
        xy = sampler.sample(rng, 1)[0]  # = sample_free_points(free, rng, 1)[0]
        yaw = float(wrap_angle(rng.uniform(-np.pi, np.pi)))
        for relations in _candidate_texts(xy, yaw, referable_arrays, rng):
            key = tuple(relations)
            text = texts.get(key)
            if text is None:
                text = texts[key] = _situation_text(relations, names)
            if text in used_texts:
                continue  # one pose per text: a repeated text would add no new situation
            if grid.localises(relations, xy, yaw):
                referenced = [i for rel in relations for i in rel.objects]
                position = np.array([xy[0], xy[1], 0.0])
                questions = generate_situated_questions(
                    layout, position, yaw, rng, questions_per_situation, visible, _balancer=balancer
                )
                roles = {rel.kind: list(rel.objects) for rel in relations}
                anchors = roles.get("near", []) + roles.get("between", [])
                sides: dict[str, list[int]] = {sector: [] for sector in SECTORS if sector != "front"}
                for rel in relations:
                    if rel.kind in ("side", "side_near"):
                        sides[rel.sector].extend(rel.objects)
                records.append(
                    SituationRecord(position, yaw, text, referenced, questions, anchors, roles.get("facing", []), sides)
                )
                used_texts.add(text)
                break
    return records


# ---------------------------------------------------------------------------------------------- situated questions
_SIDE_PHRASE = {"front": "in front of me", "left": "on my left", "right": "on my right", "behind": "behind me"}
_DIRECTION_WORD = {"front": "forward", "left": "left", "right": "right", "behind": "backward"}


def _situated_candidates(
    layout: SceneLayout, xy: np.ndarray, yaw: float, visible: set[int]
) -> dict[str, list[tuple[str, SituatedQuestion]]]:
    """All unambiguous situated questions for a pose, per question type, each with its balancing class."""
    names = {i: n for i, n in object_names(layout).items() if i in visible}
    objs = layout.objects
    arrays = _ObjectArrays(objs)
    beta = arrays.bearings(xy, yaw)  # relative_bearing of each centre
    dist = arrays.distances(xy)  # footprint_distance of each object
    sector_idx, margin = _sector_arrays(beta)  # sector_of, _sector_margin_deg of each
    sectors = [SECTORS[k] for k in sector_idx.tolist()]
    clear = margin >= SECTOR_MARGIN_DEG
    # _near_sector(beta[k], sector) for every object: the sectors of the bearings shifted by -m, 0, +m
    m = np.radians(SECTOR_MARGIN_DEG)
    shifted = [_sector_arrays(beta + s)[0] for s in (-m, 0.0, m)]
    out: dict[str, list[tuple[str, SituatedQuestion]]] = defaultdict(list)

    # What is the nearest object on my <side>?  (nearest by footprint distance, runner-up NEAREST_MIN_GAP farther)
    for sec in SECTORS:
        in_sec = [k for k in range(len(objs)) if sectors[k] == sec]
        if not in_sec:
            continue
        best = min(in_sec, key=lambda k: dist[k])
        if not clear[best] or objs[best].instance_id not in visible:
            continue
        # every other-category object in (or within the margin of) the sector must be clearly farther
        rivals = [
            k
            for k in range(len(objs))
            if k != best
            and objs[k].category != objs[best].category
            and any(sh[k] == SECTORS.index(sec) for sh in shifted)
        ]
        if any(dist[k] < dist[best] + NEAREST_MIN_GAP for k in rivals):
            continue
        q = f"What is the nearest object {_SIDE_PHRASE[sec]}?"
        out["object_on_side"].append((sec, SituatedQuestion(q, objs[best].category, "object_on_side", "other")))

    # How many <category> are <sector>?
    for cat in sorted({o.category for o in objs}):
        ks = [k for k in range(len(objs)) if objs[k].category == cat]
        if not all(clear[k] and objs[k].instance_id in visible for k in ks):
            continue
        for sec in SECTORS:
            n = sum(sectors[k] == sec for k in ks)
            q = f"How many {_plural(cat)} are {_SIDE_PHRASE[sec]}?"
            out["count_in_sector"].append(
                (_number_word(n), SituatedQuestion(q, _number_word(n), "count_in_sector", "number"))
            )

    for k, obj in enumerate(objs):
        name = names.get(obj.instance_id)
        if name is None or not clear[k]:
            continue
        sec = sectors[k]
        # Which direction should I go to reach X?
        q = f"Which direction should I go to reach the {name}?"
        word = _DIRECTION_WORD[sec]
        out["direction_to"].append((word, SituatedQuestion(q, word, "direction_to", "other")))
        # Is X on my <side>?  (yes/no, any side)
        for asked in SECTORS:
            ans = "yes" if asked == sec else "no"
            q = f"Is the {name} {_SIDE_PHRASE[asked]}?"
            out["is_on_side"].append((ans, SituatedQuestion(q, ans, "is_on_side", "yes/no")))

    # How far away is X?  (whole metres)
    for k, obj in enumerate(objs):
        name = names.get(obj.instance_id)
        d = dist[k]
        if name is None or d < DISTANCE_MIN or abs((d % 1.0) - 0.5) < DISTANCE_ROUND_MARGIN:
            continue
        n = int(np.floor(d + 0.5))
        q = f"How many meters away from me is the {name}?"
        out["distance_to"].append((_number_word(n), SituatedQuestion(q, _number_word(n), "distance_to", "number")))
    return out


def _near_sector(beta: float, sector: str) -> bool:
    """True if bearing ``beta`` is within SECTOR_MARGIN_DEG of ``sector`` (inside or just outside it)."""
    m = np.radians(SECTOR_MARGIN_DEG)
    return any(sector_of(beta + s) == sector for s in (-m, 0.0, m))


def generate_situated_questions(
    layout: SceneLayout,
    position: np.ndarray,
    yaw: float,
    rng: np.random.Generator,
    count: int,
    visible_instances: Collection[int] | None = None,
    _balancer: _Balancer | None = None,
) -> list[SituatedQuestion]:
    """Up to ``count`` distinct unambiguous egocentric questions for the agent pose ``(position, yaw)``, the least
    used type first (module docstring, "Situated questions"); ``visible_instances`` as in :func:`generate_situations`.
    """
    if count <= 0:
        return []
    xy = np.asarray(position, dtype=np.float64)[:2]
    balancer = _balancer or _Balancer(rng)
    cands = _situated_candidates(layout, xy, float(yaw), _visible_set(layout, visible_instances))
    out: list[SituatedQuestion] = []
    asked: set[str] = set()
    while len(out) < count:
        types = [t for t, c in cands.items() if c]
        if not types:
            break
        qtype = balancer.order("situated_type", sorted(types))[0]
        picked = balancer.pick(qtype, cands[qtype], key=lambda c: c[0], count=1)
        cls, question = picked[0]
        cands[qtype] = [c for c in cands[qtype] if c[1].question != question.question]
        if question.question in asked:
            continue
        balancer.use("situated_type", qtype)
        asked.add(question.question)
        out.append(question)
    return out


# ---------------------------------------------------------------------------------------------- VSI-Bench
def _vsi_record(question_type: str, question: str, options: list[str] | None, ground_truth: str) -> dict:
    return {"question_type": question_type, "question": question, "options": options, "ground_truth": ground_truth}


def _fmt1(x: float) -> str:
    return f"{round(float(x), 1):.1f}"


def _angle_ccw_deg(origin: np.ndarray, ref: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise angle (degrees, [0, 360)) from direction origin→ref to origin→pts (floor plane)."""
    a0 = np.arctan2(ref[1] - origin[1], ref[0] - origin[0])
    a = np.arctan2(pts[..., 1] - origin[1], pts[..., 0] - origin[0])
    return np.mod(np.degrees(a - a0), 360.0)


def _direction_class(angle: float, bounds: Sequence[float], labels: Sequence[str]) -> str:
    for lo, hi, lab in zip(bounds[:-1], bounds[1:], labels, strict=True):
        if lo <= angle < hi:
            return lab
    return labels[-1]


_REL_DIR_SPECS: dict[str, tuple[tuple[float, ...], tuple[str, ...], str]] = {
    # name: (class boundaries in degrees CCW from the orienting direction, labels, template)
    "object_rel_direction_hard": (
        (0.0, 90.0, 180.0, 270.0, 360.0),
        ("front-left", "back-left", "back-right", "front-right"),
        _T_DIR_HARD,
    ),
    "object_rel_direction_medium": ((0.0, 135.0, 225.0, 360.0), ("left", "back", "right"), _T_DIR_MEDIUM),
    # easy: only querying objects in the front half-plane (|angle| < 90°), left/right of the orienting object
    "object_rel_direction_easy": ((0.0, 90.0, 270.0, 360.0), ("left", "", "right"), _T_DIR_EASY),
}


def _rel_direction_candidates(
    qtype: str, unique: dict[str, SceneObject], pair_dist: Callable[[str, str], float]
) -> list[tuple[str, tuple[str, str, str], str]]:
    """(label, (positioning, orienting, querying), options-label-set) candidates of one difficulty."""
    bounds, labels, _ = _REL_DIR_SPECS[qtype]
    out = []
    for triple in itertools.combinations(sorted(unique), 3):
        if any(
            not REL_DIR_MIN_PAIR_DIST <= pair_dist(a, b) <= REL_DIR_MAX_PAIR_DIST
            for a, b in itertools.combinations(triple, 2)
        ):
            continue

        for p, o, q in itertools.permutations(triple):
            po, oo, qo = unique[p], unique[o], unique[q]
            ang = float(_angle_ccw_deg(_xy(po), _xy(oo), _xy(qo)))
            corners = _angle_ccw_deg(_xy(po), _xy(oo), qo.corners_xy())
            if min(abs(ang - b) for b in bounds) < REL_DIR_MARGIN_DEG:
                continue
            label = _direction_class(ang, bounds, labels)
            if not label:
                continue  # easy: querying object outside the front half-plane
            corner_labels = [_direction_class(float(c), bounds, labels) for c in corners]
            if sum(c != label for c in corner_labels) > 1:
                continue
            out.append((label, (p, o, q), qtype))
    return out


def _route_turn(delta_deg: float) -> str | None:
    """Turn needed to go from heading h0 to h1 with Δ = wrap(h1 - h0) in degrees; None when ambiguous."""
    a = abs(delta_deg)
    if a < ROUTE_MIN_TURN_DEG or abs(a - ROUTE_BACK_MIN_DEG) < ROUTE_MARGIN_DEG:
        return None
    if a >= ROUTE_BACK_MIN_DEG:
        return "Turn Back"
    return "Turn Left" if delta_deg > 0 else "Turn Right"


def _heading(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arctan2(b[1] - a[1], b[0] - a[0]))


def _route_candidates(
    layout: SceneLayout,
    unique: dict[str, SceneObject],
    camera_positions: np.ndarray,
) -> list[tuple[tuple[str, ...], str, list[str], str]]:
    """Routes along the video (module docstring): (waypoints, facing category, turn answers, action text), visiting
    landmarks in the order of the camera's closest approach. Two turns are asked ("[please fill in]"): the start
    turn (the robot first faces another landmark) plus one waypoint turn, or two waypoint turns."""
    cams = camera_positions[:, :2]
    order: list[tuple[int, str]] = []
    for cat, obj in unique.items():
        d = footprint_distance(obj, cams)
        if d.min() <= ROUTE_LANDMARK_DIST:
            order.append((int(np.argmin(d)), cat))
    order.sort()
    landmarks = [c for _, c in order]
    blockers = {o.instance_id: Polygon(o.corners_xy()) for o in blocking_objects(layout)}

    def walkable(a: str, b: str) -> bool:
        line = LineString([_xy(unique[a]), _xy(unique[b])])
        skip = {unique[a].instance_id, unique[b].instance_id}
        return not any(line.intersects(poly) for iid, poly in blockers.items() if iid not in skip)

    out = []
    for length in (3, 4):  # waypoints incl. start and destination
        for seq in itertools.combinations(landmarks, length):
            if not all(walkable(a, b) for a, b in itertools.pairwise(seq)):
                continue
            pts = [_xy(unique[c]) for c in seq]
            heads = [_heading(a, b) for a, b in itertools.pairwise(pts)]
            turns = [_route_turn(float(np.degrees(wrap_angle(h1 - h0)))) for h0, h1 in itertools.pairwise(heads)]
            if any(t is None for t in turns):
                continue
            if length == 4:
                # facing the first waypoint: 1. Go forward until w1. 2. [fill] 3. Go forward until w2. 4. [fill] 5. ...
                actions = (
                    f"1. Go forward until the {seq[1]}. 2. [please fill in] 3. Go forward until the {seq[2]}. "
                    f"4. [please fill in] 5. Go forward until the {seq[3]}."
                )
                out.append((seq, seq[1], [str(t) for t in turns], actions))
                continue
            # facing another object f: the first turn goes from heading(start→f) to heading(start→w1)
            actions = (
                f"1. [please fill in] 2. Go forward until the {seq[1]}. 3. [please fill in] "
                f"4. Go forward until the {seq[2]}."
            )
            for fcat in sorted(unique):
                if fcat in seq:
                    continue
                h_f = _heading(pts[0], _xy(unique[fcat]))
                t0 = _route_turn(float(np.degrees(wrap_angle(heads[0] - h_f))))
                if t0 is not None:
                    out.append((seq, fcat, [t0, str(turns[0])], actions))
    return out


def generate_vsi_questions(
    layout: SceneLayout,
    rng: np.random.Generator,
    first_seen_frame: dict[int, int],
    camera_positions: np.ndarray,
    questions_per_type: int,
) -> list[dict]:
    """Up to ``questions_per_type`` VSI-Bench-style records per type (room size: one) for one scene, without id /
    dataset / scene_name, about objects the video shows (``first_seen_frame``); ``camera_positions [T, 3]`` orders
    route landmarks along the video. Counting asks about categories with >= 2 instances, all seen; single-object
    questions use categories with one instance in the scene (as VSI-Bench)."""
    cams = np.asarray(camera_positions, dtype=np.float64)
    if cams.ndim != 2 or cams.shape[1] != 3 or len(cams) == 0 or not np.isfinite(cams).all():
        raise SampleError(
            f"scene {layout.scene_id!r}: 'camera_positions' must be finite [T>=1, 3], got shape {cams.shape}"
        )
    ids = {o.instance_id for o in layout.objects}
    for iid in first_seen_frame:
        if iid not in ids:
            raise SampleError(f"scene {layout.scene_id!r}: 'first_seen_frame' names unknown instance {iid}")
    if questions_per_type <= 0:
        return []

    balancer = _Balancer(rng)
    n = questions_per_type
    by_cat: dict[str, list[SceneObject]] = defaultdict(list)
    for o in layout.objects:
        by_cat[o.category].append(o)
    seen_cats = sorted(c for c, objs in by_cat.items() if any(o.instance_id in first_seen_frame for o in objs))
    unique = {c: by_cat[c][0] for c in seen_cats if len(by_cat[c]) == 1}
    cache: dict[tuple[str, str], float] = {}

    def cat_dist(a: str, b: str) -> float:
        """Closest-instance distance between two categories."""
        key = (min(a, b), max(a, b))
        if key not in cache:
            cache[key] = min(box_distance(x, y) for x in by_cat[a] for y in by_cat[b])
        return cache[key]

    # the question types in a fixed order: each draws from ``rng`` in turn
    records = _vsi_counting(balancer, by_cat, seen_cats, first_seen_frame, n)
    records += _vsi_measures(balancer, rng, unique, cat_dist, n)
    if n >= 1:  # room_size_estimation: floor area (m²)
        area = Polygon(np.asarray(layout.floor_polygon, dtype=np.float64)).area
        records.append(_vsi_record("room_size_estimation", _T_ROOM, None, _fmt1(area)))
    records += _vsi_rel_distance(balancer, rng, unique, seen_cats, cat_dist, n)
    records += _vsi_rel_direction(balancer, unique, cat_dist, n)
    records += _vsi_route_planning(balancer, rng, _route_candidates(layout, unique, cams), n)
    records += _vsi_appearance_order(balancer, rng, by_cat, seen_cats, first_seen_frame, n)
    return records


def _vsi_counting(
    balancer: _Balancer, by_cat: dict[str, list[SceneObject]], seen_cats: list[str], first_seen: dict[int, int], n: int
) -> list[dict]:
    """object_counting: categories with >= 2 instances, all seen."""
    counting = [
        (len(by_cat[c]), c)
        for c in seen_cats
        if len(by_cat[c]) >= 2 and all(o.instance_id in first_seen for o in by_cat[c])
    ]
    return [
        _vsi_record("object_counting", _T_COUNT.format(category=c), None, str(cnt))
        for cnt, c in balancer.pick("object_counting", counting, key=lambda x: x[0], count=n)
    ]


def _vsi_measures(
    balancer: _Balancer,
    rng: np.random.Generator,
    unique: dict[str, SceneObject],
    cat_dist: Callable[[str, str], float],
    n: int,
) -> list[dict]:
    """object_abs_distance, then object_size_estimation (longest side in cm)."""
    records = []
    pairs = [(a, b) for a, b in itertools.combinations(sorted(unique), 2) if cat_dist(a, b) >= ABS_DISTANCE_MIN]
    for a, b in balancer.pick("object_abs_distance", pairs, key=lambda x: 0, count=n):
        if rng.random() < 0.5:
            a, b = b, a
        records.append(_vsi_record("object_abs_distance", _T_ABS.format(a=a, b=b), None, _fmt1(cat_dist(a, b))))
    for c in balancer.pick("object_size_estimation", sorted(unique), key=lambda x: 0, count=n):
        size_cm = int(np.round(float(np.max(unique[c].size)) * 100.0))
        records.append(_vsi_record("object_size_estimation", _T_SIZE.format(category=c), None, str(size_cm)))
    return records


def _vsi_rel_distance(
    balancer: _Balancer,
    rng: np.random.Generator,
    unique: dict[str, SceneObject],
    seen_cats: list[str],
    cat_dist: Callable[[str, str], float],
    n: int,
) -> list[dict]:
    """object_rel_distance: which of 4 categories is closest to the (single-instance) target."""
    rel_cands = []
    for target in sorted(unique):
        others = [c for c in seen_cats if c != target]
        if len(others) < 4:
            continue
        ds = sorted((cat_dist(target, c), c) for c in others)
        for k in range(len(ds)):
            # the answer ds[k] with 3 farther distractors, all at least REL_DISTANCE_MIN_GAP farther
            far = [c for d, c in ds[k + 1 :] if d >= ds[k][0] + REL_DISTANCE_MIN_GAP]
            if len(far) >= 3:
                rel_cands.append((target, ds[k][1], tuple(far)))
    records = []
    for target, ans, far in balancer.pick("object_rel_distance", rel_cands, key=lambda x: x[0], count=n):
        distract = [far[i] for i in rng.choice(len(far), size=3, replace=False)]
        options, letter = balancer.place(ans, distract)
        choices = ", ".join(o.split(". ", 1)[1] for o in options)
        records.append(
            _vsi_record("object_rel_distance", _T_REL_DIST.format(choices=choices, category=target), options, letter)
        )
    return records


def _vsi_rel_direction(
    balancer: _Balancer, unique: dict[str, SceneObject], cat_dist: Callable[[str, str], float], n: int
) -> list[dict]:
    """object_rel_direction_{easy,medium,hard}."""
    records = []
    for qtype in ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"):
        _, labels, template = _REL_DIR_SPECS[qtype]
        choice_labels = [lab for lab in labels if lab]
        cands = _rel_direction_candidates(qtype, unique, cat_dist)
        for label, (p, o, q), _ in balancer.pick(qtype, cands, key=lambda x: x[0], count=n):
            options, letter = balancer.place(label, [c for c in choice_labels if c != label])
            records.append(_vsi_record(qtype, template.format(p=p, o=o, q=q), options, letter))
    return records


def _vsi_route_planning(balancer: _Balancer, rng: np.random.Generator, routes: list, n: int) -> list[dict]:
    """route_planning over the scene's valid ``routes``.

    Distractors follow the turn distribution of this scene's valid routes (add-one smoothed): "Turn Back" is rarer
    in true routes than in uniformly random turn pairs, and uniform distractors would let a model pick the answer
    by avoiding "Turn Back"."""
    turn_freq = Counter(t for route in routes for t in route[2])
    turn_p = {t: (turn_freq[t] + 1.0) / (sum(turn_freq.values()) + len(ROUTE_TURNS)) for t in ROUTE_TURNS}
    combos = list(itertools.product(ROUTE_TURNS, repeat=2))
    records = []
    for seq, facing, turns, actions in balancer.pick("route_planning", routes, key=lambda x: x[2][0], count=n):
        answer = ", ".join(turns)
        wrong = [c for c in combos if ", ".join(c) != answer]
        weight = np.array([np.prod([turn_p[t] for t in c]) for c in wrong])
        picked = rng.choice(len(wrong), size=3, replace=False, p=weight / weight.sum())
        options, letter = balancer.place(answer, [", ".join(wrong[i]) for i in picked])
        question = _T_ROUTE.format(start=seq[0], facing=facing, dest=seq[-1], actions=actions)
        records.append(_vsi_record("route_planning", question, options, letter))
    return records


def _vsi_appearance_order(
    balancer: _Balancer,
    rng: np.random.Generator,
    by_cat: dict[str, list[SceneObject]],
    seen_cats: list[str],
    first_seen: dict[int, int],
    n: int,
) -> list[dict]:
    """obj_appearance_order: 4 seen categories with distinct first appearance frames."""
    first_cat = {
        c: min(int(first_seen[o.instance_id]) for o in by_cat[c] if o.instance_id in first_seen) for c in seen_cats
    }
    order_cands = []
    if len(seen_cats) >= 4:
        combos = list(itertools.combinations(seen_cats, 4))
        for k in rng.permutation(len(combos))[: 50 * n]:
            combo = combos[int(k)]
            frames = [first_cat[c] for c in combo]
            if len(set(frames)) == 4:
                order_cands.append(tuple(sorted(combo, key=lambda c: first_cat[c])))
    records = []
    for combo in balancer.pick("obj_appearance_order", order_cands, key=lambda x: 0, count=n):
        answer = ", ".join(combo)
        perms = [", ".join(p) for p in itertools.permutations(combo) if ", ".join(p) != answer]
        distract = [perms[i] for i in rng.choice(len(perms), size=3, replace=False)]
        options, letter = balancer.place(answer, distract)
        shown = [combo[i] for i in rng.permutation(4)]
        records.append(_vsi_record("obj_appearance_order", _T_ORDER.format(choices=", ".join(shown)), options, letter))
    return records
