"""score-nightly on its SQLite ledger, with real flow runs and a real registered champion: two
overlapping nights score each file once; a failing file is tried again on the next night and
quarantined after FLOWAE_MAX_ATTEMPTS with its history; a corrupt middle row group quarantines its
file with a printable reason while the others are scored, and the night ends Failed; a big
timestamped parquet scored in parts equals the single pass; ``...parquet`` cannot touch --out."""
from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flow_test_rows import DDOS, PORTSCAN, WEEK, champion


@pytest.fixture
def scored_store(store, real_ingested):
    return store, champion(store, real_ingested)


def _outputs(out: Path) -> list[Path]:
    return sorted(out.rglob("*.scored.parquet"))


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_two_nightly_runs_started_together_score_each_file_once(scored_store, shared_data, tmp_path):
    from components.serve.inbox import Ledger
    from flows.score import score_nightly_flow

    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    inbox.mkdir()
    (inbox / WEEK).write_bytes((shared_data / WEEK).read_bytes())
    with zipfile.ZipFile(inbox / "friday.zip", "w") as zf:
        zf.write(shared_data / DDOS, DDOS)
        zf.write(shared_data / PORTSCAN, f"pm/{PORTSCAN}")
    states, barrier = [], threading.Barrier(2)

    def night() -> None:
        barrier.wait()
        states.append(score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True))

    threads = [threading.Thread(target=night) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert len(states) == 2 and all(s.is_completed() for s in states)
    from components.data.inputs import display_name

    scored = [f["source"] for s in states for f in s.result()["files"]]
    assert sorted(display_name(s) for s in scored) == sorted([WEEK, f"friday.zip!{DDOS}",
                                                           f"friday.zip!pm/{PORTSCAN}"])
    items = Ledger(out).items()
    assert [i.status for i in items] == ["done"] * 3 and [i.attempts for i in items] == [1, 1, 1]
    outputs = _outputs(out)
    assert len(outputs) == 3  # one per file or member, none twice
    assert sum(pq.read_metadata(p).num_rows for p in outputs) == 1686 + 1000 + 1000
    assert _temp_files(out) == []


def test_a_failing_file_is_retried_next_night_then_quarantined_with_its_history(scored_store, shared_data,
                                                                               tmp_path, monkeypatch):
    from components.serve import scoring
    from components.serve.inbox import Ledger
    from flows.score import score_nightly_flow

    monkeypatch.setenv("FLOWAE_MAX_ATTEMPTS", "2")
    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    inbox.mkdir()
    for name in (DDOS, WEEK):
        (inbox / name).write_bytes((shared_data / name).read_bytes())
    real = scoring._stream

    def bug_on_week(detector, log, target, *args, **kwargs):
        if "week" in target.name:
            raise RuntimeError("boom")  # a bug, not the file: worth another night
        return real(detector, log, target, *args, **kwargs)

    monkeypatch.setattr(scoring, "_stream", bug_on_week)
    first = score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True)
    assert first.is_failed()
    [failed] = [f for f in first.result(raise_on_failure=False).summary["files"] if f["status"] == "failed"]
    log = Path(first.result(raise_on_failure=False).summary["night"]) / "flowae-score.error.log"
    assert failed["error"] == (f"internal error: RuntimeError: boom (see {log.resolve()}) "
                               "(attempt 1 of 2; tried again next night)")
    assert "Traceback" in log.read_text() and "boom" in log.read_text()
    assert not (out / "quarantine").exists()

    second = score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True)
    assert second.is_failed() and second.message == f"1 of 1 files failed: {WEEK}"  # DDoS is not scored again
    note = json.loads((out / "quarantine" / f"{Path(WEEK).stem}.json").read_text())
    assert note["status"] == "quarantined" and note["attempts"] == 2
    assert [h["status"] for h in note["history"]] == ["failed", "failed"]
    assert all(h["error"].startswith("internal error: RuntimeError: boom") for h in note["history"])
    assert {Path(i.path).name: i.status for i in Ledger(out).items()} == {DDOS: "done", WEEK: "quarantined"}

    monkeypatch.setattr(scoring, "_stream", real)
    third = score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True)
    assert third.is_completed() and third.result()["files"] == []  # quarantined: not tried again


