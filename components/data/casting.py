"""Casting: raw column arrays (CSV bytes or parquet values) -> contract dtypes, with problem masks.

Why masks instead of exceptions: one text value in a numeric column must send *that row* to
quarantine, not abort the file. Every function here is vectorised (pyarrow compute / numpy); the
only Python loops run over the *distinct* values of low-cardinality columns (labels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.contract import Contract, canonical_name
from components.data.streams import decode_text

# What pyarrow's string->double cast accepts and we want to accept (CIC writes "Infinity", "NaN").
_NUMBER_RE = (r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[Ii]nf(inity)?|INF|INFINITY"
              r"|[Nn]a[Nn]|NAN)\s*$")
_TRIM_RE = r"^\s+|\s+$"


@dataclass
class Parsed:
    """A column cast to its contract dtype. ``values`` is null where missing or unparsable."""

    values: pa.Array
    missing: np.ndarray  # empty field / null
    unparsable: np.ndarray  # present but not of the column's type


def _mask(arr: pa.Array) -> np.ndarray:
    """Boolean pyarrow array -> numpy bool (nulls count as False)."""
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)


def _nulls(arr: pa.Array) -> np.ndarray:
    return _mask(pc.is_null(arr)) if arr.null_count else np.zeros(len(arr), dtype=bool)


def _is_text(arr: pa.Array) -> bool:
    return pa.types.is_binary(arr.type) or pa.types.is_string(arr.type) or \
        pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type)


def _plain(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        return arr.cast(arr.type.value_type)
    return arr


def _missing_text(arr: pa.Array) -> np.ndarray:
    """Null, empty or whitespace-only field."""
    trimmed = pc.replace_substring_regex(arr, _TRIM_RE, "")
    return _mask(pc.or_kleene(pc.is_null(arr), pc.equal(pc.binary_length(trimmed), 0)))


def parse_numeric(arr: pa.Array) -> Parsed:
    """Any column -> float64; NaN and +-inf are kept as values (the checks decide about them)."""
    arr = _plain(arr)
    n = len(arr)
    if not _is_text(arr):
        try:
            values = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return parse_numeric(pc.cast(arr, pa.string()))
        return Parsed(values, _nulls(values), np.zeros(n, dtype=bool))
    try:  # fast path: a clean column casts in one go
        values = pc.cast(arr, pa.float64())
        return Parsed(values, _nulls(values), np.zeros(n, dtype=bool))
    except pa.ArrowInvalid:
        pass
    missing = _missing_text(arr)
    ok = _mask(pc.match_substring_regex(arr, _NUMBER_RE)) & ~missing
    cleaned = pc.if_else(pa.array(ok), pc.replace_substring_regex(arr, _TRIM_RE, ""), None)
    try:
        values = pc.cast(cleaned, pa.float64())
    except pa.ArrowInvalid:  # a regex/arrow disagreement: settle it value by value (rare)
        values = pa.array([_float_or_none(v) for v in cleaned.to_pylist()], pa.float64())
        ok &= _mask(pc.is_valid(values))
    return Parsed(values, missing, ~ok & ~missing)


def _float_or_none(value: bytes | str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass
class ParsedTimestamp(Parsed):
    """Timestamps as written (timestamp[ms]), and which rows the 12-hour clock rule may read."""

    plain: np.ndarray  # parsed in a format without AM/PM, or typed: the clock rule reads these
    marked: np.ndarray  # parsed in an AM/PM format: already real time


def parse_timestamp(arr: pa.Array, formats: tuple[str, ...]) -> ParsedTimestamp:
    """Text in any of the contract's formats, or typed dates/times -> timestamp[ms] as written.

    The first format that parses a value wins; the formats after it are tried only while values
    are left unparsed (one ``strptime`` per batch for a well-formed file). Typed timestamps of a
    finer unit are cut to milliseconds (the curated unit); time zones are dropped (UTC wall time).
    Which clock a file is on is decided by ``components.data.clock``, not here.
    """
    arr = _plain(arr)
    n = len(arr)
    none = np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        if pa.types.is_timestamp(arr.type) and arr.type.unit in ("us", "ns"):
            arr = pc.floor_temporal(arr, unit="millisecond")
        values = pc.cast(arr, pa.timestamp("ms"))
        valid = _mask(pc.is_valid(values))
        return ParsedTimestamp(values, ~valid, none, valid, none)
    # flow records share a few timestamps per minute: parse each distinct text once
    encoded = pc.dictionary_encode(arr if pa.types.is_binary(arr.type) or pa.types.is_string(arr.type)
                                   else to_text(arr))
    text = pc.utf8_trim_whitespace(to_text(encoded.dictionary))
    empty = _mask(pc.or_kleene(pc.is_null(text), pc.equal(pc.utf8_length(text), 0)))
    values = pa.nulls(len(text), pa.timestamp("s"))
    plain, marked = np.zeros(len(text), dtype=bool), np.zeros(len(text), dtype=bool)
    left = int((~empty).sum())
    for fmt in formats:
        if left == 0:
            break
        parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
        new = _mask(pc.is_valid(parsed)) & ~_mask(pc.is_valid(values))
        if not new.any():
            continue
        (marked if "%p" in fmt else plain)[new] = True
        values = pc.coalesce(values, parsed)
        left -= int(new.sum())
    unparsable = ~_mask(pc.is_valid(values)) & ~empty
    idx = encoded.indices
    rows = pc.fill_null(idx, 0).to_numpy(zero_copy_only=False) if len(text) else np.zeros(n, np.int64)
    is_null = _mask(pc.is_null(idx))

    def per_row(mask: np.ndarray) -> np.ndarray:
        return (mask[rows] if len(text) else none) & ~is_null

    values = pc.cast(values, pa.timestamp("ms")).take(idx) if len(text) else pa.nulls(n, pa.timestamp("ms"))
    return ParsedTimestamp(values, per_row(empty) | is_null, per_row(unparsable), per_row(plain),
                           per_row(marked))


def parse_text(arr: pa.Array) -> Parsed:
    """Identifier strings: decoded (UTF-8, else cp1252), trimmed."""
    text = pc.utf8_trim_whitespace(to_text(_plain(arr)))
    missing = _mask(pc.or_kleene(pc.is_null(text), pc.equal(pc.utf8_length(text), 0)))
    return Parsed(text, missing, np.zeros(len(arr), dtype=bool))


def to_text(arr: pa.Array) -> pa.Array:
    """Raw values as strings for the quarantine file; invalid UTF-8 decoded with the cp1252 fallback."""
    arr = _plain(arr)
    if pa.types.is_string(arr.type):
        return arr
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        encoded = pc.dictionary_encode(pc.cast(arr, pa.binary()))
        uniques = pa.array([None if v is None else decode_text(v)
                            for v in encoded.dictionary.to_pylist()], pa.string())
        return uniques.take(encoded.indices)


@dataclass
class ParsedLabel:
    """Labels decoded and normalised; per-row flags from per-distinct-value decisions."""

    values: pa.Array  # normalised label (string)
    original: pa.Array  # decoded raw label (string)
    missing: np.ndarray
    unknown: np.ndarray
    is_header: np.ndarray


def parse_label(arr: pa.Array, contract: Contract, header_text: str) -> ParsedLabel:
    """Decode each distinct raw label once (any byte encoding), normalise, look it up."""
    arr = _plain(arr)
    if not (pa.types.is_binary(arr.type) or pa.types.is_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    encoded = pc.dictionary_encode(pc.cast(arr, pa.binary()))
    decoded, normalised, state = [], [], []
    for raw in encoded.dictionary.to_pylist():
        text = decode_text(raw).strip() if raw is not None else ""
        label = contract.normalise_label(text) if text else ""
        decoded.append(text)
        normalised.append(label)
        if not text:
            state.append(0)
        elif canonical_name(text) == header_text:
            state.append(1)
        elif label not in contract.known_labels:
            state.append(2)
        else:
            state.append(3)
    idx = encoded.indices
    codes = pa.array(state, pa.int8()).take(idx).to_numpy(zero_copy_only=False)
    null_idx = _mask(pc.is_null(idx))
    return ParsedLabel(
        values=pa.array(normalised, pa.string()).take(idx),
        original=pa.array(decoded, pa.string()).take(idx),
        missing=(codes == 0) | null_idx,
        unknown=codes == 2,
        is_header=codes == 1,
    )


INT64_LIMIT = 2.0**63  # the first float that no int64 holds


def value_checks(column: np.ndarray, missing: np.ndarray, unparsable: np.ndarray, minimum: float | None,
                 maximum: float | None, integer: bool) -> list[tuple[np.ndarray, str]]:
    """Why each value of one numeric column (float64, NaN where missing or unparsable) is unusable:
    ``(mask, reason)`` pairs in a stable order, empty masks left out.

    The one value rule of flowae: ingest quarantines or nulls on it, nightly scoring nulls on it,
    so training, calibration and a night's rows treat every value alike.
    """
    none = np.zeros(len(column), dtype=bool)
    nan = np.isnan(column) & ~missing & ~unparsable
    inf = np.isinf(column)
    below = (column < minimum) & ~inf if minimum is not None else none
    above = (column > maximum) & ~inf if maximum is not None else none
    fractional = beyond = none
    if integer:
        finite = np.isfinite(column)
        fractional = finite & (column != np.trunc(column))
        beyond = finite & (np.abs(column) >= INT64_LIMIT) & ~below & ~above
    checks = [(unparsable, "not a number"), (below, f"below min {_fmt(minimum)}"),
              (above, f"above max {_fmt(maximum)}"), (fractional, "not an integer"),
              (beyond, "beyond int64"), (missing, "missing"), (nan, "NaN"), (inf, "infinite")]
    return [(mask, text) for mask, text in checks if mask.any()]


def unusable(checks: list[tuple[np.ndarray, str]], n: int) -> np.ndarray:
    """Rows with any of the ``value_checks`` problems."""
    out = np.zeros(n, dtype=bool)
    for mask, _ in checks:
        out |= mask
    return out


def named_problems(column: str, checks: list[tuple[np.ndarray, str]]) -> list[tuple[np.ndarray, str]]:
    """``(rows, "column: reason")`` for a row's ``input_problem``; an empty field is no news."""
    return [(mask, f"{column}: {text}") for mask, text in checks if text != "missing"]


def _fmt(value: float | None) -> str:
    return f"{value:g}" if value is not None else ""


def join_problems(n: int, problems: list[tuple[np.ndarray, str]]) -> pa.Array:
    """One string per row joining its problems with ``; `` (null for clean rows), vectorised per
    problem: the ``input_problem`` column of curated and scored rows."""
    out = pa.nulls(n, pa.string())
    for mask, reason in problems:
        if not mask.any():
            continue
        joined = pc.if_else(pc.is_null(out), pa.scalar(reason), pc.binary_join_element_wise(out, reason, "; "))
        out = pc.if_else(pa.array(mask), joined, out)
    return out
