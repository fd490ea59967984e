"""Speed against the references a user would otherwise use, every figure measured in the same run,
each contender in its own process (its peak RSS is its own):

1. ingest MB/s with validation on, against ``pandas.read_csv`` with the same cleaning
   (``benchmarks/ingest_memory.py``);
2. windows built per second against the loop of the original notebooks, exactly
   ``for i in range(len(X) - T): Xs.append(X.iloc[i:i + T].values)`` on a pandas frame, 1M flows;
3. training windows/s per model family and baseline;
4. scoring flows/s end to end from parquet and model only, against scikit-learn's IsolationForest
   (200 trees) on the same flows, at 1e5, 1e6 and 1e7 flows (``benchmarks/scoring.py``);
5. training-data preparation (curated parquet -> split, scaled float32 matrix, windows) at 1e5,
   1e6 and 2.8e6 flows (the size of the whole CIC-IDS2017 week): seconds and peak RSS;
6. the same training and scoring figures on a CUDA GPU when one is visible.

    python benchmarks/speed.py [--quick] [--write-docs]       # make bench-speed

``--quick`` runs small sizes (a smoke run, minutes); the documented figures use the defaults.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.measure import CACHE, machine, mb, run_child, write_section

SECTION = "speed"
TRAIN_MODELS = ("lstm_ae", "lstm_ae_seq", "attention_ae", "sparse_lstm_ae", "iae_lstm_kl",
                "persistence", "pca", "isolation_forest")

_NOTEBOOK = """
import json, sys, time
import numpy as np, pandas as pd
n, f, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
X = pd.DataFrame(np.random.default_rng(0).standard_normal((n, f), dtype=np.float32))
t = time.perf_counter()
Xs = []
for i in range(len(X) - T):
    Xs.append(X.iloc[i:i + T].values)
print(json.dumps({"seconds": time.perf_counter() - t, "windows": len(Xs)}))
"""

_FLOWAE_WINDOWS = """
import json, sys, time
import numpy as np
from components.learn.windows import benign_window_mask, build_windows, iter_batches
n, f, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
x = np.random.default_rng(0).standard_normal((n, f), dtype=np.float32)
benign = np.ones(n, bool)
t = time.perf_counter()
w = build_windows(x, T, 1)
mask = benign_window_mask(benign, w)
built = time.perf_counter() - t
idx = np.flatnonzero(mask)[:200_000]
t = time.perf_counter()
copied = sum(len(b) for b in iter_batches(w, idx, 4096, shuffle=True, seed=0))
print(json.dumps({"seconds": built, "windows": len(w), "batch_windows_per_s": copied / (time.perf_counter() - t)}))
"""

_PREPARE = """
import json, sys, time
from pathlib import Path
from components.detect.fit import prepare_job
from components.jobs import train_job
t = time.perf_counter()
p = prepare_job(train_job(data=Path(sys.argv[1]), train={"device": "cpu"}))
print(json.dumps({"seconds": time.perf_counter() - t, "flows": len(p.data.flows),
                  "windows": len(p.data.windows), "features": len(p.data.transform.feature_names)}))
"""


def bench_windows(n: int, features: int = 70, window: int = 16) -> dict:
    ours = run_child(_FLOWAE_WINDOWS, [str(n), str(features), str(window)])
    loop = run_child(_NOTEBOOK, [str(n), str(features), str(window)])
    return {"flows": n, "ours_windows_per_s": ours["windows"] / ours["seconds"],
            "loop_windows_per_s": loop["windows"] / loop["seconds"], "ours_rss": ours["peak_rss_bytes"],
            "loop_rss": loop["peak_rss_bytes"], "batch_windows_per_s": ours["batch_windows_per_s"]}


def bench_training(device: str, steps: int, batch: int, features: int = 70, window: int = 16,
                   hidden: int = 64) -> list[dict]:
    """Windows/s of one optimisation step per network; fit windows/s for the baselines."""
    import torch

    from components.learn.models import build_model
    from components.learn.training import _autocast

    rows = []
    dev = torch.device(device)
    for name in TRAIN_MODELS:
        torch.manual_seed(0)
        model = build_model(name, n_features=features, window=window, hidden=hidden)
        data = torch.randn(batch, window, features)
        if not getattr(model, "trainable", True):
            if dev.type != "cpu":
                continue
            x = data.numpy()
            started = time.perf_counter()
            model.fit(x)
            rows.append({"model": name, "device": device, "windows_per_s": batch / (time.perf_counter() - started),
                         "what": "fit"})
            continue
        model.to(dev)
        data = data.to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        with torch.no_grad():
            model.prepare([data])
        for _ in range(2):
            _step(model, optimizer, data, dev, _autocast)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            _step(model, optimizer, data, dev, _autocast)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        rows.append({"model": name, "device": device, "windows_per_s": steps * batch / (time.perf_counter() - started),
                     "what": "train step" + (" (bf16)" if dev.type == "cuda" else "")})
        print(rows[-1], flush=True)
    return rows


def _step(model, optimizer, data, device, autocast) -> None:
    """One optimisation step, as the trainer takes it."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(device):
        loss = model.loss(data)
    loss.backward()
    optimizer.step()


