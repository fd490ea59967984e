"""The CIC-IDS2017 data contract, loaded from ``data_contracts/cicids2017.yaml``.

Every other module asks the contract which columns exist, what they are called in each published
variant, which role they play and which labels are valid, so that no column list is written twice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

Role = Literal["feature", "identifier", "label", "timestamp"]

#: The label of benign flows: the one definition every module imports (the contract YAML's
#: ``labels.benign`` must say the same; ``load_contract`` checks it).
BENIGN = "BENIGN"

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def canonical_name(raw: str) -> str:
    """` Flow Bytes/s` -> `flow_bytes_s`: strip, lower-case, runs of non-alphanumerics -> `_`."""
    return _NON_ALNUM.sub("_", raw.strip().lower()).strip("_")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    role: Role
    dtype: str
    required: bool
    min: float | None = None
    max: float | None = None
    max_invalid_fraction: float = 0.0
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    version: str
    columns: tuple[ColumnSpec, ...]
    variants: dict[str, tuple[str, ...]]
    benign_label: str
    known_labels: frozenset[str]
    dash_variants: tuple[str, ...]
    label_aliases: dict[str, str]
    timestamp_formats: tuple[str, ...]
    twelve_hour_clock: dict = field(default_factory=dict)
    by_name: dict[str, ColumnSpec] = field(repr=False, default_factory=dict)
    folded_labels: dict[str, str] = field(repr=False, default_factory=dict)  # casefolded -> canonical

    def names(self, role: Role | None = None) -> list[str]:
        return [c.name for c in self.columns if role is None or c.role == role]

    @property
    def feature_names(self) -> list[str]:
        return self.names("feature")

    @property
    def identifier_names(self) -> list[str]:
        return self.names("identifier")

    def alias_map(self) -> dict[str, str]:
        """Canonicalised raw name -> contract name, for every alias of every column."""
        mapping: dict[str, str] = {}
        for col in self.columns:
            mapping[col.name] = col.name
            for alias in col.aliases:
                mapping.setdefault(canonical_name(alias), col.name)
        return mapping

    def resolve_header(self, raw_header: list[str]) -> list[str | None]:
        """Map a raw header to contract names (None for unknown columns).

        A repeated raw name takes the ``_1`` column on its second occurrence, which is how the
        duplicated `` Fwd Header Length`` becomes ``fwd_header_length_1``.
        """
        mapping = self.alias_map()
        out: list[str | None] = []
        taken: set[str] = set()
        for raw in raw_header:
            name = mapping.get(canonical_name(raw))
            if name is not None and name in taken:
                dup = f"{name}_1"
                name = dup if dup in self.by_name and dup not in taken else None
            if name is not None:
                taken.add(name)
            out.append(name)
        return out

    @property
    def pm_hours(self) -> tuple[int, int]:
        """Hours that a 12-hour day file without AM/PM writes for afternoon times (1-7)."""
        low, high = self.twelve_hour_clock.get("pm_hours", (1, 7))
        return int(low), int(high)

    @property
    def late_hours(self) -> tuple[int, int]:
        """Hours that only a 24-hour clock writes (13-23): one of them makes a file 24-hour."""
        low, high = self.twelve_hour_clock.get("late_hours", (13, 23))
        return int(low), int(high)

    def normalise_label(self, raw: str) -> str:
        """Fold the published label spellings into the canonical set (unknown labels pass through).

        Known labels match in any letter case (``ddos`` -> ``DDoS``): re-saves and hand-made files
        change case, and a case change never turns one attack into another."""
        label = raw.strip()
        for dash in sorted(self.dash_variants, key=len, reverse=True):
            label = label.replace(dash, "-")
        if label[:10].lower() == "web attack":
            label = re.sub(r"\s*-\s*", " - ", label)
        label = self.label_aliases.get(label, label)
        return self.folded_labels.get(label.casefold(), label)


def _parse(doc: dict) -> Contract:
    columns = tuple(
        ColumnSpec(
            name=c["name"],
            role=c["role"],
            dtype=c["dtype"],
            required=bool(c.get("required", False)),
            min=c.get("min"),
            max=c.get("max"),
            max_invalid_fraction=float(c.get("max_invalid_fraction", 0.0)),
            aliases=tuple(c.get("aliases", ())),
        )
        for c in doc["columns"]
    )
    labels = doc["labels"]
    if labels["benign"] != BENIGN:
        raise ValueError(f"contract labels.benign is {labels['benign']!r}: flowae's benign label is {BENIGN!r}")
    aliases = dict(labels.get("aliases", {}))
    folded = {name.casefold(): name for name in labels["known"]}
    folded.update({alias.casefold(): name for alias, name in aliases.items()})
    return Contract(
        version=str(doc["version"]),
        columns=columns,
        variants={k: tuple(v) for k, v in doc["variants"].items()},
        benign_label=labels["benign"],
        known_labels=frozenset(labels["known"]),
        dash_variants=tuple(labels["dash_variants"]),
        label_aliases=aliases,
        timestamp_formats=tuple(doc["timestamp_formats"]),
        twelve_hour_clock=dict(doc.get("twelve_hour_clock") or {}),
        by_name={c.name: c for c in columns},
        folded_labels=folded,
    )


def default_contract_path() -> Path:
    return Path(str(resources.files("data_contracts").joinpath("cicids2017.yaml")))


@lru_cache(maxsize=8)
def load_contract(path: str | Path | None = None) -> Contract:
    """Load (and cache) the contract; the packaged CIC-IDS2017 contract by default."""
    with open(path or default_contract_path(), encoding="utf-8") as fh:
        # libyaml's loader when present: 10x faster than pure Python (0.2 s of every command)
        return _parse(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
