"""Waits on a condition (a file appearing, a server answering, a ledger row) with a deadline that
fails the test with a clear message: never a bare sleep that hopes something happened."""
from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, *, interval_s: float = 0.1,
               process: subprocess.Popen | None = None, details: Callable[[], str] = str) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` (plus ``details()``, e.g. a
    log tail) after ``timeout_s``, or at once when ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited first (code {process.returncode})\n{details()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:g} s\n{details()}")
        time.sleep(interval_s)


def answers_health(base_url: str) -> bool:
    """Does the server at ``base_url`` answer ``/health`` with 200 (MLflow, the Prefect API)?"""
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
