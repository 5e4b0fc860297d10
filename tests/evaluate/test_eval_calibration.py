"""Position-sigma calibration, the validation temperature, pose candidates and the QA-by-localization split."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loc3r.evaluate.calibration import (
    GAUSSIAN_2D_COVERAGE,
    fit_candidate_spread,
    fit_temperature,
    normalised_errors,
    orientation_modes,
    pose_candidates,
    qa_by_localization,
    reliability_plot,
    sigma_calibration,
)


def gaussian_predictions(n: int, true_scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted sigma per axis; the true error is Gaussian with std = true_scale * sigma."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.1, 2.0, size=(n, 2))
    gt = rng.uniform(-5, 5, size=(n, 2))
    pred = gt + rng.normal(size=(n, 2)) * sigma * true_scale
    return pred, gt, sigma


def test_coverage_constants() -> None:
    assert [round(100 * GAUSSIAN_2D_COVERAGE[k], 1) for k in (1, 2, 3)] == [39.3, 86.5, 98.9]


def test_calibrated_sigma_matches_the_gaussian_and_overconfident_is_fixed_by_temperature(tmp_path) -> None:
    pred, gt, sigma = gaussian_predictions(20000, 1.0)
    cal = sigma_calibration(pred, gt, sigma)
    for k in (1, 2, 3):
        assert cal[f"within_{k}sigma"] == pytest.approx(cal[f"expected_{k}sigma"], abs=1.5)
    assert all(abs(exp - obs) < 0.015 for exp, obs in cal["reliability"])

    # sigma 2.5x too small: far fewer errors within 1 sigma; the validation temperature recovers the scale
    val = gaussian_predictions(5000, 2.5, seed=1)
    test = gaussian_predictions(5000, 2.5, seed=2)
    before = sigma_calibration(*test)
    assert before["within_1sigma"] < 10.0
    temperature = fit_temperature(*val)
    assert temperature == pytest.approx(2.5, rel=0.03)
    after = sigma_calibration(*test, temperature=temperature)
    assert after["within_1sigma"] == pytest.approx(100 * GAUSSIAN_2D_COVERAGE[1], abs=2.0)
    assert after["nll"] < before["nll"]
    png = reliability_plot({"raw": before["reliability"], "T": after["reliability"]}, tmp_path / "rel.png")
    assert png.stat().st_size > 1000


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 10.0), st.integers(0, 1000))
def test_temperature_divides_the_normalised_error(temperature: float, seed: int) -> None:
    pred, gt, sigma = gaussian_predictions(16, 1.3, seed)
    r1 = normalised_errors(pred, gt, sigma)
    assert normalised_errors(pred, gt, sigma, temperature) == pytest.approx(r1 / temperature)
    # the fitted temperature is the maximum-likelihood one: NLL(T) >= NLL(T_fit)
    t_fit = fit_temperature(pred, gt, sigma)
    assert (
        sigma_calibration(pred, gt, sigma, temperature)["nll"]
        >= sigma_calibration(pred, gt, sigma, t_fit)["nll"] - 1e-9
    )


def test_bad_sigma_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        normalised_errors(np.zeros((1, 2)), np.zeros((1, 2)), np.array([[0.0, 1.0]]))


def bins(*peaks: tuple[float, float], n: int = 36) -> np.ndarray:
    centres = -math.pi + (np.arange(n) + 0.5) * 2 * math.pi / n
    p = np.zeros(n)
    for yaw_deg, mass in peaks:
        d = np.angle(np.exp(1j * (centres - math.radians(yaw_deg))))
        p += mass * np.exp(-0.5 * (d / math.radians(10)) ** 2)
    return p / p.sum()


def test_orientation_modes_and_candidates() -> None:
    modes = orientation_modes(bins((35.0, 0.7), (-125.0, 0.3)))
    assert len(modes) == 2
    assert math.degrees(modes[0]) == pytest.approx(35.0, abs=3) and math.degrees(modes[1]) == pytest.approx(-125, abs=3)

    head_yaw = math.radians(30.0)
    cands = pose_candidates([1.0, 2.0], [0.2, 0.5], bins((35.0, 0.7), (-125.0, 0.3)), head_yaw, temperature=2.0,
                            spread=1.5)  # fmt: skip
    assert len(cands) == 3 and cands[0][0] == pytest.approx([1.0, 2.0]) and cands[0][1] == head_yaw
    # positions along the larger calibrated sigma (y: 2 * 0.5 = 1.0 m), +- 1.5 of it
    assert cands[1][0] == pytest.approx([1.0, 3.5]) and cands[2][0] == pytest.approx([1.0, 0.5])
    # the 35 deg mode is within one bin of the head's 30 deg: skipped; the -125 deg mode comes next
    assert math.degrees(cands[1][1]) == pytest.approx(-125, abs=3)
    assert math.degrees(cands[2][1]) == pytest.approx(70.0)  # then the head's yaw + 4 bins
    single = pose_candidates([0, 0], [0.3, 0.3], None, 0.0, k=1)
    assert len(single) == 1


def test_candidate_spread_fit_and_qa_split() -> None:
    pred, gt, sigma = gaussian_predictions(2000, 1.0, seed=3)
    best, scores = fit_candidate_spread(pred, gt, sigma, temperature=1.0)
    assert best in scores and scores[best] >= scores[0.0]
    out = qa_by_localization([True, True, False, False, False], [True, False, False, False, True], [0.2, 0.4, 1, 2, 3])
    assert out["qa_acc_localized"] == 50.0 and out["qa_acc_not_localized"] == pytest.approx(100 / 3)
    assert out["n_localized"] == 2 and out["mean_sigma_localized_m"] == pytest.approx(0.3)
    assert out["mean_sigma_not_localized_m"] == pytest.approx(2.0)
