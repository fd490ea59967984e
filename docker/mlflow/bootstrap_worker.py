"""One-shot job: give the flowae worker its own, least-privileged MLflow user.

docker-compose.yml runs it (service ``mlflow-bootstrap``) as the MLflow admin once the server is
healthy, and the worker starts only after it exited 0; tests/integration/stack.py runs the same
script. Idempotent: it can run at every ``docker compose up``.

What the worker gets (MLflow 3.17 basic auth, workspaces off):
- a user that is not an admin (``is_admin`` is reset to false if someone set it), password from
  the environment (set again at every run, so rotating it is: change .env, ``up`` again);
- EDIT on each of flowae's experiments (create runs, log, upload artifacts, tag the experiment;
  no delete, no permission changes), which this job creates with the model-training kind tag;
- on the registered model ``flowae``: MANAGE, because flowae deletes the ``challenger`` alias and
  MLflow 3.17 asks ``can_delete`` (MANAGE, the only level with it) for DeleteRegisteredModelAlias;
  EDIT would do for everything else it does (versions, aliases, tags);
- MANAGE on ``flowae.registry-lock``, flowae's cross-host registry lock, whose tickets (model
  versions) it deletes.
Everything else stays at the server's ``default_permission`` (READ). Admin-only calls (users,
roles, other users' permissions) are refused to it with 403. MLflow cannot stop a non-admin from
creating new experiments or models while workspaces are off; what the worker creates, it manages.

Environment: MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the admin),
MLFLOW_WORKER_USERNAME (default flowae-worker), MLFLOW_WORKER_PASSWORD (12+ characters).
"""
from __future__ import annotations

import os
import time

#: The experiments flowae logs into (components/settings.py; test_compose.py checks they agree).
EXPERIMENTS = ("flowae-data", "flowae-train", "flowae-retrain", "flowae-compare", "flowae-evaluate",
               "flowae-scoring", "flowae-registry")
#: Registered models and the worker's permission on each (see the module docstring for why).
MODELS = {"flowae": "MANAGE", "flowae.registry-lock": "MANAGE"}
EXPERIMENT_PERMISSION = "EDIT"
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
ATTEMPTS = 30  # the server can answer /health a moment before its auth database is ready


def _retrying(call):
    from mlflow.exceptions import MlflowException

    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except (MlflowException, OSError) as exc:
            status = getattr(exc, "get_http_status_code", lambda: 500)()
            if attempt == ATTEMPTS or status in (400, 401, 403, 404):
                raise
        time.sleep(1)
    raise AssertionError("unreachable")


def ensure_worker_user(auth, username: str, password: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        auth.create_user(username, password)
        outcome = "created"
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.update_user_password(username, password)
        outcome = "exists, password set"
    if auth.get_user(username).is_admin:
        auth.update_user_admin(username, False)
    return outcome


def ensure_experiment(client, name: str) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is None:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name, tags=EXPERIMENT_KIND)
        except MlflowException as exc:  # created meanwhile (a worker of an older set-up)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            existing = client.get_experiment_by_name(name)
    return existing.experiment_id


def ensure_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def set_grant(auth, username: str, resource_type: str, resource_id: str, permission: str) -> None:
    """Exactly ``permission`` on the resource: the grant API refuses to overwrite an existing grant
    (RESOURCE_ALREADY_EXISTS), so an existing one (e.g. MANAGE on an experiment the worker created
    itself before this job existed) is revoked and granted again at the intended level."""
    from mlflow.exceptions import MlflowException

    try:
        auth.grant_user_permission(username, resource_type, resource_id, permission)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, resource_type, resource_id)
        auth.grant_user_permission(username, resource_type, resource_id, permission)


def bootstrap(tracking_uri: str, username: str, password: str) -> list[str]:
    """Create or update the worker's user and grants; returns one line per step (no secrets)."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    auth = AuthServiceClient(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    lines = [f"user {username}: {_retrying(lambda: ensure_worker_user(auth, username, password))}"]
    for name in EXPERIMENTS:
        experiment_id = ensure_experiment(client, name)
        set_grant(auth, username, "experiment", experiment_id, EXPERIMENT_PERMISSION)
        lines.append(f"experiment {name} ({experiment_id}): {EXPERIMENT_PERMISSION}")
    for name, permission in MODELS.items():
        ensure_model(client, name)
        set_grant(auth, username, "registered_model", name, permission)
        lines.append(f"registered model {name}: {permission}")
    return lines


def main() -> None:
    env = os.environ
    missing = [n for n in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                           "MLFLOW_WORKER_PASSWORD") if not env.get(n)]
    if missing:
        raise SystemExit(f"bootstrap_worker: set {', '.join(missing)}")
    username = env.get("MLFLOW_WORKER_USERNAME") or "flowae-worker"
    if username == env["MLFLOW_TRACKING_USERNAME"]:
        raise SystemExit("bootstrap_worker: the worker's user must not be the admin")
    if len(env["MLFLOW_WORKER_PASSWORD"]) < 12:
        raise SystemExit("bootstrap_worker: MLFLOW_WORKER_PASSWORD needs 12 characters or more")
    from mlflow.exceptions import MlflowException

    try:
        lines = bootstrap(env["MLFLOW_TRACKING_URI"], username, env["MLFLOW_WORKER_PASSWORD"])
    except MlflowException as exc:
        raise SystemExit(f"bootstrap_worker: {exc.message}") from None
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
