"""One self-contained MLflow model per detector: the pyfunc, its signature and an input example.

The signature lists every column spelling flowae reads (canonical names, the published raw
headers with and without their leading spaces, and the contract's aliases), all optional and of
MLflow's ``AnyType``: MLflow keeps only the columns a signature names, and a typed column refuses
what raw files hold (an integer column where the schema says double, ``Infinity`` text), so this is
what lets ``predict`` take raw rows of any header variant as well as curated ones; flowae then casts
values the way ingest does. MLflow checks ``AnyType`` value by value (about 6 s per 100k rows):
nightly batches go through ``flowae score``, which streams files without that check. Baselines are packaged the same way (their state is JSON,
the isolation forest's in skops format, never pickle).

Trust. A pyfunc logged from code (``pyfunc_model.py``) runs that file on every ``load_model``: who
can write to the artifact store could run code wherever the model is loaded. So flowae's own
commands (``score``, ``promote``, ``evaluate``) never load the pyfunc: :func:`load_detector`
downloads only the detector folder and reads it as data (JSON + a ``state_dict`` with
``weights_only=True``). The pyfunc stays for third parties: at logging, the sha256 of every stored
file (``pyfunc_model.py`` and ``MLmodel`` among them) is recorded as tags of the logged model, in
the tracking database rather than beside the files; :func:`verified_pyfunc` downloads the model,
refuses it if any stored file differs from that record, and only then loads it from the copy it
checked. :func:`load_detector` checks the detector folder against the same record.
"""
from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, Schema

from components.data.contract import load_contract
from components.data.curated import curated_folder
from components.data.readers import sha256_file
from components.detect.detector import OUTPUT_COLUMNS, Detector
from components.serve.scoring import SCORE_FIELDS

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
_USED = ("float64", "int64", "string")  # contract dtypes worth passing on (not the timestamp)
#: what the model needs from the environment it is loaded in (flowae itself must be installed)
MODEL_PACKAGES = ("mlflow", "torch", "numpy", "pandas", "pyarrow", "scikit-learn", "skops", "pydantic", "PyYAML")


def pip_requirements() -> list[str]:
    """The model's pip requirements at the versions installed here (constraints.txt pins them; no
    version is written twice). A local label (``+cpu``) is dropped: PyPI does not serve it."""
    return [f"{name}=={metadata.version(name).split('+')[0]}" for name in MODEL_PACKAGES]


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
    """The pyfunc's output: the detector's columns of the scored files' schema (``SCORE_FIELDS``)."""
    types = {pa.float64(): "double", pa.bool_(): "boolean", pa.string(): "string"}
    return Schema([ColSpec(types[f.type], f.name) for f in SCORE_FIELDS if f.name in OUTPUT_COLUMNS])


#: where the detector folder sits inside the logged model (``artifacts={"detector": ...}``)
DETECTOR_PATH = "artifacts/detector"
#: logged-model tags: the sha256 of the stored model code, and of every stored file
CODE_TAG = "flowae.pyfunc_sha256"
FILES_TAG = "flowae.model_files_sha256"
_ADDED_ON_DOWNLOAD = {"registered_model_meta"}  # MLflow writes it into a registered model's download


class UntrustedModel(RuntimeError):
    """A model whose stored files no longer match the hashes recorded when it was logged."""


def log_detector(detector: Detector, example: pd.DataFrame, name: str = "model"):
    """Log ``detector`` as a pyfunc in the active run and record the sha256 of its stored files
    (tags of the logged model); returns MLflow's ``ModelInfo``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = detector.save(Path(tmp) / "detector")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"detector": str(folder)},
            signature=ModelSignature(inputs=input_schema(), outputs=output_schema()),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    with tempfile.TemporaryDirectory() as tmp:  # hash what the store holds, not what we sent
        stored = file_hashes(Path(mlflow.artifacts.download_artifacts(f"models:/{info.model_id}", dst_path=tmp)))
    mlflow.MlflowClient().set_logged_model_tags(info.model_id, {
        CODE_TAG: stored[MODEL_CODE.name], FILES_TAG: json.dumps(stored, sort_keys=True, separators=(",", ":"))})
    return info


def file_hashes(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (but MLflow's download marker)."""
    out = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel not in _ADDED_ON_DOWNLOAD:
            out[rel] = sha256_file(path)
    return out


