"""The Great Expectations worker: a separate Python process that owns GX for one Data Docs folder.

Why a process: GX's fixed cost (importing it, about 2.3 s here; building its context; about 2 s to
validate a sample and build Data Docs) is pure Python and holds the GIL, so on a thread it slows
the checks it should hide behind (measured: the import on a thread made ingest slower). A process
started when a file's ingest starts imports GX and builds its context on the other core while
the rows stream, and validates the seeded sample while the last batches are written.

Protocol (both sides in this module's terms; the client is ``gx_validation.GXWorker``): frames of
an 8-byte little-endian length and a pickle. Requests ``("validate", (suite, table, name))``,
``("build", None)``, ``("close", None)``; replies ``("ok", value)`` or ``("error", one line)``.
The worker writes its replies to a duplicate of its stdout and points fd 1 at stderr, so anything
GX prints cannot corrupt a frame. It exits when its stdin closes (the parent is gone).

    python -m components.data.gx_worker DOCS_DIR   # "" for no Data Docs
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import BinaryIO

HEADER = struct.Struct("<Q")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (the reason a failed file is given)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_frame(out: BinaryIO, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(body)) + body)
    out.flush()


def read_frame(inp: BinaryIO) -> object | None:
    """The next message, or None at end of input."""
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = inp.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


class DocsContext:
    """One ephemeral GX context for one Data Docs folder, reused by every file written there."""

    def __init__(self, docs_dir: Path | None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.site = None
        if docs_dir is not None:
            self.site = "flowae_ingest"
            self.context.add_data_docs_site(self.site, {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(Path(docs_dir).absolute())},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
        asset = self.context.data_sources.add_pandas("flowae_ingest").add_dataframe_asset("sample")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_sample")
        self.count = 0

    def validate(self, suite: dict, df, name: str):
        """Validate ``df``; returns the result as JSON and ``keep``, which stores the result for Data
        Docs (called after the answer is sent: the parent goes on meanwhile). The batch is validated
        directly and the result stored as a checkpoint would store it, without a checkpoint and
        validation definition per file (their bookkeeping cost GX about half a second per file)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        self.count += 1
        suite_obj = self.context.suites.add(self.gx.ExpectationSuite(
            name=f"{suite['name']}.{name}.{self.count}", expectations=suite["expectations"],
            meta=dict(suite["meta"])))
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite_obj, result_format={"result_format": "BASIC"})
        run_time = dt.datetime.now(dt.UTC)

        def keep() -> None:
            if self.site is not None:
                suite_id = ExpectationSuiteIdentifier(name=suite_obj.name)
                run_id = RunIdentifier(run_name=name, run_time=run_time)
                key = ValidationResultIdentifier(expectation_suite_identifier=suite_id,
                                                 run_id=run_id, batch_identifier=batch.id)
                self.context.validation_results_store.store_validation_results(result, key, suite_id)

        return result.to_json_dict(), keep

    def build_docs(self) -> None:
        if self.site is not None:
            self.context.build_data_docs(site_names=[self.site])


def to_pandas(table):
    """The sample as GX sees it: nullable Int64 and string dtypes (``expectations.PANDAS_TYPES``)."""
    import pandas as pd
    import pyarrow as pa

    types = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}
    return table.to_pandas(types_mapper=types.get)


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def serve(docs_dir: Path | None, inp: BinaryIO, out: BinaryIO) -> None:
    """Build the context at once (the fixed cost, while the parent streams), then answer requests."""
    context, failure = None, None
    try:
        context = DocsContext(docs_dir)
    except Exception as exc:  # noqa: BLE001 - answered to every request
        failure = one_line(exc)
    while (message := read_frame(inp)) is not None:
        kind, payload = message
        keep = None
        try:
            if kind == "close":
                write_frame(out, ("ok", peak_rss_bytes()))
                return
            if failure is not None:
                raise RuntimeError(failure)
            if kind == "validate":
                suite, table, name = payload
                reply, keep = context.validate(suite, to_pandas(table), name)
            elif kind == "build":
                context.build_docs()
                reply = None
            else:
                raise ValueError(f"unknown request {kind!r}")
        except Exception as exc:  # noqa: BLE001 - a one-line reason for the parent
            write_frame(out, ("error", one_line(exc)))
            continue
        write_frame(out, ("ok", reply))
        if keep is not None:
            try:
                keep()  # for Data Docs; a failure here is the next request's answer
            except Exception as exc:  # noqa: BLE001
                failure = f"storing a result for Data Docs: {one_line(exc)}"


def main(argv: list[str]) -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever GX prints goes to stderr, never into a frame
    sys.stdout = sys.stderr
    serve(Path(argv[0]) if argv and argv[0] else None, sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
