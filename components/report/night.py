"""What a morning analyst reads about a night: flows, anomalies, the worst flows and why, where
(destination port) and when (hour) they were, by label when logs carry one, and drift.

Accumulated while files stream through scoring, in bounded memory: counters keyed by port, hour
and label, a fixed-size list of the top-scored flows, fixed-bin score histograms and the drift
accumulator (``drift``). ``summary()`` is the JSON of ``summary.json``; ``markdown()`` is the
Prefect artifact; the figures go to MLflow.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.contract import BENIGN
from components.detect.detector import Detector
from components.detect.drift import DriftAccumulator
from components.detect.entities import (
    KINDS,
    EntityCalibration,
    EntityTable,
    batch_columns,
    batch_ports,
    batch_times,
    benign_rank,
    missing_reason,
)
from components.report.tables import markdown_table

TOP_FLOWS = 20
SHOWN = ("source_file", "row_number", "anomaly_score", "top_feature_1", "top_feature_2", "top_feature_3",
         "timestamp", "source_ip", "destination_ip", "destination_port", "protocol", "label")
HIST_EDGES = np.linspace(-6, 8, 141)  # log10 score bins, fixed so that files and nights add up


class FileStats:
    """One file's (or a whole night's, after ``merge``) counts, top flows, histogram and drift."""

    def __init__(self, detector: Detector, source: str | None = None,
                 missing_features: list[str] | None = None, missing_columns: list[str] | None = None) -> None:
        self.source = source
        self.missing_features = list(missing_features or [])  # model inputs the file lacks (at their centre)
        self.missing_columns = list(missing_columns or [])  # contract feature columns it lacks, inputs or not
        self.threshold = detector.threshold
        self.flows = 0
        self.anomalies = 0
        self.problems = 0
        self.by_port: Counter = Counter()
        self.anomalies_by_port: Counter = Counter()
        self.by_hour: Counter = Counter()
        self.anomalies_by_hour: Counter = Counter()
        self.by_label: Counter = Counter()
        self.anomalies_by_label: Counter = Counter()
        self.hist = np.zeros(len(HIST_EDGES) + 1, np.int64)
        self.top: list[dict] = []
        self.entity_calibration = EntityCalibration.from_dict(
            detector.calibration.entity if detector.calibration is not None else None)
        self.benign_quantiles = _benign_quantiles(detector, self.entity_calibration)
        self.entities = {kind: EntityTable(kind, detector.feature_names) for kind in KINDS}
        self.without_entities: dict[str, str] = {}  # file -> why its flows have no entity
        self.attack_sources: Counter = Counter()  # (label, source_ip) of labelled attack flows
        # each file draws its own sample keys (seeded from its name): merged files are independent samples
        self.drift = (DriftAccumulator(detector.reference, detector.feature_names, key=source or "")
                      if detector.reference else None)

    # --- accumulate --------------------------------------------------------------------------
    def add_scored(self, table: pa.Table, x: np.ndarray | None = None, top: np.ndarray | None = None) -> None:
        """Scored rows (and their scaled features, for drift; their top features' indices, for
        the entities' top features)."""
        scores = table.column("anomaly_score").to_numpy()
        flagged = table.column("is_anomaly").to_numpy(zero_copy_only=False)
        n = len(scores)
        self.flows += n
        self.anomalies += int(flagged.sum())
        self.problems += n - table.column("input_problem").null_count
        self.hist += np.bincount(np.searchsorted(HIST_EDGES, np.log10(np.maximum(scores, 1e-12))),
                                 minlength=len(HIST_EDGES) + 1)
        picked = pa.array(flagged) if flagged.any() else None
        self._count(table, "destination_port", picked, self.by_port, self.anomalies_by_port)
        self._count(table, "label", picked, self.by_label, self.anomalies_by_label)
        times = batch_times(table)  # int64 ms, shared with the entities
        if times is not None:
            _count_hours(times, flagged, self.by_hour, self.anomalies_by_hour)
        self._keep_top(table, scores)
        self._add_entities(table, scores, flagged, top, times)
        attack, labelled = _attacks(table)
        if attack is not None and attack.any() and "source_ip" in table.column_names:
            picked = table.select(["label", "source_ip"]).filter(pa.array(attack))
            self.attack_sources.update(zip(picked.column("label").to_pylist(), picked.column("source_ip").to_pylist()))
        if self.drift is not None and x is not None:
            self.drift.add(x, scores, flagged=flagged, attack=attack, labelled=labelled, rows=_row_ids(table))

    def _add_entities(self, table: pa.Table, scores: np.ndarray, flagged: np.ndarray, top: np.ndarray | None,
                      times: np.ndarray | None) -> None:
        if self.benign_quantiles is None:
            return
        keyed = {kind: batch_columns(table, kind) for kind in self.entities}
        if any(keys is None for keys in keyed.values()):
            self.without_entities.setdefault(self.source or "?", missing_reason(table.column_names, "host")
                                             or missing_reason(table.column_names, "pair"))
        if all(keys is None for keys in keyed.values()):
            return  # a log without identifiers: no rank, port or time work on its rows
        u = benign_rank(scores, self.benign_quantiles)
        first = top[:, 0].astype(np.int64) if top is not None and top.shape[1] else None
        ports = batch_ports(table)
        for kind, keys in keyed.items():
            if keys is not None:
                self.entities[kind].add(keys, u, flagged, first, ports, times)

    def _count(self, table: pa.Table, column: str, picked: pa.Array | None, total: Counter, hits: Counter) -> None:
        if column in table.column_names:
            self._count_values(table.column(column), picked, total, hits)

    @staticmethod
    def _count_values(values, picked: pa.Array | None, total: Counter, hits: Counter) -> None:
        """Counts per distinct value, keyed by its text (nulls counted as "unknown"); ``picked``:
        the flagged rows (None: none). Arrow counts the values as they are and only the distinct
        ones become text (casting every row to a string first cost a second per 1e6 flows)."""
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pa.array(values)
        _add_counts(total, pc.value_counts(values))
        if picked is not None:
            _add_counts(hits, pc.value_counts(values.filter(picked)))

    def _keep_top(self, table: pa.Table, scores: np.ndarray) -> None:
        k = min(TOP_FLOWS, len(scores))
        if k == 0:
            return
        floor = self.top[-1]["anomaly_score"] if len(self.top) >= TOP_FLOWS else -math.inf
        idx = np.argpartition(-scores, k - 1)[:k]
        idx = idx[scores[idx] > floor]
        if len(idx) == 0:
            return
        cols = [c for c in SHOWN if c in table.column_names]
        picked = table.select(cols).take(pa.array(idx)).to_pylist()
        for row in picked:
            if self.source is not None:
                row["source_file"] = self.source
            if row.get("timestamp") is not None:
                row["timestamp"] = row["timestamp"].isoformat()
        self.top = sorted(self.top + picked, key=lambda r: -r["anomaly_score"])[:TOP_FLOWS]

    def merge(self, other: FileStats) -> None:
        self.missing_features = list(dict.fromkeys(self.missing_features + other.missing_features))
        self.missing_columns = list(dict.fromkeys(self.missing_columns + other.missing_columns))
        for name in ("flows", "anomalies", "problems"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("by_port", "anomalies_by_port", "by_hour", "anomalies_by_hour", "by_label",
                     "anomalies_by_label"):
            getattr(self, name).update(getattr(other, name))
        self.hist += other.hist
        self.top = sorted(self.top + other.top, key=lambda r: -r["anomaly_score"])[:TOP_FLOWS]
        if self.drift is not None and other.drift is not None:
            self.drift.merge(other.drift)
        for kind, entities in self.entities.items():
            entities.merge(other.entities[kind])
        self.without_entities.update(other.without_entities)
        self.attack_sources.update(other.attack_sources)

    def entity_report(self, budget: float, max_rate: float) -> dict:
        """The night's entities: hosts (source IPs) and source -> destination pairs, ranked and
        flagged (``entities``), and which files had no identifiers to form them."""
        if self.benign_quantiles is None:
            return {"available": False, "reason": "the model stores no benign score distribution"}
        report: dict = {"available": any(len(t) for t in self.entities.values())}
        for kind, entities in self.entities.items():
            report[f"{kind}s"] = entities.ranked(self.entity_calibration, budget, max_rate)
        if self.without_entities:
            report["files_without_identifiers"] = dict(self.without_entities)
        if not report["available"]:
            report["reason"] = "no scored file has source_ip: " + "; ".join(
                f"{Path(k).name}: {v}" for k, v in self.without_entities.items())
        return report

    # --- report ------------------------------------------------------------------------------
    def summary(self) -> dict:
        ports = sorted(self.anomalies_by_port, key=lambda p: (-self.anomalies_by_port[p], p))[:20]
        return {
            "flows": self.flows, "anomalies": self.anomalies,
            "rate": self.anomalies / self.flows if self.flows else 0.0,
            "missing_features": self.missing_features,
            "missing_columns": self.missing_columns,
            "rows_with_input_problems": self.problems,
            "top_flows": self.top,
            "anomalies_by_destination_port": {p: {"anomalies": self.anomalies_by_port[p], "flows": self.by_port[p]}
                                              for p in ports},
            "by_hour": {h: {"flows": self.by_hour[h], "anomalies": self.anomalies_by_hour[h]}
                        for h in sorted(self.by_hour)},
            "by_label": {k: {"flows": self.by_label[k], "anomalies": self.anomalies_by_label[k]}
                         for k in sorted(self.by_label)},
            "attack_sources": {label: {str(ip): n for (lab, ip), n in self.attack_sources.items() if lab == label}
                               for label in sorted({lab for lab, _ in self.attack_sources})},
        }

    def drift_report(self):
        return self.drift.report() if self.drift is not None and self.drift.seen else None


def _add_counts(counter: Counter, counts: pa.StructArray) -> None:
    """Add Arrow ``value_counts`` into a counter keyed by each value's text ("unknown": null)."""
    keys = pc.fill_null(pc.cast(counts.field("values"), pa.string()), "unknown").to_pylist()
    for key, n in zip(keys, counts.field("counts").to_pylist()):
        counter[key] += n


_HOUR_MS = 3_600_000
_NO_TIME = np.iinfo(np.int64).min  # ``batch_times``' null


def _count_hours(times: np.ndarray, flagged: np.ndarray, total: Counter, hits: Counter) -> None:
    """Flows (and flagged flows) per clock hour, keyed ``%Y-%m-%d %H:00`` ("unknown": no time).
    The hours are counted as integers; only the distinct ones are formatted (Arrow's strftime of
    every row took about a tenth of the scoring time)."""
    known = times != _NO_TIME
    hours = np.where(known, times // _HOUR_MS, _NO_TIME)
    for counter, subset in ((total, hours), (hits, hours[flagged] if flagged.any() else None)):
        if subset is None or not len(subset):
            continue
        distinct, counts = np.unique(subset, return_counts=True)
        stamps = pa.array(np.where(distinct == _NO_TIME, 0, distinct * _HOUR_MS), pa.timestamp("ms"),
                          mask=distinct == _NO_TIME)
        keys = pc.fill_null(pc.strftime(stamps, format="%Y-%m-%d %H:00"), "unknown").to_pylist()
        for key, n in zip(keys, counts.tolist()):
            counter[key] += n


def _benign_quantiles(detector: Detector, calibration: EntityCalibration | None) -> list[float] | None:
    """Flow scores -> benign rank: the calibration's quantiles, or (a model calibrated before
    entities existed) the sorted benign score sample of its drift reference."""
    if calibration is not None and calibration.benign_quantiles:
        return calibration.benign_quantiles
    sample = (detector.reference or {}).get("score", {}).get("sample") or []
    return sorted(sample) if len(sample) >= 10 else None


def _attacks(table: pa.Table) -> tuple[np.ndarray | None, bool]:
    """(flows whose label names an attack, whether any flow carries a label): drift is measured on
    labelled-benign flows only, where the log has labels; an unlabelled flow counts as benign."""
    if "label" not in table.column_names:
        return None, False
    label = pc.cast(table.column("label"), pa.string())
    known = pc.is_valid(label)
    attack = pc.and_(known, pc.not_equal(pc.utf8_upper(pc.utf8_trim_whitespace(label)), BENIGN))
    return pc.fill_null(attack, False).to_numpy(zero_copy_only=False), bool(pc.any(known).as_py())


def _row_ids(table: pa.Table) -> np.ndarray | None:
    """The flows' row numbers in their file (the same whether it is scored whole or in parts)."""
    if "row_number" not in table.column_names or table.column("row_number").null_count:
        return None
    return table.column("row_number").to_numpy()


def missing_line(entry: dict) -> str:
    """One line for a file scored without some columns: which, and whether the model uses them."""
    inputs, columns = entry.get("missing_features") or [], entry["missing_columns"]
    used = (f"{len(inputs)} of them model inputs, scored at their benign centre: {', '.join(inputs)}" if inputs
            else "none of them a model input")
    name = str(entry["source"]).replace("\\", "/").rsplit("/", 1)[-1]
    return f"{name}: {len(columns)} columns missing ({', '.join(columns)}); {used}"


def _gap(entry: dict) -> str:
    inputs = set(entry.get("missing_features") or [])
    return ", ".join(f"**{c}**" if c in inputs else c for c in entry["missing_columns"]) + \
        (f" ({len(inputs)} model inputs, in bold)" if inputs else " (none is a model input)")


def host_lines(entities: dict | None, shown: int = 5) -> list[str]:
    """The night's hosts to look at, a few terminal lines (the first thing a morning reads)."""
    if not entities or not entities.get("available"):
        reason = (entities or {}).get("reason", "no entity report")
        return [f"hosts: not ranked ({reason})"]
    hosts = entities["hosts"]
    head = (f"hosts to look at: {hosts['flagged']} flagged of {hosts['ranked']} ranked "
            f"(>= {hosts['min_flows']} flows; budget {hosts['budget']:g} benign per night)")
    lines = [head]
    for row in hosts["table"][:shown]:
        mark = "FLAGGED" if row["flagged"] else "       "
        lines.append(f"  {mark} {row['entity']:<16} score {row['score']:.3f}  {row['flows']:>7,} flows, "
                     f"{row['flagged_flows']:,} flagged, {row['destination_ports']} ports, "
                     f"top: {', '.join(row['top_features'][:2])}")
    return lines


def detection_lines(summary: dict) -> list[str]:
    """Per attack label of a labelled night: found at flow level, at host level (a source host
    that sent it is flagged), or missed, said in so many words."""
    hosts = (summary.get("entities") or {}).get("hosts") or {}
    rank = {r["entity"]: i + 1 for i, r in enumerate(hosts.get("table", []))}
    flagged = {r["entity"] for r in hosts.get("table", []) if r["flagged"]}
    lines = []
    for label, counts in summary.get("by_label", {}).items():
        if label.upper() == BENIGN:
            continue
        share = counts["anomalies"] / counts["flows"] if counts["flows"] else 0.0
        sources = summary.get("attack_sources", {}).get(label, {})
        found = sorted(ip for ip in sources if ip in flagged)
        where = (f"host level: {', '.join(f'{ip} flagged, rank {rank[ip]}' for ip in found)}" if found
                 else "host level: missed" + (f" ({', '.join(sorted(sources))} not flagged)" if sources else ""))
        verdict = "found" if found or counts["anomalies"] else "MISSED"
        lines.append(f"  {label:<18} {verdict:<6} flow level: {counts['anomalies']:,} of {counts['flows']:,} "
                     f"flows flagged ({share:.1%}); {where}")
    return lines


def entity_markdown(entities: dict | None) -> list[str]:
    """The host and pair tables of the Prefect artifact (it leads with them)."""
    if not entities or not entities.get("available"):
        return [f"**hosts:** not ranked ({(entities or {}).get('reason', 'no entity report')})", ""]
    lines: list[str] = []
    for kind in ("hosts", "pairs"):
        t = entities[kind]
        lines += [f"### {kind} to look at: {t['flagged']} flagged of {t['ranked']} ranked",
                  f"entity score = median benign rank of its flows, shrunk to 0.5 by {t['prior_flows']:g} "
                  f"flows; threshold {t['threshold'] if t['threshold'] is None else round(t['threshold'], 4)} "
                  f"(about {t['budget']:g} benign per night; calibrated on {t.get('calibrated_on', 'n/a')})"
                  + (f"; {t['note']}" if t.get("note") else ""), "",
                  markdown_table(["", "entity", "score", "flows", "flagged flows", "top-decile rank", "ports",
                                  "top features", "first", "last"],
                                 [["**flagged**" if r["flagged"] else "", r["entity"], f"{r['score']:.3f}",
                                   f"{r['flows']:,}", f"{r['flagged_flows']:,}", f"{r['top_decile_rank']:.3f}",
                                   r["destination_ports"], ", ".join(r["top_features"]), r["first_seen"],
                                   r["last_seen"]] for r in t["table"][:10]])]
        if t["few_flows_total"]:
            lines.append(f"\n{t['few_flows_total']} {kind} under {t['min_flows']} flows had a flagged flow "
                         f"(not ranked): " + ", ".join(r["entity"] for r in t["few_flows"][:10]))
        lines.append("")
    return lines


def night_headline(summary: dict) -> str:
    """One line: hosts flagged, flows flagged, files failed, drift."""
    hosts = (summary.get("entities") or {}).get("hosts")
    flagged = [r["entity"] for r in hosts["table"] if r["flagged"]] if hosts else []
    head = (f"{len(flagged)} hosts flagged" + (f" ({', '.join(flagged[:5])})" if flagged else "")
            if hosts else "hosts not ranked")
    failed = sum(f["status"] != "ok" for f in summary.get("files", []))
    drift = (summary.get("drift") or {}).get("warning")
    return (f"{head}; {summary['anomalies']:,} of {summary['flows']:,} flows flagged ({summary['rate']:.2%})"
            + (f"; {failed} files failed" if failed else "") + ("; drift: consider retraining" if drift else ""))


def night_description(summary: dict) -> str:
    """The scoring run's description (MLflow ``mlflow.note.content``): the headline, the top
    hosts, the drift warning in full."""
    lines = [f"**{night_headline(summary)}** with {summary['model']}.", ""]
    lines += [f"    {line}" for line in host_lines(summary.get("entities"))]
    drift = (summary.get("drift") or {}).get("warning")
    if drift:
        lines += ["", f"Drift: {drift}"]
    return "\n".join(lines)


def markdown(summary: dict, where: str | None = None) -> str:
    """The nightly summary as a Prefect markdown artifact: entities first, then flows; ``where``
    links the MLflow run and the output folder."""
    title = (f"## flowae scoring: {summary['flows']:,} flows, {summary['anomalies']:,} anomalies "
             f"({summary['rate']:.2%})")
    lines = [title, "", f"model: {summary['model']}", "", *([where, ""] if where else []),
             *entity_markdown(summary.get("entities"))]
    drift = summary.get("drift") or {}
    if drift.get("warning"):
        lines += [f"> **drift:** {drift['warning']}", ""]
    if drift:
        lines += [f"drift measured on {drift.get('measured', 0):,} {drift.get('measured_on', 'flows')}; "
                  f"flagged: {drift.get('flagged', 0):,} ({drift.get('flagged_share', 0.0):.1%})"
                  + (f"; {drift['note']}" if drift.get("note") else ""), ""]
    failed = [f for f in summary["files"] if f["status"] != "ok"]
    if failed:
        lines += ["**files not scored:**", *[f"- {f['source']}: {f['error']}" for f in failed], ""]
    gaps = [f for f in summary["files"] if f.get("missing_columns")]
    if gaps:
        lines += ["**columns missing** (model inputs among them scored at their benign centre):",
                  *[f"- {f['source']}: {_gap(f)}" for f in gaps], ""]
    lines.append(markdown_table(["score", "file", "row", "top features", "src -> dst:port"],
                                [_top_flow(row) for row in summary["top_flows"][:10]]))
    if summary["anomalies_by_destination_port"]:
        lines += ["", markdown_table(["destination port", "anomalies", "flows"],
                                     [(p, v["anomalies"], v["flows"]) for p, v
                                      in list(summary["anomalies_by_destination_port"].items())[:10]])]
    if summary["by_label"]:
        lines += ["", markdown_table(["label", "flows", "flagged"],
                                     [(k, v["flows"], v["anomalies"]) for k, v in summary["by_label"].items()])]
    return "\n".join(lines)


def _top_flow(row: dict) -> list:
    feats = ", ".join(str(row.get(f"top_feature_{i}")) for i in (1, 2, 3))
    where = f"{row.get('source_ip', '?')} -> {row.get('destination_ip', '?')}:{row.get('destination_port', '?')}"
    return [f"{row['anomaly_score']:.3g}", row.get("source_file"), row.get("row_number"), feats, where]
