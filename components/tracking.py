"""MLflow at the I/O boundary: which store, experiments (with the kind the UI needs), stage runs,
links into the UI, and dataset lineage. Components log into the run a flow opened here, so they
stay testable without a store.
"""
from __future__ import annotations

import contextlib
import json
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
#: MLflow 3.17's UI ignores the kind tag above when it picks a view: its "workflow switch" is on,
#: so the view follows the URL's ``workflowType`` or else the sidebar switch the browser remembers
#: (localStorage ``mlflow.workflowType``, GenAI until the user picks "Model training"). Every link
#: flowae prints or logs carries it.
ML_VIEW = "workflowType=machine_learning"
#: A run's description in the UI (its Overview tab and the runs table's Description column), and an
#: experiment's description (the experiment page's header).
DESCRIPTION_TAG = "mlflow.note.content"
#: The experiment's ranking metric: the UI's chart view draws it first.
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"
#: A saved runs-table view (filter, sort, columns) the UI opens with ``?viewStateShareKey=KEY``.
SHARED_VIEW_TAG = "mlflow.sharedViewState."


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


def experiment_descriptions(settings: Settings) -> dict[str, str]:
    """What each of flowae's experiments holds (the experiment page's description)."""
    return {
        settings.data_experiment: "flowae ingest: one run per ingest, named after its inputs; rows in, curated "
                                  "and quarantined per file, the manifest and the data-contract checks.",
        settings.train_experiment: "flowae train: one run per model trained (windows, training, calibration, test "
                                   "evaluation and the logged model), named after the model family.",
        settings.retrain_experiment: "flowae retrain: a parent run per retrain (its description is the evaluation "
                                     "summary and the promotion decision) with a child run per stage.",
        settings.compare_experiment: "flowae compare: a parent run per comparison (its description is the "
                                     "leaderboard, best first) with a child run per model on the same data and "
                                     "split. Ranking metric: test_auroc.",
        settings.evaluate_experiment: "flowae evaluate: a registered model measured on labelled flows.",
        settings.scoring_experiment: "flowae score: one run per night scored (its description is the night's "
                                     "headline).",
        settings.registry_experiment: "flowae promote: every promotion decision and alias move of the registry.",
    }


def ensure_experiment(settings: Settings, name: str) -> str:
    """Experiment id for ``name``, created on first use with the model-training kind tag and its
    description (both added to an experiment an older flowae created without them).

    On a local store (sqlite/file) artifacts go under ``settings.artifact_root``; on a tracking
    server the server decides (its ``--artifacts-destination``).
    """
    use_tracking(settings)
    tags = dict(EXPERIMENT_KIND)
    if description := experiment_descriptions(settings).get(name):
        tags[DESCRIPTION_TAG] = description
    if name == settings.compare_experiment:
        tags[PRIMARY_METRIC_TAG] = "test_auroc"
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        for key, value in tags.items():
            if key not in existing.tags or (key == "mlflow.experimentKind" and existing.tags[key] != value):
                mlflow.MlflowClient().set_experiment_tag(existing.experiment_id, key, value)
        return existing.experiment_id
    location = None
    if settings.tracking_uri.startswith(("sqlite:", "file:")):
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_location(settings)
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=tags)
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
    return f"{ui_base(settings)}/#/experiments/{experiment_id}/runs?{ML_VIEW}"


def run_link(settings: Settings, experiment_id: str, run_id: str) -> str:
    """One run's page in the model-training view (without ``workflowType`` MLflow 3.17 opens a
    GenAI "Evaluations" page for it)."""
    return f"{ui_base(settings)}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"


def run_link_for(settings: Settings, run_id: str) -> str:
    """:func:`run_link` for a run whose experiment the caller does not hold."""
    use_tracking(settings)
    return run_link(settings, mlflow.MlflowClient().get_run(run_id).info.experiment_id, run_id)


def model_link(settings: Settings, name: str, version: str | int | None = None) -> str:
    """A registered model (or one of its versions) in the UI's model registry, which the sidebar
    shows only in the model-training view."""
    path = f"models/{name}" + (f"/versions/{version}" if version is not None else "")
    return f"{ui_base(settings)}/#/{path}?{ML_VIEW}"


def set_description(text: str, run_id: str | None = None) -> None:
    """A run's description (the active run's unless ``run_id``): its key figures, shown on its
    Overview tab and in the runs table's Description column."""
    if run_id is None:
        mlflow.set_tag(DESCRIPTION_TAG, text[:5000])
    else:
        mlflow.MlflowClient().set_tag(run_id, DESCRIPTION_TAG, text[:5000])


def children_view(settings: Settings, experiment_id: str, parent_run_id: str, metric: str,
                  columns: list[str], ascending: bool = False) -> str:
    """A saved view of ``parent_run_id``'s child runs, sorted by ``metric`` with ``columns``
    (metric names, ``metric`` first) shown, and the link that opens it without a click.

    The runs table keeps its columns in the browser; a shared view is what this MLflow version
    reads from the store: the experiment tag ``mlflow.sharedViewState.<key>`` holds the table's
    state as JSON and ``?viewStateShareKey=<key>`` opens it (the UI's Share button does the same).
    """
    keys = [f"metrics.`{m}`" for m in dict.fromkeys([metric, *columns])]
    state = {"searchFilter": f"tags.`mlflow.parentRunId` = '{parent_run_id}'", "orderByKey": keys[0],
             "orderByAsc": ascending, "selectedColumns": keys, "columnOrder": keys}
    key = f"children-{parent_run_id}"
    use_tracking(settings)
    mlflow.MlflowClient().set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(state))
    return f"{ui_base(settings)}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}&{ML_VIEW}"


def file_dataset(path: Path, sha256: str, name: str | None = None) -> MetaDataset:
    """A metadata-only MLflow dataset for ``path`` (the data stays where it is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        source = resolve_dataset_source(str(Path(path).resolve()))
    return MetaDataset(source=source, name=name or Path(path).stem, digest=sha256[:36])  # column is 36 wide
