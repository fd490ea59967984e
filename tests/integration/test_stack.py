"""Smoke test of the production stack, over HTTP, as a client sees it.

MLflow: a run with params, metrics and an artifact, and a registered model version with an alias,
must land in PostgreSQL (``runs``, ``registered_model_aliases``) and in the S3 bucket; requests
without or with wrong credentials are refused, and so is an unknown Host header. Prefect: a real
flow run in a subprocess configured only by ``stack.subprocess_env()`` must be a row of
``flow_run`` in the prefect database.
"""
from __future__ import annotations

import base64
import subprocess
import sys
import uuid

import pytest
from stack import S3_BUCKET, http_status


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def mlflow_client(stack):
    """An MlflowClient bound to the stack's server (no global tracking URI is changed)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_USERNAME", stack.mlflow.username)
    mp.setenv("MLFLOW_TRACKING_PASSWORD", stack.mlflow.password)
    from mlflow import MlflowClient

    yield MlflowClient(tracking_uri=stack.mlflow.url, registry_uri=stack.mlflow.url)
    mp.undo()


@pytest.fixture(scope="module")
def logged_run(stack, mlflow_client, tmp_path_factory):
    """One finished run with a param, a metric and a small artifact, and model version @champion."""
    client = mlflow_client
    suffix = uuid.uuid4().hex[:8]
    experiment_id = client.create_experiment(
        f"stack-smoke-{suffix}", tags={"mlflow.experimentKind": "custom_model_development"})
    run = client.create_run(experiment_id, run_name="smoke")
    run_id = run.info.run_id
    client.log_param(run_id, "window", "16")
    client.log_metric(run_id, "auroc", 0.93)
    artifact = tmp_path_factory.mktemp("artifact") / "report.txt"
    artifact.write_text(f"smoke report {suffix}\n")
    client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id)

    model_name = f"flowae-smoke-{suffix}"
    client.create_registered_model(model_name)
    version = client.create_model_version(model_name, source=f"runs:/{run_id}/report.txt",
                                          run_id=run_id)
    client.set_registered_model_alias(model_name, "champion", version.version)
    return {"experiment_id": experiment_id, "run_id": run_id, "artifact": artifact,
            "model_name": model_name, "version": version.version}


def test_run_is_a_row_in_postgres(stack, logged_run):
    run_id = logged_run["run_id"]
    assert stack.postgres.query("mlflow", "SELECT status FROM runs WHERE run_uuid = %s",
                                (run_id,)) == [("FINISHED",)]
    assert stack.postgres.query("mlflow", "SELECT key, value FROM params WHERE run_uuid = %s",
                                (run_id,)) == [("window", "16")]
    assert stack.postgres.query(
        "mlflow", "SELECT key, value FROM latest_metrics WHERE run_uuid = %s",
        (run_id,)) == [("auroc", 0.93)]


def test_artifact_is_an_object_in_the_bucket(stack, logged_run):
    s3 = stack.seaweedfs.client()
    key = f"mlflow/{logged_run['experiment_id']}/{logged_run['run_id']}/artifacts/report.txt"
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix="mlflow/")["Contents"]]
    assert key in keys
    body = s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read().decode()
    assert body == logged_run["artifact"].read_text()


def test_model_version_and_alias_are_served_and_stored(stack, mlflow_client, logged_run):
    name, version = logged_run["model_name"], logged_run["version"]
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == version
    assert stack.postgres.query(
        "mlflow", "SELECT alias, version FROM registered_model_aliases WHERE name = %s",
        (name,)) == [("champion", int(version))]


def test_mlflow_refuses_missing_or_wrong_credentials_and_unknown_hosts(stack, logged_run):
    url = f"{stack.mlflow.url}/api/2.0/mlflow/experiments/get?experiment_id={logged_run['experiment_id']}"
    good = basic_auth(stack.mlflow.username, stack.mlflow.password)
    assert http_status(url) == 401
    assert http_status(url, headers=basic_auth(stack.mlflow.username, "wrong-password-123")) == 401
    assert http_status(url, headers=basic_auth("nobody", stack.mlflow.password)) == 401
    assert http_status(url, headers=good) == 200
    assert http_status(url, headers={**good, "Host": "evil.example"}) == 403
    assert http_status(url, headers={**good, "Host": f"mlflow:{stack.mlflow.port}"}) == 200
    assert stack.postgres.query("mlflow_auth", "SELECT username, is_admin FROM users") == [
        (stack.mlflow.username, True)]


FLOW = """
from prefect import flow, task
from prefect.runtime import flow_run


@task
def add(a, b):
    return a + b


@flow(name="flowae-stack-smoke")
def smoke():
    return flow_run.id, add(1, 2)


