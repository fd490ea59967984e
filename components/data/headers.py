"""Header checks: map a file's raw header onto the contract, or say in one line why it cannot be.

Why separate: the header decides, before a single row is read, whether the file can be ingested
at all (file-level failure) and which raw position feeds which contract column. Everything after
this works on contract names only.
"""
from __future__ import annotations

from dataclasses import dataclass

from components.data.contract import ColumnSpec, Contract, canonical_name
from components.data.errors import FileLevelError

MIN_KNOWN_FRACTION = 0.5  # below this the file is not a CIC-IDS2017 flow table at all


@dataclass(frozen=True)
class MappedColumn:
    """One contract column present in the file, and where it sits in the raw header."""

    position: int
    raw_name: str
    spec: ColumnSpec


@dataclass(frozen=True)
class HeaderPlan:
    """How a file's columns map onto the contract (contract order), and what is left out."""

    variant: str
    width: int
    columns: tuple[MappedColumn, ...]
    unknown: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.spec.name for c in self.columns]

    def column(self, name: str) -> MappedColumn | None:
        return next((c for c in self.columns if c.spec.name == name), None)


def detect_variant(header: list[str], contract: Contract) -> str:
    """The published variant whose header this is (leading spaces and ``.1`` re-saves allowed)."""
    stripped = [h.strip() for h in header]
    for name, raw in contract.variants.items():
        expected = [h.strip() for h in raw]
        resaved = list(expected)
        if expected.count("Fwd Header Length") == 2:
            second = len(expected) - 1 - expected[::-1].index("Fwd Header Length")
            resaved[second] = "Fwd Header Length.1"
        if stripped in (expected, resaved):
            return name
    return "other"


def plan_header(header: list[str], contract: Contract) -> HeaderPlan:
    """Resolve the header; raise FileLevelError for an unknown layout or a missing required column."""
    resolved = contract.resolve_header(header)
    known = sum(name is not None for name in resolved)
    if known < max(1, MIN_KNOWN_FRACTION * len(header)):
        raise FileLevelError(
            f"unknown header variant: {known} of {len(header)} columns are in the contract "
            f"(first columns: {', '.join(repr(h) for h in header[:3])})"
        )
    position = {name: i for i, name in enumerate(resolved) if name is not None}
    missing = [c.name for c in contract.columns if c.required and c.name not in position]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        plural = "s" if len(missing) > 1 else ""
        raise FileLevelError(f"missing required column{plural}: {shown}")
    columns = tuple(
        MappedColumn(position=position[c.name], raw_name=header[position[c.name]], spec=c)
        for c in contract.columns if c.name in position
    )
    unknown = tuple(h for h, name in zip(header, resolved) if name is None)
    return HeaderPlan(variant=detect_variant(header, contract), width=len(header),
                      columns=columns, unknown=unknown)


def header_label_text(plan: HeaderPlan) -> str:
    """Canonical spelling of the label column's header, used to spot a repeated header line."""
    label = plan.column("label")
    return canonical_name(label.raw_name) if label else "label"
