"""One self-contained MLflow model per detector: the pyfunc, its signature and an input example.

The signature lists every column spelling flowae reads (canonical names, the published raw
headers with and without their leading spaces, and the contract's aliases), all optional and of
MLflow's ``AnyType``: MLflow keeps only the columns a signature names, and a typed column refuses
what raw files hold (an integer column where the schema says double, ``Infinity`` text), so this is
what lets ``predict`` take raw rows of any header variant as well as curated ones; flowae then casts
values the way ingest does. MLflow checks ``AnyType`` value by value (about 6 s per 100k rows):
nightly batches go through ``flowae score``, which streams files without that check. Baselines are packaged the same way (their state is JSON,
the isolation forest's in skops format, never pickle).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema

from components.data.contract import load_contract
from components.detect.detector import OUTPUT_COLUMNS, Detector

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
_USED = ("float64", "int64", "string")  # contract dtypes worth passing on (not the timestamp)
#: what the model needs from the environment it is loaded in (flowae itself must be installed)
PIP_REQUIREMENTS = ["mlflow==3.17.2", "torch==2.13.0", "numpy>=2.0", "pandas>=3.0", "pyarrow>=20,<26",
                    "scikit-learn>=1.5", "skops", "pydantic>=2.7", "PyYAML>=6"]


def input_schema() -> Schema:
    """Every accepted spelling of every contract column the detector can use, all optional."""
    contract = load_contract()
    specs: dict[str, ColSpec] = {}
    raw_names = {h for variant in contract.variants.values() for h in variant}

    def add(name: str) -> None:
        if name and name not in specs:
            specs[name] = ColSpec(AnyType(), name, required=False)

    for col in contract.columns:
        if col.dtype not in _USED:  # the timestamp: not needed to score
            continue
        add(col.name)
        for alias in col.aliases:
            add(alias)
            add(alias.strip())
    for raw in sorted(raw_names):
        name = contract.resolve_header([raw])[0]
        if name is not None and contract.by_name[name].dtype in _USED:
            add(raw)
            add(raw.strip())
    for variant in contract.variants.values():  # pandas names a repeated header "<name>.1"
        for raw in {h for h in variant if list(variant).count(h) > 1}:
            add(f"{raw}.1")
            add(f"{raw.strip()}.1")
    add("source_file")
    return Schema(list(specs.values()))


def output_schema() -> Schema:
    types = {"anomaly_score": "double", "is_anomaly": "boolean"}
    return Schema([ColSpec(types.get(c, "string"), c) for c in OUTPUT_COLUMNS])


def log_detector(detector: Detector, example: pd.DataFrame, name: str = "model"):
    """Log ``detector`` as a pyfunc in the active run; returns MLflow's ``ModelInfo``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = detector.save(Path(tmp) / "detector")
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"detector": str(folder)},
            signature=ModelSignature(inputs=input_schema(), outputs=output_schema()),
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )


def load_detector(model_uri: str) -> Detector:
    """The :class:`Detector` inside a logged or registered flowae model (``models:/flowae@champion``)."""
    model = mlflow.pyfunc.load_model(model_uri)
    return model.unwrap_python_model().detector
