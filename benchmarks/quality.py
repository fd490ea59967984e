"""Detection quality on real CIC-IDS2017 rows, every model beside the baselines, several seeds.

The protocol of DESIGN.md through the code ``flowae compare`` runs (``components.detect.compare``):
train on the earlier benign flows of the training file, validate and calibrate on later ones, and
test the attack files against (a) the held-out later benign flows of the same day and (b) benign
flows of *other days* (``week-benign-sample``), which shows how far a threshold and a model
transfer. Reported per model, mean and spread over seeds: flow-level AUROC per attack against
each benign set, AUPRC, F1 and recall per attack at the calibrated threshold, FPR on same-day and
on other-day benign; and a plot with every model's ROC (attacks vs other-day benign).

    python benchmarks/quality.py                      # the shared rows, 3 seeds, all models
    python benchmarks/quality.py --data A.csv B.csv --train-files A --other-day C.csv
    python benchmarks/quality.py --write-docs         # rewrite the section in docs/BENCHMARKS.md

No labels reach training or calibration; nothing is tuned on the test attacks; every model gets
the same data, split and budget.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.data.ingest import IngestConfig, ingest_paths
from components.detect import compare, plots
from components.detect.fit import DetectorConfig, TrainJob
from components.learn.training import TrainConfig

SHARED = REPO.parent / "shared" / "data" / "cicids2017"
DEFAULT_FILES = ["friday-afternoon-benign-head.MachineLearningCVE.csv", "friday-ddos-1000.TrafficLabelling.csv",
                 "friday-portscan-1000.TrafficLabelling.csv", "week-benign-sample.CICIDS2017_sample.csv"]
MARK_BEGIN, MARK_END = "<!-- quality:begin -->", "<!-- quality:end -->"


def auroc(benign: np.ndarray, attack: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(benign) == 0 or len(attack) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(benign)), np.ones(len(attack))], np.r_[benign, attack]))


def measure(result: compare.ModelResult, training_file: str, other_day: str | None) -> dict:
    """Per-test-set figures from one model's test scores (split by file and label)."""
    s = result.scored
    threshold = result.fit.detector.threshold
    same_day = (s.files == training_file) & (s.labels == "BENIGN")
    other = (s.files == other_day) & (s.labels == "BENIGN") if other_day else np.zeros(len(s.files), bool)
    attacks = sorted(set(s.labels[s.labels != "BENIGN"].tolist()))
    row = {"fpr_same_day": float((s.scores[same_day] > threshold).mean()) if same_day.any() else np.nan,
           "fpr_other_day": float((s.scores[other] > threshold).mean()) if other.any() else np.nan,
           "auprc": result.evaluation.auprc, "f1": result.evaluation.f1,
           "epochs": len(result.fit.train.history), "seconds": result.seconds}
    for label in attacks:
        mask = s.labels == label
        row[f"auroc {label} vs same-day"] = auroc(s.scores[same_day], s.scores[mask])
        if other.any():
            row[f"auroc {label} vs other-day"] = auroc(s.scores[other], s.scores[mask])
        row[f"recall {label}"] = float((s.scores[mask] > threshold).mean())
    return row


