"""Registry writes on a real SQLite store: a failure between two writes of a champion move (the
connection drops at one MlflowClient call) leaves alias and history agreeing, and rollback still
restores the right version; `flowae train` moves no alias unless asked; a retrain whose
challenger was moved by another run is refused, with one line and a recorded decision."""
from __future__ import annotations

import json

import pytest
from flow_test_rows import BENIGN, DDOS, PORTSCAN, TINY, tiny_detector
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from typer.testing import CliRunner

from components.serve.promotion import promote
from components.serve.registry import (
    CHAMPION,
    HISTORY_TAG,
    MOVE_TAG,
    RegistryError,
    aliases,
    make_champion,
    register,
    rollback,
)
from flows.cli import app


@pytest.fixture(scope="module")
def detector(real_ingested):
    return tiny_detector(real_ingested, "pca", "quantile")


def register_versions(settings, detector, n: int) -> list[str]:
    """Log ``detector`` once and register it ``n`` times (each becomes the challenger)."""
    from flow_test_rows import register_detector

    first = register_detector(settings, detector)
    source = MlflowClient(settings.tracking_uri).get_model_version(settings.registered_model_name, first).source
    return [first] + [register(settings, source, {"flowae.family": detector.name}) for _ in range(n - 1)]


def fail_once(monkeypatch, method: str, when) -> None:
    """The next ``MlflowClient.<method>`` call matching ``when(args)`` raises, as a dropped
    connection would; every other call goes to the store."""
    real = getattr(MlflowClient, method)
    armed = [True]

    def dropped(self, *args, **kwargs):
        if armed[0] and when(args):
            armed[0] = False
            raise MlflowException(f"injected: connection dropped at {method}{args}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, dropped)


def raw(settings) -> tuple[dict, list[str], bool]:
    """What the store holds: aliases, the history tag, whether a move record is pending."""
    model = MlflowClient(settings.tracking_uri).get_registered_model(settings.registered_model_name)
    return ({k: str(v) for k, v in model.aliases.items()}, json.loads(model.tags.get(HISTORY_TAG, "[]")),
            MOVE_TAG in model.tags)


def test_promotion_interrupted_between_alias_and_history(detector, store, monkeypatch):
    v1, v2, v3 = register_versions(store, detector, 3)
    make_champion(store, v1)
    fail_once(monkeypatch, "set_registered_model_tag", lambda a: a[1] == HISTORY_TAG)
    with pytest.raises(MlflowException, match="injected"):
        make_champion(store, v2)
    assert raw(store) == ({CHAMPION: v2, "challenger": v3}, [], True)  # alias moved, history not written
    assert aliases(store) == (v2, v3, (v1,))  # what every reader sees already agrees with the alias

    assert rollback(store) == (v2, v1)  # the next locked write settles the history, then rolls back
    assert aliases(store) == (v1, v3, ())
    assert raw(store) == ({CHAMPION: v1, "challenger": v3}, [], False)


def test_promotion_interrupted_between_move_record_and_alias(detector, store, monkeypatch):
    v1, v2 = register_versions(store, detector, 2)
    make_champion(store, v1)
    fail_once(monkeypatch, "set_registered_model_alias", lambda a: a[1] == CHAMPION)
    with pytest.raises(MlflowException, match="injected"):
        make_champion(store, v2)
    assert raw(store) == ({CHAMPION: v1, "challenger": v2}, [], True)  # nothing moved, record left
    assert aliases(store) == (v1, v2, ())

    assert make_champion(store, v2) == (v2, None, (v1,))  # the retry moves it, recorded once
    assert raw(store) == ({CHAMPION: v2}, [v1], False)
    assert rollback(store) == (v2, v1)


def test_rollback_interrupted_between_alias_and_history(detector, store, monkeypatch):
    v1, v2, v3 = register_versions(store, detector, 3)
    for version in (v1, v2, v3):
        make_champion(store, version)
    assert aliases(store) == (v3, None, (v1, v2))
    fail_once(monkeypatch, "set_registered_model_tag", lambda a: a[1] == HISTORY_TAG)
    with pytest.raises(MlflowException, match="injected"):
        rollback(store)
    assert raw(store) == ({CHAMPION: v2}, [v1, v2], True)  # v2 twice, were it read naively
    assert aliases(store) == (v2, None, (v1,))

    assert rollback(store) == (v2, v1)
    assert raw(store) == ({CHAMPION: v1}, [], False)
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback(store)


def test_promotion_interrupted_before_the_challenger_alias_is_cleared(detector, store, monkeypatch):
    (v1,) = register_versions(store, detector, 1)
    fail_once(monkeypatch, "delete_registered_model_alias", lambda a: a[1] == "challenger")
    with pytest.raises(MlflowException, match="injected"):
        promote(store)
    assert raw(store) == ({CHAMPION: v1, "challenger": v1}, [], False)
    assert aliases(store) == (v1, None, ())  # the champion is no challenger of itself
    with pytest.raises(RegistryError, match="no challenger to promote"):
        promote(store)
    assert raw(store) == ({CHAMPION: v1}, [], False)  # and the leftover alias is gone


def test_train_moves_no_alias_unless_asked(detector, real_ingested, store):
    (v1,) = register_versions(store, detector, 1)
    args = ["train", "--data", str(real_ingested), "--model", "pca", "--files", BENIGN.removesuffix(".csv"), *TINY]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    assert "registered flowae version 2 (no alias moved; --challenger makes it the challenger)" in plain.stdout
    assert aliases(store) == (None, v1, ())
    client = MlflowClient(store.tracking_uri)
    assert client.get_model_version(store.registered_model_name, "2").aliases == []

    asked = CliRunner().invoke(app, [*args, "--challenger"])
    assert asked.exit_code == 0, asked.output
    assert "registered flowae version 3 as challenger" in asked.stdout
    assert aliases(store) == (None, "3", ())


@pytest.mark.slow  # a retrain (20-35 s)
def test_retrain_refused_when_another_run_moved_the_challenger(detector, shared_data, store, tmp_path,
                                                              monkeypatch):
    import flows.retrain as retrain_module

    (v1,) = register_versions(store, detector, 1)
    make_champion(store, v1)
    client = MlflowClient(store.tracking_uri)
    real, others = retrain_module.promote_flow, []

    def another_run_registers_in_between(*args, version=None, **kwargs):
        """Between this retrain's register and promote steps, another run registers a version."""
        source = client.get_model_version(store.registered_model_name, version).source
        others.append(register(store, source, {"flowae.family": "another run"}))
        return real(*args, version=version, **kwargs)

    monkeypatch.setattr(retrain_module, "promote_flow", another_run_registers_in_between)
    inputs = [arg for f in (BENIGN, DDOS, PORTSCAN) for arg in ("--data", str(shared_data / f))]
    result = CliRunner().invoke(app, ["retrain", *inputs, "--out", str(tmp_path / "ingested"), "--model", "pca",
                                      "--files", BENIGN.removesuffix(".csv"), *TINY])
    assert result.exit_code == 1, result.output
    assert others == ["3"]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("flowae: retrain: version 2 not promoted: challenger is version 3, "
                           "not 2 (another run moved it, or it was never set); champion stays version 1"), line
    assert "Traceback" not in result.output
    assert aliases(store) == (v1, "3", ())  # champion unchanged, the other run's challenger kept

    registry = client.search_runs([client.get_experiment_by_name(store.registry_experiment).experiment_id])
    assert len(registry) == 1 and registry[0].data.tags["flowae.outcome"] == "refused"
    assert registry[0].data.params["challenger"] == "2" and registry[0].data.metrics["refused"] == 1.0
    experiment = client.get_experiment_by_name(store.retrain_experiment).experiment_id
    parent = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags]
    assert parent[0].data.tags["flowae.registered_version"] == "2"
    assert parent[0].data.tags["flowae.promotion_refused"].startswith("version 2 not promoted")
