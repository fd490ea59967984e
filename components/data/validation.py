"""Row-level validation: split one raw batch into curated rows and quarantined rows with reasons.

Why here and not in GX: the split must be exact, streaming and cheap, so it is done with vectorised
pyarrow/numpy checks derived from the contract (dtype, min/max, label set, timestamp formats).
Great Expectations then reports on the same data against the same contract (``gx_validation``).

Reasons are stable strings so that users and tests can count them:
``<column>: missing | NaN | infinite | not a number | not an integer | below min X | above max X``,
``timestamp: unparsable``, ``label: unknown '<value>'``, ``repeated header line``, ``empty row``,
``wrong field count: N of M``.

Invalid values (missing, NaN, +-inf) in *feature* columns follow ``invalid_values``:
``quarantine`` (default) sends the row to quarantine; ``impute`` replaces the value by the median
of the column's finite, in-range values in the same record batch (0.0 when there are none), so the
result does not depend on the rest of the file and memory stays bounded. Text in a numeric column,
out-of-range values and invalid identifiers, timestamps or labels are always quarantined.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.casting import (
    Parsed,
    parse_label,
    parse_numeric,
    parse_text,
    parse_timestamp,
    to_text,
)
from components.data.contract import Contract
from components.data.headers import HeaderPlan, header_label_text
from components.data.readers import BadLine, RawBatch

InvalidValuePolicy = Literal["quarantine", "impute"]
NUMERIC = ("float64", "int64")
META_COLUMNS = ("source_file", "row_number")


@dataclass
class ColumnStats:
    """Per-column counts over the raw file (before quarantine/imputation), for the manifest and MLflow."""

    null: Counter = field(default_factory=Counter)  # missing or NaN
    inf: Counter = field(default_factory=Counter)
    text: Counter = field(default_factory=Counter)  # unparsable
    imputed: Counter = field(default_factory=Counter)

    def add(self, other: ColumnStats) -> None:
        self.null.update(other.null)
        self.inf.update(other.inf)
        self.text.update(other.text)
        self.imputed.update(other.imputed)


@dataclass
class CheckedBatch:
    curated: pa.Table
    quarantine: pa.Table | None
    validation_frame: pa.Table  # every row, typed, before imputation: what GX validates
    reasons: Counter
    stats: ColumnStats


def curated_schema(plan: HeaderPlan) -> pa.Schema:
    """Typed columns present in the file, in contract order, then source_file and row_number."""
    fields = [pa.field(c.spec.name, _arrow_type(c.spec.dtype)) for c in plan.columns]
    return pa.schema(fields + [pa.field("source_file", pa.string()), pa.field("row_number", pa.int64())])


def quarantine_schema(plan: HeaderPlan) -> pa.Schema:
    """Raw values as text (so nothing is lost to a failed cast), then where the row came from and why."""
    fields = [pa.field(c.spec.name, pa.string()) for c in plan.columns]
    return pa.schema(fields + [pa.field("raw_line", pa.string()), pa.field("source_file", pa.string()),
                               pa.field("row_number", pa.int64()),
                               pa.field("quarantine_reason", pa.string())])


def _arrow_type(dtype: str) -> pa.DataType:
    return {"float64": pa.float64(), "int64": pa.int64(), "string": pa.string(),
            "timestamp": pa.timestamp("ms")}[dtype]  # parquet has no second unit


class _Rules:
    """Accumulates (mask, reason) pairs; reasons are joined only for the rows that failed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str | pa.Array]] = []

    def add(self, mask: np.ndarray, reason: str | pa.Array) -> None:
        if mask.any():
            self.items.append((mask, reason))

    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _ in self.items:
            out |= mask
        return out

    def reasons_for(self, idx: np.ndarray) -> pa.Array:
        acc = pa.array([""] * len(idx), pa.string())
        for mask, reason in self.items:
            sub = mask[idx]
            if not sub.any():
                continue
            piece = reason if isinstance(reason, str) else reason.take(pa.array(idx))
            joined = pc.binary_join_element_wise(acc, piece, "; ")
            acc = pc.if_else(pa.array(sub), joined, acc)
        return pc.utf8_ltrim(acc, characters="; ")


