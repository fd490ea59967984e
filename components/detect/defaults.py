"""The model and settings ``train``, ``retrain``, ``compare``, ``serve`` and ``demo`` use unless told
otherwise: the best of ``benchmarks/quality.py`` (see docs/BENCHMARKS.md for the table behind it)."""
from __future__ import annotations

#: TrainConfig fields
TRAIN: dict = {"model": "sparse_lstm_ae", "epochs": 30, "patience": 4, "window": 16, "stride": 4,
               "hidden": 32, "batch_size": 512, "lr": 3e-3, "scaler": "standard"}
#: DetectorConfig fields
DETECTOR: dict = {"calibration": "mahalanobis", "target_fpr": 0.01}
