"""Drift against the champion's bounded reference: PSI near 0 on the same traffic, large on a
shifted night, the same batch by batch as at once, and a warning that says why."""
from __future__ import annotations

import json

import numpy as np
import pytest

from components.detect.drift import PSI_SHIFT, DriftAccumulator, build_reference, psi

NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    ref = build_reference(rng.normal(size=(50_000, 5)), NAMES, rng.lognormal(size=5_000))
    json.dumps(ref)  # stored with the model as JSON
    assert ref["rows"] == 50_000 and len(ref["score"]["sample"]) == 2_000
    return ref


def night(shift: float, n: int = 20_000, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, :3] += shift
    return x, rng.lognormal(mean=shift, size=n)


def test_same_traffic_is_stable(reference):
    acc = DriftAccumulator(reference, NAMES)
    acc.add(*night(0.0))
    report = acc.report()
    assert max(report.feature_psi.values()) < 0.02 and report.score_psi < 0.02
    assert report.warning is None and report.shifted_features == [] and report.flows == 20_000


def test_shifted_night_warns_and_names_the_features(reference):
    acc = DriftAccumulator(reference, NAMES)
    acc.add(*night(1.0))
    report = acc.report()
    assert report.shifted_features == ["a", "b", "c"] or set(report.shifted_features) == {"a", "b", "c"}
    assert report.score_psi > PSI_SHIFT and report.score_ks > 0.3
    assert "consider retraining" in report.warning and "3 of 5 features" in report.warning


def test_batches_give_the_same_psi_as_one_pass(reference):
    x, s = night(0.5)
    whole = DriftAccumulator(reference, NAMES)
    whole.add(x, s)
    parts = DriftAccumulator(reference, NAMES)
    for lo in range(0, len(x), 1_337):
        parts.add(x[lo:lo + 1_337], s[lo:lo + 1_337])
    assert parts.report().feature_psi == whole.report().feature_psi
    assert len(parts.sample) == 2_000  # bounded, whatever the night's size


def test_psi_formula():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.9, 0.1], [0.5, 0.5]) == pytest.approx(0.4 * np.log(1.8) - 0.4 * np.log(0.2))
