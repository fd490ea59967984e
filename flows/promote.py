"""``flowae promote``: move ``champion`` to the challenger when it wins, or roll back.

The decision and both figures go to an MLflow run (experiment ``flowae-registry``) and to a
Prefect markdown artifact. The alias move is serialised: a file lock beside a local store, and a
Prefect global concurrency limit (one slot) when the tracking store is a server.
"""
from __future__ import annotations

import contextlib
import math

import mlflow
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.detect.promotion import promote
from components.detect.registry import is_local_store, rollback, store_lock
from components.settings import Settings, load_settings
from components.tracking import stage_run

LIMIT = "flowae-promotion"


def promotion_lock(settings: Settings):
    """The lock that serialises alias moves for this store (see the module docstring)."""
    if is_local_store(settings):
        return lambda: store_lock(settings)
    return _prefect_limit


@contextlib.contextmanager
def _prefect_limit():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency

    with get_client(sync_client=True) as client, contextlib.suppress(Exception):  # exists already
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=LIMIT, limit=1))
    with concurrency(LIMIT, occupy=1, strict=True):
        yield


@flow(name="promote", log_prints=True)
def promote_flow(do_rollback: bool = False) -> dict:
    settings = load_settings()
    if do_rollback:
        with promotion_lock(settings)():
            was, now = rollback(settings)
        result = {"promoted": True, "rollback": True, "champion_before": was, "champion_after": now,
                  "reason": f"rolled back from version {was} to {now}"}
        markdown = f"**rollback**: champion moved from version {was} back to version {now}"
    else:
        decision = promote(settings, lock=promotion_lock(settings))
        result = {**decision.to_dict(), "rollback": False}
        markdown = decision.markdown()
    with stage_run(settings, settings.registry_experiment, "rollback" if do_rollback else "promote",
                   tags={"flowae.stage": "promote"}):
        mlflow.log_dict(result, "promotion/decision.json")
        mlflow.log_params({k: str(v) for k, v in result.items() if k in
                           ("metric", "margin", "challenger", "champion_before", "champion_after", "rollback")})
        mlflow.log_metrics({k: float(v) for k, v in result.items() if k in
                            ("challenger_value", "champion_value") and math.isfinite(v)})
        mlflow.log_metric("promoted", float(result["promoted"]))
    create_markdown_artifact(key="promotion", markdown=markdown, description="champion alias decision")
    return result
