"""Train one model on benign-only windows: device choice, bf16 on CUDA, early stopping, checkpoints.

The loop knows nothing of MLflow or Prefect: it reports each epoch through a callback, so the same
code runs under a flow, in a benchmark or in a test.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.jobs import TrainConfig
from components.learn.models import BASELINE_NAMES, MODEL_NAMES, build_model
from components.learn.windows import Windows, iter_batches
from components.progress import progress_bar

#: Baselines that also work on single flows (window 1): IsolationForest and PCA on one flow.
SINGLE_FLOW_OK = ("pca", "isolation_forest", "mahalanobis_flow")


def check_model(cfg: TrainConfig) -> None:
    """A model name the registry knows, and a window it can score (a job is checked here, where the
    models are, before any file is read)."""
    if cfg.model not in MODEL_NAMES + BASELINE_NAMES:
        valid = ", ".join(MODEL_NAMES + BASELINE_NAMES)
        raise ValueError(f"unknown model {cfg.model!r}; valid: {valid}")
    if cfg.window < 2 and cfg.model not in SINGLE_FLOW_OK:
        raise ValueError(f"{cfg.model} needs windows of at least 2 flows (window={cfg.window})")


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    windows_per_s: float
    seconds: float


@dataclass
class TrainResult:
    model: Any
    device: str
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.nan
    stopped_early: bool = False
    resumed_from_epoch: int = 0


def resolve_device(requested: str) -> torch.device:
    """``auto`` takes CUDA when a GPU is visible; asking for ``cuda`` without one is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU (use --device auto or cpu)")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    """Same seed, same weights and batch order on the same device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def _to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(batch)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _batches(windows, indices, cfg, device, shuffle, seed):
    for batch in iter_batches(windows, indices, cfg.batch_size, shuffle=shuffle, seed=seed):
        yield _to_device(batch, device)


def _mean_loss(model, windows, indices, cfg, device) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), _autocast(device):
        for batch in _batches(windows, indices, cfg, device, shuffle=False, seed=0):
            total += float(model.loss(batch)) * len(batch)
            count += len(batch)
    return total / max(count, 1)


def save_checkpoint(path: Path, model, optimizer, epoch: int, best_val: float, best_state, bad_epochs: int) -> None:
    """Written every epoch (temp file, then rename) so ``--resume`` can continue after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "best_val": best_val,
            "best_state": best_state,
            "bad_epochs": bad_epochs,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def train_model(
    windows: Windows,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: TrainConfig,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fit ``cfg.model`` on the benign training windows, early-stopping on validation loss.

    Baselines are fitted in one pass. Neural models: AdamW, gradient clipping, bf16 autocast on
    CUDA, best-validation weights restored at the end, then ``calibrate`` on validation windows.
    """
    check_model(cfg)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(
            f"not enough benign windows: {len(train_idx)} for training, {len(val_idx)} for validation"
        )
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    n_features = windows.n_features
    kwargs = dict(cfg.model_kwargs)
    if cfg.model in BASELINE_NAMES and cfg.model != "persistence":
        kwargs.setdefault("seed", cfg.seed)  # the forest's trees (and PCA's solver) follow the run's seed
    model = build_model(cfg.model, n_features=n_features, window=cfg.window, hidden=cfg.hidden, **kwargs)
    if not getattr(model, "trainable", True):
        return _fit_baseline(model, windows, train_idx, val_idx, device, on_epoch)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = TrainResult(model=model, device=str(device))
    start_epoch, best_val, best_state, bad_epochs = 1, math.inf, None, 0

    if resume and checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        start_epoch = int(state["epoch"]) + 1
        best_val, best_state, bad_epochs = state["best_val"], state["best_state"], state["bad_epochs"]
        result.resumed_from_epoch = int(state["epoch"])
    else:
        with torch.no_grad():
            model.prepare(_batches(windows, train_idx, cfg, device, shuffle=False, seed=0))

    for epoch in range(start_epoch, cfg.epochs + 1):
        if bad_epochs >= cfg.patience:
            result.stopped_early = True
            break
        stats = _run_epoch(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress)
        result.history.append(stats)
        if stats.val_loss < best_val:
            best_val, bad_epochs = stats.val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch = epoch
        else:
            bad_epochs += 1
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch, best_val, best_state, bad_epochs)
        if on_epoch is not None:
            on_epoch(stats)

    if best_state is not None:
        model.load_state_dict(best_state)
    result.best_val_loss = best_val
    model.eval()
    with torch.no_grad():
        model.calibrate(_batches(windows, val_idx, cfg, device, shuffle=False, seed=0))
    return result


def _run_epoch(model, optimizer, windows, train_idx, val_idx, cfg, device, epoch, progress) -> EpochStats:
    model.train()
    started = time.perf_counter()
    total, seen = 0.0, 0
    bar = progress_bar(len(train_idx), f"epoch {epoch}/{cfg.epochs}", "win", enabled=progress)
    for batch in _batches(windows, train_idx, cfg, device, shuffle=True, seed=cfg.seed + epoch):
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = model.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * len(batch)
        seen += len(batch)
        bar.update(len(batch))
        bar.set_postfix(loss=f"{total / seen:.4f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    bar.close()
    val_loss = _mean_loss(model, windows, val_idx, cfg, device)
    return EpochStats(epoch, total / max(seen, 1), val_loss, seen / max(seconds, 1e-9), seconds)


#: Baselines fit in memory on one array: beyond this many windows they fit on an even subsample
#: (PCA's components and an isolation forest's 256-sample trees do not need more).
BASELINE_FIT_WINDOWS = 200_000


def _fit_baseline(model, windows, train_idx, val_idx, device, on_epoch) -> TrainResult:
    started = time.perf_counter()
    if len(train_idx) > BASELINE_FIT_WINDOWS:
        train_idx = train_idx[np.linspace(0, len(train_idx) - 1, BASELINE_FIT_WINDOWS).astype(np.int64)]
    model.fit(windows.take(train_idx))
    seconds = time.perf_counter() - started
    train_score = float(model.score_windows(windows.take(train_idx[:4096])).window_scores.mean())
    val_score = float(model.score_windows(windows.take(val_idx[:4096])).window_scores.mean())
    stats = EpochStats(1, train_score, val_score, len(train_idx) / max(seconds, 1e-9), seconds)
    if on_epoch is not None:
        on_epoch(stats)
    return TrainResult(model=model, device="cpu", history=[stats], best_epoch=1, best_val_loss=val_score)
