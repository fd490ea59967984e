"""Which startup timeout the temporary Prefect server gets, and the one-line check of a user's API."""
from __future__ import annotations

import pytest

from flows.prefect_api import DEFAULT_STARTUP_TIMEOUT_S, PrefectAPIError, check_api, startup_timeout


def test_flowae_default_is_generous(monkeypatch):
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    assert startup_timeout() == DEFAULT_STARTUP_TIMEOUT_S >= 120


def test_users_prefect_setting_wins(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "45")
    assert startup_timeout() == 45.0


def test_bad_setting_is_one_line(monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "soon")
    with pytest.raises(PrefectAPIError, match="is not a number"):
        startup_timeout()


def test_unreachable_api_is_named():
    with pytest.raises(PrefectAPIError, match=r"PREFECT_API_URL=http://127.0.0.1:9/api does not answer"):
        check_api("http://127.0.0.1:9/api", timeout=2)
