"""Shared by the benchmarks: run a contender in its own process and read its peak RSS, describe
the machine, and rewrite one marked section of docs/BENCHMARKS.md."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "BENCHMARKS.md"
CACHE = REPO / "data" / "bench"


#: Appended to every child's code: its own peak RSS, as the last line. ``VmHWM`` is the high-water
#: mark of the child's own address space; ``ru_maxrss`` (``wait4``, ``getrusage``) also carries the
#: RSS the process had before ``exec``, i.e. a copy of its parent's (a 1.6 GB pytest worker made a
#: 2 MB ingest look like 1.6 GB).
PEAK_RSS_LINE = """
import json as _json
with open("/proc/self/status") as _fh:
    _hwm = next(int(_l.split()[1]) for _l in _fh if _l.startswith("VmHWM:"))
print(_json.dumps({"vmhwm_kib": _hwm}))
"""


def run_child(code: str, args: list[str]) -> dict:
    """Run ``code`` in a fresh Python; it prints one JSON line; add its own peak RSS (bytes)."""
    proc = subprocess.Popen([sys.executable, "-c", code + PEAK_RSS_LINE, *args], stdout=subprocess.PIPE,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = proc.stdout.read()
    _, status, _ = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"benchmark child failed ({status}): {out[-2000:]!r}")
    return with_peak_rss(out.decode())


def with_peak_rss(stdout: str) -> dict:
    """The child's result (its last JSON line before the peak line) with ``peak_rss_bytes``."""
    lines = stdout.strip().splitlines()
    result = json.loads(lines[-2])
    result["peak_rss_bytes"] = json.loads(lines[-1])["vmhwm_kib"] * 1024
    return result


def machine() -> str:
    import torch

    cpu = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.machine()}, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def write_section(name: str, text: str) -> None:
    """Replace the block between ``<!-- name:begin -->`` and ``<!-- name:end -->`` (or append it)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    body = DOCS.read_text() if DOCS.is_file() else "# Benchmarks\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in body:
        body = body[:body.index(begin)] + block + body[body.index(end) + len(end):]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(body)


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"
