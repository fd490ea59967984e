"""``flowae serve``: one process serving the two scheduled deployments, ``retrain`` (weekly) and
``score-nightly`` (daily, over the inbox). The same deployments are declared in ``prefect.yaml``
for a work pool; this is the way without one. Each deployment runs one flow run at a time
(``concurrency_limit=1``; a run due while one is running waits for it): two nights never compete
for the inbox (the ledger's claims would keep them apart anyway) nor two retrains for the registry."""
from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from components.settings import Settings, load_settings
from flows.retrain import scheduled_retrain_flow
from flows.score import score_nightly_flow


def one_at_a_time() -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def deployments(settings: Settings | None = None) -> list:
    settings = settings or load_settings()
    return [
        scheduled_retrain_flow.to_deployment(
            name="retrain", cron=settings.retrain_cron, tags=["flowae"], concurrency_limit=one_at_a_time(),
            description="ingest the configured inputs, retrain, evaluate, register, promote"),
        score_nightly_flow.to_deployment(
            name="score-nightly", cron=settings.score_cron, tags=["flowae"], concurrency_limit=one_at_a_time(),
            parameters={"inbox": str(settings.inbox_dir), "out": str(settings.scored_dir)},
            description="score the inbox files not scored yet with flowae@champion"),
    ]


def serve_forever(settings: Settings | None = None) -> None:
    """Register the deployments with the Prefect API and run their scheduled runs until stopped."""
    serve(*deployments(settings), print_starting_message=True)
