"""The MLflow model registry as flowae uses it: versions of one model, moved by alias.

- every successful training registers a version (tagged with family, data digest, key metrics,
  git commit, Prefect flow-run id) and gives it the alias ``challenger``;
- ``champion`` is what nightly scoring loads (``models:/flowae@champion``); the first version
  becomes champion; later ones only when they win (``promotion``);
- each move of ``champion`` pushes the previous one onto a registered-model tag, so
  ``rollback`` can restore it.

Alias moves happen under a lock (:func:`store_lock` for the embedded SQLite/file store; flows add
a Prefect global concurrency limit for a shared tracking server), so two promotions at once
cannot interleave their reads and writes.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.settings import Settings
from components.tracking import use_tracking

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "flowae.champion_history"


class RegistryError(RuntimeError):
    """The registry is not in a state the command can act on; the message says why."""


class Aliases(NamedTuple):
    champion: str | None
    challenger: str | None
    history: tuple[str, ...]


def client(settings: Settings) -> MlflowClient:
    use_tracking(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def register(settings: Settings, model_uri: str, tags: dict[str, str], description: str = "") -> str:
    """A new version of the registered model with ``tags``; it becomes the ``challenger``."""
    c = client(settings)
    name = settings.registered_model_name
    try:
        c.create_registered_model(name, description="flowae detectors: champion scores nightly traffic")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = mlflow.register_model(model_uri, name, tags={k: str(v)[:5000] for k, v in tags.items()})
    if description:
        c.update_model_version(name, version.version, description=description)
    with store_lock(settings):
        c.set_registered_model_alias(name, CHALLENGER, version.version)
    return str(version.version)


def aliases(settings: Settings) -> Aliases:
    c = client(settings)
    name = settings.registered_model_name
    try:
        model = c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return Aliases(None, None, ())
        raise  # refused (401/403) or unreachable: never mistake it for "no model yet"
    current = {k: str(v) for k, v in (model.aliases or {}).items()}
    history = tuple(str(v) for v in json.loads(model.tags.get(HISTORY_TAG, "[]")))
    return Aliases(current.get(CHAMPION), current.get(CHALLENGER), history)


def make_champion(settings: Settings, version: str) -> Aliases:
    """``version`` becomes champion; the old champion goes onto the history; challenger cleared."""
    c = client(settings)
    name = settings.registered_model_name
    before = aliases(settings)
    history = list(before.history)
    if before.champion is not None and before.champion != version:
        history.append(before.champion)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
    c.set_registered_model_alias(name, CHAMPION, version)
    if before.challenger == version:
        c.delete_registered_model_alias(name, CHALLENGER)
    return aliases(settings)


def rollback(settings: Settings) -> tuple[str, str]:
    """Restore the previous champion; returns (was, now)."""
    c = client(settings)
    name = settings.registered_model_name
    before = aliases(settings)
    if before.champion is None:
        raise RegistryError(f"registered model {name!r} has no champion to roll back")
    if not before.history:
        raise RegistryError(f"{name}@champion is version {before.champion}, and no earlier champion is recorded")
    previous = before.history[-1]
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(list(before.history[:-1])))
    c.set_registered_model_alias(name, CHAMPION, previous)
    return before.champion, previous


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    return dict(client(settings).get_model_version(settings.registered_model_name, version).tags)


@contextlib.contextmanager
def store_lock(settings: Settings) -> Iterator[None]:
    """An exclusive lock beside a local store (SQLite or file); a no-op for a tracking server."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).with_suffix(".registry.lock")
    elif uri.startswith("file:"):
        path = Path(uri.removeprefix("file://").removeprefix("file:")) / ".registry.lock"
    else:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # blocks until the other promotion is done
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_local_store(settings: Settings) -> bool:
    return settings.tracking_uri.startswith(("sqlite:", "file:"))
