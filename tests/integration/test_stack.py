"""Smoke test of the production stack, over HTTP, as a client sees it.

MLflow: a run with params, metrics and an artifact, and a registered model version with an alias,
must land in PostgreSQL (``runs``, ``registered_model_aliases``) and in the S3 bucket; requests
without or with wrong credentials are refused, and so is an unknown Host header. Prefect: a real
flow run in a subprocess configured only by ``stack.subprocess_env()`` must be a row of
``flow_run`` in the prefect database. flowae retrains, promotes and scores as the worker's own
MLflow user ``flowae-worker`` (``stack.env()``, what the compose worker gets), and the limits are
real: the worker gets 403 on admin-only calls and on raising its own permissions, each service's
PostgreSQL role reaches its own database only, and SeaweedFS's filer and volume server refuse
requests without their JWTs while MLflow's S3 identity is confined to the artifact bucket.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from stack import DB_PASSWORD_VARS, S3_BUCKET, database_owners, http_status

pytestmark = pytest.mark.slow  # the whole stack: Postgres, SeaweedFS, MLflow, Prefect (minutes)


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def http_call(url: str, method: str, body: dict | None, headers: dict[str, str]) -> int:
    """HTTP status of a JSON request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def mlflow_client(stack):
    """An MlflowClient bound to the stack's server as the admin (no global tracking URI is changed)."""
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
    assert sorted(stack.postgres.query("mlflow_auth", "SELECT username, is_admin FROM users")) == [
        (stack.mlflow.username, True), (stack.mlflow.worker_username, False)]


WORKER_GRANTS = """
SELECT rp.resource_type, rp.resource_pattern, rp.permission FROM role_permissions rp
JOIN user_role_assignments a ON a.role_id = rp.role_id JOIN users u ON u.id = a.user_id
WHERE u.username = %s ORDER BY 1, 2
"""


def test_worker_is_a_restricted_mlflow_user(stack):
    """What docker/mlflow/bootstrap_worker.py grants, and 403 for everything above it."""
    import importlib.util

    from stack import MLFLOW_BOOTSTRAP

    spec = importlib.util.spec_from_file_location("bootstrap_worker", MLFLOW_BOOTSTRAP)
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)

    worker = stack.mlflow.worker_username
    assert stack.env()["MLFLOW_TRACKING_USERNAME"] == worker != stack.mlflow.username
    assert stack.mlflow.password not in stack.env().values()
    experiments = dict(stack.postgres.query(
        "mlflow", "SELECT name, experiment_id::text FROM experiments WHERE name = ANY(%s)",
        (list(bootstrap.EXPERIMENTS),)))
    assert set(experiments) == set(bootstrap.EXPERIMENTS)
    grants = stack.postgres.query("mlflow_auth", WORKER_GRANTS, (worker,))
    expected = [("experiment", experiments[name], "EDIT") for name in bootstrap.EXPERIMENTS]
    expected += [("registered_model", name, level) for name, level in bootstrap.MODELS.items()]
    assert sorted(grants) == sorted(expected)

    url, api3 = f"{stack.mlflow.url}/api/2.0/mlflow", f"{stack.mlflow.url}/api/3.0/mlflow"
    as_worker = basic_auth(worker, stack.mlflow.worker_password)
    train = experiments["flowae-train"]
    # what it needs: a run in its experiment
    assert http_call(f"{url}/runs/create", "POST", {"experiment_id": train}, as_worker) == 200
    # admin-only calls
    assert http_call(f"{url}/users/create", "POST",
                     {"username": "intruder", "password": "intruder-password-1"}, as_worker) == 403
    assert http_call(f"{url}/users/update-admin", "PATCH",
                     {"username": worker, "is_admin": True}, as_worker) == 403
    assert http_call(f"{url}/users/update-password", "PATCH",
                     {"username": stack.mlflow.username, "password": "taken-over-password-1"},
                     as_worker) == 403
    assert http_call(f"{url}/users/delete", "DELETE", {"username": stack.mlflow.username},
                     as_worker) == 403
    # raising its own permission, or granting one to another user, on an experiment it may only edit
    for user in (worker, stack.mlflow.username):
        assert http_call(f"{api3}/users/permissions/grant", "POST",
                         {"username": user, "resource_type": "experiment", "resource_id": train,
                          "permission": "MANAGE"}, as_worker) == 403
    # EDIT is no delete
    assert http_call(f"{url}/experiments/delete", "POST", {"experiment_id": train}, as_worker) == 403
    # nothing changed
    assert sorted(stack.postgres.query("mlflow_auth", WORKER_GRANTS, (worker,))) == sorted(expected)
    assert stack.postgres.query("mlflow_auth", "SELECT is_admin FROM users WHERE username = %s",
                                (worker,)) == [(False,)]
    assert stack.postgres.query("mlflow", "SELECT lifecycle_stage FROM experiments WHERE name = %s",
                                ("flowae-train",)) == [("active",)]


def test_each_postgres_role_reaches_its_own_database_only(stack):
    import psycopg2

    owners = database_owners()
    assert set(owners.values()) == set(DB_PASSWORD_VARS)
    roles = stack.postgres.query(
        "postgres", "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY 1", (list(owners.values()),))
    assert roles == [(role, False, False, False) for role in sorted(owners.values())]
    for database, owner in owners.items():
        assert stack.postgres.query(database, "SELECT current_user", role=owner) == [(owner,)]
        for role in set(owners.values()) - {owner}:
            with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
                stack.postgres.query(database, "SELECT 1", role=role)
        # and no role reaches the maintenance database either
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            stack.postgres.query("postgres", "SELECT 1", role=owner)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(stack.postgres.dsn("mlflow", "mlflow").replace(
            stack.postgres.passwords["mlflow"], stack.postgres.passwords["prefect"]), connect_timeout=5)
    # the services really run as those roles
    sessions = {row[0] for row in stack.postgres.query(
        "postgres", "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = ANY(%s)",
        (list(owners),))}
    assert sessions <= set(owners.values()) and {"mlflow", "prefect"} <= sessions


