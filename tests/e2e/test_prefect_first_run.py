"""A flow command on a machine that never ran Prefect: a fresh PREFECT_HOME, in a real subprocess.

The first start of Prefect's temporary server creates and migrates its database; on a busy
2-core host that took longer than Prefect's 20 s default and the command died with a traceback.
These tests run the CLI the way a new user does (they also run beside the rest of the suite
under ``-n 2``), and check the failure modes say one line and leave no server behind.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

FLOWAE = str(Path(sys.executable).with_name("flowae"))
DDOS = "friday-ddos-1000.TrafficLabelling.csv"


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "FLOWAE_", "PREFECT_API", "PREFECT_HOME",
                                "PREFECT_SERVER_EPHEMERAL"))}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                "FLOWAE_ARTIFACT_ROOT": str(tmp_path / "artifacts")})
    env.update(extra)
    return env


def servers_of(prefect_home: Path) -> list[psutil.Process]:
    """uvicorn processes still running with this PREFECT_HOME (a temporary server left behind)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "uvicorn" in " ".join(proc.info["cmdline"] or []) and \
                    proc.environ().get("PREFECT_HOME") == str(prefect_home):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.slow  # a fresh Prefect home starts its own server (25-40 s)
def test_first_ingest_with_a_fresh_prefect_home_passes_and_cleans_up(tmp_path, shared_data):
    env = fresh_env(tmp_path)
    done = subprocess.run([FLOWAE, "ingest", str(shared_data / DDOS), "--out", str(tmp_path / "out")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Error logging to API" not in done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [(f["status"], f["rows_curated"]) for f in manifest["files"]] == [("ok", 1000)]
    assert (tmp_path / "prefect-home" / "prefect.db").is_file()  # the flow ran on its own server
    assert servers_of(tmp_path / "prefect-home") == []


def test_server_that_cannot_start_in_time_is_one_line_and_no_orphan(tmp_path, shared_data):
    env = fresh_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    done = subprocess.run([FLOWAE, "ingest", str(shared_data / DDOS), "--out", str(tmp_path / "out")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("flowae: ingest: Prefect's temporary server did not answer within 1 s")
    assert "PREFECT_API_URL" in lines[0] and "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in lines[0]
    assert servers_of(tmp_path / "prefect-home") == []
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_unreachable_prefect_api_url_is_one_line(tmp_path, shared_data):
    env = fresh_env(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api")
    done = subprocess.run([FLOWAE, "ingest", str(shared_data / DDOS), "--out", str(tmp_path / "out")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    expected = ("flowae: ingest: PREFECT_API_URL=http://127.0.0.1:9/api does not answer (ConnectError); "
                "start that server or unset PREFECT_API_URL to use a temporary one")
    assert done.stderr.strip().splitlines() == [expected]
