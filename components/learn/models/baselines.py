"""Baselines scored on the same windows and flows as the neural families (numpy in, numpy out).

Why: weak baselines are a known evaluation pitfall in anomaly detection; every model is reported
beside these. ``persistence`` (x_hat[t] = x[t-1]) is what an autoencoder that learned the
identity with a one-step lag would score; ``pca`` is the linear autoencoder; ``isolation_forest``
needs no reconstruction at all; ``mahalanobis_flow`` is no network at all: the Ledoit-Wolf
Mahalanobis distance of each flow's own scaled features (DESIGN: a network earns its place only
by beating it).

State is JSON (``to_dict``/``from_dict``), never pickled: the fitted arrays a baseline names in
``STATE`` (PCA's mean and components, Mahalanobis' location and precision) as lists, and the
fitted IsolationForest in skops' format, loaded only when it holds the expected types.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from components.learn.models.base import ScoreOutput


def _flat(windows: np.ndarray) -> np.ndarray:
    w = np.asarray(windows)
    if w.ndim != 3:
        raise ValueError(f"expected windows [W, T, F], got {w.shape}")
    return w.reshape(len(w), -1).astype(np.float64, copy=False)


class _Baseline:
    name = "baseline"
    trainable = False
    #: fitted arrays stored with the model: (key in the stored dict, attribute), all or none
    STATE: tuple[tuple[str, str], ...] = ()

    def __init__(self, **hparams: Any) -> None:
        self.hparams: dict[str, Any] = dict(hparams)

    def fit(self, train_windows: np.ndarray) -> _Baseline:
        return self

    def score_windows(self, windows: np.ndarray) -> ScoreOutput:
        raise NotImplementedError

    def to_dict(self) -> dict:
        d = {"name": self.name, "hparams": dict(self.hparams)}
        if self.STATE and getattr(self, self.STATE[0][1]) is not None:
            d.update({key: getattr(self, attr).tolist() for key, attr in self.STATE})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> _Baseline:
        obj = cls(**d.get("hparams", {}))
        if cls.STATE and cls.STATE[0][0] in d:
            for key, attr in cls.STATE:
                setattr(obj, attr, np.asarray(d[key], dtype=np.float64))
        return obj


class PersistenceBaseline(_Baseline):
    """x_hat[t] = x[t-1]; window score = mean squared error over t >= 1 (flow_errors[:, 0] = 0)."""

    name = "persistence"

    def score_windows(self, windows: np.ndarray) -> ScoreOutput:
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 3 or w.shape[1] < 2:
            raise ValueError(f"persistence needs windows [W, T>=2, F], got {w.shape}")
        errors = np.zeros_like(w)
        errors[:, 1:] = (w[:, 1:] - w[:, :-1]) ** 2
        return ScoreOutput(window_scores=errors[:, 1:].mean(axis=(1, 2)), flow_errors=errors)


class PCABaseline(_Baseline):
    """Reconstruction through the top ``n_components`` principal components of flattened windows."""

    name = "pca"
    STATE = (("mean", "mean_"), ("components", "components_"))

    def __init__(self, n_components: int = 8, seed: int = 0, **extra: Any) -> None:
        super().__init__(n_components=int(n_components), seed=int(seed), **extra)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, train_windows: np.ndarray) -> PCABaseline:
        from sklearn.decomposition import PCA

        flat = _flat(train_windows)
        k = max(1, min(self.hparams["n_components"], flat.shape[0], flat.shape[1]))
        pca = PCA(n_components=k, random_state=self.hparams["seed"]).fit(flat)
        self.mean_, self.components_ = pca.mean_, pca.components_
        return self

    def score_windows(self, windows: np.ndarray) -> ScoreOutput:
        if self.mean_ is None:
            raise RuntimeError("PCABaseline.score_windows before fit")
        w = np.asarray(windows)
        flat = _flat(w)
        centred = flat - self.mean_
        recon = centred @ self.components_.T @ self.components_
        errors = ((centred - recon) ** 2).reshape(w.shape).astype(np.float32)
        return ScoreOutput(window_scores=errors.mean(axis=(1, 2)), flow_errors=errors)


class IsolationForestBaseline(_Baseline):
    """sklearn IsolationForest on flattened windows; score = -score_samples (higher = anomalous).

    It has no per-flow error: ``flow_errors`` holds the window score at every position, so any
    per-flow aggregate reduces to the window score.
    """

    name = "isolation_forest"
    has_feature_errors = False  # its score is not a sum over features: explain by deviation

    def __init__(self, n_estimators: int = 100, max_samples: int | str = "auto", seed: int = 0, **extra: Any) -> None:
        super().__init__(n_estimators=int(n_estimators), max_samples=max_samples, seed=int(seed), **extra)
        self.forest_ = None

    def fit(self, train_windows: np.ndarray) -> IsolationForestBaseline:
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(
            n_estimators=self.hparams["n_estimators"],
            max_samples=self.hparams["max_samples"],
            random_state=self.hparams["seed"],
        ).fit(_flat(train_windows))
        return self

    # The only non-builtin type a fitted IsolationForest holds; anything else in a file is refused.
    TRUSTED_TYPES = ("sklearn.tree._tree.Tree",)

    def to_dict(self) -> dict:
        """hparams, plus the fitted forest in skops' format (base64): loadable without pickle."""
        d = super().to_dict()
        if self.forest_ is not None:
            import skops.io

            d["forest_skops"] = base64.b64encode(skops.io.dumps(self.forest_)).decode("ascii")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> IsolationForestBaseline:
        obj = cls(**d.get("hparams", {}))
        if "forest_skops" in d:
            import skops.io

            data = base64.b64decode(d["forest_skops"])
            untrusted = skops.io.get_untrusted_types(data=data)
            unexpected = sorted(set(untrusted) - set(cls.TRUSTED_TYPES))
            if unexpected:
                raise ValueError(f"isolation_forest state holds unexpected types: {unexpected}")
            forest = skops.io.loads(data, trusted=untrusted)
            from sklearn.ensemble import IsolationForest

            if not isinstance(forest, IsolationForest):
                raise ValueError(f"isolation_forest state holds a {type(forest).__name__}")
            obj.forest_ = forest
        return obj

    def score_windows(self, windows: np.ndarray) -> ScoreOutput:
        if self.forest_ is None:
            raise RuntimeError("IsolationForestBaseline.score_windows before fit")
        w = np.asarray(windows)
        scores = (-self.forest_.score_samples(_flat(w))).astype(np.float32)
        errors = np.broadcast_to(scores[:, None, None], w.shape).astype(np.float32)
        return ScoreOutput(window_scores=scores, flow_errors=errors)


