"""Row-level validation: split one raw batch into curated rows and quarantined rows with reasons.

Why here and not in GX: the split must be exact, streaming and cheap, so it is done with vectorised
pyarrow/numpy checks derived from the contract (dtype, min/max, label set). The numeric columns of a
batch are checked together as one matrix (a handful of numpy calls per batch, not per column), and
reason strings are built only for the rows that fail. Great Expectations then reports on a sample
of the same typed rows against the same contract (``gx_validation``).

Reasons are stable strings so that users and tests can count them:
``<column>: missing | NaN | infinite | not a number | not an integer | beyond int64 | below min X |
above max X``, ``label: missing | unknown '<value>'``, ``repeated header line``, ``empty row``,
``wrong field count: N of M``, ``unterminated quote``.

Timestamps are not model inputs, so a timestamp never costs a row: a missing or unparsable one is
kept as null and counted (``ColumnStats.null`` / ``ColumnStats.text``). Which clock the file's
timestamps are on is decided by ``clock.Clock``, across batches.

Unusable values in *feature* columns (``casting.value_checks``: missing, NaN, +-inf, text, out of
range) follow ``invalid_values``: ``keep`` (default) keeps the row, sets the value to null and
names it in the row's ``input_problem``: exactly what nightly scoring does with the same value, so
the model is trained and calibrated on rows handled as a night's rows are (a null is "no
information": the benign centre once scaled). ``quarantine`` sends the row to quarantine;
``impute`` replaces missing/NaN/inf by the median of the column's finite, in-range values in the
same record batch. Invalid identifiers or labels always send the row to quarantine (a night needs
neither to score a row; training needs the label).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.casting import (
    INT64_LIMIT,
    Parsed,
    ParsedLabel,
    ParsedTimestamp,
    join_problems,
    named_problems,
    parse_label,
    parse_numeric,
    parse_text,
    parse_timestamp,
    to_text,
    unusable,
    value_checks,
)
from components.data.clock import Clock
from components.data.contract import Contract
from components.data.headers import HeaderPlan, header_label_text
from components.data.readers import BadLine, RawBatch

InvalidValuePolicy = Literal["keep", "quarantine", "impute"]
NUMERIC = ("float64", "int64")
META_COLUMNS = ("source_file", "row_number")


@dataclass
class ColumnStats:
    """Per-column counts over the raw file (before quarantine/imputation), for the manifest and MLflow."""

    null: Counter = field(default_factory=Counter)  # missing or NaN
    inf: Counter = field(default_factory=Counter)
    text: Counter = field(default_factory=Counter)  # unparsable
    imputed: Counter = field(default_factory=Counter)
    nulled: Counter = field(default_factory=Counter)  # kept as null (policy ``keep``), curated rows

    def add(self, other: ColumnStats) -> None:
        self.null.update(other.null)
        self.inf.update(other.inf)
        self.text.update(other.text)
        self.imputed.update(other.imputed)
        self.nulled.update(other.nulled)


@dataclass
class CheckedBatch:
    curated: pa.Table
    quarantine: pa.Table | None
    validation_frame: pa.Table  # the rows asked for (all by default), typed, before imputation
    reasons: Counter
    stats: ColumnStats


def _rows(frame_idx: pa.Array) -> np.ndarray:
    return frame_idx.to_numpy(zero_copy_only=False)


@lru_cache(maxsize=64)
def curated_schema(plan: HeaderPlan) -> pa.Schema:
    """Typed columns present in the file, in contract order, then source_file, row_number and
    input_problem (which feature values were unusable and kept as null, as in a scored night)."""
    fields = [pa.field(c.spec.name, arrow_type(c.spec.dtype)) for c in plan.columns]
    return pa.schema(fields + [pa.field("source_file", pa.string()), pa.field("row_number", pa.int64()),
                               pa.field("input_problem", pa.string())])


@lru_cache(maxsize=64)
def quarantine_schema(plan: HeaderPlan) -> pa.Schema:
    """Raw values as text (so nothing is lost to a failed cast), then where the row came from and why."""
    fields = [pa.field(c.spec.name, pa.string()) for c in plan.columns]
    return pa.schema(fields + [pa.field("raw_line", pa.string()), pa.field("source_file", pa.string()),
                               pa.field("row_number", pa.int64()),
                               pa.field("quarantine_reason", pa.string())])


@lru_cache(maxsize=64)
def validation_schema(plan: HeaderPlan) -> pa.Schema:
    """What GX sees: typed values before quarantine (int columns nullable), plus row_number."""
    fields = [pa.field(c.spec.name, arrow_type(c.spec.dtype)) for c in plan.columns]
    return pa.schema(fields + [pa.field("row_number", pa.int64())])


def arrow_type(dtype: str) -> pa.DataType:
    return {"float64": pa.float64(), "int64": pa.int64(), "string": pa.string(),
            "timestamp": pa.timestamp("ms")}[dtype]  # parquet has no second unit


class _Rules:
    """(mask, reason) pairs in a stable order: contract column order, then rule order."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[tuple[int, int], np.ndarray, str | pa.Array]] = []

    def add(self, order: tuple[int, int], mask: np.ndarray, reason: str | pa.Array) -> None:
        if mask.any():
            self.items.append((order, mask, reason))

    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for _, mask, _ in self.items:
            out |= mask
        return out

    def reasons_for(self, idx: np.ndarray, special: list[tuple[np.ndarray, str]]) -> pa.Array:
        """Joined reasons of rows ``idx``; a special row (empty, repeated header) gets one reason."""
        acc = pa.array([""] * len(idx), pa.string())
        taken = pa.array(idx)
        for _, mask, reason in sorted(self.items, key=lambda item: item[0]):
            sub = mask[idx]
            if not sub.any():
                continue
            piece = reason if isinstance(reason, str) else reason.take(taken)
            acc = pc.if_else(pa.array(sub), pc.binary_join_element_wise(acc, piece, "; "), acc)
        for mask, reason in special:
            if mask.any():
                acc = pc.if_else(pa.array(mask), pa.scalar(reason), acc)
        return pc.utf8_ltrim(acc, characters="; ")