def model_id(model_uri: str) -> str | None:
    """The logged model behind ``models:/m-...``, ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``
    or ``runs:/RUN_ID/NAME`` (resolved once, so that what is checked and what is downloaded are
    the same model); None for other URIs or a registered version that does not point at a logged
    model."""
    client = mlflow.MlflowClient()
    if model_uri.startswith("runs:/"):
        run_id, _, name = model_uri.removeprefix("runs:/").strip("/").partition("/")
        experiment = client.get_run(run_id).info.experiment_id
        found = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}' "
                                            f"AND name = '{name.strip('/')}'", max_results=1)
        return found[0].model_id if found else None
    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/").strip("/")
    if ref.startswith("m-") and "/" not in ref and "@" not in ref:
        return ref
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, _, number = ref.rpartition("/")
        version = client.get_model_version(name, number)
    if getattr(version, "model_id", None):
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/").strip("/") if source.startswith("models:/m-") else None


def recorded_hashes(logged_model_id: str | None) -> dict[str, str] | None:
    """The file hashes recorded when the model was logged; None if there is no record."""
    if logged_model_id is None:
        return None
    tags = mlflow.MlflowClient().get_logged_model(logged_model_id).tags
    return json.loads(tags[FILES_TAG]) if FILES_TAG in tags else None


def _differences(stored: dict[str, str], recorded: dict[str, str]) -> list[str]:
    return sorted(k for k in stored.keys() | recorded.keys() if stored.get(k) != recorded.get(k))


def load_detector(model_uri: str) -> Detector:
    """The :class:`Detector` inside a logged or registered flowae model (``models:/flowae@champion``),
    read from its detector folder as data: no code from the artifact store is imported or run.
    The folder is checked against the hashes recorded at logging, where there is a record."""
    found = model_id(model_uri)
    source = mlflow.MlflowClient().get_logged_model(found).artifact_location if found else model_uri
    recorded = recorded_hashes(found)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(f"{source.rstrip('/')}/{DETECTOR_PATH}", dst_path=tmp))
        if recorded is not None:
            prefix = DETECTOR_PATH + "/"
            stored = {f"{prefix}{k}": v for k, v in file_hashes(folder).items()}
            changed = _differences(stored, {k: v for k, v in recorded.items() if k.startswith(prefix)})
            if changed:
                raise UntrustedModel(f"refusing to load {model_uri}: stored files differ from the sha256 "
                                     f"recorded when it was logged ({', '.join(changed)})")
        return Detector.load(folder)


def verified_pyfunc(model_uri: str):
    """``mlflow.pyfunc.load_model`` for a flowae model, but only once every stored file (the model
    code ``pyfunc_model.py`` first of all) matches the sha256 recorded when it was logged: loading
    a pyfunc runs its stored code. Loaded from the very copy that was checked."""
    found = model_id(model_uri)
    recorded = recorded_hashes(found)
    if recorded is None:
        raise UntrustedModel(f"refusing to load {model_uri}: no sha256 of its stored code was recorded "
                             f"when it was logged")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{found}", dst_path=tmp))
        changed = _differences(file_hashes(local), recorded)
        if changed:
            raise UntrustedModel(f"refusing to load {model_uri}: stored files differ from the sha256 "
                                 f"recorded when it was logged ({', '.join(changed)}); loading it would "
                                 f"run code nobody checked")
        return mlflow.pyfunc.load_model(str(local))


def input_example(detector: Detector, rows: int = 5):
    """A few curated rows of the first training file, in the columns the signature names."""
    info = detector.info
    folder = curated_folder(Path(info.data_dir))
    first = folder / (info.training_files or info.files)[0]
    frame = pq.read_table(first).slice(0, rows).to_pandas()
    allowed = set(input_schema().input_names())
    return frame[[c for c in frame.columns if c in allowed]]
