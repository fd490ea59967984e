"""Real CIC-IDS2017 rows ingested once per module (no Prefect: the component path), and a tiny
detector trained on the benign file's early part, for the detect and serve tests."""
from __future__ import annotations

from pathlib import Path

import pytest

BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"
PORTSCAN = "friday-portscan-1000.TrafficLabelling.csv"
WEEK = "week-benign-sample.CICIDS2017_sample.csv"


@pytest.fixture(scope="module")
def real_ingested(shared_data, tmp_path_factory) -> Path:
    from components.data.ingest import IngestConfig, ingest_paths

    out = tmp_path_factory.mktemp("ingested")
    result = ingest_paths([str(shared_data / f) for f in (BENIGN, DDOS, PORTSCAN, WEEK)],
                          IngestConfig(out=out, run_gx=False))
    assert result.ok
    return out


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    """The real files by role: benign, ddos, portscan, week (the other days' benign sample)."""
    return {"benign": BENIGN, "ddos": DDOS, "portscan": PORTSCAN, "week": WEEK}


@pytest.fixture(scope="module")
def make_job():
    """A tiny training job on an ingest folder (the benign file trains; the others are test)."""
    return tiny_job


def tiny_job(data: Path, **train):
    from components.jobs import DetectorConfig, TrainConfig, TrainJob

    # spelled out (not the recommended defaults): a tiny, fast detector with a quantile threshold
    detector = {"calibration": "quantile", "mahalanobis_inputs": False, "target_fpr": 0.01,
                **train.pop("detector", {})}
    cfg = {"model": "lstm_ae", "epochs": 2, "window": 8, "stride": 4, "hidden": 8, "batch_size": 256,
           "lr": 1e-3, "patience": 3, "device": "cpu", "seed": 0, **train}
    return TrainJob(data=data, files=(Path(BENIGN).stem,), train=TrainConfig(**cfg),
                    detector=DetectorConfig(**detector))


@pytest.fixture(scope="module")
def tiny_fit(real_ingested):
    from components.detect.fit import fit_detector

    return fit_detector(tiny_job(real_ingested), progress=False)
