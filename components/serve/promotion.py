"""Should the challenger replace the champion? Both are scored on the same data, then compared.

The data is the challenger's own test set as recorded at its training (same curated files, same
split), less every flow the champion was fitted or calibrated on, so the comparison is on traffic
neither model trained or calibrated on, and identical for both. Recorded data that changed or is
gone refuses the promotion (one line), it is never silently re-read. The challenger wins when its
metric beats the champion's by more than the margin (``FLOWAE_PROMOTION_METRIC``,
``FLOWAE_PROMOTION_MARGIN``). With no champion yet, the challenger becomes champion.

Threshold metrics (``recall``, ``f1``) reward a threshold set too low: such a model flags more
attacks *and* more benign flows. So for them the challenger must first keep its false-positive
rate on the comparison's benign flows within ``FLOWAE_PROMOTION_MAX_FPR_FACTOR`` times the target
FPR it was calibrated for (its calibration record); otherwise the champion stays.

Promotion of *exactly this version*: given ``version`` (``retrain`` passes the one it registered),
the promotion is refused when ``challenger`` no longer points at it. The comparison runs without
the registry lock (it takes minutes); under the lock the aliases are read again and the champion
moves only if challenger and champion are still the two versions compared (a compare-and-set),
else the promotion is refused and nothing moves.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from components.detect.detector import Detector
from components.detect.evaluation import Evaluation, evaluate
from components.detect.holdout import DataChanged, evaluate_recorded_test
from components.report.tables import markdown_table
from components.serve.packaging import load_detector
from components.serve.registry import (
    Aliases,
    RegistryError,
    aliases,
    make_champion,
    registry_lock,
    settle,
)
from components.settings import Settings

THRESHOLD_METRICS = ("recall", "f1")


class PromotionRefused(RegistryError):
    """The promotion was refused (the registry or the data moved under it); nothing was moved."""


@dataclass
class Decision:
    promoted: bool
    reason: str
    metric: str
    margin: float
    challenger: str | None
    champion_before: str | None
    champion_after: str | None
    challenger_value: float = math.nan
    champion_value: float = math.nan
    refused: bool = False  # the comparison could not go ahead or its result could not be applied
    challenger_fpr: float = math.nan  # on the comparison's benign flows
    target_fpr: float = math.nan  # the challenger's calibration target

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        if self.refused:
            return "\n".join([f"**refused**: {self.reason}", "",
                              f"challenger: version {self.challenger}; champion stays version {self.champion_after}"])
        rows = [markdown_table(["", "version", self.metric],
                               [["challenger", self.challenger, f"{self.challenger_value:.4f}"],
                                ["champion before", self.champion_before, f"{self.champion_value:.4f}"]])]
        if math.isfinite(self.challenger_fpr):
            rows.append(f"\nchallenger FPR on benign comparison flows {self.challenger_fpr:.4f} "
                        f"(calibrated for {self.target_fpr:g})")
        verdict = "**promoted**" if self.promoted else "**kept the champion**"
        return "\n".join([f"{verdict}: {self.reason}", "", *rows,
                          "", f"champion now: version {self.champion_after}"])


def decide(metric: str, margin: float, challenger: float, champion: float) -> tuple[bool, str]:
    if not math.isfinite(challenger):
        return False, f"challenger's {metric} is not defined on this data"
    if not math.isfinite(champion):
        return True, f"champion's {metric} is not defined on this data"
    if challenger > champion + margin:
        return True, f"{metric} {challenger:.4f} beats {champion:.4f} by more than {margin:g}"
    return False, f"{metric} {challenger:.4f} does not beat {champion:.4f} by more than {margin:g}"


def fpr_gate(metric: str, fpr: float, target: float, factor: float) -> str | None:
    """Why a threshold metric may not be compared (None: it may)."""
    if metric not in THRESHOLD_METRICS:
        return None
    if not (math.isfinite(fpr) and math.isfinite(target)):
        return (f"challenger's false-positive rate is not defined on this data, so its {metric} "
                f"cannot be trusted")
    if fpr > factor * target:
        return (f"challenger's FPR {fpr:.4f} on benign comparison flows exceeds {factor:g}x its target "
                f"{target:g}: a threshold that low cannot win on {metric}")
    return None


def evaluate_on(detector: Detector, info: dict, exclude: list[dict] | tuple = ()) -> Evaluation:
    """``detector`` on the test flows of the record ``info``, less the flows any record in
    ``exclude`` was fitted or calibrated on; :class:`DataChanged` when the recorded data moved."""
    scored = evaluate_recorded_test(detector, info, exclude=list(exclude))
    return evaluate(scored.scores, scored.labels, detector.threshold, scored.window_scores,
                    scored.window_labels)


def _moved(current: Aliases, version: str) -> str | None:
    """Why ``version`` is no longer the one to promote (None: it still is the challenger)."""
    if current.challenger == version:
        return None
    now = f"is version {current.challenger}" if current.challenger else "points at no version"
    return (f"version {version} not promoted: challenger {now}, not {version} (another run moved it, "
            f"or it was never set); champion stays version {current.champion}")


def promote(settings: Settings, version: str | None = None) -> Decision:
    """Compare challenger and champion and move the alias when the challenger wins.

    ``version``: promote only this version, refused when ``challenger`` no longer points at it.
    None: whatever ``challenger`` points at (``flowae promote``).
    """
    metric, margin = settings.promotion_metric, settings.promotion_margin
    name = settings.registered_model_name
    current = settle(settings)  # a move an earlier run left half-done is finished first

    def refused(reason: str, target: str | None, champion: str | None = current.champion) -> Decision:
        return Decision(False, reason, metric, margin, target, current.champion, champion, refused=True)

    if version is not None and _moved(current, str(version)):
        return refused(_moved(current, str(version)), str(version))
    if current.challenger is None:
        raise RegistryError(f"{name} has no challenger to promote "
                            f"(champion: {current.champion or 'none'}); train or retrain first")
    target = current.challenger
    if current.champion is None:
        with registry_lock(settings):
            now = aliases(settings)
            if (now.challenger, now.champion) != (target, None):
                return refused(_changed(target, current, now), target, now.champion)
            after = make_champion(settings, target)
        return Decision(True, "first model: no champion yet", metric, margin, target, None, after.champion)

    challenger = load_detector(f"models:/{name}/{target}")
    champion = load_detector(f"models:/{name}/{current.champion}")
    try:
        challenger_eval = evaluate_on(challenger, challenger.info, exclude=[champion.info])
        champion_eval = evaluate_on(champion, challenger.info, exclude=[champion.info])
    except DataChanged as exc:
        return refused(f"version {target} not compared: {' '.join(str(exc).split())}", target)
    ch, cp = float(getattr(challenger_eval, metric)), float(getattr(champion_eval, metric))
    fpr = float(challenger_eval.fpr)
    target_fpr = float(challenger.calibration.target_fpr) if challenger.calibration else math.nan
    gate = fpr_gate(metric, fpr, target_fpr, settings.promotion_max_fpr_factor)
    promoted, reason = (False, gate) if gate else decide(metric, margin, ch, cp)
    decision = Decision(promoted, reason, metric, margin, target, current.champion, current.champion,
                        ch, cp, challenger_fpr=fpr, target_fpr=target_fpr)
    if not promoted:
        return decision
    with registry_lock(settings):
        now = aliases(settings)
        if (now.challenger, now.champion) != (target, current.champion):
            decision.promoted, decision.refused = False, True
            decision.reason, decision.champion_after = _changed(target, current, now), now.champion
            return decision
        decision.champion_after = make_champion(settings, target).champion
    return decision


def _changed(target: str, before: Aliases, now: Aliases) -> str:
    return (f"version {target} not promoted: the registry changed during the comparison (challenger "
            f"{before.challenger} -> {now.challenger}, champion {before.champion} -> {now.champion})")
