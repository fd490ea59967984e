"""Screenshots of the MLflow UI for the README, taken from the links `flowae compare` prints: the
leaderboard (every model as a row, sorted by test AUROC, metric columns shown) and the best model's
run page in the model-training view. Needs Debian's chromium (`make install-dev` installs it).

    .venv/bin/python docs/make_screenshots.py   # writes docs/mlflow_compare.png, docs/mlflow_run.png

It runs `flowae compare` on the shared CIC-IDS2017 rows into a temporary store, starts `mlflow
server` on it, and lets headless Chromium render the printed links (the UI is a JavaScript app, so
a plain HTTP fetch would show nothing). tests/e2e/test_mlflow_ui_browser.py checks the same pages.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


def printed_link(out: str, prefix: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return re.search(r"https?://\S+", line).group(0)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="flowae-shots-"))
    store = f"sqlite:///{work / 'mlflow.db'}"
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "FLOWAE_ARTIFACT_ROOT": str(work / "artifacts"),
           "FLOWAE_WORK_DIR": str(work / "work"), "FLOWAE_CHECKPOINT_DIR": str(work / "checkpoints"),
           "FLOWAE_MLFLOW_UI_URL": f"http://127.0.0.1:{port}"}
    inputs = ["--data", *(str(SHARED / f) for f in FILES)]
    done = subprocess.run([str(BIN / "flowae"), "compare", *inputs, "--out", str(work / "ingested"), "--files",
                           FILES[0].removesuffix(".csv"), "--epochs", "8", "--device", "cpu"],
                          env=env, check=True, capture_output=True, text=True)
    print(done.stdout)
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", store, "--workers", "1",
                               "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not answers(f"http://127.0.0.1:{port}/health"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"make_screenshots: mlflow server on port {port} never answered /health")
            time.sleep(0.5)
        shoot(printed_link(done.stdout, "open: "), REPO / "docs" / "mlflow_compare.png", work / "chrome1")
        shoot(printed_link(done.stdout, "best: "), REPO / "docs" / "mlflow_run.png", work / "chrome2")
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def answers(url: str) -> bool:
    """The same probe as the tests' ``tests/waits.answers_health`` (this script imports nothing of tests/)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
