"""The Great Expectations suite, generated from the YAML contract (never written by hand).

Why generated: the contract is the single source of truth; the committed
``data_contracts/cicids2017.expectations.json`` is this module's output, and a test fails when the
two disagree (regenerate with ``python -m components.data.expectations``).

What the suite checks, per contract column, on the typed rows *before* quarantine:
- required columns exist;
- the column has the contract dtype (as the pandas dtype the reader produces);
- "invalid" values (null/NaN/unparsable, and for numbers also +-inf or outside min/max) are at most
  ``max_invalid_fraction`` of the rows (GX ``mostly = 1 - max_invalid_fraction``);
- labels (after normalisation) are in the contract's label set.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from components.data.contract import Contract, default_contract_path, load_contract

SUITE_NAME = "cicids2017"
FLOAT_MAX = 1.7976931348623157e308  # a finite bound: GX "between" then rejects +-inf
PANDAS_TYPES = {"float64": ["float64"], "int64": ["Int64Dtype"], "string": ["StringDtype"],
                "timestamp": ["datetime64[ms]"]}


def suite_path(contract_path: Path | None = None) -> Path:
    base = Path(contract_path or default_contract_path())
    return base.with_name(f"{base.stem}.expectations.json")


def build_suite(contract: Contract) -> dict:
    """The suite as a plain JSON-able dict in GX 1.x form (``{"type", "kwargs", "meta"}``)."""
    exps: list[dict] = []
    for col in contract.columns:
        mostly = round(1.0 - col.max_invalid_fraction, 10)
        meta = {"role": col.role, "required": col.required}
        if col.required:
            exps.append(_exp("expect_column_to_exist", {"column": col.name}, meta))
        exps.append(_exp("expect_column_values_to_be_in_type_list",
                         {"column": col.name, "type_list": PANDAS_TYPES[col.dtype]}, meta))
        exps.append(_exp("expect_column_values_to_not_be_null",
                         {"column": col.name, "mostly": mostly}, meta))
        if col.dtype in ("float64", "int64"):
            exps.append(_exp("expect_column_values_to_be_between", {
                "column": col.name,
                "min_value": col.min if col.min is not None else -FLOAT_MAX,
                "max_value": col.max if col.max is not None else FLOAT_MAX,
                "mostly": mostly,
            }, meta))
        if col.role == "label":
            exps.append(_exp("expect_column_values_to_be_in_set",
                             {"column": col.name, "value_set": sorted(contract.known_labels),
                              "mostly": mostly}, meta))
    return {"name": SUITE_NAME, "meta": {"contract_version": contract.version,
                                         "generated_by": "components.data.expectations"},
            "expectations": exps}


def _exp(kind: str, kwargs: dict, meta: dict) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": dict(meta)}


def render_suite(contract: Contract) -> str:
    return json.dumps(build_suite(contract), indent=2, sort_keys=True) + "\n"


def load_suite(path: Path | None = None) -> dict:
    with open(path or suite_path(), encoding="utf-8") as fh:
        return json.load(fh)


def suite_for_columns(suite: dict, columns: list[str]) -> dict:
    """The suite restricted to the columns a file has: optional columns are checked when present."""
    present = set(columns)
    kept = [e for e in suite["expectations"]
            if e["kwargs"]["column"] in present or e["type"] == "expect_column_to_exist"]
    return {**suite, "expectations": kept}


def main(argv: list[str] | None = None) -> int:
    """Regenerate the committed suite JSON from the contract."""
    target = Path(argv[0]) if argv else suite_path()
    target.write_text(render_suite(load_contract()), encoding="utf-8")
    print(target)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
