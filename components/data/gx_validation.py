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
and output folder (``build_data_docs``). Importing GX takes about 3 s; it happens on the first
validation (importing it on a thread while the first file streams measured slower: the import
holds the GIL that the checks need).

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
        asset = self.context.data_sources.add_pandas("flowae_ingest").add_dataframe_asset("sample")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_sample")
        self.count = 0

    def validate(self, suite: dict, df, name: str) -> dict:
        """Validate ``df`` and keep the result for Data Docs: the batch is validated directly and the
        result stored as a checkpoint would store it, without a checkpoint and validation
        definition per file (their bookkeeping cost GX about half a second per file)."""
        import datetime as dt

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
        if self.site is not None:
            suite_id = ExpectationSuiteIdentifier(name=suite_obj.name)
            run_id = RunIdentifier(run_name=name, run_time=dt.datetime.now(dt.UTC))
            key = ValidationResultIdentifier(expectation_suite_identifier=suite_id, run_id=run_id,
                                             batch_identifier=batch.id)
            self.context.validation_results_store.store_validation_results(result, key, suite_id)
        return result.to_json_dict()

    def build_docs(self) -> None:
        if self.site is not None:
            self.context.build_data_docs(site_names=[self.site])


def _context(docs_dir: Path | None) -> _DocsContext:
    key = str(docs_dir)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = _DocsContext(docs_dir)
    return _CONTEXTS[key]


def validate_table(suite: dict, table: pa.Table, name: str, docs_dir: Path | None) -> FileValidation:
    """Validate ``table`` (typed rows; a ``row_number`` column is ignored) with the suite's
    expectations for the columns it has; the result also goes into ``docs_dir``'s Data Docs."""
    table = table.drop_columns([c for c in ("row_number",) if c in table.column_names])
    file_suite = suite_for_columns(suite, table.column_names)
    df = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    with _LOCK:
        ctx = _context(docs_dir)
        results = [ctx.validate(file_suite, df, name)]
    summary = merge_results(results)
    return FileValidation(success=summary["success"], summary=summary, gx_results=results)


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
