"""Window building and training throughput.

1. Windows/s of the vectorised builder (``build_windows`` + ``benign_window_mask``, strided views)
   against a Python-loop builder doing the same work (slice per window + benign check), on the same
   flows in the same run; plus the rate at which ``iter_batches`` materialises float32 batches.
2. Training windows/s per model (forward + backward + AdamW step) on the CPU, and on CUDA when a
   GPU is visible: ``lstm_ae`` with hidden 64, T=16, batch 4096 under bf16 autocast.

    .venv/bin/python benchmarks/windows_training.py --flows 1000000 --out bench-windows.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date

import numpy as np
import torch

from components.learn.models import MODEL_NAMES, build_model
from components.learn.training import _autocast
from components.learn.windows import benign_window_mask, build_windows, iter_batches


def python_loop_windows(x: np.ndarray, is_benign: np.ndarray, window: int, stride: int):
    """The obvious builder: one slice and one benign check per window, in Python."""
    out, benign = [], []
    for start in range(0, len(x) - window + 1, stride):
        out.append(x[start:start + window])
        benign.append(bool(is_benign[start:start + window].all()))
    return out, np.array(benign)


def bench_windows(n_flows: int, n_features: int, window: int, stride: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_flows, n_features), dtype=np.float32)
    is_benign = rng.random(n_flows) > 0.001
    started = time.perf_counter()
    windows = build_windows(x, window, stride)
    mask = benign_window_mask(is_benign, windows)
    vector_s = time.perf_counter() - started
    started = time.perf_counter()
    loop_windows, loop_mask = python_loop_windows(x, is_benign, window, stride)
    loop_s = time.perf_counter() - started
    assert len(loop_windows) == len(windows) and np.array_equal(loop_mask, mask)
    idx = np.flatnonzero(mask)[:200_000]
    started = time.perf_counter()
    materialised = sum(len(b) for b in iter_batches(windows, idx, 4096, shuffle=True, seed=0))
    batch_s = time.perf_counter() - started
    n = len(windows)
    return {
        "flows": n_flows, "features": n_features, "window": window, "stride": stride, "windows": n,
        "vectorised_windows_per_s": n / vector_s, "python_loop_windows_per_s": n / loop_s,
        "speedup": loop_s / vector_s,
        "batch_materialise_windows_per_s": materialised / batch_s,
    }


def bench_training(name: str, device: torch.device, n_features: int, window: int, hidden: int,
                   batch: int, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_model(name, n_features=n_features, window=window, hidden=hidden).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randn(batch, window, n_features)
    data = data.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else data
    with torch.no_grad():
        model.prepare([data])

    def step():
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = model.loss(data)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(3):  # warm-up: cuDNN autotune, allocator
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"model": name, "device": str(device), "hidden": hidden, "window": window, "batch": batch,
            "bf16": device.type == "cuda", "train_windows_per_s": steps * batch / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=70)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--cpu-batch", type=int, default=1024)
    parser.add_argument("--cpu-steps", type=int, default=10)
    parser.add_argument("--gpu-batch", type=int, default=4096)
    parser.add_argument("--gpu-steps", type=int, default=200)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    torch.backends.cudnn.benchmark = True
    report = {"date": date.today().isoformat(), "machine": platform.platform(),
              "cpu_threads": torch.get_num_threads(),
              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "torch": torch.__version__}
    report["windows"] = bench_windows(args.flows, args.features, args.window, args.stride, 0)
    print(json.dumps(report["windows"], indent=2))
    report["training"] = []
    for name in MODEL_NAMES:
        row = bench_training(name, torch.device("cpu"), args.features, args.window, 64,
                             args.cpu_batch, args.cpu_steps, 0)
        print(json.dumps(row))
        report["training"].append(row)
    if torch.cuda.is_available():
        for name in MODEL_NAMES:
            row = bench_training(name, torch.device("cuda"), args.features, args.window, 64,
                                 args.gpu_batch, args.gpu_steps, 0)
            print(json.dumps(row))
            report["training"].append(row)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
