"""Window-level AUROC of every model on the real CIC-IDS2017 rows in ../shared/data/cicids2017/.

The evaluation protocol of DESIGN.md in miniature, at window level (flow-level metrics and the
calibrated threshold belong to the evaluation stage): train on the first 70 % of the benign
MachineLearningCVE excerpt (time order = file order), validate on the next 15 %, and score the last
15 % (negatives) against every window of the DDoS and PortScan excerpts (positives). The transform
is fitted on the benign training flows only. Input is the output of `flowae ingest`:

    .venv/bin/flowae ingest ../shared/data/cicids2017/*.csv --out data/real
    .venv/bin/python benchmarks/real_rows_quality.py --data data/real
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from components.learn.features import FeatureTransform, select_features
from components.learn.models import BASELINE_NAMES, MODEL_NAMES, score_array
from components.learn.training import TrainConfig, train_model
from components.learn.windows import build_windows

BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.parquet"
ATTACKS = {"DDoS": "friday-ddos-1000.TrafficLabelling.parquet",
           "PortScan": "friday-portscan-1000.TrafficLabelling.parquet"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder written by flowae ingest")
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    curated = args.data / "curated"
    benign = pd.read_parquet(curated / BENIGN).sort_values("row_number")
    n = len(benign)
    train_end, val_end = int(n * 0.70), int(n * 0.85)
    transform = FeatureTransform.fit(benign.iloc[:train_end], select_features(benign.columns))
    windows = build_windows(transform.transform(benign), args.window, 1)
    train_idx = np.flatnonzero(windows.ends < train_end)
    val_idx = np.flatnonzero((windows.starts >= train_end) & (windows.ends < val_end))
    test_idx = np.flatnonzero(windows.starts >= val_end)
    attacks = {}
    for label, name in ATTACKS.items():
        frame = pd.read_parquet(curated / name).sort_values("row_number")
        attack_windows = build_windows(transform.transform(frame), args.window, 1)
        attacks[label] = attack_windows.take(np.arange(len(attack_windows)))

    print(f"| model | {' | '.join(f'AUROC {k}' for k in attacks)} | epochs | seconds |")
    print(f"|---|{'---:|' * len(attacks)}---:|---:|")
    for model in MODEL_NAMES + BASELINE_NAMES:
        started = time.perf_counter()
        cfg = TrainConfig(model=model, epochs=args.epochs, window=args.window, hidden=args.hidden,
                          batch_size=128, lr=3e-3, patience=4, device="cpu", seed=args.seed)
        result = train_model(windows, train_idx, val_idx, cfg, progress=False)
        negatives = score_array(result.model, windows.take(test_idx)).window_scores
        aucs = []
        for positives in attacks.values():
            scores = score_array(result.model, positives).window_scores
            truth = np.r_[np.zeros(len(negatives)), np.ones(len(scores))]
            aucs.append(roc_auc_score(truth, np.r_[negatives, scores]))
        print(f"| {model} | {' | '.join(f'{a:.3f}' for a in aucs)} | {len(result.history)} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
