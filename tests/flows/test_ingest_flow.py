"""The real ingest flow on Prefect's test server and a SQLite MLflow store (from ``mlflow_env``)."""
from __future__ import annotations

import errno
import gzip
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

DDOS = "friday-ddos-1000.TrafficLabelling.csv"
MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"
FLOWAE = str(Path(sys.executable).with_name("flowae"))


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
    assert manifest["order"]["files"] == ["ddos.csv"]  # decided over the files with curated rows
    assert {k: v for k, v in run.data.tags.items() if k.startswith("flowae.file_order")} == {
        "flowae.file_order": '["ddos.csv"]', "flowae.file_order_method": "first timestamp of each file",
        "flowae.file_order_guessed": "false"}
    assert result["order"] == manifest["order"]


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


@pytest.mark.slow  # flowae ingest in subprocesses (15-25 s)
def test_cli_ingest_exit_codes(two_files, shared_data, tmp_path, mlflow_env):
    from flows.cli import app

    runner = CliRunner()
    lines = (shared_data / MLCVE).read_bytes().split(b"\r\n")[:6]
    (tmp_path / "benign.csv").write_bytes(b"\r\n".join(lines) + b"\r\n")  # no day, no timestamps
    ok = runner.invoke(app, ["ingest", str(shared_data / DDOS), str(tmp_path / "benign.csv"),
                             "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[:2] == [f"{DDOS}: ok, rows in 1000, curated 1000, quarantined 0",
                                          "benign.csv: ok, rows in 5, curated 5, quarantined 0"]
    assert ("note: file order is a guess (order given on the command line): name the capture day in "
            "file names") in ok.stderr
    bad = runner.invoke(app, ["ingest", *two_files, "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1
    assert "broken.csv: failed, rows in 0, curated 0, quarantined 0, empty file (0 bytes)" in bad.output
    assert "ddos.csv: ok, rows in 100, curated 99, quarantined 1" in bad.output
    assert "1 of 2 files failed" in bad.output


def test_cli_refuses_a_file_as_out_with_one_line_and_writes_nothing(shared_data, tmp_path):
    from flows.cli import app

    (tmp_path / "out").write_text("keep me")
    done = CliRunner().invoke(app, ["ingest", str(shared_data / DDOS), "--out", str(tmp_path / "out")])
    assert done.exit_code == 2
    out = tmp_path / "out"
    assert done.stderr.splitlines() == [f"flowae: ingest: --out {out}: {out} is a file, not a folder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out").read_text() == "keep me"


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: no test harness, a Prefect home of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API", "PREFECT_HOME"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "MLFLOW_DISABLE_TELEMETRY": "true",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "FLOWAE_ARTIFACT_ROOT": str(tmp_path / "artifacts")})
    return env


@pytest.mark.slow  # flowae ingest in subprocesses, one per bad input (30-45 s)
def test_flowae_ingest_on_bad_inputs_says_one_line_per_file_and_no_traceback(shared_data, tmp_path):
    """The real command, as a user runs it, on a folder of broken and compressed inputs."""
    folder = tmp_path / "in"
    folder.mkdir()
    lines = (shared_data / DDOS).read_bytes().split(b"\n")[:11]
    (folder / "cr-only.csv").write_bytes(b"\r".join(lines) + b"\r")
    rng = random.Random(1)
    (folder / "garbage.csv").write_bytes(bytes(rng.randrange(1, 256) for _ in range(4000)))
    broken = list(lines)
    broken[2] += b",extra\x96"  # too many fields, with a cp1252 byte
    broken[4] = b'"' + broken[4]  # unterminated quote
    broken[6] = broken[6].replace(b",6,7/7", b",99999999999999999999,7/7")  # protocol beyond int64
    broken[8] = broken[8].replace(b",DDoS", b",ddos")  # known label, other case
    (folder / "broken-rows.csv").write_bytes(b"\n".join(broken) + b"\n")
    (folder / "packed.csv.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    with zipfile.ZipFile(folder / "GeneratedLabelledFlows.zip", "w") as zf:
        zf.writestr("TrafficLabelling/Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv",
                    b"\n".join(lines) + b"\n")
    done = subprocess.run([FLOWAE, "ingest", str(folder), str(tmp_path / "missing.csv"),
                           "--out", str(tmp_path / "out")], env=_fresh_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "flowae: ingest: 2 of 6 files failed"
    got = set(done.stdout.splitlines()[:-1])
    assert got == {
        ("GeneratedLabelledFlows.zip!TrafficLabelling/Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv: "
         "ok, rows in 10, curated 10, quarantined 0"),
        "broken-rows.csv: ok, rows in 10, curated 7, quarantined 3",
        "cr-only.csv: ok, rows in 10, curated 10, quarantined 0",
        "packed.csv.gz: ok, rows in 10, curated 10, quarantined 0",
        ("garbage.csv: failed, rows in 0, curated 0, quarantined 0, binary content (control bytes), "
         "not a CSV file"),
        ("missing.csv: failed, rows in 0, curated 0, quarantined 0, file not found (missing or removed "
         "before it could be read)"),
    }
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    broken_entry = next(f for f in manifest["files"] if f["source"].endswith("broken-rows.csv"))
    assert broken_entry["quarantine_reasons"] == {"protocol: above max 255": 1, "unterminated quote": 1,
                                                  "wrong field count: 86 of 85": 1}
