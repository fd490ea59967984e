"""Vectorised casting and row checks, one rule at a time, on tiny in-memory batches."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from components.data.casting import parse_label, parse_numeric, parse_timestamp, to_text
from components.data.clock import Clock, ClockContradiction
from components.data.contract import load_contract
from components.data.gx_validation import merge_results
from components.data.headers import detect_variant, plan_header
from components.data.readers import FileLevelError, RawBatch
from components.data.validation import check_batch


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def test_parse_numeric_fast_path_keeps_inf_and_nan():
    parsed = parse_numeric(pa.array([b"1", b"2.5", b"Infinity", b"NaN", b"-1e3"], pa.binary()))
    values = parsed.values.to_pylist()
    assert values[:3] == [1.0, 2.5, float("inf")] and np.isnan(values[3]) and values[4] == -1000.0
    assert not parsed.missing.any() and not parsed.unparsable.any()


def test_parse_numeric_slow_path_flags_text_and_missing():
    parsed = parse_numeric(pa.array([b"1", b"", b"abc", b" 7 ", b"\xff", b"1.2.3"], pa.binary()))
    assert parsed.values.to_pylist() == [1.0, None, None, 7.0, None, None]
    assert parsed.missing.tolist() == [False, True, False, False, False, False]
    assert parsed.unparsable.tolist() == [False, False, True, False, True, True]


def test_parse_numeric_typed_input():
    parsed = parse_numeric(pa.array([1, None, 3], pa.int32()))
    assert parsed.values.to_pylist() == [1.0, None, 3.0]
    assert parsed.missing.tolist() == [False, True, False]


def test_parse_timestamp_all_contract_formats(contract):
    raw = pa.array([b"7/7/2017 3:30", b"07/07/2017 13:30:05", b"7/7/2017 3:30:05 PM",
                    b"2017-07-07 03:30:00", b"", b"tomorrow"], pa.binary())
    parsed = parse_timestamp(raw, contract.timestamp_formats)
    got = [v.isoformat() if v else None for v in parsed.values.to_pylist()]
    assert got == ["2017-07-07T03:30:00", "2017-07-07T13:30:05", "2017-07-07T15:30:05",
                   "2017-07-07T03:30:00", None, None]
    assert parsed.missing.tolist() == [False] * 4 + [True, False]
    assert parsed.unparsable.tolist() == [False] * 5 + [True]


def test_parse_label_decodes_every_dash_and_flags(contract):
    raw = pa.array([b"BENIGN", b"Web Attack \x96 Brute Force", "Web Attack \u2013 XSS".encode(),
                    b"Web Attack \xc2\x96 Sql Injection", b"Benign", b"", b" Label", b"Nope"],
                   pa.binary())
    parsed = parse_label(raw, contract, "label")
    assert parsed.values.to_pylist()[:5] == ["BENIGN", "Web Attack - Brute Force", "Web Attack - XSS",
                                             "Web Attack - Sql Injection", "BENIGN"]
    assert parsed.missing.tolist() == [False] * 5 + [True, False, False]
    assert parsed.is_header.tolist() == [False] * 6 + [True, False]
    assert parsed.unknown.tolist() == [False] * 7 + [True]


def test_to_text_falls_back_to_cp1252():
    assert to_text(pa.array([b"ok", b"a\x96b"], pa.binary())).to_pylist() == ["ok", "a\u2013b"]


def test_plan_header_variants(contract):
    ml = list(contract.variants["MachineLearningCVE"])
    tl_resaved = [h.strip() for h in contract.variants["TrafficLabelling"]]
    tl_resaved[tl_resaved.index("Fwd Header Length", 45)] = "Fwd Header Length.1"
    assert detect_variant(ml, contract) == "MachineLearningCVE"
    assert detect_variant(tl_resaved, contract) == "TrafficLabelling"
    plan = plan_header(ml, contract)
    assert "fwd_header_length_1" in plan.names and plan.unknown == ()
    with pytest.raises(FileLevelError, match="missing required columns: flow_duration, total_fwd_packets"):
        plan_header([h for h in ml if h.strip() not in ("Flow Duration", "Total Fwd Packets")], contract)


def _batch(contract, rows: list[list[bytes]]) -> tuple[RawBatch, object]:
    header = list(contract.variants["MachineLearningCVE"])
    plan = plan_header(header, contract)
    columns = [pa.array([r[i] for r in rows], pa.binary()) for i in range(len(header))]
    return RawBatch(columns, np.arange(1, len(rows) + 1, dtype=np.int64)), plan


def _row(**overrides) -> list[bytes]:
    contract = load_contract()
    header = [h.strip() for h in contract.variants["MachineLearningCVE"]]
    row = [b"1"] * len(header)
    row[-1] = b"BENIGN"
    for name, value in overrides.items():
        row[header.index(name)] = value
    return row


def test_check_batch_splits_and_explains(contract):
    rows = [_row(), _row(**{"Flow Bytes/s": b"inf", "Flow Packets/s": b"x"}), _row(Label=b"???"),
            [b""] * 79, _row(**{"Destination Port": b"80.5"})]
    raw, plan = _batch(contract, rows)
    checked = check_batch(raw, plan, contract, "f.csv")
    assert checked.curated.num_rows == 1
    assert checked.quarantine["quarantine_reason"].to_pylist() == [
        "flow_bytes_s: infinite; flow_packets_s: not a number",
        "label: unknown '???'",
        "empty row",
        "destination_port: not an integer",
    ]
    assert checked.quarantine["row_number"].to_pylist() == [2, 3, 4, 5]
    assert checked.stats.inf["flow_bytes_s"] == 1 and checked.stats.text["flow_packets_s"] == 1
    assert checked.validation_frame.num_rows == 5


def test_check_batch_impute_uses_batch_median(contract):
    rows = [_row(**{"Flow Bytes/s": v}) for v in (b"1", b"3", b"10", b"NaN", b"-Infinity")]
    raw, plan = _batch(contract, rows)
    checked = check_batch(raw, plan, contract, "f.csv", policy="impute")
    assert checked.quarantine is None
    assert checked.curated["flow_bytes_s"].to_pylist() == [1.0, 3.0, 10.0, 3.0, 3.0]
    assert checked.stats.imputed["flow_bytes_s"] == 2


def test_merge_results_recomputes_success_on_totals():
    def chunk(unexpected: int) -> dict:
        return {"suite_name": "s", "results": [
            {"success": unexpected == 0, "expectation_config": {
                "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", "mostly": 0.99}},
             "result": {"element_count": 100, "unexpected_count": unexpected}},
            {"success": True, "expectation_config": {"type": "expect_column_to_exist",
                                                     "kwargs": {"column": "a"}}, "result": {}}]}
    ok = merge_results([chunk(0), chunk(2)])  # 2 of 200 = 1 %: allowed
    assert ok["success"] is True and ok["results"][0]["unexpected_count"] == 2
    bad = merge_results([chunk(2), chunk(3)])  # 5 of 200 = 2.5 %
    assert bad["success"] is False and bad["chunks"] == 2


def _clock_read(clock, texts: list[bytes], contract):
    parsed = parse_timestamp(pa.array(texts, pa.binary()), contract.timestamp_formats)
    values = clock.read(parsed.values, parsed.plain, parsed.marked)
    return [v.strftime("%H:%M") if v else None for v in values.to_pylist()]


def test_twelve_hour_day_file_is_read_as_afternoon(contract):
    """The published files write 15:30 as "3:30": hours 1-7 and none of 13-23 make a 12-hour day."""
    clock = Clock(contract.pm_hours, contract.late_hours)
    assert _clock_read(clock, [b"7/7/2017 8:55", b"7/7/2017 12:05"], contract) == ["08:55", "12:05"]
    assert clock.decision == "24h"  # nothing to shift yet
    assert _clock_read(clock, [b"7/7/2017 3:30", b"07/07/2017 03:30:05", b"7/7/2017 3:30 PM"],
                       contract) == ["15:30", "15:30", "15:30"]
    assert clock.decision == "12h"


def test_a_late_hour_settles_the_24_hour_clock(contract):
    clock = Clock(contract.pm_hours, contract.late_hours)
    assert _clock_read(clock, [b"7/7/2017 13:05", b"7/7/2017 3:30"], contract) == ["13:05", "03:30"]
    assert _clock_read(clock, [b"8/7/2017 2:00"], contract) == ["02:00"]
    assert clock.decision == "24h"


def test_a_late_hour_after_shifted_rows_asks_for_a_second_reading(contract):
    clock = Clock(contract.pm_hours, contract.late_hours)
    _clock_read(clock, [b"7/7/2017 0:30", b"7/7/2017 1:30"], contract)
    with pytest.raises(ClockContradiction):
        _clock_read(clock, [b"7/7/2017 13:30"], contract)
    fixed = Clock(contract.pm_hours, contract.late_hours, fixed_24h=True)
    assert _clock_read(fixed, [b"7/7/2017 1:30", b"7/7/2017 13:30"], contract) == ["01:30", "13:30"]
    assert fixed.decision == "24h"


def test_am_pm_only_and_no_timestamps(contract):
    clock = Clock(contract.pm_hours, contract.late_hours)
    assert _clock_read(clock, [b"7/7/2017 3:30:05 PM", b"", b"42"], contract) == ["15:30", None, None]
    assert clock.decision == "12h"
    assert Clock().decision is None


def test_check_batch_int_columns_without_max_stop_at_int64(tmp_path):
    """A contract may leave an int64 column open; a value no int64 holds is still set aside."""
    from components.data.contract import default_contract_path

    text = default_contract_path().read_text(encoding="utf-8")
    block = text.index("- name: destination_port")
    text = text[:block] + text[block:].replace("    max: 65535\n", "", 1)
    (tmp_path / "open.yaml").write_text(text, encoding="utf-8")
    open_contract = load_contract(tmp_path / "open.yaml")
    header = list(open_contract.variants["MachineLearningCVE"])
    plan = plan_header(header, open_contract)
    rows = [_row(**{"Destination Port": b"99999999999999999999"}), _row(**{"Destination Port": b"70000"})]
    columns = [pa.array([r[i] for r in rows], pa.binary()) for i in range(len(header))]
    checked = check_batch(RawBatch(columns, np.arange(1, 3, dtype=np.int64)), plan, open_contract, "f.csv")
    assert checked.quarantine["quarantine_reason"].to_pylist() == ["destination_port: beyond int64"]
    assert checked.curated["destination_port"].to_pylist() == [70000]
    assert checked.validation_frame["destination_port"].to_pylist() == [None, 70000]
