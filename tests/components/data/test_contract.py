"""The YAML contract, the committed GX suite and the readers agree with each other."""
from __future__ import annotations

import json

from components.data.contract import canonical_name, load_contract
from components.data.expectations import (
    FLOAT_MAX,
    build_suite,
    render_suite,
    suite_for_columns,
    suite_path,
)


def test_committed_suite_equals_generated():
    """Regenerate with ``python -m components.data.expectations`` after editing the YAML contract."""
    assert suite_path().read_text(encoding="utf-8") == render_suite(load_contract())


def test_suite_covers_every_column_with_contract_bounds():
    contract = load_contract()
    suite = build_suite(contract)
    by_key = {(e["type"], e["kwargs"]["column"]): e["kwargs"] for e in suite["expectations"]}
    for col in contract.columns:
        assert (("expect_column_to_exist", col.name) in by_key) == col.required
        assert by_key[("expect_column_values_to_not_be_null", col.name)]["mostly"] == \
            round(1 - col.max_invalid_fraction, 10)
        if col.dtype in ("float64", "int64"):
            between = by_key[("expect_column_values_to_be_between", col.name)]
            # an unbounded side gets the largest finite float, so that GX still rejects +-inf
            assert between["min_value"] == (col.min if col.min is not None else -FLOAT_MAX), col.name
            assert between["max_value"] == (col.max if col.max is not None else FLOAT_MAX), col.name
    assert by_key[("expect_column_values_to_be_in_set", "label")]["value_set"] == sorted(contract.known_labels)
    assert by_key[("expect_column_values_to_be_between", "flow_bytes_s")]["mostly"] == 0.99


def test_suite_loads_in_great_expectations():
    import great_expectations as gx

    suite = json.loads(suite_path().read_text(encoding="utf-8"))
    loaded = gx.ExpectationSuite(name=suite["name"], expectations=suite["expectations"])
    assert len(loaded.expectations) == len(suite["expectations"])


def test_suite_for_columns_keeps_required_existence_checks():
    suite = build_suite(load_contract())
    small = suite_for_columns(suite, ["label"])
    columns = {e["kwargs"]["column"] for e in small["expectations"] if e["type"] != "expect_column_to_exist"}
    assert columns == {"label"}
    assert any(e["kwargs"]["column"] == "flow_duration" for e in small["expectations"])


def test_both_variants_resolve_completely():
    contract = load_contract()
    for name, header in contract.variants.items():
        resolved = contract.resolve_header(list(header))
        assert None not in resolved, name
        assert len(set(resolved)) == len(resolved), name
        required = {c.name for c in contract.columns if c.required}
        assert required <= set(resolved), name


def test_aliases_are_unique_across_columns():
    contract = load_contract()
    owner: dict[str, str] = {}
    for col in contract.columns:
        for alias in (col.name, *col.aliases):
            key = canonical_name(alias)
            assert owner.setdefault(key, col.name) == col.name, alias
