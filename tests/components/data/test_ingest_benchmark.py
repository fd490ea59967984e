"""Smoke test of the ingest benchmark's functions on a few MB (the 1 GB run is not a test)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _bench():
    spec = importlib.util.spec_from_file_location("ingest_memory", REPO / "benchmarks" / "ingest_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_on_a_small_synthetic_file(tmp_path):
    bench = _bench()
    csv_path = bench.ensure_synthetic_csv(2_000_000, cache=tmp_path / "cache")
    assert csv_path.stat().st_size >= 2_000_000
    assert bench.ensure_synthetic_csv(2_000_000, cache=tmp_path / "cache") == csv_path  # cached
    result = bench.run_benchmark(csv_path, tmp_path / "work", run_gx=False)
    f, p = result["flowae"], result["pandas"]
    assert f["status"] == "ok" and f["rows"] == p["rows"]
    assert f["curated"] + f["quarantined"] == f["rows"]
    assert f["curated"] == p["curated"]  # same cleaning, same answer
    assert 0 < f["peak_rss_bytes"] < bench.LIMIT_BYTES
    # the same bytes for both: the throughput ratio is pandas' time over flowae's
    assert f["mb_s"] == pytest.approx(result["bytes"] / 1e6 / f["seconds"])
    assert result["throughput_ratio"] == pytest.approx(p["seconds"] / f["seconds"])
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text("# Benchmarks\n\n## Training\n\nkept\n", encoding="utf-8")
    bench.write_section(bench.render_section(result, "cmd", "2026-11-23", "test"), docs)
    bench.write_section(bench.render_section(result, "cmd", "2026-11-23", "test"), docs)
    text = docs.read_text(encoding="utf-8")
    assert text.count("## Ingest") == 1 and "## Training\n\nkept" in text and "\n\n## Training" in text
    # another script's marker right after the Ingest section stays where it is
    docs.write_text(text.replace("## Training", "<!-- training:begin -->\n## Training"), encoding="utf-8")
    bench.write_section(bench.render_section([result, result], "cmd", "2026-11-23", "test"), docs)
    text = docs.read_text(encoding="utf-8")
    assert "\n\n<!-- training:begin -->\n## Training\n\nkept" in text and text.count("## Ingest") == 1
    assert "against a goal of **2.0x**" in text and "Earlier (commit e36ed92" in text
    assert f"throughput ratio flowae / pandas **{result['throughput_ratio']:.2f}x**" in text
