"""Feature selection never leaks identifiers; the benign-fitted transform is exact and round-trips."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from components.data.contract import load_contract
from components.learn.features import (
    ALWAYS_EXCLUDED,
    SCALE_FLOOR,
    FeatureTransform,
    log_features,
    select_features,
    signed_log1p,
)


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def test_identifiers_timestamp_label_and_destination_port_never_selected(contract):
    every = [c.name for c in contract.columns] + ["source_file", "row_number", "not_a_column"]
    chosen = select_features(every, contract)
    banned = set(contract.identifier_names) | {"timestamp", "label", "destination_port", "source_port"}
    assert not banned & set(chosen)
    assert chosen == [n for n in contract.feature_names if n in chosen]  # contract order
    assert set(chosen) == set(contract.feature_names)
    assert "destination_port" in ALWAYS_EXCLUDED


def test_destination_port_guard_holds_even_if_the_contract_calls_it_a_feature(contract):
    from dataclasses import replace

    cols = tuple(replace(c, role="feature") if c.name == "destination_port" else c for c in contract.columns)
    leaky = replace(contract, columns=cols, by_name={c.name: c for c in cols})
    assert "destination_port" in leaky.feature_names
    assert "destination_port" not in select_features(["destination_port", "flow_duration"], leaky)


def test_select_features_keeps_only_present_columns_and_honours_exclude(contract):
    cols = ["label", "flow_packets_s", "flow_duration", "protocol", "total_fwd_packets"]
    assert select_features(cols, contract) == ["flow_duration", "total_fwd_packets", "flow_packets_s"]
    assert select_features(cols, contract, exclude=["flow_duration"]) == ["total_fwd_packets", "flow_packets_s"]


def _fit(rows, names):
    """The transform fitted on every row, through the one fit the pipeline uses (``fit_log``)."""
    return FeatureTransform.fit_log(log_features(rows, names), np.ones(len(rows), dtype=bool), names)


def _frame(rng, n=50):
    return pd.DataFrame({
        "a": rng.exponential(1000.0, n),
        "b": rng.normal(0, 5, n),
        "const": np.full(n, 7.0),
        "c": rng.integers(-1, 3, n).astype(float),
    })


def test_constant_columns_are_dropped_and_recorded():
    frame = _frame(np.random.default_rng(0))
    t = _fit(frame, ["a", "b", "const", "c"])
    assert t.feature_names == ["a", "b", "c"]
    assert t.dropped_constant == ["const"]
    assert t.scale_rows(frame).shape == (50, 3)


def test_signed_log1p_maths():
    x = np.array([-np.e + 1, -1.0, 0.0, 1.0, np.e - 1, 1e12])
    np.testing.assert_allclose(signed_log1p(x), [-1.0, -np.log(2), 0.0, np.log(2), 1.0, np.log1p(1e12)])


def test_transform_is_log_then_standardise_with_stats_of_the_fit_frame_only():
    rng = np.random.default_rng(1)
    train, other = _frame(rng), _frame(rng) * 100
    t = _fit(train, ["a", "b", "c"])
    logged = signed_log1p(train[["a", "b", "c"]].to_numpy())
    np.testing.assert_allclose(t.center, logged.mean(axis=0))
    np.testing.assert_allclose(t.scale, logged.std(axis=0))
    z = t.scale_rows(train)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    expected_other = (signed_log1p(other[["a", "b", "c"]].to_numpy()) - t.center) / t.scale
    np.testing.assert_allclose(t.scale_rows(other), expected_other, rtol=1e-5, atol=1e-5)


def test_non_finite_inputs_take_the_centre_and_are_ignored_by_the_fit():
    frame = pd.DataFrame({"r": [1.0, 3.0, np.inf, np.nan, -np.inf, 7.0], "s": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    t = _fit(frame, ["r", "s"])
    finite = signed_log1p(np.array([1.0, 3.0, 7.0]))
    assert t.center[0] == pytest.approx(finite.mean())
    assert t.scale[0] == pytest.approx(finite.std())
    z = t.scale_rows(frame)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z[[2, 3, 4], 0], np.zeros(3, np.float32))  # the benign centre


def test_all_non_finite_column_counts_as_constant_and_scale_has_a_floor():
    # y varies, but by less than the floor once logged (1e-12 would be one value: dropped as constant)
    frame = pd.DataFrame({"x": [np.nan, np.inf, np.nan], "y": [1.0, 1.0 + 3e-7, 1.0]})
    t = _fit(frame, ["x", "y"])
    assert "x" in t.dropped_constant
    assert t.feature_names == ["y"] and t.scale.tolist() == [SCALE_FLOOR]
    assert np.isfinite(t.scale_rows(frame)).all()


def test_round_trip_through_dict_and_json_file_gives_identical_output(tmp_path):
    frame = _frame(np.random.default_rng(2))
    t = _fit(frame, ["a", "b", "const", "c"])
    d = t.to_dict()
    json.dumps(d)  # JSON-serialisable
    again = FeatureTransform.from_dict(json.loads(json.dumps(d)))
    np.testing.assert_array_equal(again.scale_rows(frame), t.scale_rows(frame))
    path = t.save(tmp_path / "features.json")
    loaded = FeatureTransform.load(path)
    assert loaded.feature_names == t.feature_names and loaded.dropped_constant == ["const"]
    np.testing.assert_array_equal(loaded.scale_rows(frame), t.scale_rows(frame))


def test_a_missing_or_unusable_input_takes_the_benign_centre_not_a_far_value():
    """The bug this guards: NaN set to 0 in *log* space landed at -center/scale (about -5 standard
    deviations for a byte count) and flagged every row of a file without one optional column."""
    rng = np.random.default_rng(3)
    frame = _frame(rng)
    t = _fit(frame, ["a", "b", "c"])
    assert t.center[0] > 5  # log1p of ~1000-byte values: far from 0 in log space
    without = t.scale_rows(frame.drop(columns=["a"]))
    full = t.scale_rows(frame)
    np.testing.assert_array_equal(without[:, 0], np.zeros(len(frame), np.float32))
    np.testing.assert_array_equal(without[:, 1:], full[:, 1:])
    broken = frame.assign(a=[np.nan, np.inf, -np.inf] + frame["a"].tolist()[3:])
    np.testing.assert_array_equal(t.scale_rows(broken)[:3, 0], np.zeros(3, np.float32))
    nulls = pa.table({"a": pa.array([None, 5.0], pa.float64()), "b": [1.0, 2.0], "c": [0.0, 1.0]})
    assert t.scale_rows(nulls)[0, 0] == 0.0 and t.scale_rows(nulls)[1, 0] != 0.0


def test_exact_duplicate_columns_are_dropped_and_recorded():
    """``fwd_header_length_1`` repeats ``fwd_header_length`` in every published file: one input."""
    frame = _frame(np.random.default_rng(4))
    frame["a_copy"] = frame["a"]
    frame["b_near"] = frame["b"] + 1e-3
    t = _fit(frame, ["a", "b", "a_copy", "b_near", "const"])
    assert t.feature_names == ["a", "b", "b_near"]
    assert t.dropped_duplicate == {"a_copy": "a"} and t.dropped_constant == ["const"]
    assert t.dropped == ["const", "a_copy"]
    assert FeatureTransform.from_dict(t.to_dict()).dropped_duplicate == {"a_copy": "a"}


def test_real_benign_rows_drop_the_duplicated_header_length(shared_data):
    frame = pd.read_csv(shared_data / "friday-afternoon-benign-head.TrafficLabelling.csv")
    from components.data.logs import typed_rows

    rows = typed_rows(frame)
    t = _fit(rows, select_features(rows.column_names))
    assert t.dropped_duplicate.get("fwd_header_length_1") == "fwd_header_length"
    assert "fwd_header_length_1" not in t.feature_names
