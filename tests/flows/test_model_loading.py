"""flowae's own commands load a registered model without running code from the artifact store; the
pyfunc, kept for third parties, is refused once its stored code differs from the sha256 recorded at
logging. Real SQLite MLflow store, a real tiny detector, files rewritten where the store keeps them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from flow_test_rows import BENIGN, register_detector, tiny_detector

from components.serve.packaging import (
    CODE_TAG,
    FILES_TAG,
    MODEL_CODE,
    UntrustedModel,
    load_detector,
    model_id,
    verified_pyfunc,
)
from components.serve.registry import make_champion

URI = "models:/flowae@champion"


@pytest.fixture(scope="module")
def detector(real_ingested):
    return tiny_detector(real_ingested, calibration="quantile")


@pytest.fixture
def stored(store, detector) -> Path:
    """A champion in a fresh store; returns the folder the artifact store keeps its files in."""
    make_champion(store, register_detector(store, detector))
    location = mlflow.get_logged_model(model_id(URI)).artifact_location
    return Path(location.removeprefix("file://"))


@pytest.fixture
def rows(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / BENIGN, nrows=300)


def _evil(stored: Path, marker: Path) -> None:
    code = stored / "pyfunc_model.py"
    code.write_text(code.read_text() + f"\nfrom pathlib import Path\nPath({str(marker)!r}).write_text('stored code ran')\n")


def test_hashes_of_the_stored_files_are_recorded_at_logging(stored, detector):
    logged = mlflow.get_logged_model(model_id(URI))
    run_uri = f"runs:/{logged.source_run_id}/model"  # what `flowae evaluate --model-uri` also takes
    assert model_id(run_uri) == logged.model_id and model_id(f"models:/{logged.model_id}") == logged.model_id
    assert load_detector(run_uri).threshold == detector.threshold
    tags = logged.tags
    code = hashlib.sha256(MODEL_CODE.read_bytes()).hexdigest()
    assert tags[CODE_TAG] == code == hashlib.sha256((stored / "pyfunc_model.py").read_bytes()).hexdigest()
    files = json.loads(tags[FILES_TAG])
    assert files["pyfunc_model.py"] == code and "MLmodel" in files
    assert files["artifacts/detector/detector.json"] == hashlib.sha256(
        (stored / "artifacts/detector/detector.json").read_bytes()).hexdigest()


def test_altered_model_code_never_runs_in_flowae_and_the_pyfunc_is_refused(stored, detector, rows, tmp_path):
    expected = verified_pyfunc(URI).predict(rows)  # untouched: verified, loaded, and it agrees with flowae
    assert np.allclose(expected["anomaly_score"], detector.predict(rows)["anomaly_score"])

    marker = tmp_path / "marker"
    _evil(stored, marker)
    loaded = load_detector(URI)  # flowae's own path: score, promote, evaluate
    assert loaded.threshold == detector.threshold
    assert np.allclose(loaded.predict(rows)["anomaly_score"], expected["anomaly_score"])
    assert not marker.exists()

    with pytest.raises(UntrustedModel) as refused:
        verified_pyfunc(URI)
    message = str(refused.value)
    assert "\n" not in message and "pyfunc_model.py" in message and message.startswith(f"refusing to load {URI}")
    assert not marker.exists()

    mlflow.pyfunc.load_model(URI)  # what the check stands between: the plain loader runs the stored file
    assert marker.read_text() == "stored code ran"


def test_an_altered_detector_folder_is_refused(stored):
    spec = json.loads((stored / "artifacts/detector/detector.json").read_text())
    spec["calibration"]["threshold"] = 1e9  # nothing would ever be flagged
    (stored / "artifacts/detector/detector.json").write_text(json.dumps(spec))
    with pytest.raises(UntrustedModel, match="artifacts/detector/detector.json"):
        load_detector(URI)
    with pytest.raises(UntrustedModel, match="detector.json"):
        verified_pyfunc(URI)


def test_an_added_file_is_refused(stored, detector):
    (stored / "code").mkdir()
    (stored / "code" / "extra.py").write_text("print('hello')\n")
    with pytest.raises(UntrustedModel, match="code/extra.py"):
        verified_pyfunc(URI)
    assert load_detector(URI).threshold == detector.threshold  # the detector folder itself is intact


def test_a_model_without_a_record_loads_in_flowae_but_not_as_a_pyfunc(stored, detector):
    mlflow.MlflowClient().delete_logged_model_tag(model_id(URI), FILES_TAG)
    with pytest.raises(UntrustedModel, match="no sha256"):
        verified_pyfunc(URI)
    assert load_detector(URI).threshold == detector.threshold
    assert load_detector("models:/flowae/1").threshold == detector.threshold
