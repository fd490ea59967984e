"""The nightly inbox: which files still need scoring, and a ledger of the ones that were.

Why a ledger: a scheduled job must neither score a file twice nor skip one, also when it dies
half-way. Each file is recorded right after its scored output was committed (an atomic rename),
under a file lock (several workers may finish at once), so after a crash the next run scores
exactly the files that have no committed output yet. A file is known by its name, size and
modification time: a file replaced by new content is scored again. Files modified in the last
``settle_s`` seconds are left for the next run (they may still be being written).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from components.data.inputs import CSV_SUFFIXES, PARQUET_SUFFIXES
from components.data.outputs import write_json_atomic

LEDGER = "ledger.json"
SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + (".gz", ".zip")


def file_key(path: Path) -> str:
    stat = Path(path).stat()
    return f"{Path(path).name}|{stat.st_size}|{stat.st_mtime_ns}"


class Ledger:
    """``OUT/ledger.json``: file key -> what happened to it (status, output, night, reason)."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LEDGER
        self.lock_path = Path(out) / f".{LEDGER}.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self) -> dict[str, dict]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def record(self, key: str, entry: dict) -> None:
        with self._locked():
            entries = self.entries()
            entries[key] = entry
            write_json_atomic(self.path, dict(sorted(entries.items())))

    def pending(self, inbox: Path, settle_s: float = 60.0) -> list[Path]:
        """Inbox files without a ledger entry for their current content, oldest first."""
        inbox = Path(inbox)
        if not inbox.is_dir():
            raise FileNotFoundError(f"{inbox}: inbox folder does not exist")
        done = self.entries()
        now = time.time()
        found = []
        for path in inbox.iterdir():
            if not path.is_file() or path.name.startswith(".") or not path.name.lower().endswith(SUFFIXES):
                continue
            if now - os.path.getmtime(path) < settle_s:
                continue  # still arriving
            if file_key(path) not in done:
                found.append(path)
        return sorted(found, key=lambda p: (os.path.getmtime(p), p.name))
