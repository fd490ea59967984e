"""Ingest benchmark: peak memory and throughput of ``flowae ingest`` on CSVs of 0.3 GB and 1 GB,
against ``pandas.read_csv`` + the same cleaning on the same file in the same run.

Why: ingest streams record batches so that a day file larger than memory is ingested in bounded
memory; this script is the evidence (peak RSS must stay under 1.5 GB) and tracks the speed goal
(ingest with validation at least 2x pandas, ``GOAL_RATIO``).

    .venv/bin/python benchmarks/ingest_memory.py [--gb 0.3 1.0] [--before TREE] [--write-docs]

``--before TREE`` also runs flowae from another source tree (e.g. ``git archive <commit> components
data_contracts | tar -x -C TREE``) on the same files, taking turns with the others: a before/after
pair on the same machine under the same load.

The synthetic CSV (``components.synth``, TrafficLabelling variant, real header and quirks) is
cached under ``data/bench/`` (git-ignored). Each contender runs in its own subprocess; its peak RSS
is the child's own ``VmHWM`` (``benchmarks.measure``); flowae's Great Expectations worker process
reports its own ``VmHWM`` and flowae's peak RSS is the sum of the two (an upper bound of what both
held at once). Not part of the test suite (a smoke test runs ``run_benchmark`` on a few MB).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.measure import PEAK_RSS_LINE, with_peak_rss

DEFAULT_CACHE = REPO / "data" / "bench"
LIMIT_BYTES = 1_500_000_000  # 1.5 GB
GOAL_RATIO = 2.0  # flowae ingest with validation, MB/s, over pandas.read_csv + the same cleaning
#: The same benchmark before GX ran on a sample and reading/writing ran beside the checks
#: (commit e36ed92: GX on every row in 100,000-row chunks, one thread), same machine.
BEFORE = {"date": "2026-12-02", "commit": "e36ed92", "bytes": 1_019_618_294, "flowae_s": 83.4,
          "flowae_no_gx_s": 22.7, "pandas_s": 27.6, "ratio": 0.33, "peak_rss_bytes": 1_159_299_072}
DOCS = REPO / "docs" / "BENCHMARKS.md"
SECTION = "## Ingest"


def ensure_synthetic_csv(target_bytes: int, cache: Path = DEFAULT_CACHE, seed: int = 0,
                         variant: str = "TrafficLabelling") -> Path:
    """A synthetic day file of at least ``target_bytes``; generated once, then reused."""
    from components.synth import SynthConfig, write_days

    cache.mkdir(parents=True, exist_ok=True)
    probe_dir = cache / "probe"
    probe = next(write_days(SynthConfig(rows=20_000, seed=seed, variant=variant, days=["friday_ddos"]),
                            probe_dir))
    bytes_per_row = probe.stat().st_size / 20_000
    rows = int(target_bytes / bytes_per_row * 1.02) + 1
    target = cache / f"synth-{variant}-{rows}-s{seed}.csv"
    if target.is_file() and target.stat().st_size >= target_bytes:
        return target
    tmp_dir = cache / f"tmp-{rows}"
    written = next(write_days(SynthConfig(rows=rows, seed=seed, variant=variant, days=["friday_ddos"]),
                              tmp_dir, progress=True))
    os.replace(written, target)
    tmp_dir.rmdir()
    return target


_FLOWAE = """
import json, sys, time
from pathlib import Path
from components.data.ingest import IngestConfig, ingest_paths
t = time.perf_counter()
# the reference quarantines rows with unusable values: flowae does the same cleaning here
r = ingest_paths([sys.argv[1]], IngestConfig(out=Path(sys.argv[2]), run_gx=sys.argv[3] == "1",
                                           invalid_values="quarantine"))
rep = r.reports[0]
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rep.rows_in, "status": rep.status,
                  "curated": rep.rows_curated, "quarantined": rep.rows_quarantined,
                  "gx_success": rep.validation_success, "error": rep.error,
                  "gx_worker_peak_rss_bytes": _worker_peak()}))
"""
_FLOWAE = _FLOWAE.replace("t = time.perf_counter()", """def _worker_peak():
    try:
        from components.data import gx_validation
    except ImportError:
        return 0
    return getattr(gx_validation, "worker_peak_rss_bytes", 0)
