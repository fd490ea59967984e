"""Hosts to look at: flow scores aggregated per entity (source host, source -> destination pair).

Why: a flow threshold at 1% false positives on another day flags 1-3% of attack flows, yet an
attacker sends hundreds of flows whose scores sit *consistently* above the benign middle. Analysts
triage hosts, so the night's report ranks entities by a robust aggregate of their flows.

The scale: each flow's score becomes its **benign rank** ``u`` in [0, 1], the share of benign
calibration flows scoring below it (mid-rank, from quantiles stored with the model). Under benign
traffic ``u`` is uniform whatever the model, so one entity rule serves every family.

An entity's score is the **median u of its flows, shrunk towards 0.5** by ``prior_flows`` pseudo
flows: ``(n * median + prior * 0.5) / (n + prior)``. A host of three odd flows cannot outrank a
host of three thousand steady ones; entities under ``min_flows`` flows are not ranked at all
(they are listed apart when one of their flows was flagged). The report also gives the mean u of
each entity's top decile, its flagged flows, most frequent top features, destination ports and
first/last seen.

The flag: benign entities of the calibration period (real source hosts when the calibration flows
carry ``source_ip``, else overlapping blocks of consecutive calibration flows: pseudo-hosts, which
mix a capture's hosts and so vary less than real hosts do) give the benign distribution of entity
scores. A night with ``N`` ranked entities flags those above its ``1 - a`` quantile, where
``a = min(budget / N, max_rate)``: about ``budget`` benign entities per night are flagged, and
never more than ``max_rate`` of them on a small night.

Accumulated in bounded memory per entity (a 100-bin histogram of u, counters), so files and parts
of files merge exactly (``EntityTable.merge``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.data.contract import BENIGN
from components.jobs import EntityRule

U_BINS = 100
PORTS_KEPT = 256  # distinct destination ports remembered per entity (the count says when more)
KINDS = {"host": ("source_ip",), "pair": ("source_ip", "destination_ip")}
SHOWN = 20


@dataclass
class EntityCalibration:
    """The benign entity-score distribution a night's flag threshold is read from."""

    rule: EntityRule
    scores: list[float]  # quantiles (<= 1001) of benign calibration entity scores, ascending
    entities: int  # how many benign calibration entities they summarise
    formed_by: str  # "source hosts" or "blocks of N consecutive calibration flows (...)"
    benign_quantiles: list[float] = field(default_factory=list)  # flow scores -> u

    def to_dict(self) -> dict:
        return {**asdict(self), "rule": self.rule.model_dump()}

    @classmethod
    def from_dict(cls, d: dict | None) -> EntityCalibration | None:
        if not d:
            return None
        return cls(**{**d, "rule": EntityRule(**d["rule"])})

    def threshold(self, ranked: int, budget: float, max_rate: float) -> tuple[float, float, str]:
        """(entity-score threshold, per-entity false-alarm rate, note) for a night of ``ranked``
        entities: about ``budget`` benign entities flagged per night."""
        rate = min(budget / max(ranked, 1), max_rate)
        scores = np.asarray(self.scores, np.float64)
        finest = 1.0 / max(self.entities, 1)
        if rate < finest:
            note = (f"the budget asks for a rate of {rate:.2%}, finer than {self.entities} benign "
                    "calibration entities resolve: threshold at the highest of them")
            return float(scores[-1]), rate, note
        return float(np.quantile(scores, 1.0 - rate)), rate, ""


