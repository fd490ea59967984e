"""`flowae train` killed with SIGKILL in the middle: no Prefect server left running, no scratch
files left behind once the next run starts, and re-running the same command succeeds."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.waits import wait_until

pytestmark = pytest.mark.slow  # trains twice in subprocesses (about 50 s)

FLOWAE = str(Path(sys.executable).with_name("flowae"))
BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
                "FLOWAE_ARTIFACT_ROOT": str(tmp_path / "artifacts"), "FLOWAE_WORK_DIR": str(tmp_path / "work"),
                "FLOWAE_CHECKPOINT_DIR": str(tmp_path / "ck"), "MLFLOW_DISABLE_TELEMETRY": "true",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return env


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_training_killed_mid_run_leaves_nothing_behind_and_reruns(shared_data, tmp_path):
    from components.data.ingest import IngestConfig, ingest_paths

    assert ingest_paths([str(shared_data / BENIGN)], IngestConfig(out=tmp_path / "in", run_gx=False)).ok
    args = [FLOWAE, "train", "--data", str(tmp_path / "in"), "--window", "8", "--hidden", "8", "--device", "cpu",
            "--batch-size", "64", "--stride", "1", "--patience", "500"]
    env = env_for(tmp_path)
    proc = subprocess.Popen([*args, "--epochs", "500"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # kill once training is under way: a first epoch checkpointed
    wait_until(lambda: list((tmp_path / "ck").glob("*/last.pt")), 240, "training checkpointed no epoch",
               interval_s=0.5, process=proc)
    helpers = children_of(proc.pid)
    assert list((tmp_path / "work").iterdir())  # the run's scratch folder exists
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(helpers, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]  # the temporary Prefect server died with it

    again = subprocess.run([*args, "--epochs", "2"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=600, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "MLflow run id:" in again.stdout
    assert list((tmp_path / "work").iterdir()) == []  # the killed run's scratch folder is gone too
    assert not list((tmp_path / "ck").rglob("*.tmp"))