def _corrupt_middle_row_group(path: Path) -> None:
    """Overwrite the page headers of every column chunk of the middle row group."""
    meta = pq.read_metadata(path)
    middle = meta.row_group(meta.num_row_groups // 2)
    data = bytearray(path.read_bytes())
    for j in range(middle.num_columns):
        offset = middle.column(j).data_page_offset
        dictionary = middle.column(j).dictionary_page_offset
        start = dictionary if dictionary is not None else offset
        data[start:start + 12] = b"\xff\x00\x01\x1b" * 3
    path.write_bytes(bytes(data))


def test_a_corrupt_middle_row_group_is_quarantined_with_a_reason_and_the_night_fails(scored_store, shared_data,
                                                                                    tmp_path):
    from flows.score import score_nightly_flow

    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    inbox.mkdir()
    bad = inbox / "friday-bad.parquet"
    frame = pd.read_csv(shared_data / DDOS)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), bad, row_group_size=300)
    _corrupt_middle_row_group(bad)
    (inbox / WEEK).write_bytes((shared_data / WEEK).read_bytes())

    state = score_nightly_flow(str(inbox), str(out), settle_s=0, return_state=True)
    assert state.is_failed() and state.message == "1 of 2 files failed: friday-bad.parquet"
    summary = state.result(raise_on_failure=False).summary
    files = {Path(f["source"]).name: f for f in summary["files"]}
    assert files[WEEK]["status"] == "ok" and pq.read_metadata(files[WEEK]["output"]).num_rows == 1686
    reason = files["friday-bad.parquet"]["error"]
    assert reason.startswith("corrupt parquet data: ") and "quarantined after 1 attempt(s)" in reason
    assert reason.isprintable() and "\n" not in reason
    note = json.loads((out / "quarantine" / "friday-bad.json").read_text())
    assert note["error"].startswith("corrupt parquet data: ") and note["error"].isprintable()
    assert [Path(p).name for p in _outputs(out)] == [f"{Path(WEEK).stem}.scored.parquet"]
    assert _temp_files(out) == []
    assert json.loads((Path(summary["night"]) / "summary.json").read_text())["flows"] == 1686


def _timestamped_24h_parquet(shared_data: Path, path: Path) -> None:
    """The DDoS rows on a 24-hour clock: 22:xx for the first 100 flows, then 03:xx (after midnight):
    a part holding only the 03:xx flows must not read them as afternoon."""
    frame = pd.read_csv(shared_data / DDOS)
    stamp = next(c for c in frame.columns if c.strip() == "Timestamp")
    minutes = np.arange(len(frame)) % 60
    frame[stamp] = [f"7/7/2017 22:{m:02d}" if i < 100 else f"8/7/2017 3:{m:02d}" for i, m in enumerate(minutes)]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)


def test_a_timestamped_parquet_scored_in_parts_equals_the_single_pass(scored_store, shared_data, tmp_path):
    from components.data.logs import parquet_clock
    from components.jobs import ScoreJob
    from components.serve.nightly import split_parts
    from flows.score import run_score_flow

    log = tmp_path / "night.parquet"
    _timestamped_24h_parquet(shared_data, log)
    assert parquet_clock(log) == "24h" and len(split_parts(log, 300)) == 4
    whole = run_score_flow(ScoreJob(inputs=(str(log),), out=tmp_path / "whole", device="cpu"))
    parted = run_score_flow(ScoreJob(inputs=(str(log),), out=tmp_path / "parts", device="cpu", part_rows=300))
    a = pq.read_table(tmp_path / "whole" / "night.scored.parquet")
    b = pq.read_table(tmp_path / "parts" / "night.scored.parquet")
    assert a.num_rows == b.num_rows == 1000
    assert a.column("timestamp").equals(b.column("timestamp"))
    hours = pd.Series(b.column("timestamp").to_pandas()).dt.hour
    assert set(hours[:100]) == {22} and set(hours[100:]) == {3}  # not moved to 15:xx
    np.testing.assert_allclose(a.column("anomaly_score").to_numpy(), b.column("anomaly_score").to_numpy(),
                               rtol=1e-5)
    assert (whole["flows"], whole["anomalies"]) == (parted["flows"], parted["anomalies"])
    assert not (tmp_path / "parts" / ".parts").exists()


def test_an_input_named_dot_dot_dot_parquet_leaves_the_output_folder_intact(scored_store, shared_data, tmp_path):
    from components.jobs import ScoreJob
    from flows.score import run_score_flow

    out = tmp_path / "scored"
    out.mkdir()
    (out / "earlier.scored.parquet").write_bytes(b"an earlier night's output")
    log = tmp_path / "in" / "...parquet"
    log.parent.mkdir()
    _timestamped_24h_parquet(shared_data, log)
    result = run_score_flow(ScoreJob(inputs=(str(log),), out=out, device="cpu", part_rows=300))  # scored in parts
    assert [f["status"] for f in result["files"]] == ["ok"]
    assert (out / "earlier.scored.parquet").read_bytes() == b"an earlier night's output"
    assert pq.read_metadata(out / "_...scored.parquet").num_rows == 1000
    assert (out / "summary.json").is_file() and not (out / ".parts").exists()