class MahalanobisFlowBaseline(_Baseline):
    """Each flow alone: d^2 = (x - mu)^T P (x - mu) of its own scaled features; no network.

    ``mu`` and the precision ``P`` come from scikit-learn's ``LedoitWolf`` fitted on the benign
    training flows (shrinkage keeps P usable when features are nearly collinear, as CIC-IDS2017's
    are). Window-free: a flow's score is its own distance whatever the window length, so with the
    per-flow rule (a flow's own step score, averaged over the windows covering it) every flow's
    score is the same at T = 1 and T = 16; fitting on windows of T > 1 uses the flows they hold
    (flows of overlapping windows count once per window), at most ``max_fit_flows`` of them,
    evenly spaced.

    ``flow_scores`` is d^2; ``flow_errors`` holds each feature's squared deviation from ``mu``
    (for calibrations that model error vectors). d^2 is not their sum, so explanations go by the
    flow's scaled deviation (``has_feature_errors = False``), as for the forest.
    """

    name = "mahalanobis_flow"
    has_feature_errors = False
    STATE = (("location", "location_"), ("precision", "precision_"))

    def __init__(self, max_fit_flows: int = 200_000, seed: int = 0, **extra: Any) -> None:
        super().__init__(max_fit_flows=int(max_fit_flows), seed=int(seed), **extra)
        self.location_: np.ndarray | None = None
        self.precision_: np.ndarray | None = None
        self.shrinkage_: float | None = None

    def fit(self, train_windows: np.ndarray) -> MahalanobisFlowBaseline:
        from sklearn.covariance import LedoitWolf

        w = np.asarray(train_windows)
        if w.ndim != 3 or w.shape[0] * w.shape[1] < 2:
            raise ValueError(f"mahalanobis_flow needs windows [W, T, F] holding 2 flows or more, got {w.shape}")
        flows = w.reshape(-1, w.shape[-1])
        limit = self.hparams["max_fit_flows"]
        if len(flows) > limit:
            flows = flows[np.linspace(0, len(flows) - 1, limit).astype(np.int64)]
        lw = LedoitWolf().fit(flows.astype(np.float64))
        self.location_, self.precision_ = lw.location_, lw.precision_
        self.shrinkage_ = float(lw.shrinkage_)
        return self

    def distances(self, flows: np.ndarray) -> np.ndarray:
        """d^2 of flows [N, F] (float64)."""
        if self.location_ is None:
            raise RuntimeError("MahalanobisFlowBaseline scored before fit")
        z = np.asarray(flows, np.float64) - self.location_
        return np.einsum("ij,ij->i", z @ self.precision_, z)

    def score_windows(self, windows: np.ndarray) -> ScoreOutput:
        w = np.asarray(windows)
        if w.ndim != 3:
            raise ValueError(f"expected windows [W, T, F], got {w.shape}")
        flat = w.reshape(-1, w.shape[-1])
        d2 = self.distances(flat).reshape(w.shape[:2])
        errors = ((flat.astype(np.float64) - self.location_) ** 2).reshape(w.shape).astype(np.float32)
        return ScoreOutput(window_scores=d2.mean(axis=1).astype(np.float32), flow_errors=errors,
                           flow_scores=d2.astype(np.float32))

    def to_dict(self) -> dict:
        d = super().to_dict()
        if self.location_ is not None:
            d["shrinkage"] = self.shrinkage_
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MahalanobisFlowBaseline:
        obj = super().from_dict(d)
        if obj.location_ is not None:
            obj.shrinkage_ = d.get("shrinkage")
            f = len(obj.location_)
            if obj.precision_.shape != (f, f):
                raise ValueError(f"mahalanobis_flow state: precision {obj.precision_.shape} for {f} features")
        return obj


BASELINES: dict[str, type[_Baseline]] = {
    cls.name: cls
    for cls in (PersistenceBaseline, PCABaseline, IsolationForestBaseline, MahalanobisFlowBaseline)
}
