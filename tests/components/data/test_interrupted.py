"""A run killed with SIGKILL mid-file leaves no half-written output, and the next run removes its
temp files and ingests everything again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from components.data.ingest import IngestConfig, ingest_paths
from components.data.outputs import remove_stale_temp_files
from tests.waits import wait_until

REPO = Path(__file__).resolve().parents[3]
RUN = """
import sys
from pathlib import Path
from components.data.ingest import IngestConfig, ingest_paths
ingest_paths([sys.argv[1]], IngestConfig(out=Path(sys.argv[2]), run_gx=False, block_size=32_768))
"""


def _temp_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob(".*.tmp"))


def test_sigkill_mid_file_then_the_same_command_again(tmp_path):
    from components.synth import SynthConfig, write_days

    [path] = list(write_days(SynthConfig(rows=40_000, seed=1, variant="TrafficLabelling",
                                         days=["friday_ddos"]), tmp_path / "raw"))
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", RUN, str(path), str(out)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    # the curated temp file exists once rows are written: kill then
    wait_until(lambda: _temp_files(out / "curated"), 300, "ingest wrote no curated temp file to kill it at",
               interval_s=0.005, process=child)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    left = _temp_files(out)
    assert left and all(f".flowae-{child.pid}-" in p.name for p in left)
    assert not (out / "curated" / f"{path.stem}.parquet").exists()  # nothing half-written in place
    assert not (out / "manifest.json").exists()

    result = ingest_paths([str(path)], IngestConfig(out=out, run_gx=False, block_size=32_768))
    [report] = result.reports
    assert (report.status, report.rows_in, report.rows_curated + report.rows_quarantined) == \
        ("ok", 40_000, 40_000)
    assert result.manifest["notes"] == [f"removed {len(left)} temp file(s) left by an interrupted run"]
    assert _temp_files(out) == []


def test_only_temp_files_of_dead_flowae_processes_go(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = int(gone.stdout)
    folder = tmp_path / "curated"
    folder.mkdir()
    names = {
        "dead": f".day.parquet.flowae-{dead}-k2j4_x9a.tmp",
        "alive": f".day.parquet.flowae-{os.getppid()}-abcd1234.tmp",
        "mine": f".day.parquet.flowae-{os.getpid()}-abcd1234.tmp",
        "legacy": ".day.parquet.ab12_xyz.tmp",
        "user": ".notes.tmp",
        "data": "day.parquet",
    }
    for name in names.values():
        (folder / name).write_text("x")
    removed = remove_stale_temp_files([folder, tmp_path / "not-there"])
    assert sorted(p.name for p in removed) == sorted([names["dead"], names["legacy"]])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [names["alive"], names["mine"], names["user"], names["data"]])
