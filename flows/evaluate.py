"""``flowae evaluate``: a logged or registered model on labelled curated data, in its own run.

The flows the model was fitted or calibrated on (its recorded training files, same name and
sha256, its split re-derived) are left out unless the user asks for them
(``--include-training-data``); the run, the artifact and the printed summary say which it was.
"""
from __future__ import annotations

from pathlib import Path

import mlflow
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.detect.evaluation import evaluate
from components.detect.holdout import evaluate_data
from components.report.records import key_figures, log_evaluation
from components.report.tables import summary_table
from components.serve.packaging import load_detector
from components.settings import load_settings
from components.stage_results import ModelEvaluation
from components.tracking import ensure_experiment, run_link, set_description, stage_run


@task(name="evaluate-model")
def evaluate_model_task(model_uri: str, data: str, include_training_data: bool = False) -> ModelEvaluation:
    settings = load_settings()
    detector = load_detector(model_uri)
    included = str(include_training_data).lower()
    with stage_run(settings, settings.evaluate_experiment, f"evaluate {detector.name}",
                   tags={"flowae.model_uri": model_uri, "flowae.model": detector.name,
                         "flowae.includes_training_data": included}) as run:
        scored = evaluate_data(detector, Path(data), include_training_data=include_training_data)
        left = scored.left_out
        result = evaluate(scored.scores, scored.labels, detector.threshold, scored.window_scores,
                          scored.window_labels,
                          entity=scored.entity_evaluation(detector, settings.host_budget, settings.host_max_rate))
        log_evaluation(scored, result, detector, prefix="")
        mlflow.log_metrics({"left_out_flows": 0 if left.included else left.flows,
                            "training_flows_counted": left.flows if left.included else 0})
        mlflow.log_params({"include_training_data": included, "left_out": left.line()[:6000],
                           "model_uri": model_uri, "data": str(Path(data).resolve())})
        set_description(key_figures(detector.name, result, None, None) + f"\n\n{model_uri} on {data}. "
                        + left.line())
        mlflow.log_dict({"line": left.line(), "flows": left.flows, "per_file": left.per_file,
                         "notes": left.notes, "included": left.included}, "evaluation/left_out.json")
        run_id = run.info.run_id
    lines = [left.line(), *left.notes]
    summary = "\n".join(f"_{line}_" for line in lines) + "\n\n" + summary_table(result)
    create_markdown_artifact(key="evaluation", markdown=f"## {model_uri} on {data}\n\n" + summary,
                             description=f"evaluation of {model_uri}")
    experiment_id = ensure_experiment(settings, settings.evaluate_experiment)
    return ModelEvaluation(run_id=run_id, summary=summary_table(result), metrics=result.to_dict(),
                           left_out=tuple(lines), includes_training_data=left.included,
                           link=run_link(settings, experiment_id, run_id))


@flow(name="evaluate", log_prints=True, flow_run_name="evaluate {model_uri} on {data}")
def evaluate_flow(model_uri: str, data: str, include_training_data: bool = False) -> dict:
    """Score ``data`` with the model and measure it against the labels, leaving out the flows the
    model was fitted or calibrated on unless ``include_training_data``."""
    return evaluate_model_task(model_uri, data, include_training_data).model_dump()
