"""``flowae promote``: move ``champion`` to the challenger when it wins, or roll back.

The decision and both figures go to an MLflow run (experiment ``flowae-registry``) and to a
Prefect markdown artifact, a refused promotion too (its one-line reason); a refused promotion
then fails the flow, so ``retrain`` and ``flowae promote`` exit non-zero. Alias moves are
serialised by ``components.serve.registry.registry_lock`` (a file lock beside a local store, a
lock kept in the registry itself on a tracking server): it holds for any process that writes the
same registry, Prefect API or not.
"""
from __future__ import annotations

import math

import mlflow
from prefect import flow
from prefect.artifacts import create_markdown_artifact

from components.serve.promotion import PromotionRefused, promote
from components.serve.registry import rollback
from components.settings import load_settings
from components.tracking import model_link, run_link, set_description, stage_run


def _param(name: str):
    from prefect.runtime import flow_run

    return (flow_run.parameters or {}).get(name)


@flow(name="promote", log_prints=True,
      flow_run_name=lambda: "rollback" if _param("do_rollback") else f"promote {_param('version') or 'challenger'}")
def promote_flow(do_rollback: bool = False, version: str | None = None) -> dict:
    """Promote the challenger (``version``: only if the challenger is still that version)."""
    settings = load_settings()
    if do_rollback:
        was, now = rollback(settings)
        result = {"promoted": True, "rollback": True, "refused": False, "champion_before": was,
                  "champion_after": now, "reason": f"rolled back from version {was} to {now}"}
        markdown = f"**rollback**: champion moved from version {was} back to version {now}"
    else:
        decision = promote(settings, version=version)
        result = {**decision.to_dict(), "rollback": False}
        markdown = decision.markdown()
    outcome = "refused" if result["refused"] else "promoted" if result["promoted"] else "kept"
    with stage_run(settings, settings.registry_experiment, "rollback" if do_rollback else "promote",
                   tags={"flowae.stage": "promote", "flowae.outcome": outcome,
                         "flowae.reason": result["reason"][:5000]}) as active:
        mlflow.log_dict(result, "promotion/decision.json")
        mlflow.log_params({k: str(v) for k, v in result.items() if k in
                           ("metric", "margin", "challenger", "champion_before", "champion_after", "rollback")})
        mlflow.log_metrics({k: float(v) for k, v in result.items() if k in
                            ("challenger_value", "champion_value", "challenger_fpr", "target_fpr")
                            and math.isfinite(v)})
        mlflow.log_metric("promoted", float(result["promoted"]))
        mlflow.log_metric("refused", float(result["refused"]))
        set_description(f"**{outcome}**: {result['reason']}")
        link = run_link(settings, active.info.experiment_id, active.info.run_id)
    champion = result.get("champion_after")
    if champion is not None:
        markdown += f"\n\n[champion: version {champion}]({model_link(settings, settings.registered_model_name, champion)})"
    markdown += f"\n\n[MLflow run]({link})"
    print(f"promote: {outcome}, {result['reason']}; MLflow {link}")
    create_markdown_artifact(key="promotion", markdown=markdown, description="champion alias decision")
    if result["refused"]:
        raise PromotionRefused(result["reason"])
    return result