def check_batch(raw: RawBatch, plan: HeaderPlan, contract: Contract, source_file: str,
                policy: InvalidValuePolicy = "quarantine") -> CheckedBatch:
    """Cast, check and split one batch. ``rows in == curated + quarantined`` holds per batch."""
    n = len(raw.row_numbers)
    rules = _Rules(n)
    stats = ColumnStats()
    typed: dict[str, pa.Array] = {}
    frame: dict[str, pa.Array] = {}

    all_missing = np.ones(n, dtype=bool)
    for col in raw.columns:
        all_missing &= _blank(col)
    label_col = plan.column("label")
    label = parse_label(raw.columns[label_col.position], contract, header_label_text(plan))
    special = all_missing | label.is_header  # these rows get one reason, not eighty
    rules.add(all_missing, "empty row")
    rules.add(label.is_header & ~all_missing, "repeated header line")
    ordinary = ~special

    for mapped in plan.columns:
        spec = mapped.spec
        arr = raw.columns[mapped.position]
        name = spec.name
        if spec.role == "label":
            rules.add(label.missing & ordinary, "label: missing")
            unknown_reason = pc.binary_join_element_wise(
                pa.scalar("label: unknown '"), label.original, pa.scalar("'"), "")
            rules.add(label.unknown & ordinary, unknown_reason)
            typed[name] = label.values
            frame[name] = pc.if_else(pa.array(label.missing), None, label.values)
            continue
        if spec.dtype in NUMERIC:
            typed[name], frame[name] = _check_numeric(parse_numeric(arr), mapped, rules, stats,
                                                      ordinary, policy)
            continue
        parsed: Parsed = (parse_timestamp(arr, contract.timestamp_formats,
                                          partial(contract.pm_hours, plan.variant))
                          if spec.dtype == "timestamp" else parse_text(arr))
        stats.null[name] += int(parsed.missing.sum())
        stats.text[name] += int(parsed.unparsable.sum())
        rules.add(parsed.missing & ordinary, f"{name}: missing")
        rules.add(parsed.unparsable & ordinary, f"{name}: unparsable")
        typed[name] = parsed.values
        frame[name] = parsed.values

    bad = rules.bad()
    good_idx = np.flatnonzero(~bad)
    bad_idx = np.flatnonzero(bad)
    numbers = pa.array(raw.row_numbers, pa.int64())
    curated = _curated_table(typed, plan, good_idx, numbers, source_file)
    quarantine = None
    reasons: Counter = Counter()
    if len(bad_idx):
        reason_arr = rules.reasons_for(bad_idx)
        reasons.update(reason_arr.to_pylist())
        text_cols = {m.spec.name: to_text(raw.columns[m.position]).take(pa.array(bad_idx))
                     for m in plan.columns}
        quarantine = pa.table(
            {**text_cols,
             "raw_line": pa.nulls(len(bad_idx), pa.string()),
             "source_file": pa.array([source_file] * len(bad_idx), pa.string()),
             "row_number": numbers.take(pa.array(bad_idx)),
             "quarantine_reason": reason_arr},
            schema=quarantine_schema(plan))
    validation_frame = pa.table({**frame, "row_number": numbers})
    return CheckedBatch(curated, quarantine, validation_frame, reasons, stats)


def _blank(arr: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_binary(arr.type) or pa.types.is_string(arr.type):
        lengths = pc.binary_length(arr)
        return pc.fill_null(pc.equal(lengths, 0), True).to_numpy(zero_copy_only=False)
    return pc.is_null(arr).to_numpy(zero_copy_only=False)


def _check_numeric(parsed: Parsed, mapped, rules: _Rules, stats: ColumnStats, ordinary: np.ndarray,
                   policy: InvalidValuePolicy) -> tuple[pa.Array, pa.Array]:
    """Range, finiteness and integrality checks; returns (curated values, values for GX)."""
    spec = mapped.spec
    name = spec.name
    values = parsed.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    nan = np.isnan(values) & ~parsed.missing & ~parsed.unparsable
    inf = np.isinf(values)
    stats.null[name] += int((parsed.missing | nan).sum())
    stats.inf[name] += int(inf.sum())
    stats.text[name] += int(parsed.unparsable.sum())
    rules.add(parsed.unparsable & ordinary, f"{name}: not a number")

    finite = np.isfinite(values)
    below = finite & (values < spec.min) if spec.min is not None else np.zeros_like(finite)
    above = finite & (values > spec.max) if spec.max is not None else np.zeros_like(finite)
    fractional = finite & (values != np.trunc(values)) if spec.dtype == "int64" else np.zeros_like(finite)
    rules.add(below & ordinary, f"{name}: below min {_fmt(spec.min)}")
    rules.add(above & ordinary, f"{name}: above max {_fmt(spec.max)}")
    rules.add(fractional & ordinary, f"{name}: not an integer")

    invalid = parsed.missing | nan | inf
    gx_values = pa.array(np.where(parsed.missing | parsed.unparsable, np.nan, values), pa.float64(),
                         mask=parsed.missing | parsed.unparsable)
    if spec.dtype == "int64":
        gx_values = pc.cast(pc.if_else(pa.array(finite & ~fractional), gx_values, None), pa.int64())
    if policy == "impute" and spec.role == "feature" and invalid.any():
        usable = finite & ~below & ~above & ~fractional
        fill = float(np.median(values[usable])) if usable.any() else 0.0
        values = np.where(invalid, fill, values)
        stats.imputed[name] += int((invalid & ordinary).sum())
    else:
        rules.add(parsed.missing & ordinary, f"{name}: missing")
        rules.add(nan & ordinary, f"{name}: NaN")
        rules.add(inf & ordinary, f"{name}: infinite")
    return pa.array(values, pa.float64()), gx_values


def _fmt(value: float | None) -> str:
    return f"{value:g}" if value is not None else ""


def _curated_table(typed: dict[str, pa.Array], plan: HeaderPlan, idx: np.ndarray,
                   numbers: pa.Array, source_file: str) -> pa.Table:
    take = pa.array(idx, pa.int64())
    columns = {}
    for mapped in plan.columns:
        arr = typed[mapped.spec.name].take(take)
        # safe casts: good rows are finite, integral and in range; timestamps widen s -> ms
        arr = pc.cast(arr, _arrow_type(mapped.spec.dtype))
        columns[mapped.spec.name] = arr
    columns["source_file"] = pa.array([source_file] * len(idx), pa.string())
    columns["row_number"] = numbers.take(take)
    return pa.table(columns, schema=curated_schema(plan))


def bad_lines_table(lines: list[BadLine], plan: HeaderPlan, source_file: str) -> pa.Table:
    """Rows pyarrow could not split (wrong field count): kept whole in ``raw_line``."""
    k = len(lines)
    schema = quarantine_schema(plan)
    cols = {m.spec.name: pa.nulls(k, pa.string()) for m in plan.columns}
    return pa.table(
        {**cols,
         "raw_line": pa.array([b.text for b in lines], pa.string()),
         "source_file": pa.array([source_file] * k, pa.string()),
         "row_number": pa.array([b.row_number for b in lines], pa.int64()),
         "quarantine_reason": pa.array(
             [f"wrong field count: {b.fields} of {plan.width}" for b in lines], pa.string())},
        schema=schema)
