"""The production stack for integration tests: one per test session (see ``stack.py``).

Tests that need it take the ``stack`` fixture; it starts PostgreSQL, SeaweedFS (+ the bucket),
MLflow and Prefect as local processes on free ports, and stops them at the end of the session,
also when a test failed. ``stack.env()`` is the environment of a client such as a ``flowae``
subprocess; ``stack.subprocess_env()`` is a whole clean environment with it. Keep the tests that
use it in one module: pytest-xdist (``--dist loadfile``) gives each worker its own session, so a
second module could start a second stack on another worker.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stack import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    missing = Stack.missing_requirements()
    if missing:
        message = "the production stack cannot run here: missing " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)  # CI machines have all of it: a missing piece is a broken set-up
        pytest.skip(message)
    with Stack() as running:
        print(f"\nstack started in {running.started_in_s:.1f} s under {running.workdir}")
        yield running
