"""MLflow at the I/O boundary: which store, experiments (with the kind the UI needs), stage runs,
links into the UI, and dataset lineage. Components log into the run a flow opened here, so they
stay testable without a store.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

from components.settings import Settings, artifact_location

#: MLflow 3's UI opens an experiment without a kind in its GenAI view (traces, tokens), where none
#: of flowae's runs show; this tag opens it in the model-training view.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def use_tracking(settings: Settings) -> None:
    """Point MLflow at the configured store; create the local folder of the embedded default. A
    URI with credentials: MLflow's own run links (printed with the raw URI) are switched off;
    flowae prints its links through :func:`redact`."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if redact(uri) != uri:  # MLflow prints "View run ... at: <tracking URI>" when a run ends
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """Experiment id for ``name``, created on first use with the model-training kind tag.

    On a local store (sqlite/file) artifacts go under ``settings.artifact_root``; on a tracking
    server the server decides (its ``--artifacts-destination``).
    """
    use_tracking(settings)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        if existing.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            mlflow.MlflowClient().set_experiment_tag(existing.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        return existing.experiment_id
    location = None
    if settings.tracking_uri.startswith(("sqlite:", "file:")):
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_location(settings)
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent command
        return mlflow.get_experiment_by_name(name).experiment_id


@contextlib.contextmanager
def stage_run(settings: Settings, experiment: str, name: str, parent_run_id: str | None = None,
              run_id: str | None = None, tags: dict[str, str] | None = None,
              system_metrics: bool = False) -> Iterator[mlflow.ActiveRun]:
    """A run to log one stage into: ``run_id`` reopens a run, ``parent_run_id`` makes a child.

    Stages open their runs one after another (never nested in Python), so a flow can reopen one
    run from several tasks, or give each task a child run of one parent.
    """
    experiment_id = ensure_experiment(settings, experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_id=run_id,
                          run_name=None if run_id else name, parent_run_id=parent_run_id,
                          tags=tags, log_system_metrics=system_metrics) as run:
        yield run


def new_run(settings: Settings, experiment: str, name: str, tags: dict[str, str] | None = None,
            parent_run_id: str | None = None) -> str:
    """Create a run (finished at once) whose id the stages of a flow then log into."""
    with stage_run(settings, experiment, name, parent_run_id=parent_run_id, tags=tags) as run:
        return run.info.run_id


_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "sig", "auth", "credential")


def redact(uri: str) -> str:
    """``uri`` fit to print, tag or put in an artifact: no ``user:password@`` and no secret-looking
    query value (``https://user:pass@host/x?token=t`` -> ``https://host/x?token=***``)."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(
        f"{k}=***" if any(w in k.lower() for w in _SECRET_WORDS) else (f"{k}={v}" if sep else k)
        for k, sep, v in (pair.partition("=") for pair in parts.query.split("&") if pair))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def ui_base(settings: Settings) -> str:
    """Where the MLflow UI answers: the setting, the tracking server, or ``make mlflow-ui``'s port;
    never with the credentials a tracking URI may carry (links are printed and stored)."""
    if settings.mlflow_ui_url:
        return redact(settings.mlflow_ui_url).rstrip("/")
    if settings.tracking_uri.startswith(("http://", "https://")):
        return redact(settings.tracking_uri).rstrip("/")
    return "http://127.0.0.1:5000"


def runs_link(settings: Settings, experiment_id: str) -> str:
    """The experiment's runs in the MLflow UI's model-training view."""
    return f"{ui_base(settings)}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def run_link(settings: Settings, experiment_id: str, run_id: str) -> str:
    return f"{ui_base(settings)}/#/experiments/{experiment_id}/runs/{run_id}"


def file_dataset(path: Path, sha256: str, name: str | None = None) -> MetaDataset:
    """A metadata-only MLflow dataset for ``path`` (the data stays where it is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        source = resolve_dataset_source(str(Path(path).resolve()))
    return MetaDataset(source=source, name=name or Path(path).stem, digest=sha256[:36])  # column is 36 wide
