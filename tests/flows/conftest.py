"""Flow tests run real Prefect flow runs against Prefect's temporary test server (one per session)
and a real SQLite MLflow store per test; real CIC-IDS2017 rows are ingested once per module."""
from __future__ import annotations

from pathlib import Path

import pytest
from flow_test_rows import BENIGN, DDOS, PORTSCAN


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def real_ingested(shared_data, tmp_path_factory) -> Path:
    """The benign MachineLearningCVE excerpt, DDoS and PortScan, ingested (component path)."""
    from components.data.ingest import IngestConfig, ingest_paths

    out = tmp_path_factory.mktemp("ingested")
    assert ingest_paths([str(shared_data / f) for f in (BENIGN, DDOS, PORTSCAN)],
                        IngestConfig(out=out, run_gx=False)).ok
    return out


@pytest.fixture
def store(mlflow_env, tmp_path, monkeypatch):
    """A fresh MLflow store and checkpoint/work folders for one test; returns the settings."""
    from components.settings import load_settings

    monkeypatch.setenv("FLOWAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FLOWAE_WORK_DIR", str(tmp_path / "work"))
    return load_settings()