t = time.perf_counter()""", 1)

_PANDAS = """
import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from components.data.contract import load_contract
t = time.perf_counter()
c = load_contract()
df = pd.read_csv(sys.argv[1], encoding="latin-1", low_memory=False)
df.columns = [n or str(r) for r, n in zip(df.columns, c.resolve_header(list(df.columns)))]
bad = np.zeros(len(df), dtype=bool)
for col in c.columns:
    if col.name not in df:
        continue
    if col.dtype in ("float64", "int64"):
        v = pd.to_numeric(df[col.name], errors="coerce")
        bad |= ~np.isfinite(v.to_numpy(dtype="float64", na_value=np.nan))
        if col.min is not None: bad |= (v < col.min).to_numpy()
        if col.max is not None: bad |= (v > col.max).to_numpy()
        df[col.name] = v
    elif col.dtype == "timestamp":
        ts = pd.to_datetime(df[col.name], format="%d/%m/%Y %H:%M", errors="coerce")
        bad |= ts.isna().to_numpy()
        df[col.name] = ts
labels = {u: c.normalise_label(str(u)) for u in df["label"].unique()}
df["label"] = df["label"].map(labels)
bad |= ~df["label"].isin(c.known_labels).to_numpy()
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
df[~bad].to_parquet(out / "curated.parquet", index=False)
df[bad].astype(str).to_parquet(out / "quarantine.parquet", index=False)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(df), "status": "ok",
                  "curated": int((~bad).sum()), "quarantined": int(bad.sum())}))
"""


_GX_IMPORT = """
import json, time
t = time.perf_counter()
import great_expectations
print(json.dumps({"seconds": time.perf_counter() - t, "rows": 0, "status": "ok", "curated": 0,
                  "quarantined": 0}))
"""


def _measure(code: str, args: list[str], root: Path = REPO) -> dict:
    """Run ``code`` in a fresh interpreter with ``root`` as its source tree; return its JSON line
    plus its own peak RSS (bytes), plus its GX worker's if it had one."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", code + PEAK_RSS_LINE, *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, status, _ = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {stderr.strip()[-2000:]}")
    result = with_peak_rss(stdout)
    result["main_peak_rss_bytes"] = result["peak_rss_bytes"]
    result["peak_rss_bytes"] += result.get("gx_worker_peak_rss_bytes") or 0
    return result


def run_benchmark(csv_path: Path, work: Path, run_gx: bool = True, baseline: bool = True,
                  without_gx: bool = False, repeat: int = 1, before: Path | None = None) -> dict:
    """Ingest ``csv_path`` with flowae (and pandas); return sizes, times, rates and peak RSS.

    ``without_gx`` adds a flowae run without Great Expectations, to show the reader's own cost;
    ``before`` adds flowae from that source tree (same options), for a before/after pair.
    ``repeat`` runs every contender that many times, taking turns, and keeps each one's fastest
    run and its highest peak RSS: on a shared machine other people's jobs slow single runs."""
    size = csv_path.stat().st_size
    csv_path, work = Path(csv_path).absolute(), Path(work).absolute()
    gx_flag = "1" if run_gx else "0"
    contenders = {"flowae": (_FLOWAE, [str(csv_path), str(work / "flowae"), gx_flag], REPO)}
    if before is not None:
        contenders["flowae_before"] = (_FLOWAE, [str(csv_path), str(work / "flowae-before"), gx_flag],
                                       Path(before).absolute())
    if without_gx and run_gx:
        contenders["flowae_no_gx"] = (_FLOWAE, [str(csv_path), str(work / "flowae-nogx"), "0"], REPO)
    if baseline:
        contenders["pandas"] = (_PANDAS, [str(csv_path), str(work / "pandas")], REPO)
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(max(1, repeat)):
        for name, (code, args, root) in contenders.items():
            runs[name].append(_measure(code, args, root))
    result = {"file": str(csv_path), "bytes": size, "gx": run_gx, "repeat": max(1, repeat)}
    for name, measured in runs.items():
        best = dict(min(measured, key=lambda r: r["seconds"]))
        for key in ("peak_rss_bytes", "main_peak_rss_bytes", "gx_worker_peak_rss_bytes"):
            best[key] = max(r.get(key) or 0 for r in measured)
        best["all_seconds"] = [round(r["seconds"], 2) for r in measured]
        best["mb_s"] = size / 1e6 / best["seconds"]
        best["rows_s"] = best["rows"] / best["seconds"]
        result[name] = best
    if baseline:
        for name in ("flowae", "flowae_before", "flowae_no_gx"):
            if name in result:
                result[f"{name}_ratio"] = result[name]["mb_s"] / result["pandas"]["mb_s"]
        result["throughput_ratio"] = result["flowae_ratio"]
        if run_gx:  # measured alone: what the GX worker imports while the rows stream
            result["gx_import_seconds"] = min(_measure(_GX_IMPORT, [])["seconds"]
                                              for _ in range(max(1, repeat)))
    result["under_limit"] = result["flowae"]["peak_rss_bytes"] < LIMIT_BYTES
    return result


