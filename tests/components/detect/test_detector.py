"""The detector scores raw rows of any header variant like curated rows, keeps every row in order,
and survives a save/load round trip with identical scores (no pickle)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from components.detect.detector import OUTPUT_COLUMNS, Detector
from components.detect.holdout import score_test


def test_raw_csv_of_either_variant_scores_like_its_curated_rows(tiny_fit, real_ingested, shared_data, names):
    detector = tiny_fit.detector
    for name in (names["ddos"], names["benign"]):
        raw = pd.read_csv(shared_data / name, nrows=600)  # leading spaces, "Fwd Header Length.1", Infinity
        curated = pq.read_table(real_ingested / "curated" / f"{name[:-4]}.parquet").to_pandas()
        curated = curated[curated["row_number"] <= 600]
        kept = raw.index.isin(curated["row_number"] - 1)  # ingest quarantined rows with Infinity
        got_raw = detector.predict(raw)
        assert list(got_raw.columns) == list(OUTPUT_COLUMNS)
        assert len(got_raw) == len(raw) and got_raw["anomaly_score"].notna().all()
        assert kept.sum() == len(curated)  # every curated row is one raw row
        got_curated = detector.predict(curated.drop(columns=["source_file"]))
        # the rows ingest kept, raw or curated, in the same windows: identical scores, whichever
        # rows ingest quarantined (a window over all raw rows would also hold the quarantined ones)
        got_kept = detector.predict(raw[kept])
        np.testing.assert_allclose(got_kept["anomaly_score"].to_numpy(),
                                   got_curated["anomaly_score"].to_numpy(), rtol=1e-5)
        assert set(got_raw["top_feature_1"]) <= set(detector.feature_names)


def test_every_row_in_input_order_with_its_index(tiny_fit, real_ingested, names):
    frame = pq.read_table(real_ingested / "curated" / f"{names['ddos'][:-4]}.parquet").to_pandas().head(37)
    frame.index = np.arange(100, 137)[::-1]
    out = tiny_fit.detector.predict(frame)
    assert out.index.tolist() == frame.index.tolist()
    tiny = tiny_fit.detector.predict(frame.head(3))  # shorter than one window
    assert len(tiny) == 3 and tiny["anomaly_score"].notna().all()
    np.testing.assert_array_equal(out["is_anomaly"], out["anomaly_score"] > tiny_fit.detector.threshold)


def test_rows_of_two_files_are_windowed_apart(tiny_fit, real_ingested, names):
    a = pq.read_table(real_ingested / "curated" / f"{names['ddos'][:-4]}.parquet").to_pandas().head(20)
    b = pq.read_table(real_ingested / "curated" / f"{names['benign'][:-4]}.parquet").to_pandas().head(20)
    both = tiny_fit.detector.score_frame(pd.concat([a, b], ignore_index=True))
    alone = tiny_fit.detector.score_frame(b)
    np.testing.assert_allclose(both.scores[20:], alone.scores, rtol=1e-5)


def test_save_and_load_give_identical_scores_without_pickle(tiny_fit, tmp_path):
    folder = tiny_fit.detector.save(tmp_path / "detector")
    assert {p.name for p in folder.iterdir()} == {"detector.json", "transform.json", "state_dict.pt"}
    again = Detector.load(folder)
    assert again.threshold == tiny_fit.detector.threshold and again.info == tiny_fit.detector.info
    x = tiny_fit.data.x[:200]
    np.testing.assert_allclose(again.scorer().score_all(np.asarray(x)).scores,
                               tiny_fit.detector.scorer().score_all(np.asarray(x)).scores, rtol=1e-6)


def test_in_memory_test_scores_equal_the_packaged_scoring_of_the_same_rows(tiny_fit, real_ingested, names):
    stem = names["ddos"][:-4]
    scored = score_test(tiny_fit.detector, tiny_fit.data)
    ddos = scored.files == f"{stem}.parquet"
    curated = pq.read_table(real_ingested / "curated" / f"{stem}.parquet").to_pandas()
    np.testing.assert_allclose(tiny_fit.detector.predict(curated)["anomaly_score"].to_numpy(),
                               scored.scores[ddos], rtol=1e-5)


@pytest.mark.parametrize("method", ["quantile", "pot", "mahalanobis"])
def test_calibration_methods_round_trip(method, real_ingested, tmp_path, make_job):
    from components.detect.fit import fit_detector

    fit = fit_detector(make_job(real_ingested, epochs=1, detector={"calibration": method}), progress=False)
    assert fit.detector.calibration.method == method
    benign_fpr = float((fit.calibration_scores > fit.detector.threshold).mean())
    assert benign_fpr <= 0.011
    again = Detector.load(fit.detector.save(tmp_path / method))
    x = np.asarray(fit.data.x[:100])
    np.testing.assert_allclose(again.scorer().score_all(x).scores, fit.detector.scorer().score_all(x).scores,
                               rtol=1e-6)
