"""Run the contract's Great Expectations suite on a sample of each file, and build Data Docs.

Decision (speed, bounded memory): GX validates the typed rows *before* the quarantine split, but
only a seeded sample of them (``sampling.RowSample``, up to ``IngestConfig.gx_sample_rows`` rows
drawn evenly across the whole file), once per file: an ephemeral context, a pandas datasource, one
whole-dataframe batch. GX costs about two seconds per validation whatever the size; validating
every row in 100,000-row chunks took 72 % of the time of a 1 GB ingest. Which rows are curated or
quarantined is decided exactly for every row by ``validation``; GX's result is a report (the sample
size is in it). The result is kept verbatim (``gx_results``) with a file-level summary
(``merge_results``, which also merges several results: counts are summed and each expectation's
success is recomputed on the totals with its ``mostly``). Data Docs HTML is built once per run
and output folder (``build_data_docs``).

Decision (hide GX's fixed cost): GX runs in a worker *process* per Data Docs folder
(``gx_worker``), started when a file's ingest starts (``start_worker``): it imports GX (about
2.3 s) and builds its context on the other core while the rows stream (on a thread the import
held the GIL the checks need and made ingest slower). The sample goes to it when the last batch
is checked (``submit``), and is validated while the last batches are written; the same code
validates, so results, Data Docs and the gate are as before. Every wait on the worker has a
deadline; a worker that dies or does not answer in time fails the file with one line
(``GXWorkerError``) and is never waited on again. Workers end with ``forget_context`` (after the
run's Data Docs), or with the process (their stdin closes).

Its results carry run times, so they are reports, not part of the byte-identical outputs.
"""
from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from components.data.errors import FileLevelError
from components.data.expectations import suite_for_columns
from components.data.gx_worker import HEADER

_LOCK = threading.Lock()
_WORKERS: dict[str, GXWorker] = {}
#: The highest peak RSS (bytes) a stopped worker reported in this process (for the benchmark).
worker_peak_rss_bytes = 0
_MAP_EXPECTATIONS_WITHOUT_NULLS = {"expect_column_values_to_be_between",
                                   "expect_column_values_to_be_in_set"}
#: How long to wait for the worker's answer (import + context + one validation, or one Data Docs
#: build) before giving up on it. Generous: two cores shared with other work can be slow.
DEFAULT_TIMEOUT_S = 600.0
_REPO = Path(__file__).resolve().parents[2]


class GXWorkerError(FileLevelError):
    """Great Expectations could not give a result for this file (one line: what went wrong)."""


@dataclass
class FileValidation:
    """Merged result for one file: overall success, per-expectation totals, and the raw GX JSON."""

    success: bool
    summary: dict
    gx_results: list[dict] = field(default_factory=list)

    def failed(self) -> list[str]:
        return [f"{r['type']}({r['column']})" for r in self.summary["results"] if not r["success"]]


def worker_command(docs_dir: Path | None) -> list[str]:
    """How a worker is started (a test may replace this to start a broken one)."""
    return [sys.executable, "-m", "components.data.gx_worker", "" if docs_dir is None else str(docs_dir)]


