"""``flowae demo``: the whole pipeline on synthetic CIC-IDS2017 days, on the embedded default.

Retrain (ingest, validate, windows, train on Monday, calibrate, evaluate, register, promote), then
score the synthetic attack day with the champion and say what it found. It is the first thing a
new user runs, so it ends by saying where everything went and how to look.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from components.jobs import RetrainJob, ScoreJob, train_job
from components.report.night import detection_lines, host_lines
from components.settings import Settings
from components.synth import SynthConfig, write_days
from components.tracking import redact
from flows.cli_support import ui_commands
from flows.retrain import retrain_flow
from flows.retries import FileRunner
from flows.score import score_flow

DEMO_DAYS = ["monday", "friday_ddos", "friday_portscan"]
#: the recommended settings on a budget that runs in about a minute on 2 cores
DEMO_TRAINING = {"epochs": 6, "patience": 3}


@flow(name="demo", log_prints=True, task_runner=FileRunner())  # its subflows bound themselves too
def demo_flow(workdir: str, rows: int, seed: int, device: str = "auto") -> dict:
    raw = Path(workdir) / "raw"
    cfg = SynthConfig(rows=rows, seed=seed, variant="TrafficLabelling", format="csv", attacks=None,
                      days=DEMO_DAYS)
    files = [str(p) for p in write_days(cfg, raw)]
    job = train_job(data=Path(workdir) / "ingested", days=("monday",),
                    train={**DEMO_TRAINING, "seed": seed, "device": device})
    retrained = retrain_flow(RetrainJob(inputs=tuple(files), train=job))
    attack_days = [f for f in files if "Friday" in Path(f).name]
    scored = score_flow(ScoreJob(inputs=tuple(attack_days), out=Path(workdir) / "scored", device=device))
    return {"raw": files, "retrain": retrained, "score": scored}


def run_demo(settings: Settings, workdir: Path, rows: int) -> dict:
    summary = demo_flow(str(workdir), rows, settings.seed, settings.device)
    _print_where_to_look(settings, workdir, summary)
    return summary


def _print_where_to_look(settings: Settings, workdir: Path, summary: dict) -> None:
    store = settings.tracking_uri
    local = store.removeprefix("sqlite:///") if store.startswith("sqlite:///") else None
    retrain, scored = summary["retrain"], summary["score"]
    print()
    print(f"Trained:          {retrain['model']} on Monday, registered as version {retrain['version']}; "
          f"test AUROC {retrain['test_auroc']:.3f}, FPR {retrain['test_fpr']:.3f}")
    print(f"Champion:         version {retrain['champion']} ({retrain['decision']})")
    print(f"Scored Friday:    {scored['flows']:,} flows, {scored['anomalies']:,} flagged ({scored['rate']:.1%})")
    for line in host_lines(scored.get("entities")):
        print(f"  {line}")
    print("  every attack of the night, found or missed:")
    for line in detection_lines(scored):
        print(f"  {line}")
    if scored["top_flows"]:
        top = scored["top_flows"][0]
        print(f"  worst flow: {top.get('source_file')} row {top.get('row_number')} "
              f"({top.get('label', '?')}), score {top['anomaly_score']:.3g}, because of "
              f"{top.get('top_feature_1')}, {top.get('top_feature_2')}, {top.get('top_feature_3')}")
    print()
    print(f"Demo data:        {workdir.resolve()}  (raw/, ingested/, scored/*.scored.parquet, scored/summary.json)")
    print(f"MLflow store:     {redact(store)}" + (f"  ({Path(local).resolve()})" if local else ""))
    print(f"Artifacts:        {settings.artifact_root.resolve()}")
    print()
    commands = ui_commands(settings)  # absolute paths: they work from any directory
    print("Open the MLflow UI on it:")
    if "mlflow" in commands:
        print(f"  {commands['mlflow']}")
    else:
        print(f"  (tracking server {redact(store)}: open it in a browser)")
    print(f"  then browse {retrain['link']}")
    print("Open the Prefect UI on the flow runs:")
    print(f"  {commands['prefect']}")
    print("  then browse http://127.0.0.1:4200")
