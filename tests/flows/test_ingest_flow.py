"""The real ingest flow on Prefect's test server and a SQLite MLflow store (from ``mlflow_env``)."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

DDOS = "friday-ddos-1000.TrafficLabelling.csv"


@pytest.fixture
def two_files(shared_data, tmp_path) -> list[str]:
    good = tmp_path / "in" / "ddos.csv"
    good.parent.mkdir()
    lines = (shared_data / DDOS).read_bytes().split(b"\n")[:101]
    lines[7] = lines[7].replace(b",DDoS", b",Mystery")
    good.write_bytes(b"\n".join(lines) + b"\n")
    bad = tmp_path / "in" / "broken.csv"
    bad.write_bytes(b"")
    return [str(good), str(bad)]


def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-validation-summary"])))
    return {a.key for a in found if a.type == "table"}


def test_ingest_flow_manifest_artifact_and_mlflow(two_files, tmp_path, mlflow_env):
    from flows.ingest import ingest_flow

    out = tmp_path / "out"
    result = ingest_flow(two_files, str(out))
    assert result["ok"] is False
    manifest = json.loads((out / "manifest.json").read_text())
    files = {Path(f["source"]).name: f for f in manifest["files"]}
    assert (files["ddos.csv"]["status"], files["ddos.csv"]["rows_in"], files["ddos.csv"]["rows_curated"],
            files["ddos.csv"]["rows_quarantined"]) == ("ok", 100, 99, 1)
    assert files["ddos.csv"]["quarantine_reasons"] == {"label: unknown 'Mystery'": 1}
    assert (files["broken.csv"]["status"], files["broken.csv"]["error"]) == ("failed", "empty file (0 bytes)")
    assert files["ddos.csv"]["validation_success"] is False  # the label set allows no unknown label
    assert files["ddos.csv"]["failed_expectations"] == ["expect_column_values_to_be_in_set(label)"]

    assert "ingest-validation-summary" in _artifact_keys()

    run = mlflow.get_run(result["mlflow_run_id"])
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == "flowae-data"
    assert run.data.metrics["rows_in"] == 100
    assert run.data.metrics["rows_quarantined"] == 1
    assert run.data.metrics["files_failed"] == 1
    assert run.data.metrics["null_count.flow_bytes_s"] == 0
    assert run.data.metrics["inf_count.flow_bytes_s"] == 0
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["ddos.csv", "broken.csv"]
    sha = files["ddos.csv"]["sha256"]
    assert inputs[0].dataset.digest == sha[:36]
    assert {t.key: t.value for t in inputs[0].tags}["sha256"] == sha
    assert {t.key: t.value for t in inputs[1].tags}["status"] == "failed"
    assert json.loads(inputs[0].dataset.source)["uri"] == files["ddos.csv"]["source"]
    client = mlflow.MlflowClient()
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"ingest", "validation", "data_docs"} <= top
    assert "validation/ddos.json" in {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert "data_docs/index.html" in {a.path for a in client.list_artifacts(run.info.run_id, "data_docs")}


def test_ingest_task_retries_transient_io_errors(shared_data, tmp_path, mlflow_env, monkeypatch):
    import flows.ingest as flow_mod

    real = flow_mod.ingest_file
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real(*args, **kwargs)

    monkeypatch.setattr(flow_mod, "ingest_file", flaky)
    result = flow_mod.ingest_flow([str(shared_data / DDOS)], str(tmp_path / "out"), run_gx=False,
                                  log_to_mlflow=False)
    assert len(calls) == 2
    assert result["ok"] is True and result["files"][0]["rows_curated"] == 1000


def test_cli_ingest_exit_codes(two_files, shared_data, tmp_path, mlflow_env):
    from flows.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", str(shared_data / DDOS), "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert f"{DDOS}: ok, rows in 1000, curated 1000, quarantined 0" in ok.output
    bad = runner.invoke(app, ["ingest", *two_files, "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1
    assert "broken.csv: failed, rows in 0, curated 0, quarantined 0, empty file (0 bytes)" in bad.output
    assert "ddos.csv: ok, rows in 100, curated 99, quarantined 1" in bad.output
    assert "1 of 2 files failed" in bad.output