def test_seaweedfs_internal_apis_want_jwts_and_mlflow_s3_identity_is_confined(stack, logged_run):
    import botocore.exceptions

    weed = stack.seaweedfs
    filer = f"http://127.0.0.1:{weed.port_of('filer.port')}"
    key = f"mlflow/{logged_run['experiment_id']}/{logged_run['run_id']}/artifacts/report.txt"
    assert http_status(f"{filer}/buckets/{S3_BUCKET}/{key}") == 401
    assert http_call(f"{filer}/buckets/{S3_BUCKET}/{key}", "PUT", {"rewritten": True}, {}) == 401
    assert http_call(f"{filer}/buckets/{S3_BUCKET}/{key}", "DELETE", None, {}) == 401
    master = f"http://127.0.0.1:{weed.port_of('master.port')}"
    with urllib.request.urlopen(f"{master}/dir/assign", timeout=10) as response:
        assigned = json.load(response)  # the master hands out file ids; the volume wants a JWT
    assert http_call(f"http://{assigned['url']}/{assigned['fid']}", "PUT", {"x": 1}, {}) == 401
    # the artifact is untouched
    admin = weed.client()
    assert admin.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read().decode() == logged_run["artifact"].read_text()

    mlflow_s3 = weed.client("mlflow")
    mlflow_s3.put_object(Bucket=S3_BUCKET, Key="mlflow/identity-check.txt", Body=b"ok")
    assert mlflow_s3.get_object(Bucket=S3_BUCKET, Key="mlflow/identity-check.txt")["Body"].read() == b"ok"
    mlflow_s3.delete_object(Bucket=S3_BUCKET, Key="mlflow/identity-check.txt")
    other = f"not-mlflows-{uuid.uuid4().hex[:8]}"
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        mlflow_s3.create_bucket(Bucket=other)
    admin.create_bucket(Bucket=other)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        mlflow_s3.put_object(Bucket=other, Key="x.txt", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        mlflow_s3.delete_bucket(Bucket=S3_BUCKET)
    admin.delete_bucket(Bucket=other)


def test_bootstrap_job_is_idempotent_and_rotates_the_worker_password(stack):
    """Compose runs mlflow-bootstrap at every `up`: again, the grants stay; a new password in .env
    replaces the old one."""
    worker, original = stack.mlflow.worker_username, stack.mlflow.worker_password
    url = f"{stack.mlflow.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=flowae-train"
    before = sorted(stack.postgres.query("mlflow_auth", WORKER_GRANTS, (worker,)))
    # a grant above the intended level (as if the worker had created the experiment) is lowered
    api3, as_admin = f"{stack.mlflow.url}/api/3.0/mlflow", basic_auth(stack.mlflow.username, stack.mlflow.password)
    train = dict(stack.postgres.query("mlflow", "SELECT name, experiment_id::text FROM experiments"))["flowae-train"]
    target = {"username": worker, "resource_type": "experiment", "resource_id": train}
    assert http_call(f"{api3}/users/permissions/revoke", "POST", target, as_admin) == 200
    assert http_call(f"{api3}/users/permissions/grant", "POST", {**target, "permission": "MANAGE"}, as_admin) == 200
    assert sorted(stack.postgres.query("mlflow_auth", WORKER_GRANTS, (worker,))) != before
    stack.mlflow.worker_password = "rotated-" + original  # what later tests (stack.env()) use
    stack.mlflow.bootstrap_worker()
    assert http_status(url, headers=basic_auth(worker, original)) == 401
    assert http_status(url, headers=basic_auth(worker, stack.mlflow.worker_password)) == 200
    assert sorted(stack.postgres.query("mlflow_auth", WORKER_GRANTS, (worker,))) == before
    assert stack.postgres.query("mlflow_auth", "SELECT count(*) FROM users") == [(2,)]


def test_postgres_init_script_refuses_missing_role_passwords(stack):
    from stack import POSTGRES_INIT_SQL, POSTGRES_USER, clean_env

    pg = stack.postgres
    done = subprocess.run(
        [str(pg.bin / "psql"), "--no-psqlrc", "-h", "127.0.0.1", "-p", str(pg.port), "-U", POSTGRES_USER,
         "-d", "postgres", "-f", str(POSTGRES_INIT_SQL)],
        env=clean_env(PGPASSWORD=pg.superuser_password, MLFLOW_DB_PASSWORD="long-enough-password",
                      MLFLOW_AUTH_DB_PASSWORD="short"),
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "set MLFLOW_DB_PASSWORD, MLFLOW_AUTH_DB_PASSWORD and PREFECT_DB_PASSWORD" in done.stderr
    assert "CREATE ROLE" not in done.stdout  # it stopped before creating anything


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
    # all of it as flowae-worker, within what the bootstrap job granted: it created no experiment
    # or model of its own (which would have made it their manager)
    assert stack.subprocess_env()["MLFLOW_TRACKING_USERNAME"] == stack.mlflow.worker_username
    grants = stack.postgres.query("mlflow_auth", WORKER_GRANTS, (stack.mlflow.worker_username,))
    assert {level for _, _, level in grants if level != "EDIT"} == {"MANAGE"}
    assert {pattern for kind, pattern, level in grants if level == "MANAGE"} == {"flowae", "flowae.registry-lock"}
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