class GXWorker:
    """The parent's end of one worker process: one request at a time, each with a deadline."""

    def __init__(self, docs_dir: Path | None) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
        self.lock = threading.Lock()
        self.broken: str | None = None  # why this worker is not asked again
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = subprocess.Popen(worker_command(docs_dir), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, bufsize=0)
        except OSError as exc:  # answered to the first request, which fails its file
            self.broken = f"Great Expectations worker could not start: {exc.strerror or exc}"
        self.validations = 0  # asked for; Data Docs are built only where there is one
        self.peak_rss_bytes = 0

    def request(self, kind: str, payload: object, timeout: float) -> object:
        """Send one request and wait for its answer; ``GXWorkerError`` when there is none."""
        import pickle

        body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        with self.lock:
            if self.broken is not None:
                raise GXWorkerError(self.broken)
            self.validations += kind == "validate"
            deadline = time.monotonic() + timeout
            try:
                self._send(HEADER.pack(len(body)), deadline)
                self._send(body, deadline)  # not joined to the header: no copy of the sample
                (size,) = HEADER.unpack(self._receive(HEADER.size, deadline, timeout))
                status, value = pickle.loads(self._receive(size, deadline, timeout))
            except GXWorkerError as exc:
                self.broken = str(exc)
                self.kill()
                raise
            except OSError as exc:  # a closed pipe: the worker is gone
                self.broken = self._gone(f"({exc.strerror or exc})")
                self.kill()
                raise GXWorkerError(self.broken) from None
        if status == "error":
            raise GXWorkerError(f"Great Expectations failed: {value}")
        return value

    def _send(self, data: bytes, deadline: float) -> None:
        fd, view = self.proc.stdin.fileno(), memoryview(data)
        while view:
            _, ready, _ = select.select([], [fd], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise GXWorkerError(self._late())
            sent = os.write(fd, view[: 1 << 16])
            view = view[sent:]

    def _receive(self, size: int, deadline: float, timeout: float) -> bytes:
        fd, parts, left = self.proc.stdout.fileno(), [], size
        while left:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise GXWorkerError(self._late(timeout))
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise GXWorkerError(self._gone("before answering"))
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    def _late(self, timeout: float | None = None) -> str:
        within = f" within {timeout:g} s" if timeout is not None else " in time"
        return f"Great Expectations worker did not answer{within} (stopped)"

    def _gone(self, when: str) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return f"Great Expectations worker exited with code {code} {when}"

    def close(self, timeout: float = 30.0) -> None:
        """Ask the worker to stop (it reports its peak RSS); kill it if it does not."""
        try:
            if self.broken is None and self.proc is not None and self.proc.poll() is None:
                self.peak_rss_bytes = int(self.request("close", None, timeout) or 0)
        except GXWorkerError:
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        """Stop the process now and reap it (never waits on a hung worker)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def start_worker(docs_dir: Path | None) -> GXWorker:
    """The worker of ``docs_dir``, started now if there is none (it imports GX at once)."""
    key = str(docs_dir)
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = GXWorker(docs_dir)
        return worker


class PendingValidation:
    """A validation sent to the worker; ``result`` waits for it (with the deadline)."""

    def __init__(self, worker: GXWorker, suite: dict, table: pa.Table, name: str,
                 timeout: float) -> None:
        self._answer: dict | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._ask, args=(worker, suite, table, name, timeout),
                                        name="flowae-gx-request", daemon=True)
        self._thread.start()

    def _ask(self, worker: GXWorker, suite: dict, table: pa.Table, name: str, timeout: float) -> None:
        try:
            self._answer = worker.request("validate", (suite, table, name), timeout)
        except BaseException as exc:  # noqa: BLE001 - raised by result()
            self._error = exc

    def result(self) -> FileValidation:
        self._thread.join()  # the request itself has the deadline
        if self._error is not None:
            raise self._error
        results = [self._answer]
        summary = merge_results(results)
        return FileValidation(success=summary["success"], summary=summary, gx_results=results)


def submit(suite: dict, table: pa.Table, name: str, docs_dir: Path | None,
           timeout: float = DEFAULT_TIMEOUT_S) -> PendingValidation:
    """Start validating ``table`` (typed rows; a ``row_number`` column is ignored) with the suite's
    expectations for the columns it has; the result also goes into ``docs_dir``'s Data Docs."""
    table = table.drop_columns([c for c in ("row_number",) if c in table.column_names])
    file_suite = suite_for_columns(suite, table.column_names)
    return PendingValidation(start_worker(docs_dir), file_suite, table, name, timeout)


def validate_table(suite: dict, table: pa.Table, name: str, docs_dir: Path | None,
                   timeout: float = DEFAULT_TIMEOUT_S) -> FileValidation:
    """``submit`` and wait for the result."""
    return submit(suite, table, name, docs_dir, timeout).result()


def build_data_docs(docs_dir: Path, timeout: float = DEFAULT_TIMEOUT_S) -> Path | None:
    """Render Data Docs HTML for every result validated into ``docs_dir``'s worker (once per run).
    None when nothing was validated there, or the worker broke (those files failed already)."""
    with _LOCK:
        worker = _WORKERS.get(str(docs_dir))
    if worker is None or worker.broken is not None or not worker.validations:
        return None
    worker.request("build", None, timeout)
    index = Path(docs_dir) / "index.html"
    return index if index.is_file() else None


def forget_context(docs_dir: Path) -> int:
    """Stop a folder's worker (and drop its in-memory results) once its docs are built; returns
    the worker's peak RSS in bytes (0 when unknown)."""
    with _LOCK:
        worker = _WORKERS.pop(str(docs_dir), None)
    if worker is None:
        return 0
    worker.close()
    global worker_peak_rss_bytes
    worker_peak_rss_bytes = max(worker_peak_rss_bytes, worker.peak_rss_bytes)
    return worker.peak_rss_bytes


@atexit.register
def stop_all_workers() -> None:
    """Kill every worker now (at exit; tests that ingest with GX but never finish a run)."""
    with _LOCK:
        workers = list(_WORKERS.values())
        _WORKERS.clear()
    for worker in workers:
        worker.kill()


def merge_results(results: list[dict]) -> dict:
    """One file-level result from one or more results: totals per expectation, success from ``mostly``."""
    merged: list[dict] = []
    if results:
        for i, first in enumerate(results[0]["results"]):
            cfg = first["expectation_config"]
            kind, kwargs = cfg["type"], cfg["kwargs"]
            parts = [r["results"][i] for r in results]
            totals = {k: sum(int(p["result"].get(k) or 0) for p in parts)
                      for k in ("element_count", "unexpected_count", "missing_count")}
            merged.append({"type": kind, "column": kwargs.get("column"),
                           "success": _merged_success(kind, kwargs, parts, totals),
                           "observed": parts[0]["result"].get("observed_value"), **totals})
    ok = sum(r["success"] for r in merged)
    return {"suite": results[0]["suite_name"] if results else None, "chunks": len(results),
            "success": ok == len(merged), "evaluated_expectations": len(merged),
            "successful_expectations": ok, "results": merged}


def _merged_success(kind: str, kwargs: dict, parts: list[dict], totals: dict) -> bool:
    if "element_count" not in parts[0]["result"]:  # table/column-level expectations
        return all(p["success"] for p in parts)
    mostly = float(kwargs.get("mostly", 1.0))
    denominator = totals["element_count"]
    if kind in _MAP_EXPECTATIONS_WITHOUT_NULLS:
        denominator -= totals["missing_count"]
    if denominator <= 0:
        return True
    return (denominator - totals["unexpected_count"]) / denominator >= mostly - 1e-12
