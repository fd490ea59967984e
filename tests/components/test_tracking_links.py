"""Links into the MLflow UI (printed, returned to Prefect, stored) never carry the credentials a
tracking or UI URI may hold."""
from __future__ import annotations

import pytest

from components.settings import load_settings
from components.tracking import model_link, redact, run_link, runs_link, ui_base


@pytest.mark.parametrize(("uri", "expected"), [
    ("https://user:pass@mlflow.example.org", "https://mlflow.example.org"),
    ("https://alice:p%40ss:w@mlflow.example.org:8443/prefix/", "https://mlflow.example.org:8443/prefix/"),
    ("http://token@127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("https://host/x?workflowType=machine_learning&token=abc&api_key=k",
     "https://host/x?workflowType=machine_learning&token=***&api_key=***"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:///mlflow/mlflow.db", "sqlite:///mlflow/mlflow.db"),
    ("databricks", "databricks"),
])
def test_redact(uri, expected):
    assert redact(uri) == expected


def test_links_from_a_tracking_uri_with_credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://worker:s3cret-pw@mlflow.example.org:5000")
    monkeypatch.delenv("FLOWAE_MLFLOW_UI_URL", raising=False)
    settings = load_settings()
    assert ui_base(settings) == "https://mlflow.example.org:5000"
    for link in (run_link(settings, "3", "abc"), runs_link(settings, "3")):
        assert "s3cret-pw" not in link and "worker" not in link and "@" not in link
    assert run_link(settings, "3", "abc") == \
        "https://mlflow.example.org:5000/#/experiments/3/runs/abc?workflowType=machine_learning"


def test_links_from_a_ui_url_with_credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    monkeypatch.setenv("FLOWAE_MLFLOW_UI_URL", "https://viewer:hunter2@ui.example.org/")
    settings = load_settings()
    assert runs_link(settings, "7") == "https://ui.example.org/#/experiments/7/runs?workflowType=machine_learning"
    assert model_link(settings, "flowae", 2) == \
        "https://ui.example.org/#/models/flowae/versions/2?workflowType=machine_learning"
