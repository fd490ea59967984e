"""Run the contract's Great Expectations suite on a file, chunk by chunk, and build Data Docs.

Decision (bounded memory): GX validates the typed rows *before* the quarantine split, in chunks of
``chunk_rows`` rows (an ephemeral context, a pandas datasource, one whole-dataframe batch per
chunk), so a file larger than memory is validated without ever being loaded whole. The chunk
results are kept verbatim (``gx_results``) and merged into one file-level result: counts are summed
and each expectation's success is recomputed on the totals with its ``mostly``. Data Docs HTML is
built once per run and output folder (``build_data_docs``) from every chunk result.

GX is not thread-safe and keeps a process-wide project context, so every GX call holds one lock.
Its results carry run times, so they are reports, not part of the byte-identical outputs.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from components.data.expectations import suite_for_columns

_LOCK = threading.RLock()
_CONTEXTS: dict[str, _DocsContext] = {}
_MAP_EXPECTATIONS_WITHOUT_NULLS = {"expect_column_values_to_be_between",
                                   "expect_column_values_to_be_in_set"}
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}


@dataclass
class FileValidation:
    """Merged result for one file: overall success, per-expectation totals, and the raw GX JSON."""

    success: bool
    summary: dict
    gx_results: list[dict] = field(default_factory=list)

    def failed(self) -> list[str]:
        return [f"{r['type']}({r['column']})" for r in self.summary["results"] if not r["success"]]


class _DocsContext:
    """One ephemeral GX context per Data Docs folder, reused by every file written there."""

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
        asset = self.context.data_sources.add_pandas("flowae_ingest").add_dataframe_asset("chunk")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_chunk")
        self.count = 0

    def checkpoint(self, suite: dict, name: str):
        gx = self.gx
        self.count += 1
        suite_obj = gx.ExpectationSuite(name=f"{suite['name']}.{name}.{self.count}",
                                        expectations=suite["expectations"], meta=dict(suite["meta"]))
        suite_obj = self.context.suites.add(suite_obj)
        vd = self.context.validation_definitions.add(gx.ValidationDefinition(
            name=f"{name}.{self.count}", data=self.batch_definition, suite=suite_obj))
        return self.context.checkpoints.add(gx.Checkpoint(
            name=f"ingest.{name}.{self.count}", validation_definitions=[vd],
            result_format={"result_format": "BASIC"}))

    def build_docs(self) -> None:
        if self.site is not None:
            self.context.build_data_docs(site_names=[self.site])


def _context(docs_dir: Path | None) -> _DocsContext:
    key = str(docs_dir)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = _DocsContext(docs_dir)
    return _CONTEXTS[key]


class ChunkedValidator:
    """Buffer typed batches of one file; validate every ``chunk_rows`` rows; merge at the end."""

    def __init__(self, suite: dict, columns: list[str], name: str, docs_dir: Path | None,
                 chunk_rows: int = 100_000) -> None:
        self.suite = suite_for_columns(suite, columns)
        self.name = name
        self.docs_dir = docs_dir
        self.chunk_rows = chunk_rows
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self.results: list[dict] = []
        self._checkpoint = None

    def add(self, frame: pa.Table) -> None:
        self._buffer.append(frame.drop_columns([c for c in ("row_number",) if c in frame.column_names]))
        self._rows += frame.num_rows
        if self._rows >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._rows = [], 0
        df = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
        del table
        with _LOCK:
            ctx = _context(self.docs_dir)
            if self._checkpoint is None:
                self._checkpoint = ctx.checkpoint(self.suite, self.name)
            result = self._checkpoint.run(batch_parameters={"dataframe": df})
            for run in result.run_results.values():
                self.results.append(run.to_json_dict())

    def finish(self) -> FileValidation:
        self._flush()
        summary = merge_results(self.results)
        return FileValidation(success=summary["success"], summary=summary, gx_results=self.results)


def build_data_docs(docs_dir: Path) -> Path | None:
    """Render Data Docs HTML for every result validated into ``docs_dir``'s context (once per run)."""
    with _LOCK:
        ctx = _CONTEXTS.get(str(docs_dir))
        if ctx is None:
            return None
        ctx.build_docs()
    index = Path(docs_dir) / "index.html"
    return index if index.is_file() else None


def forget_context(docs_dir: Path) -> None:
    """Drop a folder's GX context (and its in-memory results) once its docs are built."""
    with _LOCK:
        _CONTEXTS.pop(str(docs_dir), None)


def merge_results(results: list[dict]) -> dict:
    """One file-level result from chunk results: totals per expectation, success from ``mostly``."""
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
