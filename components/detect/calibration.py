"""Thresholds from benign calibration flows only, by name: ``quantile``, ``mahalanobis``, ``pot``.

- ``quantile``: the (1 - target FPR) quantile of the benign calibration scores; on held-out
  benign traffic of the same kind about ``target_fpr`` of flows score above it.
- ``mahalanobis``: flows are re-scored by the Mahalanobis distance of their per-feature error
  vector (mean and Ledoit-Wolf covariance fitted on *other* benign flows than the threshold:
  the validation flows, as ``sparse_lstm_ae`` does for windows; fitted and thresholded on the
  same thousand flows, 77-dimensional distances are optimistic and the FPR came out 4x the
  target), then thresholded by quantile on the calibration flows. The error model is stored
  with the threshold.
- ``pot``: peaks over threshold (SPOT, Siffer et al., KDD 2017). Scores above a high initial
  quantile t are fitted with a generalised Pareto distribution (scipy, location 0); the
  threshold for risk q is ``t + sigma/gamma * ((q n / N_t)^-gamma - 1)``. It extrapolates into the
  tail where a plain quantile has too few points. When the fit is unusable (too few peaks, a
  failed or degenerate fit, a threshold below t) it falls back to ``quantile`` and says why.

A threshold tuned on labelled test data is an *oracle*: :func:`oracle_threshold` exists for
reports only and is never stored with a model.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

METHODS = ("quantile", "mahalanobis", "pot")
MIN_PEAKS = 20


@dataclass
class Calibration:
    """What is stored with a model: the method, its inputs, the threshold, any fallback."""

    method: str
    threshold: float
    target_fpr: float
    n_flows: int
    details: dict = field(default_factory=dict)
    fallback: str | None = None
    error_mean: list[float] | None = field(default=None, repr=False)  # mahalanobis error model
    error_precision: list[list[float]] | None = field(default=None, repr=False)
    uses_inputs: bool = False  # the error model also sees the flow's own scaled features
    #: benign flow-score quantiles and entity-score distribution (``entities.EntityCalibration``)
    entity: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(**d)

    def flow_score_fn(self):
        """(feature errors, own scores) -> scores under this method (None: the own scores)."""
        if self.method != "mahalanobis":
            return None
        mean = np.asarray(self.error_mean, np.float64)
        precision = np.asarray(self.error_precision, np.float64)
        with_inputs = self.uses_inputs

        def distance(errors: np.ndarray, own: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
            return mahalanobis(errors, mean, precision, x if with_inputs else None)

        return distance


def error_vectors(errors: np.ndarray, inputs: np.ndarray | None = None, dtype=np.float64) -> np.ndarray:
    """Absolute per-feature errors, followed by the flow's scaled inputs when the model uses them."""
    errors = np.asarray(errors)
    n, f = errors.shape
    out = np.empty((n, f + (0 if inputs is None else np.shape(inputs)[1])), dtype)
    np.sqrt(np.maximum(errors, 0.0), out=out[:, :f], casting="unsafe")
    if inputs is not None:
        out[:, f:] = inputs
    return out


def mahalanobis(errors: np.ndarray, mean: np.ndarray, precision: np.ndarray,
                inputs: np.ndarray | None = None) -> np.ndarray:
    """sqrt((e - mu)^T P (e - mu)) per row, e the absolute errors (and the inputs, if used)."""
    # float32 and one BLAS product, (e - mu) @ P * (e - mu) summed per row: einsum's three-operand
    # path in float64 took half of the scoring time. Float32 keeps about 6 significant digits.
    centred = error_vectors(errors, inputs, np.float32)
    centred -= np.asarray(mean, np.float32)
    squared = np.einsum("ij,ij->i", centred @ np.asarray(precision, np.float32), centred)
    return np.sqrt(np.maximum(squared.astype(np.float64), 0.0))