def job_for_seed(data: Path, training_stem: str, seed: int, args) -> TrainJob:
    from components.detect import defaults

    train = {**defaults.TRAIN, "device": args.device, "seed": seed}
    for key in ("epochs", "window", "stride", "hidden"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    return TrainJob(data=data, files=(training_stem,), train=TrainConfig(**train),
                    detector=DetectorConfig(calibration=args.calibration))


def spec_job(spec: str, job: TrainJob, calibration_for: dict[str, str]) -> TrainJob:
    """The recommended model keeps its own calibration; every other model the plain quantile."""
    method = calibration_for.get(spec, job.detector.calibration)
    return job.model_copy(update={"detector": job.detector.model_copy(update={"calibration": method})})


def run(args) -> dict:
    files = [Path(f) for f in args.data] if args.data else [SHARED / f for f in DEFAULT_FILES]
    training_stem = args.train_files or files[0].stem
    other_day = Path(args.other_day).stem if args.other_day else (
        "week-benign-sample.CICIDS2017_sample" if not args.data else None)
    specs = compare.resolve_models(args.models)
    work = Path(args.work or tempfile.mkdtemp(prefix="flowae-quality-"))
    ingest_paths([str(f) for f in files], IngestConfig(out=work / "ingested", run_gx=False))
    from components.detect import defaults

    calibration_for = {defaults.TRAIN["model"]: defaults.DETECTOR["calibration"]}
    rows: dict[str, list[dict]] = {spec: [] for spec in specs}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for seed in args.seeds:
        base = job_for_seed(work / "ingested", training_stem, seed, args)
        for spec in specs:
            started = time.perf_counter()
            result = compare.run_model(spec, spec_job(spec, base, calibration_for))
            row = measure(result, f"{training_stem}.parquet", f"{other_day}.parquet" if other_day else None)
            rows[spec].append(row)
            print(f"seed {seed} {spec:<22} " + "  ".join(f"{k}={v:.3f}" for k, v in row.items()
                                                       if isinstance(v, float) and "auroc" in k)
                  + f"  fpr_other={row['fpr_other_day']:.3f} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
            if seed == args.seeds[0]:
                s = result.scored
                keep = (s.labels != "BENIGN") | ((s.files == f"{other_day}.parquet") if other_day else True)
                curves[spec] = (s.scores[keep], (s.labels != "BENIGN")[keep])
    return {"rows": rows, "curves": curves, "files": [f.name for f in files], "training": training_stem,
            "other_day": other_day, "seeds": list(args.seeds)}


def table(rows: dict[str, list[dict]]) -> str:
    """Mean ± standard deviation over seeds, one line per model, sorted by other-day AUROC."""
    columns = [k for k in next(iter(rows.values()))[0] if k not in ("seconds",)]

    def stat(spec, key):
        values = np.asarray([r[key] for r in rows[spec]], float)
        return np.nanmean(values), np.nanstd(values)

    order_key = next((k for k in columns if k.endswith("vs other-day")), columns[0])
    ordered = sorted(rows, key=lambda s: -np.nanmean([v for k in columns if k.endswith("vs other-day")
                                                       for v in [stat(s, k)[0]]] or [stat(s, order_key)[0]]))
    head = "| model | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [head, rule]
    for spec in ordered:
        cells = []
        for key in columns:
            mean, std = stat(spec, key)
            cells.append(f"{mean:.0f}" if key == "epochs" else f"{mean:.3f} ± {std:.3f}")
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_docs(text: str, doc: Path) -> None:
    body = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    if MARK_BEGIN in body:
        start, end = body.index(MARK_BEGIN), body.index(MARK_END) + len(MARK_END)
        body = body[:start] + block + body[end:]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    doc.write_text(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="*", help="raw files (default: the shared CIC-IDS2017 rows)")
    parser.add_argument("--train-files", help="stem of the training file (default: the first file)")
    parser.add_argument("--other-day", help="a file of other days' benign flows")
    parser.add_argument("--models", default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--window", type=int)
    parser.add_argument("--stride", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--calibration", default="quantile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", help="folder for the ingested rows (default: a temp folder)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--machine", default=f"{platform.machine()}, {__import__('os').cpu_count()} cores")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = run(args)
    text = table(out["rows"])
    print(text)
    if args.write_docs:
        doc = REPO / "docs" / "BENCHMARKS.md"
        figure = REPO / "docs" / "quality_roc.png"
        plots.roc_figure(out["curves"], title="Attacks vs other-day benign, seed "
                         f"{out['seeds'][0]}").savefig(figure, dpi=110)
        command = "python benchmarks/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])
        header = (f"## Detection quality on the real rows\n\n- Machine: {args.machine}\n"
                  f"- Date: {dt.date.today().isoformat()}\n- Command: `{command.strip()}` "
                  f"({time.perf_counter() - started:.0f} s)\n- Files: {', '.join(out['files'])}; trained on "
                  f"`{out['training']}`, other-day benign: `{out['other_day']}`; seeds {out['seeds']}\n\n")
        write_docs(header + text + "\n\n![ROC of every model](quality_roc.png)\n", doc)
        (REPO / "docs" / "quality.json").write_text(json.dumps(out["rows"], indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