def ingested_synthetic(rows: int) -> Path:
    """A synthetic Monday of ``rows`` flows, ingested (curated parquet + manifest), cached."""
    from components.data.ingest import IngestConfig, ingest_paths
    from components.synth import SynthConfig, write_days

    out = CACHE / f"prepare-{rows}"
    if (out / "manifest.json").is_file():
        return out
    raw = list(write_days(SynthConfig(rows=rows, seed=2, variant="TrafficLabelling", format="parquet",
                                      days=["monday"]), CACHE / f"prepare-raw-{rows}", progress=True))
    ingest_paths([str(p) for p in raw], IngestConfig(out=out, run_gx=False))
    for p in raw:
        p.unlink()
    return out


def bench_prepare(sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        result = run_child(_PREPARE, [str(ingested_synthetic(n))])
        rows.append({"flows": n, "seconds": result["seconds"], "flows_per_s": n / result["seconds"],
                     "rss": result["peak_rss_bytes"], "windows": result["windows"]})
        print(rows[-1], flush=True)
    return rows


def bench_ingest(gb: float) -> dict:
    from benchmarks import ingest_memory

    csv = ingest_memory.ensure_synthetic_csv(int(gb * 1e9))
    return ingest_memory.run_benchmark(csv, CACHE / "ingest-work", repeat=2)


def scale_figure(scoring: list[dict], prepare: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for rows, label, rate, rss in ((scoring, "scoring (end to end)", "flowae_e2e", "flowae_rss"),
                                   (prepare, "training preparation", "flows_per_s", "rss")):
        flows = [r["flows"] for r in rows]
        left.plot(flows, [r[rate] for r in rows], marker="o", label=label)
        right.plot(flows, [r[rss] / 1e9 for r in rows], marker="o", label=label)
    left.set(xscale="log", xlabel="flows", ylabel="flows/s", title="Throughput")
    right.set(xscale="log", xlabel="flows", ylabel="peak RSS (GB)", title="Peak memory")
    for ax in (left, right):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def render(out: dict, command: str) -> str:
    w, ingest = out["windows"], out.get("ingest")
    lines = ["## Speed against the references", "", f"- Machine: {machine()}",
             f"- Date: {dt.date.today().isoformat()}", f"- Command: `{command}` ({out['seconds'] / 60:.0f} min)",
             "", "| goal | measured | |", "|---|---|---|"]
    ratio = w["ours_windows_per_s"] / w["loop_windows_per_s"]
    copied = w["batch_windows_per_s"] / w["loop_windows_per_s"]
    lines.append(f"| windows at least 100x the notebook loop at {w['flows']:,} flows | **{ratio:,.0f}x** as "
                 f"strided views, no window copied ({w['ours_windows_per_s']:,.0f} vs "
                 f"{w['loop_windows_per_s']:,.0f} windows/s); **{copied:,.1f}x** materialised as float32 "
                 f"training batches, the copy the loop makes of every window | "
                 f"{'met' if ratio >= 100 else 'not met'} for views |")
    if ingest:
        r = ingest["throughput_ratio"]
        lines.append(f"| ingest with validation at least 2x pandas.read_csv + cleaning | **{r:.2f}x** | "
                     f"{'met' if r >= 2 else 'not met'} |")
        rss = ingest["flowae"]["peak_rss_bytes"]
        lines.append(f"| ingest peak RSS under 1.5 GB on a {ingest['bytes'] / 1e9:.2f} GB CSV | **{mb(rss)}** | "
                     f"{'met' if rss < 1.5e9 else 'not met'} |")
    else:
        lines.append("| ingest with validation at least 2x pandas.read_csv + cleaning; peak RSS under 1.5 GB | "
                     "not rerun here (`--ingest-gb 0`): see the Ingest section above (`make bench-ingest`) | |")
    s = out["scoring"]
    speed = min(r["flowae_model"] / r["forest_model"] for r in s)
    e2e = min(r["flowae_e2e"] / r["forest_e2e"] for r in s)
    lines.append(f"| scoring at least IsolationForest's flows/s on the CPU | model only **{speed:.2f}x**, end to end "
                 f"**{e2e:.2f}x** | {'met' if min(speed, e2e) >= 1 else 'not met'} |")
    rss = s[-1]["flowae_rss"] / s[0]["flowae_rss"]
    lines.append(f"| scoring peak RSS within 1.5x from {s[0]['flows']:,} to {s[-1]['flows']:,} flows | **{rss:.2f}x** | "
                 f"{'met' if rss <= 1.5 else 'not met'} |")
    p = out["prepare"]
    lines.append(f"| preparing {p[-1]['flows']:,} flows for training under 4 GB | **{mb(p[-1]['rss'])}** | "
                 f"{'met' if p[-1]['rss'] < 4e9 else 'not met'} |")
    lines += ["", "### Windows", "",
              "| builder | windows/s | peak RSS |", "|---|---:|---:|",
              f"| flowae (`build_windows` strided views + benign mask) | {w['ours_windows_per_s']:,.0f} | {mb(w['ours_rss'])} |",
              f"| notebook loop (`X.iloc[i:i + T].values` per window) | {w['loop_windows_per_s']:,.0f} | {mb(w['loop_rss'])} |",
              f"| flowae float32 batches of 4096 for training (`iter_batches`) | {w['batch_windows_per_s']:,.0f} | |",
              "", "### Training throughput (hidden 64, T=16, 70 features)", "",
              "| model | device | what | windows/s |", "|---|---|---|---:|"]
    lines += [f"| {r['model']} | {r['device']} | {r['what']} | {r['windows_per_s']:,.0f} |" for r in out["training"]]
    lines += ["", "### Scoring at scale (see the scoring section for every column)", "",
              "| flows | flowae end to end | flowae model only | IsolationForest model only | IsolationForest end to end | flowae peak RSS |",
              "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['flows']:,} | {r['flowae_e2e']:,.0f}/s | {r['flowae_model']:,.0f}/s | {r['forest_model']:,.0f}/s "
              f"| {r['forest_e2e']:,.0f}/s | {mb(r['flowae_rss'])} |" for r in s]
    lines += ["", "### Training preparation at scale", "",
              "| flows | seconds | flows/s | peak RSS |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['flows']:,} | {r['seconds']:.1f} | {r['flows_per_s']:,.0f} | {mb(r['rss'])} |" for r in p]
    lines += ["", "![throughput and peak memory against size](speed_scale.png)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--ingest-gb", type=float, default=1.0, help="0: leave ingest to make bench-ingest")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    quick = args.quick
    from benchmarks import scoring

    out = {"windows": bench_windows(200_000 if quick else 1_000_000)}
    print(out["windows"], flush=True)
    out["training"] = bench_training("cpu", steps=3 if quick else 10, batch=1024)
    if torch.cuda.is_available():
        out["training"] += bench_training("cuda", steps=50 if quick else 200, batch=4096)
    out["scoring"] = scoring.run([100_000, 300_000] if quick else [100_000, 1_000_000, 10_000_000])
    out["prepare"] = bench_prepare([100_000, 300_000] if quick else [100_000, 1_000_000, 2_800_000])
    out["ingest"] = None if quick or args.ingest_gb <= 0 else bench_ingest(args.ingest_gb)
    out["seconds"] = time.perf_counter() - started
    command = "python benchmarks/speed.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = render(out, command.strip())
    print(text)
    if args.write_docs:
        scale_figure(out["scoring"], out["prepare"], REPO / "docs" / "speed_scale.png")
        write_section(SECTION, text)
        write_section(scoring.SECTION, scoring.render(out["scoring"], command.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
