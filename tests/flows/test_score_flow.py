"""`flowae score` with the champion: every row scored, a bad file quarantined while the others go
on, the night's summary in summary.json, MLflow and a Prefect artifact; the same outputs on a
two-worker Dask cluster with a big parquet file cut into parts; the inbox ledger of score-nightly."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from flow_test_rows import BENIGN, DDOS, WEEK, champion, latest_artifact
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from flows.cli import app


@pytest.fixture
def scored_store(store, real_ingested):
    version = champion(store, real_ingested)
    return store, version


def test_score_every_row_quarantine_the_unreadable_and_report_the_night(scored_store, shared_data, tmp_path):
    store, version = scored_store
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01binary\x00" * 50)
    out = tmp_path / "scored"
    result = CliRunner().invoke(app, ["score", str(shared_data / DDOS), str(shared_data / WEEK), str(junk),
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "flowae: score: 1 of 3 files failed"
    assert "junk.csv: failed, binary content" in result.stderr

    ddos = pq.read_table(out / "friday-ddos-1000.TrafficLabelling.scored.parquet")
    raw = pd.read_csv(shared_data / DDOS)
    assert ddos.num_rows == len(raw) and ddos.column("row_number").to_pylist() == list(range(1, 1001))
    assert ddos.column("source_port").to_pylist() == raw["Source Port"].tolist()  # original values, canonical names
    assert set(ddos.column("model_version").to_pylist()) == {version}
    week = pq.read_table(out / "week-benign-sample.CICIDS2017_sample.scored.parquet")
    assert week.num_rows == 1686 and "destination_port" not in week.column_names  # a log without ports
    assert json.loads((out / "quarantine" / "junk.json").read_text())["error"].startswith("binary content")

    summary = json.loads((out / "summary.json").read_text())
    assert summary["flows"] == 2686 and summary["model_version"] == version
    # the hosts to look at lead the report: the DDoS source is the only host; the sample has no identifiers
    assert next(iter(summary)) == "entities" and result.stdout.startswith("hosts to look at: ")
    hosts = summary["entities"]["hosts"]
    assert [(r["entity"], r["flows"]) for r in hosts["table"]] == [("172.16.0.1", 1000)]
    assert hosts["table"][0]["flagged_flows"] == int(ddos.column("is_anomaly").to_numpy().sum())
    assert summary["entities"]["pairs"]["table"][0]["entity"] == "172.16.0.1 -> 192.168.10.50"
    assert list(summary["entities"]["files_without_identifiers"].values()) == ["no source_ip column"]
    assert summary["anomalies"] == int(ddos.column("is_anomaly").to_numpy().sum()
                                       + week.column("is_anomaly").to_numpy().sum())
    assert [f["status"] for f in summary["files"]] == ["ok", "ok", "failed"]
    top = summary["top_flows"][0]
    assert top["anomaly_score"] == max(ddos.column("anomaly_score").to_pylist() + week.column("anomaly_score").to_pylist())
    assert {"source_file", "row_number", "top_feature_1"} <= set(top)
    assert summary["by_label"]["DDoS"]["flows"] == 1000 and summary["by_label"]["BENIGN"]["flows"] == 1686
    flagged_ports = pc.value_counts(ddos.filter(ddos.column("is_anomaly")).column("destination_port")).to_pylist()
    assert summary["anomalies_by_destination_port"] == {  # the sample has no ports; every DDoS flow is to :80
        str(v["values"]): {"anomalies": v["counts"], "flows": 1000} for v in flagged_ports}
    assert list(summary["by_hour"]) == ["2017-07-07 15:00"]  # DDoS at 15:56; the sample has no times
    drift = summary["drift"]
    assert drift["flows"] == 2686 and drift["measured_on"].startswith("flows the champion did not flag")
    assert drift["warning"] is None and drift["flagged"] == summary["anomalies"]  # an attack is not drift

    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(store.scoring_experiment).experiment_id])
    assert runs[0].data.tags["flowae.model_version"] == version and runs[0].data.metrics["flows"] == 2686
    assert runs[0].data.metrics["hosts_ranked"] == 1
    assert "scoring/entities.json" in {a.path for a in client.list_artifacts(runs[0].info.run_id, "scoring")}
    plots = {a.path for a in client.list_artifacts(runs[0].info.run_id, "plots")}
    assert {"plots/score_histogram.png", "plots/feature_drift.png", "plots/anomalies_over_time.png"} <= plots
    night = latest_artifact("nightly-scoring")
    assert night.type == "markdown"
    assert night.data.startswith(f"## flowae scoring: 2,686 flows, {summary['anomalies']:,} anomalies")
    assert "junk.csv: binary content" in night.data  # the file not scored, with its reason
    assert night.data.index("### hosts to look at") < night.data.index("| score | file | row |")  # hosts first
    assert "| 172.16.0.1 |" in night.data
    assert f"| DDoS | 1000 | {summary['by_label']['DDoS']['anomalies']} |" in night.data

    again = CliRunner().invoke(app, ["score", str(shared_data / DDOS), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0
    same = pq.read_table(tmp_path / "again" / "friday-ddos-1000.TrafficLabelling.scored.parquet")
    assert same.equals(ddos)  # the same input and model give the same file


@pytest.mark.slow  # a local Dask cluster (20-35 s)
def test_dask_cluster_with_parts_gives_the_sequential_outputs(scored_store, shared_data, tmp_path):
    from distributed import LocalCluster

    from components.jobs import ScoreJob
    from flows.score import run_score_flow

    frame = pd.read_csv(shared_data / BENIGN)
    big = tmp_path / "friday.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), big, row_group_size=1_000)
    small = shared_data / DDOS
    sequential = run_score_flow(ScoreJob(inputs=(str(big), str(small)), out=tmp_path / "seq", device="cpu"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        parallel = run_score_flow(ScoreJob(inputs=(str(big), str(small)), out=tmp_path / "dask", device="cpu",
                                  runner="dask", address=cluster.scheduler_address, part_rows=3_000))
    for name in ("friday.scored.parquet", "friday-ddos-1000.TrafficLabelling.scored.parquet"):
        a, b = pq.read_table(tmp_path / "seq" / name), pq.read_table(tmp_path / "dask" / name)
        assert a.num_rows == b.num_rows
        np.testing.assert_allclose(a.column("anomaly_score").to_numpy(), b.column("anomaly_score").to_numpy(),
                                   rtol=1e-5)
        assert a.drop_columns(["anomaly_score", "is_anomaly"]).equals(b.drop_columns(["anomaly_score", "is_anomaly"]))
    assert not (tmp_path / "dask" / ".parts" / "friday").exists()
    assert (sequential["flows"], sequential["anomalies"]) == (parallel["flows"], parallel["anomalies"])


def test_score_nightly_scores_each_inbox_file_once_also_after_a_crash(scored_store, shared_data, tmp_path,
                                                                      monkeypatch):
    import errno
    from pathlib import Path

    from components.serve import scoring
    from components.serve.inbox import Ledger
    from flows.score import score_nightly_flow

    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    inbox.mkdir()
    for name in (DDOS, WEEK):
        (inbox / name).write_bytes((shared_data / name).read_bytes())
    real = scoring._stream

    def crash_on_week(detector, log, target, *args, **kwargs):
        if "week" in target.name:
            raise OSError(errno.EIO, "disk vanished")  # an I/O error on the second file: may pass
        return real(detector, log, target, *args, **kwargs)

    monkeypatch.setattr(scoring, "_stream", crash_on_week)
    first = score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True)
    assert first.is_failed() and first.message == f"1 of 2 files failed: {WEEK}"  # alerting sees it
    files = {Path(f["source"]).name: f for f in first.result(raise_on_failure=False).summary["files"]}
    assert files[DDOS]["status"] == "ok"  # the others were scored
    assert files[WEEK]["error"] == "I/O error: disk vanished (attempt 1 of 3; tried again next night)"
    ledger = {Path(i.path).name: i for i in Ledger(out).items()}
    assert {k: v.status for k, v in ledger.items()} == {DDOS: "done", WEEK: "failed"}
    monkeypatch.setattr(scoring, "_stream", real)

    second = score_nightly_flow(str(inbox), str(out), settle_s=0)
    assert [Path(f["source"]).name for f in second["files"]] == [WEEK]  # not DDoS again
    week = next(i for i in Ledger(out).items() if i.path.endswith(WEEK))
    assert week.status == "done" and week.attempts == 2 and week.output == ledger[WEEK].output  # its first night's name
    assert pq.read_table(week.output).num_rows == 1686
    third = score_nightly_flow(str(inbox), str(out), settle_s=0)
    assert third["files"] == [] and third["night"] is None
    assert {i.status for i in Ledger(out).items()} == {"done"}


def test_serve_builds_both_deployments_from_the_settings(monkeypatch):
    from flows.serve import deployments

    monkeypatch.setenv("FLOWAE_SCORE_CRON", "30 1 * * *")
    monkeypatch.setenv("FLOWAE_INBOX_DIR", "/srv/inbox")
    from components.settings import load_settings

    built = {d.name: d for d in deployments(load_settings())}
    assert set(built) == {"retrain", "score-nightly"}
    assert {d.concurrency_limit for d in built.values()} == {1}  # one night (one retrain) at a time
    assert built["score-nightly"].schedules[0].schedule.cron == "30 1 * * *"
    assert built["retrain"].schedules[0].schedule.cron == "0 3 * * 0"
    assert built["score-nightly"].parameters["inbox"] == "/srv/inbox"


@pytest.mark.slow  # flowae serve in a subprocess (30-45 s)
def test_flowae_serve_runs_score_nightly_when_its_deployment_is_triggered(scored_store, shared_data, tmp_path):
    """The real thing: `flowae serve` in its own process on the Prefect API; a run of its
    score-nightly deployment scores the inbox; SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from tests.waits import wait_until

    store, version = scored_store
    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    inbox.mkdir()
    (inbox / DDOS).write_bytes((shared_data / DDOS).read_bytes())
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": store.tracking_uri,
           "FLOWAE_INBOX_DIR": str(inbox), "FLOWAE_SCORED_DIR": str(out), "FLOWAE_INBOX_SETTLE_S": "0",
           "FLOWAE_WORK_DIR": str(tmp_path / "work"), "FLOWAE_ARTIFACT_ROOT": str(store.artifact_root)}
    serve = subprocess.Popen([str(Path(sys.executable).with_name("flowae")), "serve"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    def registered() -> bool:
        with get_client(sync_client=True) as client:
            try:
                return client.read_deployment_by_name("score-nightly/score-nightly") is not None
            except ObjectNotFound:
                return False

    try:
        wait_until(registered, 120, "flowae serve did not register score-nightly", interval_s=0.5, process=serve,
                   details=lambda: serve.stdout.read()[-3000:] if serve.poll() is not None else "")
        run = run_deployment("score-nightly/score-nightly", timeout=180)
        assert run.state.is_completed(), run.state
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
    from components.serve.inbox import Ledger

    assert [i.status for i in Ledger(out).items()] == ["done"]
    night = next(out.glob("*T*"))
    assert pq.read_table(night / "friday-ddos-1000.TrafficLabelling.scored.parquet").num_rows == 1000
    assert json.loads((night / "summary.json").read_text())["model_version"] == version