def calibrate(method: str, scores: np.ndarray, target_fpr: float,
              feature_errors: np.ndarray | None = None, pot_initial_quantile: float = 0.98,
              fit_errors: np.ndarray | None = None, inputs: np.ndarray | None = None,
              fit_inputs: np.ndarray | None = None) -> Calibration:
    """A threshold from the scores (and, for ``mahalanobis``, error vectors) of benign flows;
    ``fit_errors`` (other benign flows' error vectors) fit the Mahalanobis error model."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; valid: {', '.join(METHODS)}")
    if not 0 < target_fpr < 1:
        raise ValueError(f"target FPR must be in (0, 1), got {target_fpr}")
    scores = np.asarray(scores, np.float64)
    scores = scores[np.isfinite(scores)]
    if len(scores) < 2:
        raise ValueError(f"calibration needs benign calibration flows; got {len(scores)}")
    if method == "quantile":
        return _quantile(scores, target_fpr)
    if method == "mahalanobis":
        return _mahalanobis(feature_errors, target_fpr, fit_errors, inputs, fit_inputs)
    return pot(scores, target_fpr, pot_initial_quantile)


def _quantile(scores: np.ndarray, target_fpr: float, method: str = "quantile", **extra) -> Calibration:
    threshold = float(np.quantile(scores, 1.0 - target_fpr, method="higher"))
    return Calibration(method, threshold, target_fpr, len(scores),
                       details={"quantile": 1.0 - target_fpr, **extra.pop("details", {})}, **extra)


def _mahalanobis(errors: np.ndarray | None, target_fpr: float, fit_errors: np.ndarray | None,
                 inputs: np.ndarray | None = None, fit_inputs: np.ndarray | None = None) -> Calibration:
    from sklearn.covariance import LedoitWolf

    if errors is None or len(errors) < 2:
        raise ValueError("mahalanobis calibration needs the per-feature errors of benign flows")
    separate = fit_errors is not None and len(fit_errors) >= 2
    model_errors = fit_errors if separate else errors
    model_inputs = (fit_inputs if separate else inputs) if inputs is not None else None
    lw = LedoitWolf().fit(error_vectors(model_errors, model_inputs))
    precision = np.linalg.pinv(lw.covariance_, hermitian=True)
    distances = mahalanobis(errors, lw.location_, precision, inputs)
    cal = _quantile(distances, target_fpr, method="mahalanobis",
                    details={"shrinkage": float(lw.shrinkage_), "error_model_flows": len(model_errors)})
    cal.error_mean = lw.location_.tolist()
    cal.error_precision = precision.tolist()
    cal.uses_inputs = inputs is not None
    return cal


def pot(scores: np.ndarray, risk: float, initial_quantile: float = 0.98) -> Calibration:
    """SPOT's threshold at ``risk`` with a generalised-Pareto tail above ``initial_quantile``."""
    from scipy.stats import genpareto

    scores = np.asarray(scores, np.float64)
    n = len(scores)
    t = float(np.quantile(scores, initial_quantile))
    peaks = scores[scores > t] - t
    details = {"initial_quantile": initial_quantile, "initial_threshold": t, "peaks": len(peaks),
               "risk": risk}

    def fallback(reason: str) -> Calibration:
        return _quantile(scores, risk, method="pot", details=details, fallback=reason)

    if initial_quantile >= 1 - risk:
        return fallback(f"risk {risk:g} is not in the tail above the initial quantile {initial_quantile:g}")
    if len(peaks) < MIN_PEAKS:
        return fallback(f"only {len(peaks)} peaks above the initial threshold (need {MIN_PEAKS})")
    if np.ptp(peaks) <= 0:
        return fallback("peaks are all equal: no tail to fit")
    try:
        gamma, _, sigma = genpareto.fit(peaks, floc=0.0)
    except Exception as exc:  # noqa: BLE001 - scipy raises several kinds on degenerate data
        return fallback(f"generalised-Pareto fit failed ({exc.__class__.__name__})")
    details.update(gamma=float(gamma), sigma=float(sigma))
    ratio = risk * n / len(peaks)
    if not (np.isfinite(gamma) and np.isfinite(sigma) and sigma > 0):
        return fallback(f"degenerate fit (gamma={gamma:g}, sigma={sigma:g})")
    z = t - sigma * math.log(ratio) if abs(gamma) < 1e-8 else t + sigma / gamma * (ratio ** (-gamma) - 1.0)
    if not np.isfinite(z) or z < t:
        return fallback(f"extrapolated threshold {z:g} is below the initial threshold {t:g}")
    return Calibration("pot", float(z), risk, n, details=details)


def oracle_threshold(scores: np.ndarray, is_attack: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the best-F1 cut on *labelled* data: a report, never a deployed threshold."""
    from sklearn.metrics import precision_recall_curve

    is_attack = np.asarray(is_attack, bool)
    if is_attack.all() or not is_attack.any():
        return math.nan, math.nan
    precision, recall, thresholds = precision_recall_curve(is_attack, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))
    return float(thresholds[best]), float(f1[best])
