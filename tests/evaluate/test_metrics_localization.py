"""SQA3D localization metric against hand-computed cases and the real SQA3D test records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SQA3D_FIXTURES
from loc3r.benchmarks.sqa3d.metric import score_sqa3d_localization, sqa3d_quaternion_to_yaw, yaw_to_sqa3d_quaternion
from loc3r.data.schema import SampleError
from loc3r.evaluate.localization import localization_metrics, yaw_error_deg

FIXTURE = SQA3D_FIXTURES / "v1_balanced_sqa_annotations_test_scannetv2.json"


def quat(yaw_deg: float, scale: float = 1.0) -> dict[str, float]:
    """Yaw-only quaternion written out by hand: (0, 0, sin(ψ/2), cos(ψ/2)) · scale."""
    half = math.radians(yaw_deg) / 2
    return {"_x": 0.0, "_y": 0.0, "_z": scale * math.sin(half), "_w": scale * math.cos(half)}


def pose(qid: int | str, x: float, y: float, yaw_deg: float, z: float = 0.0) -> dict:
    return {"question_id": qid, "position": {"x": x, "y": y, "z": z}, "rotation": quat(yaw_deg)}


# ----------------------------------------------------------------------------- quaternion -> yaw


@pytest.mark.parametrize("yaw_deg", [0.0, 30.0, 90.0, -45.0, 135.0, -179.0, 179.0])
def test_quaternion_to_yaw_recovers_yaw(yaw_deg: float) -> None:
    assert sqa3d_quaternion_to_yaw(quat(yaw_deg)) == pytest.approx(math.radians(yaw_deg), abs=1e-12)


def test_quaternion_to_yaw_identity_sign_flip_scale_and_sequence() -> None:
    assert sqa3d_quaternion_to_yaw({"_x": 0, "_y": 0, "_z": 0, "_w": 1}) == 0.0
    assert sqa3d_quaternion_to_yaw({"_x": 0, "_y": 0, "_z": 0, "_w": -1}) == 0.0
    # q and -q are the same rotation; any positive scale too.
    for scale in (-1.0, 3.5, -0.2):
        assert sqa3d_quaternion_to_yaw(quat(60.0, scale)) == pytest.approx(math.radians(60.0), abs=1e-12)
    # 200° and -160° are the same heading; the result is wrapped to [-pi, pi).
    assert sqa3d_quaternion_to_yaw(quat(200.0)) == pytest.approx(math.radians(-160.0), abs=1e-12)
    assert sqa3d_quaternion_to_yaw(quat(180.0)) == pytest.approx(-math.pi, abs=1e-12)
    # (x, y, z, w) sequences, e.g. scipy's as_quat order.
    assert sqa3d_quaternion_to_yaw([0, 0, math.sin(0.25), math.cos(0.25)]) == pytest.approx(0.5)


def test_quaternion_to_yaw_rejects_degenerate() -> None:
    with pytest.raises(ValueError, match="zero length"):
        sqa3d_quaternion_to_yaw({"_x": 0, "_y": 0, "_z": 0, "_w": 0})
    with pytest.raises(ValueError, match="non-finite"):
        sqa3d_quaternion_to_yaw([0, 0, float("nan"), 1])
    with pytest.raises(ValueError, match="4 components"):
        sqa3d_quaternion_to_yaw([0, 0, 1])


@settings(max_examples=200, deadline=None)
@given(
    yaw=st.floats(-math.pi, math.pi, allow_nan=False),
    scale=st.floats(0.01, 100.0) | st.floats(-100.0, -0.01),
)
def test_quaternion_yaw_round_trip_property(yaw: float, scale: float) -> None:
    q = {k: scale * v for k, v in yaw_to_sqa3d_quaternion(yaw).items()}
    # Same heading up to 2π.
    assert yaw_error_deg(sqa3d_quaternion_to_yaw(q), yaw) == pytest.approx(0.0, abs=1e-7)


def test_quaternion_to_yaw_matches_scipy_rotvec_definition() -> None:
    """The official metric uses scipy's ``as_rotvec()[-1]``; ours agrees, also for tilted quaternions."""
    rotation = pytest.importorskip("scipy.spatial.transform").Rotation
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(200, 4)):
        reference = rotation.from_quat(q).as_rotvec()[2]
        assert yaw_error_deg(sqa3d_quaternion_to_yaw(q), reference) == pytest.approx(0.0, abs=1e-7)


# ----------------------------------------------------------------------------- errors and thresholds


def test_yaw_error_wraps_across_180() -> None:
    r = math.radians
    assert yaw_error_deg(r(179), r(-179)) == pytest.approx(2.0)
    assert yaw_error_deg(r(-170), r(170)) == pytest.approx(20.0)
    assert yaw_error_deg(r(0), r(180)) == pytest.approx(180.0)
    assert yaw_error_deg(r(359), r(1)) == pytest.approx(2.0)
    assert yaw_error_deg(r(90), r(-90)) == pytest.approx(180.0)
    np.testing.assert_allclose(yaw_error_deg(np.array([r(10), r(-10)]), 0.0), [10.0, 10.0])


