"""A small model's scores on the shared rows, pinned: a refactor that moves code must not move a
score. The values were produced by this very setup before the issue-22 redesign (commit 453f28d);
every setting is spelled out, so a change of defaults does not reach this test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"

#: model -> (detector settings, threshold, sum of the first 300 DDoS rows' scores, scores of rows 0, 1, 50, 150, 299)
PINNED = {
    "lstm_ae": ({"calibration": "quantile", "mahalanobis_inputs": False, "target_fpr": 0.01},
                2.867809534072876, 327.0823672413826,
                [1.0455869436264038, 0.9977754950523376, 1.0455259084701538, 0.9288444519042969, 0.9172206521034241]),
    "mahalanobis_flow": ({"calibration": "mahalanobis", "mahalanobis_inputs": True, "target_fpr": 0.005},
                         23.940453728094447, 6683.5425425104,
                         [24.600656937922285, 19.916040812386004, 24.19261316473029, 20.30709663709032,
                          18.441842708905202]),
}


@pytest.fixture(scope="module")
def ingested(shared_data, tmp_path_factory) -> Path:
    from components.data.ingest import IngestConfig, ingest_paths

    out = tmp_path_factory.mktemp("pinned")
    assert ingest_paths([str(shared_data / BENIGN), str(shared_data / DDOS)], IngestConfig(out=out, run_gx=False)).ok
    return out


@pytest.mark.parametrize("model", sorted(PINNED))
def test_scores_of_a_small_model_are_the_pinned_ones(ingested, model):
    from components.detect.fit import fit_detector
    from components.jobs import DetectorConfig, TrainConfig, TrainJob

    detector_cfg, threshold, total, at = PINNED[model]
    train = TrainConfig(model=model, epochs=1, window=8, stride=4, hidden=8, batch_size=256, lr=1e-3,
                        patience=3, device="cpu", seed=0, scaler="standard")
    job = TrainJob(data=ingested, files=(Path(BENIGN).stem,), train=train, detector=DetectorConfig(**detector_cfg))
    detector = fit_detector(job, progress=False).detector
    rows = pq.read_table(ingested / "curated" / f"{DDOS[:-4]}.parquet").to_pandas().head(300)
    scores = detector.predict(rows)["anomaly_score"].to_numpy()
    assert detector.threshold == pytest.approx(threshold, rel=1e-4)
    assert scores.sum() == pytest.approx(total, rel=1e-4)
    np.testing.assert_allclose(scores[[0, 1, 50, 150, 299]], at, rtol=1e-4)
