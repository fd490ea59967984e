"""Registry writes against a tracking *server* (a real ``mlflow server`` on 127.0.0.1, SQLite
behind it), where no file lock can reach: three processes registering and moving the champion at
once lose no move (without a lock they do: each move reads the history, appends, writes it
back); a live holder makes another writer wait and give up with one line; the ticket of a holder
that died frees the lock after its lease."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from flow_test_rows import register_detector, tiny_detector
from mlflow import MlflowClient

from components.detect.promotion import promote
from components.detect.registry import (
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
def server(tmp_path_factory):
    """``mlflow server`` with proxied artifacts on a free loopback port, for this module."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FLOWAE_"))}
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn child, started above
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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
    from components.detect.registry import make_champion as crown
    from components.detect.registry import register as register_here
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