def test_thresholds_are_strict_position() -> None:
    gt_xy = np.array([[1.0, 2.0]] * 4)
    gt_yaw = np.zeros(4)
    # errors: 0.5 (exactly), 0.4999, 1.0 (exactly), 0.9999 — z is ignored.
    pred_xy = np.array([[1.5, 2.0, 9.0], [1.4999, 2.0, -3.0], [1.0, 3.0, 0.0], [1.0, 2.9999, 0.0]])
    out = localization_metrics(gt_xy, gt_yaw, pred_xy, np.zeros(4))
    assert out["acc@0.5m"] == pytest.approx(100 * 1 / 4)  # only 0.4999: exactly 0.5 is not < 0.5
    assert out["acc@1.0m"] == pytest.approx(100 * 3 / 4)  # all but the exact 1.0
    assert out["n"] == 4


def test_thresholds_are_strict_orientation_and_wrap() -> None:
    r = math.radians
    gt_yaw = np.array([0.0, 0.0, 0.0, 0.0, r(179.0)])
    pred_yaw = np.array([r(15.0), r(14.9), r(30.0), r(-29.9), r(-179.0)])  # errors 15, 14.9, 30, 29.9, 2
    out = localization_metrics(np.zeros((5, 2)), gt_yaw, np.zeros((5, 2)), pred_yaw)
    assert out["acc@15deg"] == pytest.approx(100 * 2 / 5)  # 14.9 and 2
    assert out["acc@30deg"] == pytest.approx(100 * 4 / 5)  # all but the exact 30
    assert out["acc@0.5m"] == 100.0


def test_three_candidates_position_and_orientation_take_their_own_closest() -> None:
    gt_xy = np.array([[0.0, 0.0]])
    gt_yaw = np.array([0.0])
    # A: near position, wrong heading; B: far, good heading; C: wrong in both.
    pred_xy = np.array([[[0.3, 0.0], [2.0, 0.0], [5.0, 5.0]]])
    pred_yaw = np.radians([[90.0, 10.0, 180.0]])
    out = localization_metrics(gt_xy, gt_yaw, pred_xy, pred_yaw)
    assert out["acc@0.5m"] == 100.0 and out["acc@15deg"] == 100.0
    assert out["median_pos_err_m"] == pytest.approx(0.3)
    assert out["median_ori_err_deg"] == pytest.approx(10.0)


def test_absent_candidates_and_missing_samples() -> None:
    gt_xy = np.zeros((2, 2))
    pred_xy = np.array([[[0.1, 0.0], [np.nan, np.nan]], [[np.nan, np.nan], [np.nan, np.nan]]])
    pred_yaw = np.array([[0.0, np.nan], [np.nan, np.nan]])
    out = localization_metrics(gt_xy, np.zeros(2), pred_xy, pred_yaw)
    assert out["acc@0.5m"] == 50.0 and out["acc@30deg"] == 50.0
    assert out["median_pos_err_m"] == pytest.approx(0.1)


# ----------------------------------------------------------------------------- record-level scoring


def test_score_records_hand_computed_with_missing_unknown_and_candidates() -> None:
    annotations = {
        "annotations": [
            pose(1, 0.0, 0.0, 0.0),
            pose(2, 1.0, 1.0, 90.0),
            pose(3, -2.0, 0.5, 170.0),
            pose(4, 3.0, 0.0, 0.0),  # no prediction -> wrong (another situation: another pose)
        ]
    }
    predictions = [
        pose(1, 0.2, 0.0, 20.0),  # 0.2 m, 20°: pass 0.5, 1.0, 30 — fail 15
        pose("2", 1.0, 1.7, 95.0),  # string id; 0.7 m, 5°: pass 1.0, 15, 30
        {
            "question_id": 3,
            "candidates": [
                {"position": {"x": -2.0, "y": 3.0, "z": 0}, "rotation": quat(-175.0)},  # 2.5 m, 15° (wrap)
                {"position": {"x": -2.4, "y": 0.5, "z": 0}, "rotation": quat(90.0)},  # 0.4 m, 80°
            ],
        },
        pose(99, 0.0, 0.0, 0.0),  # unknown id
    ]
    out = score_sqa3d_localization(annotations, predictions)
    # Sample 3: best position 0.4 m (2nd candidate), best orientation exactly 15° (1st) -> fails 15, passes 30.
    assert out["acc@0.5m"] == pytest.approx(100 * 2 / 4)  # samples 1, 3
    assert out["acc@1.0m"] == pytest.approx(100 * 3 / 4)  # 1, 2, 3
    assert out["acc@15deg"] == pytest.approx(100 * 1 / 4)  # 2
    assert out["acc@30deg"] == pytest.approx(100 * 3 / 4)  # 1, 2, 3
    assert out["n"] == 4 and out["missing"] == 1 and out["unknown"] == 1
    assert out["missing_examples"] == ["4"] and out["unknown_examples"] == ["99"]
    with pytest.raises(SampleError, match="not in the references"):
        score_sqa3d_localization(annotations, predictions, strict=True)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question_id": 1, "position": {"x": 0, "y": 0, "z": 0}}, "missing field 'rotation'"),
        ({"question_id": 1, "position": {"x": "a", "y": 0}, "rotation": quat(0)}, "'position.x' must be a number"),
        ({"question_id": 1, "position": {"y": 0}, "rotation": quat(0)}, "missing field 'x'"),
        (
            {"question_id": 1, "position": {"x": 0, "y": 0}, "rotation": {"_x": 0, "_y": 0, "_z": 0, "_w": 0}},
            "zero length",
        ),
        ({"question_id": 1, "candidates": []}, "non-empty list"),
        ({"question_id": 1, "candidates": [{"position": {"x": 0, "y": 0}, "rotation": quat(0)}] * 4}, "at most 3"),
        ({"question_id": 1.5, "position": {"x": 0, "y": 0}, "rotation": quat(0)}, "'question_id' must be"),
        ({"position": {"x": 0, "y": 0}, "rotation": quat(0)}, "missing field 'question_id'"),
    ],
)
def test_malformed_predictions_name_record_and_field(record: dict, message: str) -> None:
    with pytest.raises(SampleError, match=message) as info:
        score_sqa3d_localization([pose(1, 0, 0, 0)], [pose(2, 0, 0, 0), record], predictions_source="P.json")
    assert "P.json: record 1" in str(info.value)


