"""The nightly inbox: a work queue of the files (and zip members) to score, in SQLite.

Why a database and not a JSON file: a scheduled job must neither score a file twice nor skip one,
also when it dies half-way or when a manual run overlaps the scheduled one. So each inbox item
(a file, or one member of a zip archive, known by its path, member, size and modification time:
new content is a new item) is a row with a status (pending, claimed, done, failed, quarantined),
its attempts, its last error, its history and a claim (owner, since when), and every change is
one SQLite transaction (WAL; ``BEGIN IMMEDIATE`` takes the write lock before reading, so two
runs never claim the same row):

- a night *claims* everything it will score in one transaction, and each row gets its output path
  then, kept for good: a night that dies after committing an output but before marking the row
  done scores it again into the same file, so there is one output per item whatever happens;
- a claim is renewed when its file starts; one whose process is gone (same host) or that was not
  renewed for ``claim_ttl_s`` is taken over by the next night;
- an item is marked *done* only after its output was fsynced and renamed into place;
- a failure that may pass (an I/O error, an internal error, a night killed on the file) leaves the
  item *failed* for the next night, up to ``max_attempts`` starts; then, and at once for a
  problem of the file's content, it is *quarantined*, with ``quarantine/<stem>.json`` holding
  its attempt history.

Files modified in the last ``settle_s`` seconds are left for the next run (still arriving).
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from components.data.inputs import (
    CSV_SUFFIXES,
    MEMBER_SEPARATOR,
    PARQUET_SUFFIXES,
    ZIP_SUFFIX,
    InputFile,
    list_members,
)
from components.data.outputs import safe_stem, write_json_atomic
from components.locks import owner_gone

LEDGER = "ledger.sqlite"
LEGACY_LEDGER = "ledger.json"  # flowae before the SQLite ledger: its scored files are imported once
SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + (".gz", ".zip")
STATUSES = ("pending", "claimed", "done", "failed", "quarantined")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,                 -- the inbox file (absolute)
    member TEXT NOT NULL DEFAULT '',    -- the zip member, '' for a file of its own
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claim_owner TEXT,
    claim_since REAL,
    started REAL,                       -- when the current claim started scoring (NULL: not yet)
    output TEXT,                        -- OUT/<night>/<stem>.scored.parquet, fixed at first claim
    model_version TEXT,
    history TEXT NOT NULL DEFAULT '[]', -- one entry per attempt that ended (JSON)
    first_seen REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (path, member, size, mtime_ns)
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
"""


@dataclass(frozen=True)
class Found:
    """An inbox item as found on disk."""

    path: str
    member: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Item:
    """One row of the ledger."""

    id: int
    path: str
    member: str
    size: int
    mtime_ns: int
    status: str
    attempts: int
    last_error: str | None
    claim_owner: str | None
    claim_since: float | None
    started: float | None
    output: str | None
    model_version: str | None
    history: list[dict]

    @property
    def input(self) -> InputFile:
        return InputFile(Path(self.path), self.member or None)

    @property
    def source(self) -> str:
        return self.input.source


@dataclass(frozen=True)
class Claim:
    """What one night took: the items to score, and those it quarantined instead (their claims had
    expired with their last attempt)."""

    night: Path | None
    items: list[Item]
    quarantined: list[Item]


