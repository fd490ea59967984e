"""A tracking URI that carries credentials (``http://user:password@host``, as a worker may be given)
never shows them: not in what `flowae train` prints, not in MLflow's runs, tags or model records,
not in Prefect artifacts, not in the command's log. A real ``mlflow server`` on 127.0.0.1 (it
ignores the credentials; a user:password in the URL is what requests sends as basic auth); the
registered model is then loaded back through it without running stored code."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from flow_test_rows import TINY
from mlflow import MlflowClient
from typer.testing import CliRunner

from components.detect.packaging import load_detector, model_id, verified_pyfunc
from flows.cli import app

SECRET = "s3cret-Pw-19"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` with proxied artifacts on a free loopback port, for this module."""
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
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn child, started above
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _prefect_artifacts_text() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(sort=ArtifactSort.CREATED_DESC, limit=200)
    return json.dumps([[a.key, a.description, a.data] for a in found], default=str)


def test_credentials_in_the_tracking_uri_are_never_shown(server, real_ingested, tmp_path, monkeypatch):
    clean = f"http://127.0.0.1:{server}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://worker:{SECRET}@127.0.0.1:{server}")
    monkeypatch.delenv("FLOWAE_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # MLflow's own links: flowae turns them off
    monkeypatch.setenv("FLOWAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FLOWAE_WORK_DIR", str(tmp_path / "work"))
    result = CliRunner().invoke(app, ["train", "--data", str(real_ingested), "--files",
                                      "friday-afternoon-benign-head.MachineLearningCVE", *TINY, "--challenger"])
    assert result.exit_code == 0, result.output
    printed = result.output + (result.stderr or "")
    assert f"open: {clean}/#/experiments/" in printed
    assert SECRET not in printed

    client = MlflowClient(clean, registry_uri=clean)
    stored = []
    for experiment in client.search_experiments():
        stored.append(experiment.tags)
        for run in client.search_runs([experiment.experiment_id]):
            stored += [run.data.tags, run.data.params, run.info.artifact_uri]
    for version in client.search_model_versions():
        stored += [version.tags, version.source]
    mlflow.set_tracking_uri(clean)
    logged = client.get_logged_model(model_id("models:/flowae@challenger"))
    stored += [logged.tags, logged.artifact_location]
    assert SECRET not in json.dumps(stored, default=str)
    assert SECRET not in _prefect_artifacts_text()
    logs = [p.read_text(errors="replace") for p in (tmp_path / "work").rglob("*") if p.is_file() and p.suffix in
            (".log", ".txt", ".json")]
    assert not any(SECRET in text for text in logs)

    mlflow.set_tracking_uri(f"http://worker:{SECRET}@127.0.0.1:{server}")  # loading through the server
    detector = load_detector("models:/flowae@challenger")
    assert detector.threshold > 0 and verified_pyfunc("models:/flowae@challenger") is not None