def render_section(results: dict | list[dict], command: str, date: str, machine: str) -> str:
    """The Ingest section of docs/BENCHMARKS.md for one or more file sizes."""
    from components.data.ingest import IngestConfig

    results = [results] if isinstance(results, dict) else list(results)
    gib = 1024**3
    sample = IngestConfig.gx_sample_rows

    def rss(r: dict) -> str:
        text = f"{r['peak_rss_bytes'] / gib:.2f} GiB ({r['peak_rss_bytes'] / 1e9:.2f} GB)"
        if r.get("gx_worker_peak_rss_bytes"):
            text += (f" = {r['main_peak_rss_bytes'] / 1e9:.2f} + GX worker "
                     f"{r['gx_worker_peak_rss_bytes'] / 1e9:.2f}")
        return text

    def row(size: str, label: str, r: dict) -> str:
        runs = ", ".join(f"{x:.1f}" for x in r.get("all_seconds", [r["seconds"]]))
        return (f"| {size} | {label} | {r['seconds']:.1f} | {r['mb_s']:.1f} | {r['rows_s']:,.0f} | "
                f"{rss(r)} | {r['curated']:,} | {r['quarantined']:,} | {runs} |")

    first = results[0]
    lines = [
        SECTION, "",
        ("Streaming ingest of synthetic TrafficLabelling day files ("
         + ", ".join(f"{r['bytes'] / 1e9:.2f} GB, {r['flowae']['rows']:,} rows" for r in results)
         + ", from `components.synth`) versus `pandas.read_csv` + the same cleaning "
         "(canonical names, numeric coercion, inf/NaN/range/label checks, timestamp parse, curated + "
         "quarantine parquet) on the same file in the same run. Each contender runs in its own "
         "process; peak RSS is that process's own `VmHWM`, for flowae plus its Great Expectations "
         "worker process's own `VmHWM` (the sum: an upper bound of what both held at once); times "
         "start after the contender's own module imports (Great Expectations is imported during "
         f"flowae's run, in its worker, and counted). Each contender ran {first.get('repeat', 1)} "
         "time(s), taking turns; the table shows each one's fastest run (all runs in the last "
         "column) and its highest peak RSS."), "",
        f"- Machine: {machine}", f"- Date: {date}", f"- Command: `{command}`", "",
        "| file | contender | seconds | MB/s | rows/s | peak RSS | curated | quarantined | all runs (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        size = f"{r['bytes'] / 1e9:.2f} GB"
        lines.append(row(size, f"flowae ingest (GX on a {sample:,}-row sample, in its worker process)"
                         if r.get("gx", True) else "flowae ingest (no GX)", r["flowae"]))
        if "flowae_before" in r:
            lines.append(row(size, "flowae ingest before (`--before` tree: GX in-process, after the rows)",
                             r["flowae_before"]))
        if "flowae_no_gx" in r:
            lines.append(row(size, "flowae ingest without GX (reader + checks + parquet only)",
                             r["flowae_no_gx"]))
        if "pandas" in r:
            lines.append(row(size, "pandas.read_csv + cleaning (whole file in memory)", r["pandas"]))
    lines.append("")
    for r in results:
        if "pandas" not in r:
            continue
        ratio = r["throughput_ratio"]
        text = (f"- {r['bytes'] / 1e9:.2f} GB: throughput ratio flowae / pandas **{ratio:.2f}x** (MB/s) "
                f"against a goal of **{GOAL_RATIO:.1f}x**: **{'met' if ratio >= GOAL_RATIO else 'NOT met'}**")
        if "flowae_before_ratio" in r:
            text += f"; before **{r['flowae_before_ratio']:.2f}x**"
        if "flowae_no_gx_ratio" in r:
            text += f"; without GX **{r['flowae_no_gx_ratio']:.2f}x**"
        text += (f". Peak RSS limit 1.5 GB for flowae: **{'met' if r['under_limit'] else 'NOT met'}**"
                 f" ({r['flowae']['peak_rss_bytes'] / 1e9:.2f} GB).")
        lines.append(text)
    imports = [r["gx_import_seconds"] for r in results if "gx_import_seconds" in r]
    if imports:
        lines += ["", (f"Importing Great Expectations alone takes {min(imports):.1f} s here; flowae's "
                       "worker process does it while the rows stream. What still follows the last "
                       "row is GX's validation of the sample and the Data Docs build: see \"Where "
                       "the time went\" below for the profile.")]
    b = BEFORE
    lines += ["", (f"Earlier (commit {b['commit']}, {b['date']}, same machine and command, a "
                   f"{b['bytes'] / 1e9:.2f} GB file): flowae {b['flowae_s']:.1f} s with GX on every "
                   f"row in 100,000-row chunks, {b['flowae_no_gx_s']:.1f} s without GX, pandas "
                   f"{b['pandas_s']:.1f} s: **{b['ratio']:.2f}x**, peak RSS "
                   f"{b['peak_rss_bytes'] / 1e9:.2f} GB. Great Expectations took about 72 % of the "
                   "time."),
              "", ("What changed since: GX validates a seeded sample of each file (drawn evenly "
                   "across all its batches, size in `validation/<stem>.json`) once, instead of every "
                   "row in chunks; the exact per-row checks that decide curated vs quarantine stay "
                   "vectorised over every row (numeric columns as one matrix per batch, only "
                   "columns with a value out of bounds looked at one by one, each distinct "
                   "timestamp text parsed once); reading (and hashing the input as it is read, no "
                   "second pass) runs ahead and parquet writing behind the checks on worker threads "
                   "(pyarrow releases the GIL); curated parquet is lz4 with dictionaries only for "
                   "text columns and min/max statistics only where readers filter. Then (issue 24) "
                   "GX moved to a worker process started when a file's ingest starts: it imports "
                   "GX and builds its context on the other core while the rows stream, validates "
                   "the sample while the last batches are written, and stores the result for Data "
                   "Docs after answering (`components/data/gx_worker.py`). pandas does no GX and no "
                   "hashing."),
              ""]
    return "\n".join(lines)


def write_section(section: str, docs: Path = DOCS) -> None:
    """Replace (or append) the Ingest section of docs/BENCHMARKS.md; other sections stay as they are."""
    text = docs.read_text(encoding="utf-8") if docs.is_file() else "# Benchmarks\n\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        ends = [i for i in (text.find("\n## ", start + len(SECTION)),
                            text.find("\n<!-- ", start + len(SECTION))) if i != -1]
        end = min(ends) if ends else -1  # the next section, or the marker another script put before it
        rest = text[end + 1:] if end != -1 else ""
        text = text[:start] + section.rstrip("\n") + ("\n\n" + rest if rest else "\n")
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, nargs="+", default=[0.3, 1.0],
                        help="sizes of the synthetic CSVs (GB, 1e9 bytes)")
    parser.add_argument("--no-gx", action="store_true", help="skip Great Expectations")
    parser.add_argument("--no-baseline", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--before", type=Path, default=None,
                        help="also run flowae from this source tree (a before/after pair)")
    parser.add_argument("--write-docs", action="store_true", help="update docs/BENCHMARKS.md")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per contender, taking turns; the fastest of each is reported")
    parser.add_argument("--machine", default=f"{os.cpu_count()} cores, "
                        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB RAM, "
                        f"{platform.system()} {platform.machine()}")
    parser.add_argument("--date", default=dt.date.today().isoformat())
    args = parser.parse_args(argv)
    results = []
    for gb in args.gb:
        csv_path = ensure_synthetic_csv(int(gb * 1e9))
        result = run_benchmark(csv_path, DEFAULT_CACHE / "runs", run_gx=not args.no_gx,
                               baseline=not args.no_baseline, without_gx=not args.no_gx,
                               repeat=args.repeat, before=args.before)
        print(json.dumps(result, indent=2), flush=True)
        if "throughput_ratio" in result:
            before = (f", before {result['flowae_before_ratio']:.2f}x"
                      if "flowae_before_ratio" in result else "")
            print(f"{result['bytes'] / 1e9:.2f} GB: throughput ratio flowae / pandas: "
                  f"{result['throughput_ratio']:.2f}x (goal {GOAL_RATIO:.1f}x{before}); peak RSS "
                  f"{result['flowae']['peak_rss_bytes'] / 1e9:.2f} GB (limit {LIMIT_BYTES / 1e9:.1f} GB)",
                  flush=True)
        results.append(result)
    if args.write_docs:
        command = shlex.join([".venv/bin/python", "benchmarks/ingest_memory.py",
                              *(argv if argv is not None else sys.argv[1:])])
        write_section(render_section(results, command, args.date, args.machine))
    return 0 if all(r["under_limit"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