@dataclass
class NumericColumns:
    """Every numeric column of a batch cast to float64, also as one (rows x columns) matrix."""

    columns: list  # MappedColumn, in contract order
    arrays: list[pa.Array]  # float64, null where missing or unparsable
    values: np.ndarray  # float64, NaN where missing or unparsable; column-major
    nulls: dict[int, tuple[np.ndarray, np.ndarray]]  # column -> (missing, unparsable), if any


@dataclass
class ParsedBatch:
    """A raw batch cast to the contract's types: no rule applied yet, no state across batches, so
    it can be made on the read-ahead thread while the previous batch is checked."""

    raw: RawBatch
    label: ParsedLabel
    numeric: NumericColumns
    timestamp: ParsedTimestamp | None
    texts: dict[str, Parsed]


def parse_batch(raw: RawBatch, plan: HeaderPlan, contract: Contract) -> ParsedBatch:
    label_col = plan.column("label")
    label = parse_label(raw.columns[label_col.position], contract, header_label_text(plan))
    cols = [m for m in plan.columns if m.spec.dtype in NUMERIC]
    values = np.empty((raw.rows, len(cols)), dtype=np.float64, order="F")
    nulls: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    arrays = []
    for j, mapped in enumerate(cols):
        parsed = parse_numeric(raw.columns[mapped.position])
        arr = parsed.values
        if arr.null_count:
            values[:, j] = pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False)
            nulls[j] = (parsed.missing, parsed.unparsable)
        else:
            values[:, j] = arr.to_numpy(zero_copy_only=False)
        arrays.append(arr)
    timestamp, texts = None, {}
    for mapped in plan.columns:
        if mapped.spec.dtype == "timestamp":
            timestamp = parse_timestamp(raw.columns[mapped.position], contract.timestamp_formats)
        elif mapped.spec.dtype == "string" and mapped.spec.role != "label":
            texts[mapped.spec.name] = parse_text(raw.columns[mapped.position])
    return ParsedBatch(raw, label, NumericColumns(cols, arrays, values, nulls), timestamp, texts)


