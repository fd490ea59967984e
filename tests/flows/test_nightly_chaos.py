"""Chaos on score-nightly: the nightly flow, in its own process, is killed with SIGKILL at random
points several times and started again; afterwards every input row was scored exactly once (one
output per file or zip member, rows in = rows out, in order), the ledger says done for each, no
temp or part files remain and no process the killed runs started outlives them."""
from __future__ import annotations

import gzip
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from functools import partial
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flow_test_rows import BENIGN, DDOS, PORTSCAN, WEEK, champion

from tests.waits import wait_until

pytestmark = pytest.mark.slow  # the night killed three times in subprocesses (about 30 s)

REPO = Path(__file__).resolve().parents[2]
NIGHT = """
import sys
from flows.score import score_nightly_flow
state = score_nightly_flow(sys.argv[1], sys.argv[2], settle_s=0, return_state=True)
sys.exit(0 if state.is_completed() else 1)
"""


@pytest.fixture
def scored_store(store, real_ingested):
    return store, champion(store, real_ingested)


def _inbox(shared_data: Path, inbox: Path) -> dict[str, int]:
    """CSV, parquet, gzip and a zip of two members; returns rows per output name."""
    inbox.mkdir()
    (inbox / WEEK).write_bytes((shared_data / WEEK).read_bytes())
    frame = pd.read_csv(shared_data / PORTSCAN)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), inbox / "portscan.parquet",
                   row_group_size=250)
    (inbox / "benign.csv.gz").write_bytes(gzip.compress((shared_data / BENIGN).read_bytes()))
    with zipfile.ZipFile(inbox / "friday.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(shared_data / DDOS, f"a/{DDOS}")
        zf.write(shared_data / PORTSCAN, f"b/{PORTSCAN}")
    rows = {name: len(pd.read_csv(shared_data / name)) for name in (WEEK, DDOS, PORTSCAN, BENIGN)}
    return {f"{Path(WEEK).stem}.scored.parquet": rows[WEEK], "portscan.scored.parquet": rows[PORTSCAN],
            "benign.scored.parquet": rows[BENIGN], f"{Path(DDOS).stem}.scored.parquet": rows[DDOS],
            f"{Path(PORTSCAN).stem}.scored.parquet": rows[PORTSCAN]}


def _reached(ledger: Path, pid: int, event: str, done_before: int) -> bool:
    """Has the night of ``pid`` claimed its work, started scoring a file, or finished one?"""
    if not ledger.is_file():
        return False
    try:
        with sqlite3.connect(ledger, timeout=5) as con:
            rows = con.execute("SELECT status, claim_owner, started FROM items").fetchall()
    except sqlite3.Error:
        return False
    mine = [r for r in rows if r[1] and r[1].split(":")[1] == str(pid)]
    if event == "claimed":
        return bool(mine)
    if event == "started":
        return any(r[2] is not None for r in mine)
    return sum(r[0] == "done" for r in rows) > done_before


def _done(ledger: Path) -> int:
    if not ledger.is_file():
        return 0
    with sqlite3.connect(ledger, timeout=5) as con:
        return con.execute("SELECT count(*) FROM items WHERE status='done'").fetchone()[0]


def test_nightly_killed_at_random_points_scores_every_row_exactly_once(scored_store, shared_data, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from components.serve.inbox import Ledger

    store, _ = scored_store
    inbox, out = tmp_path / "inbox", tmp_path / "scored"
    expected = _inbox(shared_data, inbox)
    script = tmp_path / "night.py"
    script.write_text(NIGHT)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": store.tracking_uri,
           "FLOWAE_ARTIFACT_ROOT": str(store.artifact_root), "FLOWAE_DEVICE": "cpu", "FLOWAE_MAX_ATTEMPTS": "20",
           "PYTHONPATH": str(REPO)}
    rng = random.Random(19)
    kills, ledger = 0, out / "ledger.sqlite"
    for event in rng.sample(["claimed", "started", "done"], 3):  # each kind of point, in a random order
        done_before = _done(ledger)
        proc = subprocess.Popen([sys.executable, str(script), str(inbox), str(out)], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(partial(_reached, ledger, proc.pid, event, done_before), 120,
                   f"the night never reached {event!r}", interval_s=0.02, process=proc)
        time.sleep(rng.uniform(0.0, 0.5))  # the kill point, at random: reading, scoring, committing or recording
        helpers = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(helpers, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]  # nothing outlives the killed night
    assert kills == 3
    last = subprocess.run([sys.executable, str(script), str(inbox), str(out)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert last.returncode == 0, last.stderr[-3000:]

    items = Ledger(out).items()
    assert len(items) == 5 and {i.status for i in items} == {"done"}
    outputs = sorted(out.rglob("*.scored.parquet"))
    assert sorted(p.name for p in outputs) == sorted(expected)  # one output per file or member
    assert sorted(str(p) for p in outputs) == sorted(i.output for i in items)
    for path in outputs:
        table = pq.read_table(path, columns=["row_number", "anomaly_score"])
        assert table.num_rows == expected[path.name], path.name  # rows in = rows out
        assert table.column("row_number").to_pylist() == list(range(1, expected[path.name] + 1))
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name == ".parts"]
    assert leftovers == []