def test_duplicate_ids_are_an_error() -> None:
    with pytest.raises(SampleError, match="duplicate question_id '1'"):
        score_sqa3d_localization([pose(1, 0, 0, 0)], [pose(1, 0, 0, 0), pose("1", 0, 0, 0)])
    with pytest.raises(SampleError, match="duplicate"):
        score_sqa3d_localization([pose(1, 0, 0, 0), pose(1, 0, 0, 0)], [])


# ----------------------------------------------------------------------------- real SQA3D records


def _real_annotations() -> list[dict]:
    return json.loads(FIXTURE.read_text())["annotations"]


def test_real_annotations_own_poses_score_100() -> None:
    anns = _real_annotations()
    # Flip the sign of every other quaternion: the same rotation, must not change anything.
    preds = []
    for i, a in enumerate(anns):
        sign = -1.0 if i % 2 else 1.0
        preds.append({**pose(a["question_id"], 0, 0, 0), "position": a["position"]})
        preds[-1]["rotation"] = {k: sign * v for k, v in a["rotation"].items()}
    out = score_sqa3d_localization({"annotations": anns}, preds)
    assert [out[k] for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")] == [100.0] * 4
    assert out["n"] == 25 and out["n_questions"] == 124 and out["missing"] == 0 and out["unit"] == "situation"


def perturbed_predictions(anns: list[dict]) -> list[dict]:
    """Known offsets: position by record index mod 4, yaw by index mod 3 (Hamilton product with a z-rotation)."""
    shifts = [(0.3, 0.0), (0.0, 0.7), (0.9, 0.9), (0.0, 0.0)]  # 0.3 m, 0.7 m, 1.27 m, 0 m
    turns = [10.0, 20.0, -40.0]  # degrees
    preds = []
    for i, a in enumerate(anns):
        dx, dy = shifts[i % 4]
        q = a["rotation"]
        h = math.radians(turns[i % 3]) / 2
        s, c = math.sin(h), math.cos(h)
        # q ⊗ (0, 0, s, c) for a yaw-only q = (0, 0, z, w): (0, 0, z c + w s, w c − z s)
        rot = {"_x": 0.0, "_y": 0.0, "_z": q["_z"] * c + q["_w"] * s, "_w": q["_w"] * c - q["_z"] * s}
        p = a["position"]
        preds.append(
            {
                "question_id": a["question_id"],
                "position": {"x": p["x"] + dx, "y": p["y"] + dy, "z": p["z"]},
                "rotation": rot,
            }
        )
    return preds


def test_real_annotations_perturbed_by_known_offsets() -> None:
    anns = _real_annotations()
    out = score_sqa3d_localization({"annotations": anns}, perturbed_predictions(anns), unit="question")
    n = len(anns)  # 124 = 4 · 31; by index mod 3: 42, 41, 41
    assert out["acc@0.5m"] == pytest.approx(100 * 62 / n)  # shifts 0.3 and 0 m: 50 %
    assert out["acc@1.0m"] == pytest.approx(100 * 93 / n)  # + 0.7 m: 75 %
    assert out["acc@15deg"] == pytest.approx(100 * 42 / n)  # 10° turns only
    assert out["acc@30deg"] == pytest.approx(100 * 83 / n)  # 10° and 20°