def check_batch(batch: RawBatch | ParsedBatch, plan: HeaderPlan, contract: Contract, source_file: str,
                policy: InvalidValuePolicy = "quarantine", clock: Clock | None = None,
                frame_rows: np.ndarray | None = None) -> CheckedBatch:
    """Check and split one batch. ``rows in == curated + quarantined`` holds per batch.

    ``frame_rows``: positions of the rows GX will see (all rows when None); only those are typed
    for the validation frame. ``clock`` carries the file's 12-hour clock decision across batches.
    """
    parsed_batch = batch if isinstance(batch, ParsedBatch) else parse_batch(batch, plan, contract)
    raw, label = parsed_batch.raw, parsed_batch.label
    n = raw.rows
    rules = _Rules(n)
    stats = ColumnStats()
    typed: dict[str, pa.Array] = {}
    frame_idx = pa.array(np.arange(n) if frame_rows is None else frame_rows, pa.int64())
    frame: dict[str, pa.Array] = {}

    numeric = _check_numeric_columns(parsed_batch.numeric, plan, rules, stats, policy, frame_idx)
    for order, mapped in enumerate(plan.columns):
        spec, name = mapped.spec, mapped.spec.name
        if spec.role == "label":
            rules.add((order, 0), label.missing, "label: missing")
            if label.unknown.any():
                rules.add((order, 1), label.unknown, pc.binary_join_element_wise(
                    pa.scalar("label: unknown '"), label.original, pa.scalar("'"), ""))
            typed[name] = label.values
            frame[name] = pc.if_else(pa.array(label.missing[_rows(frame_idx)]), None,
                                     label.values.take(frame_idx))
        elif spec.dtype in NUMERIC:
            typed[name], frame[name] = numeric.columns[name]
        elif spec.dtype == "timestamp":
            parsed = parsed_batch.timestamp
            values = (clock.read(parsed.values, parsed.plain, parsed.marked) if clock is not None
                      else parsed.values)
            stats.null[name] += int(parsed.missing.sum())
            stats.text[name] += int(parsed.unparsable.sum())
            typed[name] = values
            frame[name] = values.take(frame_idx)
        else:
            parsed = parsed_batch.texts[name]
            stats.null[name] += int(parsed.missing.sum())
            rules.add((order, 0), parsed.missing, f"{name}: missing")
            typed[name] = parsed.values
            frame[name] = parsed.values.take(frame_idx)

    bad = rules.bad()
    numbers = pa.array(raw.row_numbers, pa.int64())
    table = pa.table({**typed, "source_file": pa.repeat(pa.scalar(source_file), n),
                      "row_number": numbers, "input_problem": join_problems(n, numeric.problems)})
    reasons: Counter = Counter()
    quarantine = None
    if bad.any():
        bad_idx = np.flatnonzero(bad)
        taken = pa.array(bad_idx)
        empty = np.zeros(len(bad_idx), dtype=bool)
        maybe = np.flatnonzero(label.missing[bad_idx])  # an empty row has no label either
        if len(maybe):
            picked = pa.array(bad_idx[maybe])
            empty[maybe] = _all_blank([raw.columns[m.position].take(picked) for m in plan.columns])
        header = label.is_header[bad_idx] & ~empty
        reason_arr = rules.reasons_for(bad_idx, [(empty, "empty row"), (header, "repeated header line")])
        reasons.update(reason_arr.to_pylist())
        text_cols = {m.spec.name: to_text(raw.columns[m.position].take(taken)) for m in plan.columns}
        quarantine = pa.table(
            {**text_cols,
             "raw_line": pa.nulls(len(bad_idx), pa.string()),
             "source_file": pa.repeat(pa.scalar(source_file), len(bad_idx)),
             "row_number": numbers.take(taken),
             "quarantine_reason": reason_arr},
            schema=quarantine_schema(plan))
        table = table.filter(pa.array(~bad))
    ordinary = np.ones(n, dtype=bool)
    if bad.any():
        ordinary[bad_idx[empty | header]] = False
    for name, imputed in numeric.imputed:
        stats.imputed[name] += int((imputed & ordinary).sum())
    for name, nulled in numeric.nulled:
        stats.nulled[name] += int((nulled & ~bad).sum())
    curated = table.cast(curated_schema(plan))  # safe: good rows are finite, integral and in range
    validation_frame = pa.table({**frame, "row_number": numbers.take(frame_idx)},
                                schema=validation_schema(plan))
    return CheckedBatch(curated, quarantine, validation_frame, reasons, stats)


def _all_blank(columns: list[pa.Array]) -> np.ndarray:
    """Rows whose every field is empty or null (an empty CSV line or a line of commas)."""
    out = np.ones(len(columns[0]) if columns else 0, dtype=bool)
    for arr in columns:
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_binary(arr.type) or pa.types.is_string(arr.type):
            blank = pc.fill_null(pc.equal(pc.binary_length(arr), 0), True)
        else:
            blank = pc.is_null(arr)
        out &= blank.to_numpy(zero_copy_only=False)
    return out


@dataclass
class _NumericChecks:
    columns: dict[str, tuple[pa.Array, pa.Array]]  # name -> (curated values, GX values)
    imputed: list[tuple[str, np.ndarray]]  # name -> rows whose invalid value was imputed
    nulled: list[tuple[str, np.ndarray]]  # name -> rows whose unusable value was kept as null
    problems: list[tuple[np.ndarray, str]]  # (rows, "column: reason") of the nulled values