def discover(inbox: Path, settle_s: float = 60.0) -> list[Found]:
    """The inbox's items: each CSV/parquet file, and each CSV/parquet member of a zip archive,
    oldest first; dot files and files younger than ``settle_s`` are left out."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise FileNotFoundError(f"{inbox}: inbox folder does not exist")
    now = time.time()
    files = []
    for path in inbox.iterdir():
        if not path.is_file() or path.name.startswith(".") or not path.name.lower().endswith(SUFFIXES):
            continue
        stat = path.stat()
        if now - stat.st_mtime < settle_s:
            continue  # still arriving
        files.append((stat.st_mtime_ns, path.name, path.absolute(), stat))
    found = []
    for _, _, path, stat in sorted(files):
        members = [""]
        if path.suffix.lower() == ZIP_SUFFIX and zipfile.is_zipfile(path):
            try:
                members = list_members(path)[0] or [""]
            except (OSError, zipfile.BadZipFile):
                members = [""]  # scored as one item, which fails with the reason
        found.extend(Found(str(path), m, stat.st_size, stat.st_mtime_ns) for m in members)
    return found


class Ledger:
    """``OUT/ledger.sqlite``: the inbox items and what happened to each."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / LEDGER
        self.quarantine_dir = self.out / "quarantine"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` (the write lock first, so what is read is
        still true when it is written), committed on success, rolled back on any error."""
        self.out.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            _use_wal(con)
            con.execute("PRAGMA synchronous=FULL")
            con.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def items(self) -> list[Item]:
        """Every row, oldest first."""
        if not self.path.is_file():
            return []
        with self._transaction() as con:
            return [_item(r) for r in con.execute("SELECT * FROM items ORDER BY id")]

    def claim(self, inbox: Path, owner: str, night_name: str, settle_s: float = 60.0,
              max_attempts: int = 3, claim_ttl_s: float = 6 * 3600.0) -> Claim:
        """In one transaction: record new inbox items, take every item that is pending, failed
        with attempts left, or claimed by a run that is gone, and give each new one its output
        path in ``OUT/<night_name>/`` (a folder created here, unique among the nights)."""
        found = discover(inbox, settle_s)
        now = time.time()
        with self._transaction() as con:
            if con.execute("SELECT count(*) FROM items").fetchone()[0] == 0:
                self._import_legacy(con, now)
            for f in found:
                con.execute("INSERT OR IGNORE INTO items (path, member, size, mtime_ns, status, first_seen, updated)"
                            " VALUES (?, ?, ?, ?, 'pending', ?, ?)", (f.path, f.member, f.size, f.mtime_ns, now, now))
            rows = [_item(r) for r in con.execute(
                "SELECT * FROM items WHERE status IN ('pending', 'failed', 'claimed') ORDER BY id")]
            present = set(found)
            taken, quarantined = [], []
            for item in rows:
                if Found(item.path, item.member, item.size, item.mtime_ns) not in present:
                    continue  # gone from the inbox (or replaced: its new content is a new item)
                if item.status == "failed" and item.attempts >= max_attempts:
                    continue
                if item.status == "claimed":
                    if not (owner_gone(item.claim_owner or "") or now - (item.claim_since or 0) > claim_ttl_s):
                        continue  # another run is on it
                    if item.started is not None:  # that run died on this item: an attempt that ended
                        reason = f"interrupted: the run {item.claim_owner} ended while scoring it"
                        _add_history(con, item, {"at": _iso(now), "status": "interrupted", "error": reason})
                        item = _reload(con, item.id)
                        if item.attempts >= max_attempts:
                            quarantined.append(self._quarantine(con, item, reason, now))
                            continue
                taken.append(item)
            night = None
            if taken:
                night = self._new_night(night_name)
                stems = {Path(i.output).name for i in taken if i.output}
                for item in taken:
                    output = item.output
                    if output is None:
                        stem = safe_stem(item.input.stem)
                        name = f"{stem}.scored.parquet"
                        if name in stems:
                            name = f"{stem}__{item.id}.scored.parquet"
                        stems.add(name)
                        output = str(night / name)
                    con.execute("UPDATE items SET status='claimed', claim_owner=?, claim_since=?, started=NULL,"
                                " output=?, updated=? WHERE id=?", (owner, now, output, now, item.id))
                taken = [_reload(con, i.id) for i in taken]
        return Claim(night, taken, quarantined)

    def start(self, item_id: int, owner: str) -> bool:
        """The item's scoring begins: one more attempt, the claim renewed. False when the claim
        is no longer this owner's (it expired and another run took it): do not score it."""
        now = time.time()
        with self._transaction() as con:
            cur = con.execute("UPDATE items SET attempts=attempts+1, started=?, claim_since=?, updated=?"
                              " WHERE id=? AND status='claimed' AND claim_owner=?", (now, now, now, item_id, owner))
            return cur.rowcount == 1

    def done(self, item_id: int, owner: str, output: str, model_version: str) -> bool:
        """Call only once ``output`` is fsynced and renamed into place."""
        now = time.time()
        with self._transaction() as con:
            item = _reload(con, item_id)
            if item.status != "claimed" or item.claim_owner != owner:
                return False
            _add_history(con, item, {"at": _iso(now), "status": "done", "output": output})
            con.execute("UPDATE items SET status='done', output=?, model_version=?, last_error=NULL,"
                        " claim_owner=NULL, claim_since=NULL, started=NULL, updated=? WHERE id=?",
                        (output, model_version, now, item_id))
            return True

    def failed(self, item_id: int, owner: str, error: str, transient: bool, max_attempts: int = 3) -> Item:
        """Record a failed attempt: the item waits for the next night (``transient``, attempts
        left) or is quarantined. Returns the row as it now is."""
        now = time.time()
        with self._transaction() as con:
            item = _reload(con, item_id)
            if item.status != "claimed" or item.claim_owner != owner:
                return item  # another run took it over meanwhile: its outcome is that run's
            _add_history(con, item, {"at": _iso(now), "status": "failed", "error": error})
            item = _reload(con, item_id)
            if not transient or item.attempts >= max_attempts:
                return self._quarantine(con, item, error, now)
            con.execute("UPDATE items SET status='failed', last_error=?, claim_owner=NULL, claim_since=NULL,"
                        " started=NULL, updated=? WHERE id=?", (error, now, item_id))
            return _reload(con, item_id)

    def release(self, owner: str) -> int:
        """Give back the claims of a night that ends without having scored them (it failed
        before their turn): they are pending again, their attempts unchanged."""
        now = time.time()
        with self._transaction() as con:
            return con.execute("UPDATE items SET status='pending', claim_owner=NULL, claim_since=NULL, updated=?"
                               " WHERE status='claimed' AND claim_owner=? AND started IS NULL",
                               (now, owner)).rowcount

    def _import_legacy(self, con: sqlite3.Connection, now: float) -> None:
        """The files an older flowae recorded as scored in ``OUT/ledger.json`` (key
        ``name|size|mtime_ns``) are done here too, so an upgrade does not score them again. Its
        failures are left out: they are tried again."""
        legacy = self.out / LEGACY_LEDGER
        if not legacy.is_file():
            return
        for key, entry in json.loads(legacy.read_text(encoding="utf-8")).items():
            _, size, mtime_ns = key.rsplit("|", 2)
            if entry.get("status") != "ok" or not entry.get("source"):
                continue
            path, sep, member = entry["source"].partition(f"{ZIP_SUFFIX}{MEMBER_SEPARATOR}")
            path = f"{path}{ZIP_SUFFIX}" if sep else path
            history = json.dumps([{"attempt": 1, "status": "done", "output": entry.get("output"),
                                   "note": f"imported from {LEGACY_LEDGER}"}])
            con.execute("INSERT OR IGNORE INTO items (path, member, size, mtime_ns, status, attempts, output,"
                        " model_version, history, first_seen, updated) VALUES (?, ?, ?, ?, 'done', 1, ?, ?, ?, ?, ?)",
                        (path, member, int(size), int(mtime_ns), entry.get("output"), entry.get("model_version"),
                         history, now, now))

    def note_path(self, item: Item) -> Path:
        stem = Path(item.output).name.removesuffix(".scored.parquet") if item.output else safe_stem(item.input.stem)
        return self.quarantine_dir / f"{stem}.json"

    def _quarantine(self, con: sqlite3.Connection, item: Item, error: str, now: float) -> Item:
        """The note first (atomic, fsynced), then the row: a crash between the two only means the
        item is tried (and quarantined) once more."""
        write_json_atomic(self.note_path(item), {
            "source": item.source, "status": "quarantined", "error": error, "attempts": item.attempts,
            "size": item.size, "mtime_ns": item.mtime_ns, "history": item.history})
        con.execute("UPDATE items SET status='quarantined', last_error=?, claim_owner=NULL, claim_since=NULL,"
                    " started=NULL, updated=? WHERE id=?", (error, now, item.id))
        return _reload(con, item.id)

    def _new_night(self, name: str) -> Path:
        """``OUT/<name>``, or ``OUT/<name>-2``... when a night of the same second exists (called
        under the write lock, so two runs never share a folder)."""
        for n in range(1, 1000):
            night = self.out / (name if n == 1 else f"{name}-{n}")
            try:
                night.mkdir(parents=True)
                return night
            except FileExistsError:
                continue
        raise RuntimeError(f"{self.out}: no free folder name for the night {name}")


def _use_wal(con: sqlite3.Connection, timeout_s: float = 60.0) -> None:
    """Switch a new ledger to WAL (a ledger keeps it). The first connections race to switch, and
    SQLite answers a switch that meets another connection's lock with "database is locked" at once,
    without its busy wait: so wait here, as the connection's own timeout would."""
    deadline = time.monotonic() + timeout_s
    while con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _item(row: sqlite3.Row) -> Item:
    values = dict(row)
    values["history"] = json.loads(values["history"])
    values.pop("first_seen")
    values.pop("updated")
    return Item(**values)


def _reload(con: sqlite3.Connection, item_id: int) -> Item:
    return _item(con.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone())


def _add_history(con: sqlite3.Connection, item: Item, entry: dict) -> None:
    history = [*item.history, {"attempt": item.attempts, **entry}]
    con.execute("UPDATE items SET history=? WHERE id=?", (json.dumps(history), item.id))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
