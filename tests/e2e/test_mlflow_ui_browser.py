"""What a user sees in the MLflow UI, checked in a real browser (headless Chromium): the link
``flowae compare`` prints opens the leaderboard (every model with its AUROC, best first, no click),
and a printed run link opens the model-training view, not MLflow's GenAI pages.

One small ``flowae compare`` (two models, one epoch) and one ``mlflow server`` serve both tests; the
server starts while the comparison runs.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.waits import answers_health, wait_until

pytestmark = pytest.mark.slow  # flowae compare, mlflow server and headless Chromium (about 60 s)

BIN = Path(sys.executable).parent
BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"
MODELS = ("lstm_ae", "mahalanobis_flow")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def page_text(url: str, profile: Path, expect: list[str]) -> str:
    """The rendered page's visible text (the UI is a JavaScript app: a plain fetch shows nothing);
    rendered again with more time while ``expect`` is not all there (a loaded CI machine)."""
    text = ""
    for budget in (15000, 40000):
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              "--window-size=1680,1050", f"--user-data-dir={profile}",
                              f"--virtual-time-budget={budget}", "--dump-dom", url],
                             check=False, capture_output=True, text=True, timeout=180).stdout
        dom = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", dom, flags=re.DOTALL)
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())
        if all(e in text for e in expect):
            break
    return text


@pytest.fixture(scope="module")
def compared(tmp_path_factory, shared_data):
    """A store made by ``flowae compare`` as a user runs it, served by ``mlflow server``; yields
    the command's output, the store and the server's address."""
    if CHROMIUM is None:
        pytest.fail("chromium not found: `make install-dev` installs Debian's package (apt-get install chromium)")
    work = tmp_path_factory.mktemp("ui")
    store = f"sqlite:///{work / 'mlflow.db'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API"))}
    env.update({"MLFLOW_TRACKING_URI": store, "FLOWAE_ARTIFACT_ROOT": str(work / "artifacts"),
                "FLOWAE_WORK_DIR": str(work / "work"), "FLOWAE_CHECKPOINT_DIR": str(work / "checkpoints"),
                "FLOWAE_MLFLOW_UI_URL": f"http://127.0.0.1:{port}", "PREFECT_HOME": str(work / "prefect"),
                "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"})
    # the schema first, so that the server (started meanwhile) and the command share one store
    MlflowClient(store).search_experiments()
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", store, "--workers", "1",
                               "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(work / "server.log", "wb"), start_new_session=True)  # noqa: SIM115
    try:
        done = subprocess.run(
            [str(BIN / "flowae"), "compare", "--data", str(shared_data / BENIGN),
             str(shared_data / "friday-ddos-1000.TrafficLabelling.csv"), "--models", ",".join(MODELS),
             "--out", str(work / "in"), "--files", BENIGN.removesuffix(".csv"), "--epochs", "1", "--window", "8",
             "--stride", "8", "--hidden", "8", "--batch-size", "256", "--device", "cpu", "--seed", "0"],
            check=False, env=env, cwd=work, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_health(base), 120, "mlflow server did not answer /health", interval_s=0.5,
                   process=server, details=lambda: (work / "server.log").read_text(errors="replace")[-2000:])
        yield {"out": done.stdout, "store": store, "base": base, "work": work}
    finally:
        os.killpg(server.pid, 9)  # nothing to save: the store is thrown away
        server.wait(timeout=30)


def printed(out: str, prefix: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return re.search(r"https?://\S+", line).group(0)


def test_compare_link_shows_every_model_with_its_auroc_best_first(compared):
    link = printed(compared["out"], "open: ")
    assert link.startswith(compared["base"]) and "workflowType=machine_learning" in link
    client = MlflowClient(compared["store"])
    experiment = client.get_experiment_by_name("flowae-compare")
    children = {r.info.run_name: r.data.metrics["test_auroc"]
                for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == sorted(MODELS)
    text = page_text(link, compared["work"] / "chrome-board", [*MODELS, *map(repr, children.values())])
    for model, auroc in children.items():
        assert model in text and repr(auroc) in text, (model, auroc, text[:3000])
    ranked = sorted(children, key=children.get, reverse=True)  # the table is sorted by AUROC
    assert [text.index(m) for m in ranked] == sorted(text.index(m) for m in ranked), text[:3000]
    assert "test_auroc" in text and "Sort: test_auroc" in text
    assert f"compare {len(MODELS)} models" not in text  # the children themselves, not a collapsed parent


def test_printed_run_link_opens_the_model_training_view(compared):
    link = printed(compared["out"], "best: ")
    assert "workflowType=machine_learning" in link
    text = page_text(link, compared["work"] / "chrome-run", ["Model registry", "test_auroc"])
    assert "test_auroc" in text and "Parameters" in text  # the run's own page: its metrics and params
    assert "Model registry" in text  # the sidebar of the model-training view
    assert "Judges" not in text and "Evaluations" not in text  # GenAI's sidebar and run page
