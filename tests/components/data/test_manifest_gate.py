"""The gate before training reads the ingest manifest: a failed input or a failed data contract
stops the retrain, each named."""
from __future__ import annotations

from components.data.ingest import manifest_failures


def test_the_gate_names_each_failed_input_and_each_failed_contract():
    manifest = {"files": [
        {"source": "/in/monday.csv", "status": "ok", "validation_success": True},
        {"source": "/in/tuesday.csv", "status": "failed", "error": "no CIC-IDS2017 header"},
        {"source": "/in/wednesday.parquet", "status": "ok", "validation_success": False},
        {"source": "/in/thursday.csv", "status": "ok"},  # validation not run: not a failure
    ]}
    assert manifest_failures(manifest) == (["tuesday.csv (failed: no CIC-IDS2017 header)"], ["wednesday.parquet"])
    assert manifest_failures({"files": manifest["files"][:1]}) == ([], [])
