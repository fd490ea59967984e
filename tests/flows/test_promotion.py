"""Promotion on a real SQLite registry: the first model, a win, a loss by margin, rollback, and two
promotions at once in two processes leaving consistent aliases; `flowae promote` prints the call."""
from __future__ import annotations

import multiprocessing as mp

import pytest
from flow_test_rows import register_detector, tiny_detector
from typer.testing import CliRunner

from components.detect.promotion import promote
from components.detect.registry import RegistryError, aliases, rollback
from components.settings import load_settings
from flows.cli import app


@pytest.fixture(scope="module")
def detectors(real_ingested):
    """A weak one (plain lstm_ae) and a strong one (sparse gate + Mahalanobis error model)."""
    return {"weak": tiny_detector(real_ingested, "lstm_ae", "quantile"),
            "strong": tiny_detector(real_ingested, "sparse_lstm_ae", "mahalanobis")}


def test_first_model_win_margin_and_rollback(detectors, store, monkeypatch):
    v1 = register_detector(store, detectors["weak"])
    first = promote(store)
    assert (first.promoted, first.champion_after, first.reason) == (True, v1, "first model: no champion yet")
    assert aliases(store) == (v1, None, ())  # champion, no challenger, no history

    v2 = register_detector(store, detectors["strong"])
    monkeypatch.setenv("FLOWAE_PROMOTION_MARGIN", "0.5")  # must win by more than 0.5 AUROC: it cannot
    kept = promote(load_settings())
    assert not kept.promoted and kept.champion_after == v1 and "does not beat" in kept.reason
    assert kept.challenger_value > kept.champion_value  # it was better, not better enough
    assert aliases(store) == (v1, v2, ())

    monkeypatch.setenv("FLOWAE_PROMOTION_MARGIN", "0.0")
    won = promote(load_settings())
    assert won.promoted and won.champion_after == v2 and "beats" in won.reason
    assert aliases(store) == (v2, None, (v1,))

    assert rollback(store) == (v2, v1)
    assert aliases(store) == (v1, None, ())
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback(store)
    with pytest.raises(RegistryError, match="no challenger to promote"):
        promote(store)


def _promote_in_a_process(env: dict, queue) -> None:
    import os

    os.environ.update(env)
    from components.detect.promotion import promote as promote_here
    from components.settings import load_settings as settings_here

    try:
        decision = promote_here(settings_here())
        queue.put(("promoted" if decision.promoted else "kept", decision.champion_after))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", str(exc)))


def test_two_promotions_at_once_leave_consistent_aliases(detectors, store):
    import os

    v1 = register_detector(store, detectors["weak"])
    promote(store)
    v2 = register_detector(store, detectors["strong"])
    env = {k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_", "FLOWAE_"))}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_promote_in_a_process, args=(env, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    outcomes = sorted(queue.get(timeout=5) for _ in procs)
    assert outcomes[1] == ("promoted", v2), outcomes
    assert outcomes[0][0] == "error" and "no challenger to promote" in outcomes[0][1]
    assert aliases(store) == (v2, None, (v1,))  # exactly one move, recorded once


def test_promote_command_prints_the_decision(detectors, store):
    register_detector(store, detectors["weak"])
    result = CliRunner().invoke(app, ["promote"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("flowae@champion is version 1")
    back = CliRunner().invoke(app, ["promote", "--rollback"])
    assert back.exit_code == 1
    assert back.stderr.strip().splitlines()[-1].startswith("flowae: promote: ")
    assert "no earlier champion is recorded" in back.stderr
