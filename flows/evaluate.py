"""``flowae evaluate``: a logged or registered model on labelled curated data, in its own run."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from components.data.curated import curated_files
from components.detect.evaluation import evaluate, summary_table
from components.detect.fit import evaluate_files
from components.detect.packaging import load_detector
from components.detect.reporting import log_evaluation
from components.settings import load_settings
from components.tracking import ensure_experiment, run_link, stage_run


@task(name="evaluate-model")
def evaluate_model_task(model_uri: str, data: str) -> dict:
    settings = load_settings()
    detector = load_detector(model_uri)
    files = curated_files(Path(data))
    with stage_run(settings, settings.evaluate_experiment, f"evaluate {detector.name}",
                   tags={"flowae.model_uri": model_uri, "flowae.model": detector.name}) as run:
        scored = evaluate_files(detector, files)
        result = evaluate(scored.scores, scored.labels, detector.threshold, scored.window_scores,
                          scored.window_labels)
        log_evaluation(scored, result, detector, prefix="")
        run_id = run.info.run_id
    create_markdown_artifact(key="evaluation", markdown=f"## {model_uri} on {data}\n\n" + summary_table(result),
                             description=f"evaluation of {model_uri}")
    experiment_id = ensure_experiment(settings, settings.evaluate_experiment)
    return {"run_id": run_id, "summary": summary_table(result), "metrics": result.to_dict(),
            "link": run_link(settings, experiment_id, run_id)}


@flow(name="evaluate", log_prints=True)
def evaluate_flow(model_uri: str, data: str) -> dict:
    """Score every flow of ``data`` with the model and measure it against the labels."""
    return evaluate_model_task(model_uri, data)
