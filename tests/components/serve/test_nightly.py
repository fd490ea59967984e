"""components.serve.nightly without Prefect or a model: a big parquet file's parts are whole row
groups; outputs get safe, unique stems; a failed file without a ledger gets its quarantine note
(removed once it scores); the ledger counts an attempt only for the claim's holder, and a night
with a failed file says which."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from components.jobs import ScoreJob
from components.locks import new_owner
from components.serve.inbox import Ledger
from components.serve.nightly import (
    claim_lost,
    night_failure,
    plan_job,
    record_outcome,
    split_parts,
    start_attempt,
)
from components.serve.scoring import FileResult


def test_parts_are_whole_row_groups_of_a_big_parquet_file(tmp_path):
    log = tmp_path / "night.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), log, row_group_size=100)
    assert split_parts(log, 300) == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert split_parts(log, 1000) is None  # small enough to score whole
    (tmp_path / "night.csv").write_text("x\n1\n")
    assert split_parts(tmp_path / "night.csv", 1) is None


def test_outputs_get_safe_unique_stems(tmp_path):
    a, b = tmp_path / "a" / "day.csv", tmp_path / "b" / "day.csv"
    for path in (a, b):
        path.parent.mkdir()
        path.write_text("x\n1\n")
    planned, notes = plan_job(ScoreJob(inputs=(str(a), str(b)), out=tmp_path / "out"))
    assert [p.stem for p in planned] == ["day", "day__1"] and len(notes) == 1
    assert {p.out for p in planned} == {tmp_path / "out"} and {p.key for p in planned} == {None}


def test_without_a_ledger_a_failed_file_gets_a_note_until_it_scores(tmp_path):
    failed = FileResult("in/day.csv", "failed", "binary content")
    assert record_outcome(failed, "day", str(tmp_path), "1", None, None, None, 3) is failed
    note = tmp_path / "quarantine" / "day.json"
    assert json.loads(note.read_text()) == {"source": "in/day.csv", "status": "failed", "error": "binary content"}
    record_outcome(FileResult("in/day.csv", "ok", output="x"), "day", str(tmp_path), "1", None, None, None, 3)
    assert not note.exists()


def test_the_ledger_counts_attempts_of_the_claims_holder_only(tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "day.csv").write_text("x\n1\n")
    owner = new_owner()
    item = Ledger(out).claim(inbox, owner, "night", settle_s=0).items[0]
    assert not start_attempt(str(out), item.id, new_owner())  # another run: not its claim
    assert start_attempt(str(out), item.id, owner)
    result = record_outcome(FileResult(item.source, "failed", "I/O error: gone", transient=True), "day",
                            str(out), "1", str(out), item.id, owner, 3)
    assert result.error == "I/O error: gone (attempt 1 of 3; tried again next night)"
    assert Ledger(out).items()[0].status == "failed"


def test_a_night_with_a_failed_file_says_which():
    files = [FileResult("a.csv", "ok").summary(), claim_lost("/in/b.csv").summary()]
    assert night_failure({"files": files}) == "1 of 2 files failed: b.csv"
    assert night_failure({"files": files[:1]}) is None
