"""Registry writes against a tracking *server* (a real ``mlflow server`` on 127.0.0.1, SQLite
behind it), where no file lock can reach: three processes registering and moving the champion at
once lose no move (without a lock they do: each move reads the history, appends, writes it
back); a live holder makes another writer wait and give up with one line; the ticket of a holder
that died frees the lock after its lease."""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import pytest
from flow_test_rows import register_detector, tiny_detector
from mlflow import MlflowClient

from components.serve.promotion import promote
from components.serve.registry import (
    LOCK_OWNER_TAG,
    LOCK_SOURCE,
    LOCK_SUFFIX,
    MOVE_TAG,
    RegistryError,
    aliases,
    registry_lock,
)
from components.settings import load_settings

WRITERS, ROUNDS = 3, 3


@pytest.fixture(scope="module")
def server(mlflow_server) -> str:
    return f"http://127.0.0.1:{mlflow_server}"


@pytest.fixture
def server_store(server, request, tmp_path, monkeypatch):
    """Settings on the server, with a registered model of this test's own."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("FLOWAE_REGISTERED_MODEL_NAME", f"flowae-{request.node.name[:40]}")
    monkeypatch.setenv("FLOWAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FLOWAE_WORK_DIR", str(tmp_path / "work"))
    mlflow.set_tracking_uri(server)
    yield load_settings()
    if mlflow.active_run() is not None:
        mlflow.end_run()


def _register_and_crown(env: dict, source: str, rounds: int, queue) -> None:
    os.environ.update(env)
    from components.serve.registry import make_champion as crown
    from components.serve.registry import register as register_here
    from components.settings import load_settings as settings_here

    settings = settings_here()
    try:
        mine = []
        for _ in range(rounds):
            version = register_here(settings, source, {"flowae.family": "pca"})
            crown(settings, version)
            mine.append(version)
        queue.put(("ok", mine))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", f"{exc.__class__.__name__}: {exc}"))


@pytest.mark.slow  # an mlflow server and writers in processes (30-45 s)
def test_writers_at_once_on_a_server_lose_no_champion_move(real_ingested, server_store):
    settings = server_store
    first = register_detector(settings, tiny_detector(real_ingested, "pca", "quantile"))
    assert promote(settings).champion_after == first  # the first model: lock taken, then re-entered
    client = MlflowClient(settings.tracking_uri)
    source = client.get_model_version(settings.registered_model_name, first).source
    env = {k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_", "FLOWAE_"))}
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_register_and_crown, args=(env, source, ROUNDS, queue)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(status == "ok" for status, _ in results), results
    crowned = [v for _, mine in results for v in mine]
    assert len(set(crowned)) == WRITERS * ROUNDS

    now = aliases(settings)
    chain = [*now.history, now.champion]  # every champion there has been, in order of the moves
    assert sorted(chain, key=int) == sorted([first, *crowned], key=int), chain  # each move recorded once
    assert chain[0] == first and now.challenger is None
    model = client.get_registered_model(settings.registered_model_name)
    assert MOVE_TAG not in model.tags
    assert client.search_model_versions(f"name='{settings.registered_model_name}{LOCK_SUFFIX}'") == []


def test_a_live_holder_makes_others_wait_and_a_dead_one_frees_the_lock(server_store):
    settings = server_store
    client = MlflowClient(settings.tracking_uri)
    lock = settings.registered_model_name + LOCK_SUFFIX
    client.create_registered_model(lock)
    client.create_model_version(lock, LOCK_SOURCE, tags={LOCK_OWNER_TAG: "gone:4242:killed"},
                                await_creation_for=0)  # a writer killed while it held the lock

    waiting = registry_lock(settings, wait_s=1.0, lease_s=60.0)  # within its lease: it may be alive
    with pytest.raises(RegistryError, match=r"waited 1 s for the registry lock .* held by gone:4242:killed"), waiting:
        pass
    start = time.monotonic()
    with registry_lock(settings, wait_s=60.0, lease_s=3.0):
        waited = time.monotonic() - start
        tickets = client.search_model_versions(f"name='{lock}'")
        assert [t.tags[LOCK_OWNER_TAG].split(":")[1] for t in tickets] == [str(os.getpid())]
        with registry_lock(settings, wait_s=0.0):  # re-entrant in the holding thread
            pass
    assert waited < 30
    assert client.search_model_versions(f"name='{lock}'") == []
