"""MLflow plumbing shared by every stage: which store, which experiment, where artifacts go, and
dataset lineage (a file on disk, named by its stem and fingerprinted by its sha256)."""
from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

from components.settings import Settings, artifact_location


def use_tracking(settings: Settings) -> None:
    """Point MLflow at the configured store; create the local folder of the embedded default."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """Experiment id for ``name``, created on first use.

    On a local store (sqlite/file) artifacts go under ``settings.artifact_root``; on a tracking
    server the server decides (its ``--artifacts-destination``).
    """
    use_tracking(settings)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if settings.tracking_uri.startswith(("sqlite:", "file:")):
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_location(settings)
    return mlflow.create_experiment(name, artifact_location=location)


def file_dataset(path: Path, sha256: str, name: str | None = None) -> MetaDataset:
    """A metadata-only MLflow dataset for ``path`` (the data stays where it is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        source = resolve_dataset_source(str(Path(path).resolve()))
    return MetaDataset(source=source, name=name or Path(path).stem, digest=sha256[:36])  # column is 36 wide
