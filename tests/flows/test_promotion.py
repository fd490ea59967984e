"""Promotion on a real SQLite registry: the first model, a win, a loss by margin, rollback, and two
promotions at once in two processes leaving consistent aliases; `flowae promote` prints the call;
exactly this version (refused when challenger moved before or during the comparison); recall
promotion gated by the challenger's FPR against its target."""
from __future__ import annotations

import multiprocessing as mp

import pytest
from flow_test_rows import register_detector, tiny_detector
from mlflow import MlflowClient
from typer.testing import CliRunner

from components.serve.promotion import promote
from components.serve.registry import RegistryError, aliases, rollback
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


def _promote_in_a_process(env: dict, queue, both_compared) -> None:
    import os

    os.environ.update(env)
    from components.serve import promotion
    from components.serve.promotion import promote as promote_here
    from components.settings import load_settings as settings_here

    real = promotion.evaluate_on

    def evaluate_then_wait(*args, **kwargs):  # each comparison ends only when the other one's has
        result = real(*args, **kwargs)
        both_compared.wait(timeout=240)
        return result

    promotion.evaluate_on = evaluate_then_wait
    try:
        decision = promote_here(settings_here())
        outcome = "refused" if decision.refused else "promoted" if decision.promoted else "kept"
        queue.put((outcome, decision.champion_after if decision.promoted else decision.reason))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", str(exc)))


