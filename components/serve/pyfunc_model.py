"""The MLflow pyfunc of a flowae detector, logged as *model code* (MLflow "models from code").

Why models from code: a pickled ``PythonModel`` breaks when the class moves. But models from code
are no safer to load than a pickle: MLflow stores this file's source with the model and *every*
``mlflow.pyfunc.load_model`` runs the stored copy, so whoever can write to the artifact store can
run code wherever the model is loaded. Hence: flowae's own commands never load this pyfunc
(``packaging.load_detector`` reads the detector folder as data), and third parties load it with
``packaging.verified_pyfunc``, which first checks every stored file against the sha256 recorded in
the tracking store when the model was logged. Once run, it loads the detector folder (JSON + a
``state_dict`` read with ``weights_only=True``). It needs the ``flowae`` package installed where the
model is loaded.
"""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FlowaeDetectorModel(PythonModel):
    """``predict(rows)`` -> ``anomaly_score``, ``is_anomaly``, ``top_feature_1..3`` per input row."""

    def load_context(self, context) -> None:
        import torch

        from components.detect.detector import Detector

        self.detector = Detector.load(context.artifacts["detector"])
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.detector.predict(frame, device=self.device).reset_index(drop=True)


mlflow.models.set_model(FlowaeDetectorModel())
