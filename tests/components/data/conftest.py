"""Real CIC-IDS2017 lines, to build small broken files from, and a fast ingest config."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.ingest import IngestConfig

MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"


@dataclass
class Real:
    """Lines of the real excerpts and helpers to write files from them."""

    shared: Path
    tmp: Path

    def lines(self, name: str = DDOS, rows: int = 5) -> list[bytes]:
        """Header + the first ``rows`` data lines of a real file, as raw bytes (no line ends)."""
        with open(self.shared / name, "rb") as fh:
            lines = fh.read(4_000_000).split(b"\n")
        return [line.rstrip(b"\r") for line in lines[: rows + 1]]

    def write(self, name: str, lines: list[bytes], end: bytes = b"\n") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(end.join(lines) + end)
        return path

    def cfg(self, **kw) -> IngestConfig:
        return IngestConfig(out=self.tmp / "out", run_gx=kw.pop("run_gx", False), **kw)

    def curated(self, stem: str) -> pa.Table:
        return pq.read_table(self.tmp / "out" / "curated" / f"{stem}.parquet")

    def quarantine(self, stem: str) -> pa.Table:
        return pq.read_table(self.tmp / "out" / "quarantine" / f"{stem}.parquet")

    @staticmethod
    def with_field(line: bytes, index: int, value: bytes) -> bytes:
        fields = line.split(b",")
        fields[index] = value
        return b",".join(fields)

    @staticmethod
    def counts(report) -> tuple[int, int, int]:
        """(rows in, curated, quarantined), after checking that nothing was lost."""
        assert report.rows_in == report.rows_curated + report.rows_quarantined, report
        return report.rows_in, report.rows_curated, report.rows_quarantined


@pytest.fixture
def real(shared_data, tmp_path) -> Real:
    return Real(shared_data, tmp_path)


@pytest.fixture(autouse=True)
def _no_gx_worker_left():
    """A test that ingests with GX but never finishes a run leaves no GX worker process behind."""
    yield
    from components.data.gx_validation import stop_all_workers

    stop_all_workers()
