"""Should the challenger replace the champion? Both are scored on the same data, then compared.

The data is the challenger's own test set as recorded at its training (same curated files, same
split), so the comparison is on traffic neither model trained or calibrated on, and identical for
both. The challenger wins when its metric beats the champion's by more than the margin
(``FLOWAE_PROMOTION_METRIC``, ``FLOWAE_PROMOTION_MARGIN``). With no champion yet, the challenger
becomes champion.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from components.detect.detector import Detector
from components.detect.evaluation import Evaluation, evaluate
from components.detect.fit import evaluate_recorded_test
from components.detect.packaging import load_detector
from components.detect.registry import RegistryError, aliases, make_champion, store_lock
from components.settings import Settings


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

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        rows = ["| | version | " + self.metric + " |", "|---|---|---|",
                f"| challenger | {self.challenger} | {self.challenger_value:.4f} |",
                f"| champion before | {self.champion_before} | {self.champion_value:.4f} |"]
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


def evaluate_on(detector: Detector, info: dict) -> Evaluation:
    scored = evaluate_recorded_test(detector, info)
    return evaluate(scored.scores, scored.labels, detector.threshold, scored.window_scores,
                    scored.window_labels)


def promote(settings: Settings, lock: Callable | None = None) -> Decision:
    """Compare challenger and champion and move the alias; under ``lock`` (or the store's lock)."""
    metric, margin = settings.promotion_metric, settings.promotion_margin
    with (lock() if lock is not None else store_lock(settings)):
        current = aliases(settings)
        if current.challenger is None:
            raise RegistryError(f"{settings.registered_model_name} has no challenger to promote "
                                f"(champion: {current.champion or 'none'}); train or retrain first")
        if current.champion is None:
            after = make_champion(settings, current.challenger)
            return Decision(True, "first model: no champion yet", metric, margin, current.challenger,
                            None, after.champion)
        name = settings.registered_model_name
        challenger = load_detector(f"models:/{name}/{current.challenger}")
        champion = load_detector(f"models:/{name}/{current.champion}")
        challenger_eval = evaluate_on(challenger, challenger.info)
        champion_eval = evaluate_on(champion, challenger.info)
        ch, cp = getattr(challenger_eval, metric), getattr(champion_eval, metric)
        promoted, reason = decide(metric, margin, ch, cp)
        after = make_champion(settings, current.challenger).champion if promoted else current.champion
        return Decision(promoted, reason, metric, margin, current.challenger, current.champion, after,
                        float(ch), float(cp))
