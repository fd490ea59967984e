"""The inbox ledger (SQLite work queue): one row per file or zip member, claims taken in one
transaction, stale claims taken over, failures retried across nights then quarantined."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from components.locks import new_owner, owner_gone
from components.serve.inbox import Ledger, discover


def _inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("x\n1\n")
    (inbox / "b.parquet").write_bytes(b"PAR1")
    with zipfile.ZipFile(inbox / "day.zip", "w") as zf:
        zf.writestr("Monday.csv", "x\n1\n")
        zf.writestr("sub/Tuesday.csv", "x\n2\n")
        zf.writestr("readme.txt.md", "not a table")
    (inbox / ".hidden.csv").write_text("x\n")
    (inbox / "notes.md").write_text("no")
    return inbox


def test_each_zip_member_is_an_item_of_its_own(tmp_path):
    found = discover(_inbox(tmp_path), settle_s=0)
    assert sorted((Path(f.path).name, f.member) for f in found) == [
        ("a.csv", ""), ("b.parquet", ""), ("day.zip", "Monday.csv"), ("day.zip", "sub/Tuesday.csv")]
    assert discover(tmp_path / "inbox", settle_s=3600) == []  # all too young: still arriving


def test_a_night_claims_everything_once_and_a_second_night_nothing(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    first = ledger.claim(inbox, new_owner(), "night", settle_s=0)
    assert len(first.items) == 4 and first.night == tmp_path / "out" / "night"
    outputs = sorted(Path(i.output).name for i in first.items)
    assert outputs == ["Monday.scored.parquet", "Tuesday.scored.parquet", "a.scored.parquet", "b.scored.parquet"]
    second = ledger.claim(inbox, new_owner(), "night", settle_s=0)  # the first run is alive: hands off
    assert second.items == [] and second.night is None
    assert {i.status for i in ledger.items()} == {"claimed"}


def test_concurrent_claims_are_disjoint_and_cover_every_item(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    for i in range(20):
        (inbox / f"f{i:02d}.csv").write_text("x\n1\n")
    claims, barrier = [], threading.Barrier(6)

    def night() -> None:
        barrier.wait()
        claims.append(ledger.claim(inbox, new_owner(), "night", settle_s=0))

    threads = [threading.Thread(target=night) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [i.id for c in claims for i in c.items]
    assert len(claims) == 6  # every night claimed: none failed on the new ledger ("database is locked")
    assert len(taken) == len(set(taken)) == 24
    nights = [c.night for c in claims if c.night is not None]
    assert len(nights) == len(set(nights))  # never two runs in one folder


def test_done_only_for_the_claim_owner_and_new_content_is_a_new_item(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    owner = new_owner()
    items = ledger.claim(inbox, owner, "n1", settle_s=0).items
    a = next(i for i in items if i.path.endswith("a.csv"))
    assert ledger.start(a.id, owner)
    assert not ledger.done(a.id, new_owner(), a.output, "1")  # not that run's claim
    assert ledger.done(a.id, owner, a.output, "1")
    ledger.release(owner)
    assert {i.status for i in ledger.items() if i.id != a.id} == {"pending"}  # never started: given back
    assert [i.attempts for i in ledger.items() if i.id != a.id] == [0, 0, 0]
    os.utime(inbox / "a.csv", ns=(1, 1))  # the file was replaced: new content
    again = ledger.claim(inbox, new_owner(), "n2", settle_s=0).items
    assert sorted(Path(i.path).name for i in again) == ["a.csv", "b.parquet", "day.zip", "day.zip"]
    assert [i.status for i in ledger.items() if i.id == a.id] == ["done"]


def test_a_transient_failure_is_retried_on_later_nights_then_quarantined_with_its_history(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    for night in (1, 2, 3):
        owner = new_owner()
        item = next(i for i in ledger.claim(inbox, owner, f"n{night}", settle_s=0).items if i.path.endswith("a.csv"))
        assert ledger.start(item.id, owner)
        after = ledger.failed(item.id, owner, f"cannot read: flaky share {night}", transient=True, max_attempts=3)
        assert after.attempts == night
        assert after.status == ("failed" if night < 3 else "quarantined")
        ledger.release(owner)
    note = json.loads((tmp_path / "out" / "quarantine" / "a.json").read_text())
    assert note["attempts"] == 3 and note["error"] == "cannot read: flaky share 3"
    assert [h["error"] for h in note["history"]] == [f"cannot read: flaky share {n}" for n in (1, 2, 3)]
    assert not any(i.path.endswith("a.csv") for i in ledger.claim(inbox, new_owner(), "n4", settle_s=0).items)


def test_a_content_problem_is_quarantined_at_once(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    owner = new_owner()
    item = next(i for i in ledger.claim(inbox, owner, "n1", settle_s=0).items if i.member == "Monday.csv")
    ledger.start(item.id, owner)
    assert ledger.failed(item.id, owner, "corrupt: bad page", transient=False).status == "quarantined"
    assert json.loads((tmp_path / "out" / "quarantine" / "Monday.json").read_text())["source"].endswith(
        "day.zip!Monday.csv")


def test_a_killed_runs_claims_are_taken_over_and_its_started_item_counts_an_attempt(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    owner = new_owner().split(":")
    owner[1] = dead
    ghost = ":".join(owner)
    assert owner_gone(ghost) and not owner_gone(new_owner())
    items = ledger.claim(inbox, ghost, "n1", settle_s=0).items
    ledger.start(items[0].id, ghost)  # the killed run was scoring this one
    taken = ledger.claim(inbox, new_owner(), "n2", settle_s=0)
    assert sorted(i.id for i in taken.items) == sorted(i.id for i in items)
    assert {i.id: i.output for i in taken.items} == {i.id: i.output for i in items}  # same output files
    first = next(i for i in taken.items if i.id == items[0].id)
    assert first.attempts == 1 and first.history[0]["status"] == "interrupted"


def test_a_claim_not_renewed_within_the_ttl_expires(tmp_path):
    inbox, ledger = _inbox(tmp_path), Ledger(tmp_path / "out")
    assert ledger.claim(inbox, "otherhost:1:x", "n1", settle_s=0).items  # alive as far as we know
    assert ledger.claim(inbox, new_owner(), "n2", settle_s=0, claim_ttl_s=3600).items == []
    assert len(ledger.claim(inbox, new_owner(), "n3", settle_s=0, claim_ttl_s=1e-9).items) == 4


@pytest.mark.parametrize("member", ["sub/...parquet", "..csv", ".hidden.csv"])
def test_output_names_stay_inside_the_night_folder(tmp_path, member):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with zipfile.ZipFile(inbox / "day.zip", "w") as zf:
        zf.writestr(member, "x\n1\n")
    claim = Ledger(tmp_path / "out").claim(inbox, new_owner(), "n", settle_s=0)
    [item] = claim.items
    target = Path(item.output)
    assert target.parent == claim.night and target.name.startswith("_.")


def test_files_an_older_json_ledger_recorded_as_scored_are_not_scored_again(tmp_path):
    inbox, out = _inbox(tmp_path), tmp_path / "out"
    out.mkdir()
    a, b = inbox / "a.csv", inbox / "b.parquet"
    legacy = {f"a.csv|{a.stat().st_size}|{a.stat().st_mtime_ns}": {"source": str(a.absolute()), "status": "ok",
                                                                   "output": "/old/a.scored.parquet", "error": None,
                                                                   "model_version": "3"},
              f"b.parquet|{b.stat().st_size}|{b.stat().st_mtime_ns}": {"source": str(b.absolute()),
                                                                       "status": "failed", "error": "x"}}
    (out / "ledger.json").write_text(json.dumps(legacy))
    claim = Ledger(out).claim(inbox, new_owner(), "n", settle_s=0)
    assert sorted((Path(i.path).name, i.member) for i in claim.items) == [
        ("b.parquet", ""), ("day.zip", "Monday.csv"), ("day.zip", "sub/Tuesday.csv")]  # a failure is tried again
    [done] = [i for i in Ledger(out).items() if i.status == "done"]
    assert (Path(done.path).name, done.output, done.model_version) == ("a.csv", "/old/a.scored.parquet", "3")
