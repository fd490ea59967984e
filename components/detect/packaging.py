"""One self-contained MLflow model per detector: the pyfunc, its signature and an input example.

The signature lists every column spelling flowae reads (canonical names, the published raw
headers with and without their leading spaces, and the contract's aliases), all optional: MLflow
keeps only the columns a signature names, so this is what lets ``predict`` take raw rows of any
header variant as well as curated ones. Baselines are packaged the same way (their state is JSON,
the isolation forest's in skops format, never pickle).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from components.data.contract import load_contract
from components.detect.detector import OUTPUT_COLUMNS, Detector

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
_TYPES = {"float64": "double", "int64": "long", "string": "string"}
#: what the model needs from the environment it is loaded in (flowae itself must be installed)
PIP_REQUIREMENTS = ["mlflow==3.17.2", "torch==2.13.0", "numpy>=2.0", "pandas>=3.0", "pyarrow>=20,<26",
                    "scikit-learn>=1.5", "skops", "pydantic>=2.7", "PyYAML>=6"]


def input_schema() -> Schema:
    """Every accepted spelling of every contract column the detector can use, all optional."""
    contract = load_contract()
    specs: dict[str, ColSpec] = {}
    raw_names = {h for variant in contract.variants.values() for h in variant}

    def add(name: str, dtype: str) -> None:
        if name and name not in specs:
            specs[name] = ColSpec(_TYPES[dtype], name, required=False)

    for col in contract.columns:
        if col.dtype not in _TYPES:  # the timestamp: not needed to score
            continue
        add(col.name, col.dtype)
        for alias in col.aliases:
            add(alias, col.dtype)
            add(alias.strip(), col.dtype)
    for raw in sorted(raw_names):
        name = contract.resolve_header([raw])[0]
        if name is not None and contract.by_name[name].dtype in _TYPES:
            add(raw, contract.by_name[name].dtype)
            add(raw.strip(), contract.by_name[name].dtype)
    add("Fwd Header Length.1", "float64")  # pandas' name for the duplicated raw column
    add("source_file", "string")
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