def _check_numeric_columns(parsed: NumericColumns, plan: HeaderPlan, rules: _Rules,
                           stats: ColumnStats, policy: InvalidValuePolicy,
                           frame_idx: pa.Array) -> _NumericChecks:
    """Range, finiteness and integrality of every numeric column. One pass over the (rows x
    columns) matrix finds the columns with any value out of bounds (NaN, +-inf and missing values
    are never within bounds); only those, and the int64 columns, are looked at one by one."""
    order = {m.spec.name: i for i, m in enumerate(plan.columns)}
    cols, arrays, values = parsed.columns, parsed.arrays, parsed.values
    lo, hi, is_int, is_feature = _bounds(tuple(cols))
    inside = (values >= lo) & (values <= hi)
    suspect = set(np.flatnonzero(~inside.all(axis=0)).tolist()) | set(np.flatnonzero(is_int).tolist())
    frame_rows = frame_idx.to_numpy()
    out = _NumericChecks({}, [], [], [])
    for j, mapped in enumerate(cols):
        spec, name = mapped.spec, mapped.spec.name
        column = values[:, j]
        gx = column[frame_rows]  # before imputation: GX sees the file as it is
        if j not in suspect:
            out.columns[name] = (arrays[j], pa.array(gx, pa.float64()))
            continue
        none = np.zeros(len(column), dtype=bool)
        missing, unparsable = parsed.nulls.get(j, (none, none))
        checks = value_checks(column, missing, unparsable, spec.min, spec.max, bool(is_int[j]))
        inf = np.isinf(column)
        invalid = missing | (np.isnan(column) & ~unparsable) | inf
        keeping = bool(is_feature[j]) and policy == "keep"
        imputing = bool(is_feature[j]) and policy == "impute"
        stats.null[name] += int((missing | (np.isnan(column) & ~unparsable)).sum())
        stats.inf[name] += int(inf.sum())
        stats.text[name] += int(unparsable.sum())
        curated = arrays[j]
        if keeping:  # the night's rule: the value is no information, the row stays
            bad_values = unusable(checks, len(column))
            out.problems += named_problems(name, checks)
            if bad_values.any():
                curated = pa.array(column, pa.float64(), mask=bad_values)
                out.nulled.append((name, bad_values))
        else:
            for rank, (mask, text) in enumerate(checks):
                if imputing and text in _INVALID:
                    continue
                rules.add((order[name], rank), mask, f"{name}: {text}")
            if imputing and invalid.any():
                usable = np.isfinite(column) & ~unusable(checks, len(column))
                fill = float(np.median(column[usable])) if usable.any() else 0.0
                curated = pa.array(np.where(invalid, fill, column), pa.float64())
                out.imputed.append((name, invalid))
            elif curated.null_count:
                curated = pa.array(column, pa.float64())  # nulls only in rows that are quarantined
        fractional = next((m for m, t in checks if t == "not an integer"), none)
        null = (missing | unparsable)[frame_rows]
        if is_int[j]:
            null |= ~np.isfinite(gx) | fractional[frame_rows] | (np.abs(gx) >= INT64_LIMIT)
            gx_values = pa.array(np.where(null, 0, gx).astype(np.int64), pa.int64(), mask=null)
        else:
            gx_values = pa.array(gx, pa.float64(), mask=null)
        out.columns[name] = (curated, gx_values)
    return out


_INVALID = frozenset({"missing", "NaN", "infinite"})  # what ``impute`` fills instead of quarantining


@lru_cache(maxsize=64)
def _bounds(cols: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per numeric column: min and max (the largest finite float when open, so that +-inf and NaN
    are never within bounds), whether int64, whether a model feature."""
    top = np.finfo(np.float64).max
    return (np.array([-top if m.spec.min is None else m.spec.min for m in cols], dtype=np.float64),
            np.array([top if m.spec.max is None else m.spec.max for m in cols], dtype=np.float64),
            np.array([m.spec.dtype == "int64" for m in cols], dtype=bool),
            np.array([m.spec.role == "feature" for m in cols], dtype=bool))


def bad_lines_table(lines: list[BadLine], plan: HeaderPlan, source_file: str) -> pa.Table:
    """Lines pyarrow could not split into the header's fields: kept whole in ``raw_line``."""
    k = len(lines)
    schema = quarantine_schema(plan)
    cols = {m.spec.name: pa.nulls(k, pa.string()) for m in plan.columns}
    return pa.table(
        {**cols,
         "raw_line": pa.array([b.text for b in lines], pa.string()),
         "source_file": pa.repeat(pa.scalar(source_file), k),
         "row_number": pa.array([b.row_number for b in lines], pa.int64()),
         "quarantine_reason": pa.array([bad_line_reason(b, plan) for b in lines], pa.string())},
        schema=schema)


def bad_line_reason(line: BadLine, plan: HeaderPlan) -> str:
    return line.reason or f"wrong field count: {line.fields} of {plan.width}"
