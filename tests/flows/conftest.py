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


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (SQLite, proxied artifacts) on a free loopback port for one module;
    yields the port. Stopped with its uvicorn child at teardown."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from tests.waits import answers_health, wait_until

    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_"))}
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until(lambda: answers_health(f"http://127.0.0.1:{port}"), 240, "mlflow server did not start",
                   interval_s=0.5, process=proc, details=lambda: (folder / "server.log").read_text()[-2000:])
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