run_id, total = smoke()
print(run_id, total)
"""


def test_prefect_flow_runs_on_the_server_and_lands_in_postgres(stack, tmp_path):
    done = subprocess.run([sys.executable, "-c", FLOW], env=stack.subprocess_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, total = done.stdout.split()[-2:]
    assert total == "3"
    rows = stack.postgres.query("prefect", "SELECT name, state_type FROM flow_run WHERE id = %s",
                                (run_id,))
    assert len(rows) == 1 and rows[0][1] == "COMPLETED", rows
    assert stack.postgres.query("prefect", "SELECT count(*) FROM task_run WHERE flow_run_id = %s",
                                (run_id,)) == [(1,)]


def test_prefect_api_refuses_requests_without_its_auth_string(stack):
    base = stack.prefect.api_url
    assert http_status(f"{base}/health") == 200  # probes stay open, as in the compose healthcheck
    assert http_status(f"{base}/admin/version") == 401
    user, password = stack.prefect.auth_string.split(":", 1)
    assert http_status(f"{base}/admin/version", headers=basic_auth(user, "wrong")) == 401
    assert http_status(f"{base}/admin/version", headers=basic_auth(user, password)) == 200


SHARED_ROWS = ("friday-afternoon-benign-head.MachineLearningCVE.csv", "friday-ddos-1000.TrafficLabelling.csv",
               "friday-portscan-1000.TrafficLabelling.csv")
TINY = ["--epochs", "2", "--window", "8", "--stride", "4", "--hidden", "8", "--device", "cpu"]


def flowae(stack, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as a user of the stack runs it: MLflow and Prefect over HTTP with credentials."""
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("flowae"))
    env = stack.subprocess_env(FLOWAE_WORK_DIR=str(tmp_path / "work"), FLOWAE_CHECKPOINT_DIR=str(tmp_path / "ck"))
    return subprocess.run([exe, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False)


def test_flowae_retrains_promotes_and_scores_against_the_stack(stack, shared_data, tmp_path):
    inputs = [arg for f in SHARED_ROWS for arg in ("--data", str(shared_data / f))]
    retrained = flowae(stack, tmp_path, "retrain", *inputs, "--out", str(tmp_path / "ingested"),
                       "--files", SHARED_ROWS[0].removesuffix(".csv"), *TINY)
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert "champion is version 1" in retrained.stdout
    parent = retrained.stdout.split("MLflow parent run id: ")[1].split()[0]

    # the runs are rows in PostgreSQL, the packaged model is objects in the bucket
    stages = {row[0] for row in stack.postgres.query(
        "mlflow", "SELECT value FROM tags WHERE key = 'flowae.stage' AND run_uuid IN "
        "(SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' AND value = %s)", (parent,))}
    assert stages == {"validate", "windows", "train", "calibrate", "evaluate", "register"}
    assert stack.postgres.query("mlflow", "SELECT alias, version FROM registered_model_aliases "
                                "WHERE name = 'flowae'") == [("champion", 1)]
    s3 = stack.seaweedfs.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix="mlflow/", MaxKeys=5000)["Contents"]]
    assert any(k.endswith("/artifacts/detector/state_dict.pt") for k in keys), keys[:20]
    assert any(k.endswith("/MLmodel") for k in keys)

    scored = flowae(stack, tmp_path, "score", str(shared_data / SHARED_ROWS[1]), "--out", str(tmp_path / "scored"))
    assert scored.returncode == 0, scored.stderr[-3000:]
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "scored" / "friday-ddos-1000.TrafficLabelling.scored.parquet")
    assert table.num_rows == 1000 and set(table.column("model_version").to_pylist()) == {"1"}
    runs = stack.postgres.query("mlflow", "SELECT count(*) FROM runs r JOIN experiments e ON "
                                "r.experiment_id = e.experiment_id WHERE e.name = 'flowae-scoring'")
    assert runs == [(1,)]
    flows = stack.postgres.query("prefect", "SELECT name FROM flow WHERE name IN ('retrain', 'score')")
    assert {row[0] for row in flows} == {"retrain", "score"}  # the flow runs are on the Prefect server

    # without credentials the server refuses, and flowae says so in one line (not "no model yet")
    env = {k: v for k, v in stack.subprocess_env().items() if not k.startswith("MLFLOW_TRACKING_")}
    env["MLFLOW_TRACKING_URI"] = stack.mlflow.url
    exe = str(__import__("pathlib").Path(sys.executable).with_name("flowae"))
    denied = subprocess.run([exe, "promote"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, check=False)
    lines = denied.stderr.strip().splitlines()
    assert denied.returncode == 1 and len(lines) == 1 and "401" in lines[0], denied.stderr
