"""The synthetic CIC-IDS2017 generator: real headers and quirks, calibrated benign, bursts, determinism."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from components.data.contract import load_contract
from components.synth import ATTACK_FAMILIES, ATTACKS, DAYS, SynthConfig, synth_frame, write_days
from components.synth.writer import iter_day_chunks
from tests.conftest import REAL_BENIGN_MLCVE, REAL_BENIGN_TL


def _write(tmp_path, name="out", **kw):
    cfg = SynthConfig(**{"rows": 600, "seed": 0, **kw})
    return list(write_days(cfg, tmp_path / name))


@pytest.fixture(scope="module")
def benign() -> pd.DataFrame:
    return synth_frame(20_000, seed=0, day="monday", attacks=None)


@pytest.fixture(scope="module")
def friday() -> pd.DataFrame:
    return synth_frame(20_000, seed=3, day="friday_ddos")


def test_api_lists_days_and_attacks():
    assert DAYS["friday_ddos"].stem == "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX"
    assert DAYS["monday"].attacks == () and DAYS["monday"].date == dt.date(2017, 7, 3)
    assert set(ATTACK_FAMILIES) == {a for d in DAYS.values() for a in d.attacks}
    assert ATTACKS["web_xss"].label == "Web Attack - XSS"


@pytest.mark.parametrize("variant,real", [("MachineLearningCVE", REAL_BENIGN_MLCVE), ("TrafficLabelling", REAL_BENIGN_TL)])
def test_header_is_the_real_one(tmp_path, shared_data, variant, real):
    (path,) = _write(tmp_path, variant=variant, days=["friday_ddos"])
    with open(real, "rb") as fh:
        real_line = fh.readline()
    with open(path, "rb") as fh:
        assert fh.readline() == real_line  # leading spaces, duplicate, line ending
    syn = pd.read_csv(path, encoding="cp1252")
    assert list(syn.columns) == list(pd.read_csv(real, nrows=1).columns)
    assert len(syn) == 600


def test_frame_has_contract_columns_and_types(friday):
    contract = load_contract()
    assert list(friday.columns) == contract.names() and len(friday.columns) == 85
    assert all(friday[f].dtype == np.float64 for f in contract.feature_names)
    assert friday["timestamp"].dtype.kind == "M"
    assert set(friday["label"]) == {"BENIGN", "DDoS"}


def test_benign_medians_within_an_order_of_magnitude_of_real(shared_data, benign):
    contract = load_contract()
    real = pd.read_csv(REAL_BENIGN_MLCVE)
    real.columns = contract.resolve_header(list(real.columns))
    off = {}
    for f in contract.feature_names:
        r = real[f].replace([np.inf, -np.inf], np.nan).median()
        s = benign[f].replace([np.inf, -np.inf], np.nan).median()
        if r != 0 and not (0.1 <= s / r <= 10):
            off[f] = (r, s)
    assert not off, off
    shares = benign["destination_port"].value_counts(normalize=True)
    assert 0.35 < shares[53] < 0.55 and 0.2 < shares[443] < 0.4 and shares[80] > 0.05


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    for fmt in ("csv", "parquet"):
        a = _write(tmp_path, f"a{fmt}", format=fmt, days=["thursday"])[0].read_bytes()
        b = _write(tmp_path, f"b{fmt}", format=fmt, days=["thursday"])[0].read_bytes()
        c = _write(tmp_path, f"c{fmt}", format=fmt, days=["thursday"], seed=1)[0].read_bytes()
        assert a == b and a != c


def test_csv_carries_the_real_quirks(tmp_path):
    (path,) = _write(tmp_path, rows=3000, days=["thursday"], variant="TrafficLabelling")
    raw = path.read_bytes()
    assert b"Web Attack \x96 Brute Force" in raw and b"Web Attack \x96 XSS" in raw
    assert b"Infinity" in raw and b",NaN," in raw and b",-1," in raw
    assert b".0," not in raw  # integers as integers
    df = pd.read_csv(path, encoding="cp1252")
    ts = pd.to_datetime(df[" Timestamp"], format="%d/%m/%Y %H:%M")
    assert ts.is_monotonic_increasing and ts.dt.date.eq(dt.date(2017, 7, 6)).all()
    flow_id = df[" Source IP"] + "-" + df[" Destination IP"] + "-" + df[" Source Port"].astype(str) + "-" + \
        df[" Destination Port"].astype(str) + "-" + df[" Protocol"].astype(str)
    assert (flow_id == df["Flow ID"]).all()


def test_parquet_is_typed_with_the_real_column_names(tmp_path, shared_data):
    (path,) = _write(tmp_path, format="parquet", days=["thursday"])
    df = pd.read_parquet(path)
    assert list(df.columns) == list(pd.read_csv(REAL_BENIGN_MLCVE, nrows=1).columns)
    assert df[" Flow Duration"].dtype == np.int64 and df["Flow Bytes/s"].dtype == np.float64
    assert df[" Label"].str.contains("\u2013").any()


def test_benign_rows_are_internally_consistent(benign):
    b = benign[np.isfinite(benign["flow_bytes_s"]) & (benign["flow_duration"] > 0)]
    total = b["total_length_of_fwd_packets"] + b["total_length_of_bwd_packets"]
    packets = b["total_fwd_packets"] + b["total_backward_packets"]
    np.testing.assert_allclose(b["flow_bytes_s"], total / b["flow_duration"] * 1e6, rtol=1e-9)
    np.testing.assert_allclose(b["flow_packets_s"], packets / b["flow_duration"] * 1e6, rtol=1e-9)
    assert (b["subflow_fwd_packets"] == b["total_fwd_packets"]).all()
    assert (b["subflow_bwd_bytes"] == b["total_length_of_bwd_packets"]).all()
    for d in ("fwd", "bwd"):
        lo, mean, hi = (b[f"{d}_packet_length_{s}"] for s in ("min", "mean", "max"))
        assert ((lo <= mean + 1e-9) & (mean <= hi + 1e-9)).all()
    assert (b.loc[b["total_fwd_packets"] == 1, "fwd_packet_length_std"] == 0).all()
    assert ((b["min_packet_length"] <= b["packet_length_mean"] + 1e-9)
            & (b["packet_length_mean"] <= b["max_packet_length"] + 1e-9)).all()
    np.testing.assert_allclose(b["avg_fwd_segment_size"], b["total_length_of_fwd_packets"] / b["total_fwd_packets"])
    udp = b[b["protocol"] == 17]
    assert len(udp) > 1000
    flags = [c for c in b.columns if c.endswith("_flag_count")] + ["fwd_psh_flags"]
    assert (udp[flags] == 0).all().all() and (udp["init_win_bytes_forward"] == -1).all()
    assert (b["flow_iat_min"] <= b["flow_iat_max"]).all()


def test_zero_duration_quirks(benign):
    zero = benign[benign["flow_duration"] == 0]
    assert len(zero) >= 2 and np.isinf(zero["flow_packets_s"]).all()
    assert benign["flow_bytes_s"].isna().sum() >= 1


def test_streaming_chunks_are_bounded_and_consistent():
    cfg = SynthConfig(rows=25_000, seed=5, days=["friday_portscan"])
    chunks = list(iter_day_chunks(cfg, "friday_portscan", chunk_rows=7_000))
    assert [len(c) for c in chunks] == [7_000, 7_000, 7_000, 4_000]
    whole = synth_frame(25_000, seed=5, day="friday_portscan")
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    middle = synth_frame(3_000, seed=5, day="friday_portscan", start_row=9_000, total_rows=25_000)
    pd.testing.assert_frame_equal(middle, whole.iloc[9_000:12_000].reset_index(drop=True))


def test_time_ordered_with_a_daily_rhythm(benign):
    ts = benign["timestamp"]
    assert ts.is_monotonic_increasing
    assert ts.min() >= pd.Timestamp("2017-07-03 08:00") and ts.max() <= pd.Timestamp("2017-07-03 17:00")
    per_hour = ts.dt.hour.value_counts()
    assert per_hour[12] > 1.5 * per_hour[8] and per_hour[12] > 1.5 * per_hour[16]


@pytest.mark.parametrize("day", ["tuesday", "wednesday", "thursday", "friday_morning", "friday_portscan", "friday_ddos"])
def test_attacks_are_bursts_in_their_documented_window(day):
    df = synth_frame(20_000, seed=2, day=day)
    for fam in DAYS[day].attacks:
        spec = ATTACKS[fam]
        rows = df.index[df["label"] == spec.label]
        assert len(rows) >= 5, fam
        t = df.loc[rows, "timestamp"].dt.time
        assert (t >= spec.start).all() and (t <= spec.end).all(), fam
        burst = df.loc[rows.min():rows.max()]
        assert (burst["label"] == "BENIGN").any(), fam  # interleaved with benign (every family: >= 94 rows)
        density = (burst["label"] == spec.label).mean()
        assert density > 2 * (df["label"] == spec.label).mean(), fam  # concentrated in one time range


def test_attacks_differ_in_distribution_not_only_port(friday):
    ddos, ben = friday[friday["label"] == "DDoS"], friday[friday["label"] == "BENIGN"]
    assert (ddos["destination_port"] == 80).all() and (ben["destination_port"] == 80).any()
    ben80 = ben[ben["destination_port"] == 80]
    assert ddos["bwd_packet_length_max"].median() > 3 * ben80["bwd_packet_length_max"].median()
    assert (ddos["source_ip"] == "172.16.0.1").all() and (ddos["destination_ip"] == "192.168.10.50").all()
    scan = synth_frame(20_000, seed=2, day="friday_portscan")
    scan = scan[scan["label"] == "PortScan"]
    assert scan["destination_port"].nunique() > 500 and scan["flow_duration"].median() < 1_000


def test_attack_selection():
    assert set(synth_frame(3_000, day="friday_ddos", attacks=["none"])["label"]) == {"BENIGN"}
    assert set(synth_frame(3_000, day="friday_ddos", attacks=[])["label"]) == {"BENIGN"}
    assert "Bot" in set(synth_frame(5_000, day="monday", attacks=["bot"])["label"])
    with pytest.raises(ValueError, match="nosuch"):
        synth_frame(100, attacks=["nosuch"])
    with pytest.raises(ValueError, match="attacks.*nosuch"):
        SynthConfig(rows=10, attacks=["ddos", "nosuch"])
    cfg = SynthConfig(rows=10, attacks=["ddos,portscan"])
    assert cfg.day_attacks("monday") == () and cfg.day_attacks("friday_ddos") == ("ddos",)


@pytest.mark.parametrize("field,kw", [("variant", {"variant": "Foo"}), ("format", {"format": "xlsx"}),
                                      ("days", {"days": ["sunday"]}), ("rows", {"rows": 0})])
def test_config_names_the_bad_field(field, kw):
    with pytest.raises(ValueError, match=f"^{field}"):
        SynthConfig(**kw)


def test_cli_writes_files_and_rejects_bad_variant(tmp_path):
    from flows.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--out", str(tmp_path), "--rows", "300", "--format", "parquet",
                              "--days", "monday", "--days", "friday_ddos", "--attacks", "ddos"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.parquet", "Monday-WorkingHours.pcap_ISCX.parquet"]
    assert "DDoS" in set(pd.read_parquet(tmp_path / files[0])[" Label"])
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--variant", "Nope"])
    assert bad.exit_code == 2
    assert "variant" in bad.output and len(bad.output.strip().splitlines()) == 1
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--attacks", "zeroday"])
    assert bad.exit_code == 2 and "zeroday" in bad.output