@pytest.mark.slow  # two promotions in spawned processes (15-35 s)
def test_two_promotions_at_once_leave_consistent_aliases(detectors, store):
    import os

    v1 = register_detector(store, detectors["weak"])
    promote(store)
    v2 = register_detector(store, detectors["strong"])
    env = {k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_", "FLOWAE_"))}
    ctx = mp.get_context("spawn")
    queue, both_compared = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_promote_in_a_process, args=(env, queue, both_compared)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    outcomes = sorted((queue.get(timeout=5) for _ in procs), key=lambda o: o[0] != "promoted")
    assert outcomes[0] == ("promoted", v2), outcomes
    # Both read the aliases and compared before either moved them: the second one's compare-and-set
    # under the lock sees the first one's move and refuses, so nothing moves twice.
    refused = (f"version {v2} not promoted: the registry changed during the comparison "
               f"(challenger {v2} -> None, champion {v1} -> {v2})")
    assert outcomes[1] == ("refused", refused), outcomes
    assert aliases(store) == (v2, None, (v1,))  # exactly one move, recorded once


def test_promote_command_prints_the_decision(detectors, store):
    register_detector(store, detectors["weak"])
    result = CliRunner().invoke(app, ["promote"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("flowae@champion is version 1")

    refused = CliRunner().invoke(app, ["promote", "--version", "9"])
    assert refused.exit_code == 1
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith("flowae: promote: version 9 not promoted: challenger points "
                           "at no version, not 9"), line
    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(store.registry_experiment).experiment_id],
                              order_by=["attributes.start_time DESC"])
    assert runs[0].data.tags["flowae.outcome"] == "refused" and runs[0].data.metrics["refused"] == 1.0
    assert runs[0].data.tags["flowae.reason"].startswith("version 9 not promoted")
    assert aliases(store).champion == "1"

    back = CliRunner().invoke(app, ["promote", "--rollback"])
    assert back.exit_code == 1
    assert back.stderr.strip().splitlines()[-1].startswith("flowae: promote: ")
    assert "no earlier champion is recorded" in back.stderr


def test_a_version_that_is_no_longer_the_challenger_is_not_promoted(detectors, store, monkeypatch):
    from components.serve import promotion

    v1 = register_detector(store, detectors["weak"])
    promote(store)
    v2 = register_detector(store, detectors["strong"])
    v3 = register_detector(store, detectors["weak"])  # another run registered after this one
    refused = promote(store, version=v2)
    assert (refused.refused, refused.promoted, refused.champion_after) == (True, False, v1)
    assert refused.reason == (f"version {v2} not promoted: challenger is version {v3}, not {v2} (another "
                              f"run moved it, or it was never set); champion stays version {v1}")
    assert aliases(store) == (v1, v3, ())

    # The challenger moves while the comparison runs (outside the lock): the compare-and-set under
    # the lock sees it and nothing moves, although this challenger would have won.
    v4 = register_detector(store, detectors["strong"])
    real, others = promotion.evaluate_on, []

    def another_run_registers_meanwhile(*args, **kwargs):
        if not others:
            others.append(register_detector(store, detectors["weak"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(promotion, "evaluate_on", another_run_registers_meanwhile)
    moved = promote(store, version=v4)
    v5 = others[0]
    assert moved.refused and not moved.promoted and moved.challenger_value > moved.champion_value
    assert moved.reason == (f"version {v4} not promoted: the registry changed during the comparison "
                            f"(challenger {v4} -> {v5}, champion {v1} -> {v1})")
    assert aliases(store) == (v1, v5, ())

    monkeypatch.setattr(promotion, "evaluate_on", real)
    assert promote(store, version=v5).refused is False  # the current challenger still goes ahead


def test_recall_promotion_needs_the_fpr_within_a_factor_of_the_target(detectors, store, monkeypatch, tmp_path):
    from components.detect.detector import Detector

    v1 = register_detector(store, detectors["weak"])
    promote(store)
    low = Detector.load(detectors["strong"].save(tmp_path / "low"))
    low.calibration.threshold = -1.0  # far too low: every flow is flagged, recall 1.0
    v2 = register_detector(store, low)
    monkeypatch.setenv("FLOWAE_PROMOTION_METRIC", "recall")
    kept = promote(load_settings(), version=v2)
    assert (kept.promoted, kept.refused, kept.champion_after) == (False, False, v1)
    assert kept.challenger_fpr == 1.0 and kept.target_fpr == 0.01
    assert kept.challenger_value == 1.0 > kept.champion_value  # it would have won on recall alone
    assert kept.reason == ("challenger's FPR 1.0000 on benign comparison flows exceeds 2x its target "
                           "0.01: a threshold that low cannot win on recall")
    assert aliases(store) == (v1, v2, ())

    monkeypatch.setenv("FLOWAE_PROMOTION_MAX_FPR_FACTOR", "200")  # 2.0 allowed: the gate is what held it
    won = promote(load_settings(), version=v2)
    assert won.promoted and won.reason.startswith("recall 1.0000 beats")
    assert aliases(store) == (v2, None, (v1,))


def test_promotion_after_a_data_change_is_refused_in_one_line(detectors, store, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    from components.detect.detector import Detector

    v1 = register_detector(store, detectors["weak"])
    promote(store)
    moved = Detector.load(detectors["strong"].save(tmp_path / "strong"))
    data = shutil.copytree(moved.info.data_dir, tmp_path / "ingested")
    moved.info.data_dir = str(data)  # its recorded data: a copy this test may change
    v2 = register_detector(store, moved)
    changed = data / "curated" / "friday-ddos-1000.TrafficLabelling.parquet"
    table = pq.read_table(changed)
    pq.write_table(table.slice(0, table.num_rows - 1), changed)  # one row fewer since training

    refused = promote(store, version=v2)
    assert (refused.refused, refused.promoted, refused.champion_after) == (True, False, v1)
    assert refused.reason == (f"version {v2} not compared: {data / 'curated'}: data changed since the model "
                              f"was trained: {changed.name} (sha256 differs from the model's record)")
    assert aliases(store) == (v1, v2, ())

    result = CliRunner().invoke(app, ["promote"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    log = (store.work_dir / "flowae-promote.error.log").resolve()
    ours = [line for line in result.stderr.splitlines() if line.startswith("flowae:")]
    assert ours == [f"flowae: promote: {refused.reason} (details: {log})"]
