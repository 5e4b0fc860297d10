"""The vectorised / memoised paths of situation generation equal the scalar definitions bit for bit.

Situation generation draws ~100k random poses per dataset; its hot paths compute all objects at once
(``_ObjectArrays``, ``_sector_arrays``, ``_wrap_array``), memoise the localisation grid per relation tuple
and reuse the free space's area / bounds when sampling. Datasets must not change with that: every decision
against a threshold has to come out as with the per-object scalar functions, so these tests compare exact
bits, not approximate values.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import numpy as np
import shapely
from hypothesis import given, settings

from loc3r.core.geometry import wrap_angle
from loc3r.data.schema import SceneLayout, SceneObject
from loc3r.synthrooms import questions as Q
from loc3r.synthrooms.freespace import free_space, sample_free_points

_coord = st.floats(-6.0, 6.0, allow_nan=False)
_angle = st.floats(-10.0, 10.0, allow_nan=False)
_obj = st.tuples(_coord, _coord, st.floats(0.05, 3.0), st.floats(0.05, 3.0), _angle)


def _objects(specs: list[tuple[float, float, float, float, float]]) -> list[SceneObject]:
    return [
        SceneObject("box", k + 1, np.array([x, y, 0.4]), np.array([sx, sy, 0.8]), yaw)
        for k, (x, y, sx, sy, yaw) in enumerate(specs)
    ]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool((a.view(np.int64) == b.view(np.int64)).all())


@settings(max_examples=80, deadline=None)
@given(specs=st.lists(_obj, min_size=1, max_size=8), px=_coord, py=_coord, yaw=_angle)
def test_object_arrays_equal_scalar_functions(specs, px, py, yaw) -> None:
    objs = _objects(specs)
    xy = np.array([px, py])
    yaw = float(wrap_angle(yaw))
    arrays = Q._ObjectArrays(objs)
    dist = [float(Q.footprint_distance(o, xy)) for o in objs]
    beta = [float(Q.relative_bearing(xy, yaw, Q._xy(o))) for o in objs]
    assert _same_bits(arrays.distances(xy), dist)
    assert _same_bits(arrays.bearings(xy, yaw), beta)
    sector, margin = Q._sector_arrays(arrays.bearings(xy, yaw))
    assert [Q.SECTORS[k] for k in sector] == [Q.sector_of(b) for b in beta]
    assert _same_bits(margin, [float(Q._sector_margin_deg(b)) for b in beta])
    # the shifted sectors that replace _near_sector in _situated_candidates
    m = np.radians(Q.SECTOR_MARGIN_DEG)
    shifted = [Q._sector_arrays(np.asarray(beta) + s)[0] for s in (-m, 0.0, m)]
    for k, b in enumerate(beta):
        for idx, sec in enumerate(Q.SECTORS):
            assert any(sh[k] == idx for sh in shifted) == Q._near_sector(b, sec)


def test_wrap_array_equals_wrap_angle() -> None:
    rng = np.random.default_rng(0)
    edges = [np.pi, -np.pi, 3 * np.pi, -3 * np.pi, 0.0, -0.0, np.nextafter(-np.pi, -4.0), np.nextafter(np.pi, 4.0)]
    theta = np.concatenate([rng.uniform(-20.0, 20.0, 20000), edges, edges * np.arange(1, 9)])
    assert _same_bits(Q._wrap_array(theta), wrap_angle(theta))
    assert _same_bits(Q._wrap_array(theta), [wrap_angle(float(t)) for t in theta])


def _room(seed: int) -> SceneLayout:
    rng = np.random.default_rng(seed)
    specs = [
        (rng.uniform(0.5, 5.5), rng.uniform(0.5, 4.5), *rng.uniform(0.3, 1.2, 2), rng.uniform(-3, 3)) for _ in range(7)
    ]
    objs = [
        SceneObject(cat, k + 1, np.array([x, y, 0.4]), np.array([sx, sy, 0.8]), yaw)
        for k, (cat, (x, y, sx, sy, yaw)) in enumerate(
            zip(["bed", "sofa", "desk", "lamp", "tv", "plant", "box"], specs, strict=True)
        )
    ]
    return SceneLayout(f"room{seed}", np.array([[0, 0], [6, 0], [6, 5], [0, 5]], float), 2.8, objs)


def _candidate_texts_scalar(xy, yaw, referable, rng):
    """The per-object definition of ``_candidate_texts`` (before vectorisation), as the reference."""
    ids = sorted(referable)
    dist = {i: float(Q.footprint_distance(referable[i], xy)) for i in ids}
    beta = {i: float(Q.relative_bearing(xy, yaw, Q._xy(referable[i]))) for i in ids}
    facing = [i for i in ids if abs(np.degrees(beta[i])) <= Q.FACING_GEN_TOL_DEG and dist[i] >= Q.FACING_MIN_DIST]
    if not facing:
        return []
    anchors = [Q._Relation("near", (i,)) for i in ids if dist[i] <= Q.NEAR_GEN_DIST]
    for a, b in itertools.combinations(ids, 2):
        ang = abs(np.degrees(wrap_angle(beta[a] - beta[b])))
        if ang >= Q.BETWEEN_GEN_ANGLE_DEG and dist[a] <= Q.BETWEEN_GEN_DIST and dist[b] <= Q.BETWEEN_GEN_DIST:
            anchors.append(Q._Relation("between", (a, b)))
    if not anchors:
        return []
    side_objs = []
    for i in ids:
        sec = Q.sector_of(beta[i])
        if sec != "front" and Q._sector_margin_deg(beta[i]) >= Q.SECTOR_MARGIN_DEG:
            side_objs.append(Q._Relation("side_near" if dist[i] <= Q.NEAR_GEN_DIST else "side", (i,), sec))
    anchors = [anchors[k] for k in rng.permutation(len(anchors))]
    side_objs = [side_objs[k] for k in rng.permutation(len(side_objs))]
    side_objs.sort(key=lambda rel: rel.kind != "side_near")
    face_rel = Q._Relation("facing", (facing[int(np.argmin([abs(beta[i]) for i in facing]))],))
    out = []
    for n_sides in range(3):
        for anchor in anchors:
            used = set(anchor.objects) | set(face_rel.objects)
            if face_rel.objects[0] in anchor.objects:
                continue
            usable = [s for s in side_objs if s.objects[0] not in used]
            for combo in itertools.islice(itertools.combinations(usable, n_sides), 6):
                out.append([anchor, face_rel, *combo])
    return out


def test_candidate_texts_and_memoised_grid_equal_reference() -> None:
    layout = _room(3)
    referable = {o.instance_id: o for o in layout.objects}
    arrays = Q._ObjectArrays([referable[i] for i in sorted(referable)])
    free = free_space(layout)
    grid = Q._SceneGrid(free, referable)
    fresh = Q._SceneGrid(free, referable)
    pose_rng = np.random.default_rng(1)
    found = 0
    for t in range(1500):
        xy = sample_free_points(free, pose_rng, 1)[0]
        yaw = float(wrap_angle(pose_rng.uniform(-np.pi, np.pi)))
        rng_a, rng_b = np.random.default_rng(t), np.random.default_rng(t)
        texts = Q._candidate_texts(xy, yaw, arrays, rng_a)
        assert texts == _candidate_texts_scalar(xy, yaw, referable, rng_b)
        assert rng_a.bit_generator.state == rng_b.bit_generator.state
        for relations in texts[:3]:
            found += 1
            # memoised spread == the per-cell formula on a fresh consistent() computation
            pi, yi = fresh.consistent(relations)
            want = (np.inf, np.inf)
            if len(pi):
                pos = np.hypot(*(fresh.points[pi] - xy).T).max() + fresh.h
                want = (float(pos), float(np.degrees(np.abs(wrap_angle(fresh.yaws[yi] - yaw)).max() + fresh.e)))
            assert grid.spread(relations, xy, yaw) == want
            ok = want[0] <= Q.SITUATION_MAX_POS_SPREAD and want[1] <= Q.SITUATION_MAX_YAW_SPREAD_DEG
            assert grid.localises(relations, xy, yaw) == ok
    assert found > 50


def _sample_reference(free, rng, count):
    """``sample_free_points`` as first written (area / bounds asked every call)."""
    xmin, ymin, xmax, ymax = free.bounds
    accept = free.area / max((xmax - xmin) * (ymax - ymin), 1e-12)
    out, have = [], 0
    while have < count:
        batch = int(min(max(16, 1.3 * (count - have) / accept), 1_000_000))
        cand = np.column_stack([rng.uniform(xmin, xmax, batch), rng.uniform(ymin, ymax, batch)])
        keep = cand[shapely.contains_xy(free, cand[:, 0], cand[:, 1])]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:count]


def test_sample_free_points_draws_as_reference() -> None:
    free = free_space(_room(5))
    for count in (1, 1, 2, 7, 40, 1, 300):
        a, b = np.random.default_rng(count), np.random.default_rng(count)
        for _ in range(5):
            got = sample_free_points(free, a, count)
            want = _sample_reference(free, b, count)
            assert got.shape == (count, 2) and _same_bits(got, want)
        assert a.bit_generator.state == b.bit_generator.state
