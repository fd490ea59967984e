"""Screenshots of the MLflow UI for the docs: a `flowae compare` run in the compare view, and the
runs list in the model-training view. Needs Debian's chromium (`apt-get install chromium`).

    .venv/bin/python docs/make_screenshots.py      # writes docs/mlflow_compare.png, docs/mlflow_runs.png

It runs `flowae compare` on the shared CIC-IDS2017 rows into a temporary store, starts `mlflow
server` on it, and lets headless Chromium render the pages (the UI is a JavaScript app, so a plain
HTTP fetch would show nothing).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "cicids2017"
FILES = ["friday-afternoon-benign-head.MachineLearningCVE.csv", "friday-ddos-1000.TrafficLabelling.csv",
         "friday-portscan-1000.TrafficLabelling.csv", "week-benign-sample.CICIDS2017_sample.csv"]
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1680,1050", "--virtual-time-budget=20000"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shoot(url: str, target: Path, profile: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={target}", url],
                   check=True, capture_output=True, timeout=120)
    print(target)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="flowae-shots-"))
    store = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "FLOWAE_ARTIFACT_ROOT": str(work / "artifacts"),
           "FLOWAE_WORK_DIR": str(work / "work"), "FLOWAE_CHECKPOINT_DIR": str(work / "checkpoints")}
    inputs = [arg for f in FILES for arg in ("--data", str(SHARED / f))]
    subprocess.run([str(BIN / "flowae"), "compare", *inputs, "--out", str(work / "ingested"), "--files",
                    FILES[0].removesuffix(".csv"), "--epochs", "8", "--device", "cpu"], env=env, check=True)
    port = free_port()
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", store,
                               "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        from mlflow import MlflowClient

        client = MlflowClient(store)
        experiment = client.get_experiment_by_name("flowae-compare")
        runs = client.search_runs([experiment.experiment_id])
        children = [r.info.run_id for r in runs if "mlflow.parentRunId" in r.data.tags]
        query = urllib.parse.urlencode({"runs": json.dumps(children), "experiments": json.dumps([experiment.experiment_id])})
        shoot(f"{base}/#/compare-runs?{query}", REPO / "docs" / "mlflow_compare.png", work / "chrome1")
        shoot(f"{base}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning",
              REPO / "docs" / "mlflow_runs.png", work / "chrome2")
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
