"""Dataset lineage for MLflow: a file on disk, named by its stem and fingerprinted by its sha256."""
from __future__ import annotations

import warnings
from pathlib import Path

from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset


def file_dataset(path: Path, sha256: str, name: str | None = None) -> MetaDataset:
    """A metadata-only MLflow dataset for ``path`` (the data stays where it is)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways"
        source = resolve_dataset_source(str(Path(path).resolve()))
    return MetaDataset(source=source, name=name or Path(path).stem, digest=sha256[:36])  # column is 36 wide
