"""Fixtures shared by every test layer."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "cicids2017"
REAL_BENIGN_MLCVE = SHARED_DATA / "friday-afternoon-benign-head.MachineLearningCVE.csv"
REAL_BENIGN_TL = SHARED_DATA / "friday-afternoon-benign-head.TrafficLabelling.csv"
REAL_DDOS = SHARED_DATA / "friday-ddos-1000.TrafficLabelling.csv"
REAL_PORTSCAN = SHARED_DATA / "friday-portscan-1000.TrafficLabelling.csv"

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

#: test folders in the order they start: the minutes-long files (the stack, the browser, the demo)
#: first, so that with ``--dist loadfile`` the two workers finish together instead of one running
#: the stack test alone at the end
FIRST = ("integration", "e2e", "flows")


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        parts = Path(str(item.fspath)).resolve().relative_to(REPO / "tests").parts
        return FIRST.index(parts[0]) if parts[0] in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order inside each folder and file is kept


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CIC-IDS2017 excerpts beside the checkout (never copied into the project)."""
    if not REAL_BENIGN_MLCVE.is_file():
        pytest.fail(f"real CIC-IDS2017 rows not found at {SHARED_DATA}: ../shared must sit beside the repo")
    return SHARED_DATA


@pytest.fixture
def mlflow_env(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store in tmp_path, selected through the environment like a user would."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FLOWAE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()
