"""The MLflow model registry as flowae uses it: versions of one model, moved by alias.

- every successful training registers a version (tagged with family, data digest, key metrics,
  flowae version, Prefect flow-run id); ``retrain`` (and ``train --challenger``) also points the alias
  ``challenger`` at it, plain ``train`` moves no alias;
- ``champion`` is what nightly scoring loads (``models:/flowae@champion``); the first version
  becomes champion; later ones only when they win (``promotion``);
- each move of ``champion`` pushes the previous one onto a registered-model tag, so
  ``rollback`` can restore it.

**Serialised writes.** Every alias write (challenger at registration, champion and history at a
promotion or a rollback) happens under :func:`registry_lock`, so two commands at once cannot
interleave their reads and writes (lost history entries, a challenger deleted right after another
run set it). Beside a local store (SQLite, file) it is a lock file next to the store (``components.locks``).
On a tracking server it is a lock kept *in the registry itself*: the only service every writer is
sure to share is the MLflow server (a Prefect global concurrency limit would serialise only the
callers of one Prefect API, and ``flowae`` starts a private temporary Prefect server unless
``PREFECT_API_URL`` is set, so two such commands would never see each other's limit). MLflow has
no conditional write, but it numbers the versions of one registered model in commit order with a
unique key, so a version is a ticket: each writer creates one version of ``<name>.registry-lock``
(a row, no artifacts) and waits until its ticket is the lowest live one, then deletes it. A
waiter keeps its ticket live by touching it; a ticket untouched for ``lease_s`` (its holder died,
or held it far longer than an alias write takes) is deleted by the next waiter. All times are
the server's own timestamps, so client clocks do not matter.

**Alias and history agree after a failure.** A champion move writes a *move record* tag first
(from, to, the history after the move), then the alias, then the history, then clears the
record. Whichever call fails, :func:`aliases` reports a consistent pair (the alias is the truth:
when it already points at ``to``, the record's history is the history) and the next locked write
settles it (writes the history, drops the record, drops a challenger alias left on the
champion). So rollback restores the right version even after a crash between two writes.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.locks import file_lock, new_owner
from components.settings import Settings
from components.tracking import use_tracking

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "flowae.champion_history"
MOVE_TAG = "flowae.champion_move"  # a champion move in progress: {"from", "to", "history"}
HISTORY_KEEP = 50
LOCK_SUFFIX = ".registry-lock"
LOCK_SOURCE = "flowae:/registry-lock"  # a ticket is a row, it has no artifacts
LOCK_OWNER_TAG = "flowae.lock_owner"
LEASE_S = 60.0  # alias writes take well under a second; a dead holder frees the lock after this
WAIT_S = 600.0
POLL_S = 0.2


class RegistryError(RuntimeError):
    """The registry is not in a state the command can act on; the message says why."""


class Aliases(NamedTuple):
    champion: str | None
    challenger: str | None
    history: tuple[str, ...]


def client(settings: Settings) -> MlflowClient:
    use_tracking(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def package_version() -> str:
    """The installed flowae's version, tagged on every model version (which code trained it; a
    commit id is not there to read in an installed image)."""
    try:
        return importlib.metadata.version("flowae")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _ensure_model(c: MlflowClient, name: str, description: str) -> None:
    try:
        c.create_registered_model(name, description=description)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register(settings: Settings, model_uri: str, tags: dict[str, str], description: str = "",
             challenger: bool = True) -> str:
    """A new version of the registered model with ``tags``; with ``challenger`` the alias
    ``challenger`` moves to it (under the registry lock)."""
    c = client(settings)
    name = settings.registered_model_name
    _ensure_model(c, name, "flowae detectors: champion scores nightly traffic")
    # the client, not mlflow.register_model: that one tries to create the registered model again and
    # prints "Registered model 'flowae' already exists" on every store, a fresh one included
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    run_id = c.get_logged_model(model_id).source_run_id if model_id else None
    version = c.create_model_version(name, source=model_uri, run_id=run_id, model_id=model_id,
                                     tags={k: str(v)[:5000] for k, v in tags.items()},
                                     description=description or None)
    if challenger:
        with registry_lock(settings):
            c.set_registered_model_alias(name, CHALLENGER, version.version)
    return str(version.version)


def _read(c: MlflowClient, name: str) -> tuple[dict[str, str], tuple[str, ...], dict | None] | None:
    """(aliases, stored history, pending move record) of the registered model; None if absent."""
    try:
        model = c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise  # refused (401/403) or unreachable: never mistake it for "no model yet"
    current = {k: str(v) for k, v in (model.aliases or {}).items()}
    history = tuple(str(v) for v in json.loads(model.tags.get(HISTORY_TAG, "[]")))
    move = json.loads(model.tags[MOVE_TAG]) if MOVE_TAG in model.tags else None
    return current, history, move


def _view(current: dict[str, str], history: tuple[str, ...], move: dict | None) -> Aliases:
    """What the registry means: a move whose alias write landed has the record's history; a
    challenger alias left on the champion by an interrupted promotion is no challenger."""
    champion = current.get(CHAMPION)
    if move is not None and champion is not None and champion == str(move["to"]):
        history = tuple(str(v) for v in move["history"])
    challenger = current.get(CHALLENGER)
    return Aliases(champion, None if challenger == champion else challenger, history)


def aliases(settings: Settings) -> Aliases:
    """Champion, challenger and previous champions (oldest first), consistent even while a move
    interrupted between two writes is not yet settled (reads only; never writes)."""
    read = _read(client(settings), settings.registered_model_name)
    return Aliases(None, None, ()) if read is None else _view(*read)


def _settle(c: MlflowClient, name: str) -> Aliases:
    """Finish what an interrupted move left (under the lock): the history its record names, the
    record itself, a challenger alias on the champion. Returns the settled aliases."""
    read = _read(c, name)
    if read is None:
        return Aliases(None, None, ())
    current, stored, move = read
    view = _view(current, stored, move)
    if view.history != stored:
        c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(list(view.history)))
    if move is not None:
        c.delete_registered_model_tag(name, MOVE_TAG)
    if current.get(CHALLENGER) is not None and current.get(CHALLENGER) == view.champion:
        c.delete_registered_model_alias(name, CHALLENGER)
    return view


def settle(settings: Settings) -> Aliases:
    """Finish what an interrupted champion move left, under the lock; the aliases after it."""
    with registry_lock(settings):
        return _settle(client(settings), settings.registered_model_name)


def _move_champion(c: MlflowClient, name: str, before: Aliases, to: str, history: list[str]) -> None:
    """Record the move, then the alias, then the history, then clear the record (see module doc)."""
    history = history[-HISTORY_KEEP:]
    c.set_registered_model_tag(name, MOVE_TAG, json.dumps({"from": before.champion, "to": to,
                                                           "history": history}))
    c.set_registered_model_alias(name, CHAMPION, to)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    c.delete_registered_model_tag(name, MOVE_TAG)


def make_champion(settings: Settings, version: str) -> Aliases:
    """``version`` becomes champion; the old champion goes onto the history; challenger cleared
    when it was this version."""
    c = client(settings)
    name = settings.registered_model_name
    version = str(version)
    with registry_lock(settings):
        before = _settle(c, name)
        if before.champion != version:
            history = list(before.history)
            if before.champion is not None:
                history.append(before.champion)
            _move_champion(c, name, before, version, history)
        if before.challenger == version:
            c.delete_registered_model_alias(name, CHALLENGER)
    return aliases(settings)


def rollback(settings: Settings) -> tuple[str, str]:
    """Restore the previous champion; returns (was, now)."""
    c = client(settings)
    name = settings.registered_model_name
    with registry_lock(settings):
        before = _settle(c, name)
        if before.champion is None:
            raise RegistryError(f"registered model {name!r} has no champion to roll back")
        if not before.history:
            raise RegistryError(f"{name}@champion is version {before.champion}, and no earlier champion is recorded")
        previous = before.history[-1]
        _move_champion(c, name, before, previous, list(before.history[:-1]))
    return before.champion, previous


def pin_model(settings: Settings, model_uri: str) -> tuple[str, str]:
    """(a URI pinned to one version, the version's label): ``models:/NAME@ALIAS`` is read once, so
    every file of a night is scored by the same version even if the alias moves meanwhile."""
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri.removeprefix("models:/").split("@", 1)
        version = client(settings).get_model_version_by_alias(name, alias)
        return f"models:/{name}/{version.version}", str(version.version)
    if model_uri.startswith("models:/"):
        return model_uri, model_uri.rsplit("/", 1)[-1]
    return model_uri, model_uri


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    return dict(client(settings).get_model_version(settings.registered_model_name, version).tags)


# --- the lock -------------------------------------------------------------------------------------

_held = threading.local()  # tracking URIs whose lock this thread holds: nested calls re-enter


@contextlib.contextmanager
def registry_lock(settings: Settings, wait_s: float = WAIT_S, lease_s: float = LEASE_S) -> Iterator[None]:
    """Exclusive across processes and hosts for the registry of ``settings`` (see module doc);
    re-entrant within one thread. Gives up with :class:`RegistryError` after ``wait_s``."""
    held: set[str] = _held.__dict__.setdefault("uris", set())
    key = settings.tracking_uri
    if key in held:
        yield
        return
    path = _lock_path(settings)
    if path is not None:
        lock = file_lock(path)  # blocks until the other writer is done
    else:
        lock = _ticket_lock(client(settings), settings.registered_model_name + LOCK_SUFFIX, wait_s, lease_s)
    with lock:
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


def _lock_path(settings: Settings) -> Path | None:
    """A lock file beside a local store; None for a store other hosts may share."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).with_suffix(".registry.lock")
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:")) / ".registry.lock"
    return None


@contextlib.contextmanager
def _ticket_lock(c: MlflowClient, lock: str, wait_s: float, lease_s: float) -> Iterator[None]:
    """Hold the lowest live version ("ticket") of the registered model ``lock``."""
    _ensure_model(c, lock, "flowae's registry lock: one version per writer waiting or holding it "
                           "(none when idle); see components/serve/registry.py")
    owner = new_owner()
    ticket = c.create_model_version(lock, LOCK_SOURCE, tags={LOCK_OWNER_TAG: owner},
                                    description=f"held or awaited by {owner}", await_creation_for=0)
    try:
        _wait_turn(c, lock, int(ticket.version), owner, wait_s, lease_s)
        yield
    finally:
        with contextlib.suppress(MlflowException):  # already deleted as expired: nothing to free
            c.delete_model_version(lock, ticket.version)


def _wait_turn(c: MlflowClient, lock: str, mine: int, owner: str, wait_s: float, lease_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        now = c.update_model_version(lock, str(mine), description=f"held or awaited by {owner}"
                                     ).last_updated_timestamp  # keeps it live; the server's clock
        live: dict[int, str] = {}
        for ticket in c.search_model_versions(f"name='{lock}'"):
            number = int(ticket.version)
            if number != mine and now - int(ticket.last_updated_timestamp) > lease_s * 1000:
                with contextlib.suppress(MlflowException):  # its holder is gone
                    c.delete_model_version(lock, ticket.version)
                continue
            live[number] = ticket.tags.get(LOCK_OWNER_TAG, "?")
        if mine not in live:
            raise RegistryError(f"the registry lock ticket {lock}/{mine} of this process was deleted "
                                f"as expired (a pause of more than {lease_s:g} s); try again")
        first = min(live)
        if first == mine:
            return
        if time.monotonic() > deadline:
            raise RegistryError(f"waited {wait_s:g} s for the registry lock ({lock}), held by {live[first]}")
        time.sleep(POLL_S)


def is_local_store(settings: Settings) -> bool:
    return settings.tracking_uri.startswith(("sqlite:", "file:"))
