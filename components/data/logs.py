"""Nightly traffic logs read for scoring: every row kept, in order, typed by the contract.

Why not ingest's curated output: ingest sets aside rows it cannot use for *training*; scoring
must return *every* input row with a score. So a file is checked against the contract's serving
part (a known header variant with the model's features; no label needed) and then read with the
same readers, casts and value rule (``casting.value_checks``) as ingest, and a bad value only nulls
that value (the model reads the benign centre there) and is named in the row's ``input_problem``,
exactly as ingest's default ``keep`` policy does for the rows a model is trained and calibrated on; a line with the wrong number of
fields keeps its place, all values null. A file that fails the serving check is not scored at all.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.data.casting import (
    join_problems,
    named_problems,
    parse_label,
    parse_numeric,
    parse_text,
    parse_timestamp,
    unusable,
    value_checks,
)
from components.data.clock import Clock, ClockContradiction
from components.data.contract import Contract, load_contract
from components.data.headers import HeaderPlan, header_label_text, plan_header
from components.data.inputs import InputFile
from components.data.readers import BadLine, InputBytes, RawBatch, open_input, open_source

_TYPES = {"float64": pa.float64(), "int64": pa.int64(), "string": pa.string(),
          "timestamp": pa.timestamp("ms")}


@lru_cache(maxsize=1)
def serving_contract() -> Contract:
    """The contract without the label requirement: nightly logs carry no labels."""
    contract = load_contract()
    columns = tuple(dataclasses.replace(c, required=False) if c.role == "label" else c
                    for c in contract.columns)
    return dataclasses.replace(contract, columns=columns, by_name={c.name: c for c in columns})


@dataclass
class ServingFile:
    """An opened log: its header plan, typed schema, and a stream of typed batches.

    ``close()`` releases the input (a file, a gzip stream or a zip member); scoring closes it
    when the file is done."""

    path: Path
    plan: HeaderPlan
    schema: pa.Schema
    batches: Iterator[pa.Table]
    data: InputBytes

    @property
    def size_bytes(self) -> int:
        return self.data.size

    @property
    def bytes_read(self) -> int:
        return self.data.bytes_read

    def close(self) -> None:
        self.data.close()


def serving_schema(plan: HeaderPlan) -> pa.Schema:
    fields = [pa.field(c.spec.name, _TYPES[c.spec.dtype]) for c in plan.columns]
    return pa.schema(fields + [pa.field("row_number", pa.int64()), pa.field("input_problem", pa.string())])


def open_log(item: InputFile | Path, block_size: int = 8 << 20, clock: Clock | None = None) -> ServingFile:
    """Open a CSV/parquet log (a plain, gzipped or zip-member file); raises ``FileLevelError``
    (one-line reason) when it cannot be scored. ``clock`` carries the file's 12-hour clock rule
    (``components.data.clock``) across batches, as in ingest."""
    contract = serving_contract()
    data = open_input(item)
    try:
        source = open_source(data, block_size)
        plan = plan_header(source.header, contract)
    except BaseException:
        data.close()
        raise
    schema = serving_schema(plan)
    clock = clock or Clock(contract.pm_hours, contract.late_hours)

    def batches() -> Iterator[pa.Table]:
        for raw in source.batches([c.position for c in plan.columns]):
            yield _ordered(typed_batch(raw, plan, contract, clock), raw.bad_lines, plan, schema)

    path = item.path if isinstance(item, InputFile) else Path(item)
    return ServingFile(Path(path), plan, schema, batches(), data)


def typed_batch(raw: RawBatch, plan: HeaderPlan, contract: Contract, clock: Clock) -> pa.Table:
    """All rows of a raw batch cast to their contract types; bad values null, named per row."""
    n = len(raw.row_numbers)
    columns: dict[str, pa.Array] = {}
    problems: list[tuple[np.ndarray, str]] = []
    for mapped in plan.columns:
        spec, arr = mapped.spec, raw.columns[mapped.position]
        if spec.role == "label":
            label = parse_label(arr, contract, header_label_text(plan))
            columns[spec.name] = pc.if_else(pa.array(label.missing | label.is_header), None, label.values)
            continue
        if spec.dtype in ("float64", "int64"):
            parsed = parse_numeric(arr)
            values = parsed.values.to_numpy(zero_copy_only=False).astype(np.float64)
            checks = value_checks(values, parsed.missing, parsed.unparsable, spec.min, spec.max,
                                  spec.dtype == "int64")
            bad = unusable(checks, n)
            problems += named_problems(spec.name, checks)
            if spec.dtype == "int64":
                columns[spec.name] = pa.array(np.where(bad, 0, values).astype(np.int64), pa.int64(), mask=bad)
            else:
                columns[spec.name] = pa.array(values, pa.float64(), mask=bad)
            continue
        if spec.dtype == "timestamp":
            parsed = parse_timestamp(arr, contract.timestamp_formats)
            columns[spec.name] = clock.read(parsed.values, parsed.plain, parsed.marked)
        else:
            parsed = parse_text(arr)
            columns[spec.name] = parsed.values
        problems.append((parsed.unparsable, f"{spec.name}: unparsable"))
    columns["row_number"] = pa.array(raw.row_numbers, pa.int64())
    columns["input_problem"] = join_problems(n, problems)
    return pa.table(columns, schema=serving_schema(plan))


def typed_rows(frame: pd.DataFrame) -> pa.Table:
    """Rows in memory (the pyfunc's input: any header variant, raw text or typed values) typed
    exactly as a log's batch is (same header plan, casts and value rule), so the pyfunc and
    ``flowae score`` give one row one score. Raises ``FileLevelError`` as ``open_log`` does."""
    contract = serving_contract()
    header = [str(c) for c in frame.columns]
    plan = plan_header(header, contract)
    raw = RawBatch(columns=[_arrow(frame.iloc[:, i]) for i in range(len(header))],
                   row_numbers=np.arange(1, len(frame) + 1, dtype=np.int64))
    try:
        return typed_batch(raw, plan, contract, Clock(contract.pm_hours, contract.late_hours))
    except ClockContradiction:  # a 24-hour file after all, as in ``score_file``
        return typed_batch(raw, plan, contract, Clock(contract.pm_hours, contract.late_hours, fixed_24h=True))


def _arrow(series: pd.Series) -> pa.Array:
    """One frame column as arrow: numbers as they are, anything else as text (as a CSV field)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if isinstance(series.dtype, np.dtype):
            return pa.array(series.to_numpy(), from_pandas=False)  # NaN stays NaN, as "NaN" in a CSV
        return pa.array(series, from_pandas=True)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return pa.array(series, from_pandas=True)
    values = series.astype(object).where(series.notna(), None).tolist()
    return pa.array([v if isinstance(v, (str, bytes)) or v is None else str(v) for v in values])


def _ordered(typed: pa.Table | None, bad: list[BadLine], plan: HeaderPlan, schema: pa.Schema) -> pa.Table:
    """Rows and unsplittable lines of one batch, back in file order."""
    parts = [typed] if typed is not None and typed.num_rows else []
    if bad:
        k = len(bad)
        nulls = {f.name: pa.nulls(k, f.type) for f in schema}
        nulls["row_number"] = pa.array([b.row_number for b in bad], pa.int64())
        nulls["input_problem"] = pa.array([b.reason or f"wrong field count: {b.fields} of {plan.width}"
                                           for b in bad], pa.string())
        parts.append(pa.table(nulls, schema=schema))
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    return table.sort_by("row_number") if bad else table


def parquet_row_groups(path: Path) -> list[int]:
    """Rows per row group of a parquet log (from the footer; nothing is read)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def parquet_clock(path: Path) -> str | None:
    """The 12-hour clock decision (``Clock.decision``) for a whole parquet log, from a first pass
    over its timestamp column alone; every part of the file is then read on it."""
    import pyarrow.parquet as pq

    log = open_log(path)  # the header plan: which column holds the timestamp
    log.close()
    stamps = [c.position for c in log.plan.columns if c.spec.dtype == "timestamp"]
    if not stamps:
        return None
    contract = serving_contract()
    clock = Clock(contract.pm_hours, contract.late_hours)
    pf = pq.ParquetFile(path)
    names = [pf.schema_arrow.names[p] for p in stamps]
    try:
        for batch in pf.iter_batches(columns=names, batch_size=1 << 16):
            for column in batch.columns:
                parsed = parse_timestamp(column, contract.timestamp_formats)
                clock.read(parsed.values, parsed.plain, parsed.marked)
    except ClockContradiction:
        return "24h"
    return clock.decision


def open_log_rows(path: Path, start: int, stop: int, clock: Clock | None = None) -> ServingFile:
    """Rows ``[start, stop)`` of a parquet log, typed like :func:`open_log` (row groups are read
    only where they overlap the range), for scoring one part of a big file on its own worker.
    ``clock``: the whole file's clock (``Clock.decided``), so a part reads its times as the whole
    file does."""
    import pyarrow.parquet as pq

    log = open_log(path)  # the header checks and the schema, as for the whole file
    pf = pq.ParquetFile(path)
    sizes = parquet_row_groups(path)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    contract = serving_contract()
    clock = clock or Clock(contract.pm_hours, contract.late_hours)

    def batches() -> Iterator[pa.Table]:
        for i in range(len(sizes)):
            lo, hi = int(offsets[i]), int(offsets[i + 1])
            if hi <= start or lo >= stop:
                continue
            table = pf.read_row_group(i)
            a, b = max(start, lo) - lo, min(stop, hi) - lo
            table = table.slice(a, b - a)
            raw = RawBatch(columns=[c.combine_chunks() for c in table.columns],
                           row_numbers=np.arange(lo + a + 1, lo + b + 1, dtype=np.int64))
            yield typed_batch(raw, log.plan, contract, clock)

    return ServingFile(log.path, log.plan, log.schema, batches(), log.data)
