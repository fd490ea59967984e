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


def test_children_view_is_a_shared_view_sorted_by_the_metric(tmp_path, monkeypatch):
    """The link ``flowae compare`` prints opens a view the store holds: the parent's children,
    sorted by the ranking metric, that metric's column first (tests/e2e renders it in Chromium)."""
    import json

    import mlflow

    from components.tracking import SHARED_VIEW_TAG, children_view, ensure_experiment

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("FLOWAE_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.delenv("FLOWAE_MLFLOW_UI_URL", raising=False)
    settings = load_settings()
    experiment = ensure_experiment(settings, settings.compare_experiment)
    link = children_view(settings, experiment, "p1", "test_auroc", ["test_f1", "test_auroc"])
    assert link == (f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?viewStateShareKey=children-p1"
                    "&workflowType=machine_learning")
    tags = mlflow.MlflowClient().get_experiment(experiment).tags
    state = json.loads(tags[SHARED_VIEW_TAG + "children-p1"])
    assert state["searchFilter"] == "tags.`mlflow.parentRunId` = 'p1'" and state["orderByAsc"] is False
    assert state["orderByKey"] == "metrics.`test_auroc`"
    assert state["selectedColumns"] == state["columnOrder"] == ["metrics.`test_auroc`", "metrics.`test_f1`"]
    assert tags["mlflow.experiment.primaryMetric.name"] == "test_auroc"
    assert tags["mlflow.note.content"].startswith("flowae compare:")  # the experiment's description


def test_printed_ui_commands_work_from_any_directory(tmp_path, monkeypatch):
    from pathlib import Path

    from flows.cli_support import inputs_label, ui_commands

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow/mlflow.db")  # relative, as the default
    monkeypatch.setenv("FLOWAE_ARTIFACT_ROOT", "mlflow/artifacts")
    commands = ui_commands(load_settings())
    mlflow_ui = commands["mlflow"].split()
    assert Path(mlflow_ui[0]).is_absolute() and Path(mlflow_ui[0]).name == "mlflow"
    assert mlflow_ui[3] == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert mlflow_ui[5] == (tmp_path / "mlflow" / "artifacts").as_uri()
    assert Path(commands["prefect"].split()[0]).is_absolute()
    assert inputs_label(["/data/Monday-WorkingHours.pcap_ISCX.csv", "b/"]) == "Monday-WorkingHours, b"
