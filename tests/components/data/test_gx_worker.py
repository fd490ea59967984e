"""Great Expectations in its worker process: the same result, Data Docs and gate as in-process, and
a worker that fails, dies or hangs fails the file with one line, never hangs the ingest."""
from __future__ import annotations

import json
import sys
import time

import pytest

from components.data import gx_validation, ingest
from components.data.expectations import load_suite
from components.data.ingest import ingest_paths

DDOS = "friday-ddos-1000.TrafficLabelling.csv"


def _failing_suite() -> dict:
    """The real suite with one expectation no row of a real file meets (a port of at most 1)."""
    suite = load_suite()
    for exp in suite["expectations"]:
        if exp["type"] == "expect_column_values_to_be_between" and exp["kwargs"]["column"] == "destination_port":
            exp["kwargs"]["max_value"] = 1
    return suite


def test_a_failing_suite_still_fails_the_file_and_its_data_docs_are_built(real, monkeypatch):
    monkeypatch.setattr(ingest, "load_suite", _failing_suite)
    path = real.write("ports.csv", real.lines(DDOS, rows=200))
    result = ingest_paths([str(path)], real.cfg(run_gx=True, gx_sample_rows=100))
    entry = result.manifest["files"][0]
    # what the retrain gate reads: validation_success False (the rows themselves are fine)
    assert (entry["status"], entry["validation_success"], entry["validation_sample_rows"]) == ("ok", False, 100)
    assert entry["failed_expectations"] == ["expect_column_values_to_be_between(destination_port)"]
    validation = real.tmp / "out" / "validation"
    report = json.loads((validation / "ports.json").read_text())
    assert report["summary"]["success"] is False and report["summary"]["sample_rows"] == 100
    assert report["gx_results"][0]["success"] is False  # GX's own result, verbatim
    assert report["gx_results"][0]["statistics"]["unsuccessful_expectations"] == 1
    index = validation / "data_docs" / "index.html"
    assert index.is_file()
    pages = list((validation / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 1 and "ports" in str(pages[0])  # the file's result is in the Data Docs
    assert not gx_validation._WORKERS  # the run's worker is stopped once its Data Docs are built


_RAISES = ("from components.data.gx_worker import read_frame, write_frame; import sys\n"
           "while (m := read_frame(sys.stdin.buffer)) is not None:\n"
           "    write_frame(sys.stdout.buffer,"
           " ('error', 'ValueError: boom') if m[0] == 'validate' else ('ok', 0))")


@pytest.mark.parametrize("script, reason", [
    ("import sys; sys.exit(3)", "Great Expectations worker exited with code 3"),
    ("import time; time.sleep(120)", "Great Expectations worker did not answer"),
    (_RAISES, "Great Expectations failed: ValueError: boom"),
    (None, "Great Expectations worker could not start"),
], ids=["dies", "hangs", "raises", "cannot-start"])
def test_a_broken_worker_fails_the_file_in_one_line_and_never_hangs(real, monkeypatch, script, reason):
    command = [sys.executable, "-c", script] if script else [str(real.tmp / "no-such-python")]
    monkeypatch.setattr(gx_validation, "worker_command", lambda docs: command)
    path = real.write("night.csv", real.lines(DDOS, rows=20))
    started = time.monotonic()
    result = ingest_paths([str(path)], real.cfg(run_gx=True, gx_timeout_s=2))
    assert time.monotonic() - started < 60  # the deadline is 2 s; generous for a loaded machine
    (report,) = result.reports
    assert report.status == "failed" and report.error.startswith(reason), report.error
    assert "\n" not in report.error
    assert report.validation_success is None  # no result: the file fails, so the gate stops a retrain
    assert not (real.tmp / "out" / "curated" / "night.parquet").exists()
    assert result.manifest["files"][0]["error"] == report.error
    assert not gx_validation._WORKERS


def test_a_run_that_fails_before_its_data_docs_leaves_no_worker(real, monkeypatch):
    first = real.write("first.csv", real.lines(DDOS, rows=50))
    second = real.write("second.csv", real.lines(DDOS, rows=50))
    original = ingest.ingest_file
    started: list = []

    def crash_on_second(item, cfg, stem, on_progress=None):
        if stem == "second":
            started.extend(gx_validation._WORKERS.values())  # the worker the first file started
            raise RuntimeError("a bug in the middle of the run")
        return original(item, cfg, stem, on_progress)

    monkeypatch.setattr(ingest, "ingest_file", crash_on_second)
    with pytest.raises(RuntimeError, match="a bug in the middle"):
        ingest_paths([str(first), str(second)], real.cfg(run_gx=True, gx_sample_rows=20))
    assert len(started) == 1 and not gx_validation._WORKERS
    # stopped and reaped before the error reached us, not left running until the process exits
    assert started[0].proc.poll() is not None and started[0].proc.stdin.closed
