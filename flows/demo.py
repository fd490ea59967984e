"""``flowae demo``: the pipeline end to end on synthetic CIC-IDS2017 days, on the embedded default.

It is the first thing a new user runs, so it ends by saying where everything went and how to look.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from components.settings import Settings
from components.synth import SynthConfig, write_days
from flows.ingest import ingest_flow
from flows.train import train_flow

DEMO_DAYS = ["monday", "friday_ddos", "friday_portscan"]
DEMO_TRAINING = {"model": "lstm_ae", "epochs": 5, "window": 8, "stride": 2, "hidden": 32, "lr": 3e-3,
                 "batch_size": 256}


@flow(name="demo", log_prints=True)
def demo_flow(workdir: str, rows: int, seed: int) -> dict:
    """Synthesise raw day files, ingest them, train an LSTM autoencoder on the benign windows."""
    raw = Path(workdir) / "raw"
    cfg = SynthConfig(rows=rows, seed=seed, variant="TrafficLabelling", format="csv", attacks=None,
                      days=DEMO_DAYS)
    files = [str(p) for p in write_days(cfg, raw)]
    ingested = ingest_flow(files, str(Path(workdir) / "ingested"))
    trained = train_flow(str(Path(workdir) / "ingested"), dict(DEMO_TRAINING, seed=seed))
    return {"raw": files, "ingest": ingested, "train": trained}


def run_demo(settings: Settings, workdir: Path, rows: int) -> dict:
    summary = demo_flow(str(workdir), rows, settings.seed)
    _print_where_to_look(settings, workdir, summary)
    return summary


def _print_where_to_look(settings: Settings, workdir: Path, summary: dict) -> None:
    store = settings.tracking_uri
    local = store.removeprefix("sqlite:///") if store.startswith("sqlite:///") else None
    train = summary["train"]
    print()
    print(f"Demo data:        {workdir.resolve()}  (raw/, ingested/curated, ingested/quarantine, manifest.json)")
    print(f"MLflow store:     {store}" + (f"  ({Path(local).resolve()})" if local else ""))
    print(f"Artifacts:        {settings.artifact_root.resolve()}")
    print(f"Trained model:    {train['model']} on {train['device']}, MLflow run {train['run_id']}")
    print()
    print("Open the MLflow UI on it:")
    if local:
        print(f"  .venv/bin/mlflow ui --backend-store-uri {store} --host 127.0.0.1 --port 5000")
    else:
        print(f"  (tracking server {store}: open it in a browser)")
    print("  then browse http://127.0.0.1:5000 (experiments flowae-data and flowae-train)")
    print("Open the Prefect UI on the flow runs:")
    print("  .venv/bin/prefect server start --host 127.0.0.1 --port 4200")
    print("  then browse http://127.0.0.1:4200")