def benign_rank(scores: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Share of benign calibration flows scoring below each score (mid-rank for ties), in [0, 1]."""
    q = np.asarray(quantiles, np.float64)
    s = np.asarray(scores, np.float64)
    lo = np.searchsorted(q, s, side="left")
    hi = np.searchsorted(q, s, side="right")
    return np.clip((lo + hi) / (2.0 * len(q)), 0.0, 1.0)


def entity_score(median: np.ndarray, n: np.ndarray, prior_flows: float) -> np.ndarray:
    """Median benign rank shrunk towards 0.5 (the benign middle) by ``prior_flows`` pseudo flows."""
    n = np.asarray(n, np.float64)
    return (n * np.asarray(median, np.float64) + prior_flows * 0.5) / (n + prior_flows)


def calibrate_entities(scores: np.ndarray, hosts: np.ndarray | None = None,
                       rule: EntityRule | None = None, n_quantiles: int = 1001) -> EntityCalibration:
    """Benign entity scores from the benign calibration flows (their flow ``scores`` in time
    order, and their source host where known)."""
    rule = rule or EntityRule()
    scores = np.asarray(scores, np.float64)
    quantiles = np.quantile(scores, np.linspace(0, 1, min(n_quantiles, len(scores))))
    u = benign_rank(scores, quantiles)
    medians, sizes, formed = np.zeros(0), np.zeros(0), ""
    if hosts is not None:
        frame = pd.DataFrame({"host": hosts, "u": u}).dropna()
        grouped = frame.groupby("host", sort=False)["u"].agg(["median", "size"])
        grouped = grouped[grouped["size"] >= rule.min_flows]
        if len(grouped) >= 20:
            medians, sizes, formed = grouped["median"].to_numpy(), grouped["size"].to_numpy(), "source hosts"
    if not formed:
        starts = np.arange(0, max(len(u) - rule.block_flows, 0) + 1, rule.block_step)
        blocks = np.lib.stride_tricks.sliding_window_view(u, min(rule.block_flows, len(u)))[starts]
        medians, sizes = np.median(blocks, axis=1), np.full(len(blocks), blocks.shape[1])
        formed = (f"blocks of {blocks.shape[1]} consecutive calibration flows every {rule.block_step} "
                  "(no source hosts with enough flows in the calibration flows)")
    entity = np.sort(entity_score(medians, sizes, rule.prior_flows))
    levels = np.linspace(0, 1, min(n_quantiles, len(entity)))
    return EntityCalibration(rule, np.quantile(entity, levels).tolist(), len(entity), formed,
                             quantiles.tolist())


class EntityTable:
    """Per-entity accumulators of one kind (``host`` or ``pair``) over a night's scored rows."""

    def __init__(self, kind: str, features: Sequence[str]) -> None:
        self.kind = kind
        self.features = list(features)
        self.index: dict[str, int] = {}
        self.flows = np.zeros(0, np.int64)
        self.flagged = np.zeros(0, np.int64)
        self.hist = np.zeros((0, U_BINS), np.int32)
        self.top = np.zeros((0, len(self.features)), np.int32)
        self.first = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.ports: list[set] = []
        self.port_counts: list[int] = []

    def __len__(self) -> int:
        return len(self.index)

    # --- accumulate --------------------------------------------------------------------------
    def add(self, keys: np.ndarray | tuple[np.ndarray, list], u: np.ndarray, flagged: np.ndarray, top: np.ndarray | None,
            ports: np.ndarray | None, times: np.ndarray | None) -> None:
        """One batch: entity key per flow (None: unknown, skipped), benign rank, flag, index of
        the top feature, destination port and time (int64 ms, or None)."""
        if isinstance(keys, tuple):  # (codes into uniques, -1 unknown; uniques): an encoded batch
            local, uniques = keys
            known = local >= 0
            local = local[known]
        else:
            known = pd.notna(keys)
            local, uniques = pd.factorize(keys[known])
        if not known.any():
            return
        g = self._codes(list(uniques))  # distinct global rows of this batch's entities
        m = len(g)
        u, flagged = u[known], flagged[known]
        bins = np.minimum((u * U_BINS).astype(np.int64), U_BINS - 1)
        self.flows[g] += np.bincount(local, minlength=m)
        self.flagged[g] += np.bincount(local, weights=flagged, minlength=m).astype(np.int64)
        self.hist[g] += np.bincount(local * U_BINS + bins, minlength=m * U_BINS).reshape(m, U_BINS).astype(np.int32)
        if top is not None:
            f = len(self.features)
            self.top[g] += np.bincount(local * f + top[known], minlength=m * f).reshape(m, f).astype(np.int32)
        if times is not None:
            t = times[known]
            ok = t != np.iinfo(np.int64).min
            first, last = np.full(m, np.iinfo(np.int64).max), np.full(m, np.iinfo(np.int64).min)
            np.minimum.at(first, local[ok], t[ok])
            np.maximum.at(last, local[ok], t[ok])
            self.first[g] = np.minimum(self.first[g], first)
            self.last[g] = np.maximum(self.last[g], last)
        if ports is not None:
            p = ports[known]
            ok = p >= 0
            pairs = np.unique(g[local[ok]] * 65_536 + p[ok])
            for code, port in zip((pairs // 65_536).tolist(), (pairs % 65_536).tolist()):
                seen = self.ports[code]
                if port not in seen:
                    self.port_counts[code] += 1
                    if len(seen) < PORTS_KEPT:
                        seen.add(port)

    def _codes(self, uniques) -> np.ndarray:
        out = np.empty(len(uniques), np.int64)
        new = 0
        for i, key in enumerate(uniques):
            code = self.index.get(key)
            if code is None:
                code = self.index[key] = len(self.index)
                new += 1
            out[i] = code
        if new:
            self._grow(new)
        return out

    def _grow(self, k: int) -> None:
        self.flows = np.r_[self.flows, np.zeros(k, np.int64)]
        self.flagged = np.r_[self.flagged, np.zeros(k, np.int64)]
        self.hist = np.vstack([self.hist, np.zeros((k, U_BINS), np.int32)])
        self.top = np.vstack([self.top, np.zeros((k, len(self.features)), np.int32)])
        self.first = np.r_[self.first, np.full(k, np.iinfo(np.int64).max)]
        self.last = np.r_[self.last, np.full(k, np.iinfo(np.int64).min)]
        self.ports += [set() for _ in range(k)]
        self.port_counts += [0] * k

    def merge(self, other: EntityTable) -> None:
        codes = self._codes(list(other.index))
        self.flows[codes] += other.flows
        self.flagged[codes] += other.flagged
        self.hist[codes] += other.hist
        self.top[codes] += other.top
        self.first[codes] = np.minimum(self.first[codes], other.first)
        self.last[codes] = np.maximum(self.last[codes], other.last)
        for code, seen, count in zip(codes.tolist(), other.ports, other.port_counts):
            added = seen - self.ports[code]
            self.port_counts[code] += len(added) if count == len(seen) else count
            self.ports[code] |= set(list(added)[:max(PORTS_KEPT - len(self.ports[code]), 0)])

    # --- report ------------------------------------------------------------------------------
    def ranked(self, calibration: EntityCalibration | None, budget: float, max_rate: float,
               shown: int = SHOWN) -> dict:
        """The entity table of this kind: ranked entities (the top ``shown``), the threshold and
        how many were flagged; entities under ``min_flows`` with a flagged flow listed apart."""
        rule = calibration.rule if calibration is not None else EntityRule()
        keys = np.asarray(list(self.index), dtype=object)
        median, top_decile = _median_and_top_decile(self.hist)
        score = entity_score(median, self.flows, rule.prior_flows)
        big = self.flows >= rule.min_flows
        out: dict = {"kind": self.kind, "entities": len(self), "ranked": int(big.sum()),
                     "min_flows": rule.min_flows, "prior_flows": rule.prior_flows, "budget": budget}
        flag = np.zeros(len(self), bool)
        if calibration is None:
            out["note"] = "the model has no entity calibration (trained before it existed): ranked, not flagged"
            out["threshold"] = None
        else:
            threshold, rate, note = calibration.threshold(int(big.sum()), budget, max_rate)
            flag = big & (score > threshold)
            out.update(threshold=threshold, false_alarm_rate=rate, calibrated_on=calibration.formed_by,
                       calibration_entities=calibration.entities, **({"note": note} if note else {}))
        out["flagged"] = int(flag.sum())
        order = np.flatnonzero(big)[np.argsort(-score[big], kind="stable")]
        out["table"] = [self._row(i, keys[i], score[i], median[i], top_decile[i], flag[i]) for i in order[:shown]]
        small = np.flatnonzero(~big & (self.flagged > 0))
        small = small[np.argsort(-top_decile[small], kind="stable")]
        out["few_flows"] = [self._row(i, keys[i], None, median[i], top_decile[i], False) for i in small[:shown]]
        out["few_flows_total"] = len(small)
        return out

    def scores(self, calibration: EntityCalibration | None) -> pd.DataFrame:
        """Every entity's key, flows, score and flagged flows (evaluation, artifacts)."""
        rule = calibration.rule if calibration is not None else EntityRule()
        median, top_decile = _median_and_top_decile(self.hist)
        return pd.DataFrame({"entity": list(self.index), "flows": self.flows, "flagged_flows": self.flagged,
                             "median_rank": median, "top_decile_rank": top_decile,
                             "score": entity_score(median, self.flows, rule.prior_flows)})

    def _row(self, i: int, key: str, score, median: float, top_decile: float, flagged: bool) -> dict:
        feats = np.argsort(-self.top[i], kind="stable")[:3]
        ports = sorted(self.ports[i])
        return {"entity": key, "score": None if score is None else round(float(score), 4),
                "flagged": bool(flagged), "flows": int(self.flows[i]), "flagged_flows": int(self.flagged[i]),
                "median_rank": round(float(median), 4), "top_decile_rank": round(float(top_decile), 4),
                "top_features": [self.features[f] for f in feats if self.top[i, f] > 0],
                "destination_ports": int(self.port_counts[i]), "ports": ports[:10],
                "first_seen": _iso(self.first[i]), "last_seen": _iso(self.last[i])}


def _median_and_top_decile(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median (interpolated inside its bin) and mean of the top 10% of each row's histogram of u."""
    if len(hist) == 0:
        return np.zeros(0), np.zeros(0)
    h = hist.astype(np.float64)
    n = h.sum(axis=1, keepdims=True)
    cum = np.cumsum(h, axis=1)
    half = n[:, 0] / 2.0
    b = np.argmax(cum >= half[:, None], axis=1)
    below = np.where(b > 0, np.take_along_axis(cum, np.maximum(b - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    inside = np.take_along_axis(h, b[:, None], axis=1)[:, 0]
    median = (b + np.where(inside > 0, (half - below) / np.maximum(inside, 1), 0.5)) / U_BINS
    centres = (np.arange(U_BINS) + 0.5) / U_BINS
    tail = np.maximum(n[:, 0] * 0.1, 1.0)
    from_top = np.cumsum(h[:, ::-1], axis=1)
    take = np.minimum(h[:, ::-1], np.maximum(tail[:, None] - (from_top - h[:, ::-1]), 0.0))
    top_decile = (take * centres[::-1]).sum(axis=1) / np.maximum(take.sum(axis=1), 1e-12)
    return np.clip(median, 0, 1), top_decile


def _iso(ms: int) -> str | None:
    if ms in (np.iinfo(np.int64).max, np.iinfo(np.int64).min):
        return None
    return pd.Timestamp(int(ms), unit="ms").isoformat()


def batch_columns(table: pa.Table, kind: str) -> tuple[np.ndarray, list] | None:
    """The entity key of each row of a scored batch, encoded: (code per row, -1 unknown; the
    distinct keys). None where the log has no identifiers. Arrow encodes; no Python string per row."""
    names = KINDS[kind]
    if any(n not in table.column_names for n in names):
        return None
    cols = [pc.cast(table.column(n), pa.string()) for n in names]
    key = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, " -> ")
    if isinstance(key, pa.ChunkedArray):
        key = key.combine_chunks()
    encoded = pc.dictionary_encode(key)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def batch_times(table: pa.Table) -> np.ndarray | None:
    if "timestamp" not in table.column_names:
        return None
    ts = pc.cast(table.column("timestamp"), pa.timestamp("ms")).cast(pa.int64())
    return pc.fill_null(ts, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)


def batch_ports(table: pa.Table) -> np.ndarray | None:
    if "destination_port" not in table.column_names:
        return None
    return pc.fill_null(pc.cast(table.column("destination_port"), pa.int64()), -1).to_numpy(zero_copy_only=False)


def missing_reason(table_columns: Sequence[str], kind: str) -> str | None:
    lacking = [n for n in KINDS[kind] if n not in table_columns]
    return f"no {', '.join(lacking)} column" if lacking else None


__all__ = ["EntityCalibration", "EntityTable", "batch_columns", "benign_rank",
           "calibrate_entities", "entity_score"]


def entity_evaluation(scores: np.ndarray, labels: np.ndarray, hosts: np.ndarray | None, nights: np.ndarray,
                      calibration: EntityCalibration | None, budget: float = 1.0, max_rate: float = 0.05,
                      benign: str = BENIGN) -> dict:
    """Entity-level figures of labelled test flows: each night (``nights``: a capture day) ranks
    its source hosts as a nightly report does; a host is *attacking* when it sent an attack flow.
    Entity AUROC over the ranked hosts of every night, recall of attacking hosts at the budget's
    threshold, benign hosts flagged per night, attacking hosts in their night's top 3."""
    if hosts is None or calibration is None or not pd.notna(hosts).any():
        why = "no source_ip in the test files" if calibration is not None else "the model has no entity calibration"
        return {"available": False, "reason": why}
    frame = pd.DataFrame({"night": nights, "host": hosts, "score": scores,
                          "attack": np.asarray(labels, dtype=object) != benign}).dropna(subset=["host"])
    u = benign_rank(frame["score"].to_numpy(), calibration.benign_quantiles)
    rows = []
    for night, part in frame.groupby("night", sort=True):
        table = EntityTable("host", [])
        table.add(part["host"].to_numpy(dtype=object), u[frame.index.get_indexer(part.index)],
                  np.zeros(len(part), bool), None, None, None)
        ranked = table.scores(calibration)
        ranked = ranked[ranked["flows"] >= calibration.rule.min_flows]
        attackers = set(part.loc[part["attack"], "host"])
        threshold, _, _ = calibration.threshold(len(ranked), budget, max_rate)
        ranked = ranked.assign(night=str(night), attack=ranked["entity"].isin(attackers),
                               flagged=ranked["score"] > threshold,
                               rank=ranked["score"].rank(ascending=False, method="min"))
        rows.append(ranked)
    table = pd.concat(rows) if rows else pd.DataFrame(columns=["attack", "flagged", "score", "rank", "night"])
    attack, benign_rows = table[table["attack"]], table[~table["attack"]]
    nights_n = max(table["night"].nunique(), 1)
    out = {"available": True, "nights": int(table["night"].nunique()), "hosts": len(table),
           "attacking_hosts": len(attack), "budget": budget,
           "recall_at_budget": float(attack["flagged"].mean()) if len(attack) else math.nan,
           "benign_flagged_per_night": float(benign_rows["flagged"].sum() / nights_n),
           "attacking_in_top3": int((attack["rank"] <= 3).sum()),
           "auroc": math.nan}
    if len(attack) and len(benign_rows):
        from sklearn.metrics import roc_auc_score

        out["auroc"] = float(roc_auc_score(table["attack"].astype(int), table["score"]))
    return out
