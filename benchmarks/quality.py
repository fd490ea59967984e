"""Detection quality on real CIC-IDS2017 rows, every model beside the baselines, several seeds.

The protocol of DESIGN.md through the code ``flowae compare`` runs (``components.detect.compare``):
train on the earlier benign flows of the training file, validate and calibrate on later ones, and
test the attack files against (a) the held-out later benign flows of the same day and (b) benign
flows of *other days* (``week-benign-sample``), which shows how far a threshold and a model
transfer. Reported per model, mean and spread over seeds: flow-level AUROC per attack against
each benign set, recall per attack at 1% false positives on other-day benign (the threshold is the
99th percentile of the model's own scores on those flows: the operating point a night lives at),
AUPRC, F1 and recall per attack at the calibrated threshold, FPR on same-day and on other-day
benign; and a plot with every model's ROC (attacks vs other-day benign). Every model stands beside
the baselines, ``mahalanobis_flow`` (Ledoit-Wolf Mahalanobis distance of the flow's own scaled
features, no network) among them: the report says whether the default network beats it.

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
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.data.contract import BENIGN
from components.data.ingest import IngestConfig, ingest_paths
from components.detect import compare
from components.detect.evaluation import recall_at_fpr
from components.jobs import TrainConfig, TrainJob
from components.report import plots

SHARED = REPO.parent / "shared" / "data" / "cicids2017"
DEFAULT_FILES = ["friday-afternoon-benign-head.MachineLearningCVE.csv", "friday-ddos-1000.TrafficLabelling.csv",
                 "friday-portscan-1000.TrafficLabelling.csv", "week-benign-sample.CICIDS2017_sample.csv"]
MARK_BEGIN, MARK_END = "<!-- quality:begin -->", "<!-- quality:end -->"


def auroc(benign: np.ndarray, attack: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(benign) == 0 or len(attack) == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.zeros(len(benign)), np.ones(len(attack))], np.r_[benign, attack]))


AT_FPR = "recall@1%FPR"


def measure(result: compare.ModelResult, training_file: str, other_day: str | None) -> dict:
    """Per-test-set figures from one model's test scores (split by file and label)."""
    s = result.scored
    threshold = result.fit.detector.threshold
    same_day = (s.files == training_file) & (s.labels == BENIGN)
    other = (s.files == other_day) & (s.labels == BENIGN) if other_day else np.zeros(len(s.files), bool)
    attacks = sorted(set(s.labels[s.labels != BENIGN].tolist()))
    entity = result.evaluation.entity
    row = {**({"entity auroc": entity["auroc"], "entity recall@budget": entity["recall_at_budget"],
               "benign hosts flagged per night": entity["benign_flagged_per_night"]}
              if entity.get("available") else {}),
           "fpr_same_day": float((s.scores[same_day] > threshold).mean()) if same_day.any() else np.nan,
           "fpr_other_day": float((s.scores[other] > threshold).mean()) if other.any() else np.nan,
           "auprc": result.evaluation.auprc, "f1": result.evaluation.f1,
           "epochs": len(result.fit.train.history), "seconds": result.seconds}
    for label in attacks:
        mask = s.labels == label
        row[f"auroc {label} vs same-day"] = auroc(s.scores[same_day], s.scores[mask])
        if other.any():
            row[f"auroc {label} vs other-day"] = auroc(s.scores[other], s.scores[mask])
            row[f"{AT_FPR} {label} (other-day)"] = recall_at_fpr(s.scores[mask], s.scores[other], 0.01)
        row[f"recall {label}"] = float((s.scores[mask] > threshold).mean())
    return row


RULES = {
    # the recommended rule (the DetectorConfig defaults, components/jobs.py) applied to every model alike
    "recommended": None,
    # each model's own score (reconstruction error, or its family's rule), quantile threshold
    "raw": {"calibration": "quantile", "mahalanobis_inputs": False},
}
_RAW = {"calibration": "quantile", "mahalanobis_inputs": False}
#: what was tried on the way to the recommended settings (lstm_ae, first seed): name -> overrides
LEVERS: dict[str, dict] = {
    "raw score, T16, stride-T scoring": {"detector": _RAW},
    "raw, T4 windows": {"train": {"window": 4, "stride": 1}, "detector": _RAW},
    "raw, T2 windows": {"train": {"window": 2, "stride": 1}, "detector": _RAW},
    "raw, hidden 128": {"train": {"hidden": 128}, "detector": _RAW},
    "raw, robust scaling": {"train": {"scaler": "robust"}, "detector": _RAW},
    "raw, 80 epochs (patience 8)": {"train": {"epochs": 80, "patience": 8}, "detector": _RAW},
    "Mahalanobis of errors": {"detector": {"mahalanobis_inputs": False}},
    "Mahalanobis of errors, max over stride-1 windows": {
        "detector": {"mahalanobis_inputs": False, "rule": {"stride": 1, "aggregate": "max"}}},
    "Mahalanobis of errors + inputs (recommended)": {},
    "... + stride-1 scoring (16x the work)": {"detector": {"rule": {"stride": 1}}},
    "... + robust scaling": {"train": {"scaler": "robust"}},
    "... + 80 epochs (patience 8)": {"train": {"epochs": 80, "patience": 8}},
    "... + target FPR 1%": {"detector": {"target_fpr": 0.01}},
}


def base_job(data: Path, training_stem: str, seed: int, args, rule: dict | None) -> TrainJob:
    from components.jobs import train_job

    train = {"device": args.device, "seed": seed, **{key: getattr(args, key) for key in
                                                     ("epochs", "window", "stride", "hidden")}}
    return train_job(data=data, files=(training_stem,), train=train, detector=rule)


def with_overrides(job: TrainJob, overrides: dict) -> TrainJob:
    from components.jobs import train_job

    return train_job(job, overrides)


def identity_ratio(result: compare.ModelResult) -> float | None:
    """Reconstruction error / persistence's on benign validation windows (near or below 1: it copies)."""
    from components.learn.models import persistence_error_ratio

    model = result.fit.detector.model
    if not hasattr(model, "reconstruct") or result.fit.detector.window < 2:
        return None
    data = result.fit.data
    return persistence_error_ratio(model, data.windows.take(data.val_idx[:4096]))


def run(args) -> dict:
    files = [Path(f) for f in args.data] if args.data else [SHARED / f for f in DEFAULT_FILES]
    training_stem = args.train_files or files[0].stem
    other_day = Path(args.other_day).stem if args.other_day else (
        "week-benign-sample.CICIDS2017_sample" if not args.data else None)
    specs = compare.resolve_models(args.models)
    work = Path(args.work or tempfile.mkdtemp(prefix="flowae-quality-"))
    ingest_paths([str(f) for f in files], IngestConfig(out=work / "ingested", run_gx=False))
    training_file = f"{training_stem}.parquet"
    other_file = f"{other_day}.parquet" if other_day else None
    out = {"files": [f.name for f in files], "training": training_stem, "other_day": other_day,
           "seeds": list(args.seeds), "tables": {}, "curves": {}, "identity": {}}
    for rule in args.rules:
        rows: dict[str, list[dict]] = {spec: [] for spec in specs}
        for seed in args.seeds:
            base = base_job(work / "ingested", training_stem, seed, args, RULES[rule])
            for spec in specs:
                result = compare.run_model(spec, base)
                row = measure(result, training_file, other_file)
                rows[spec].append(row)
                _print(rule, seed, spec, row)
                if rule == args.rules[0] and seed == args.seeds[0]:
                    s = result.scored
                    keep = (s.labels != BENIGN) | ((s.files == other_file) if other_file else True)
                    out["curves"][spec] = (s.scores[keep], (s.labels != BENIGN)[keep])
                if rule == "raw" and spec in ("lstm_ae", "lstm_ae_seq", "attention_ae"):
                    out["identity"].setdefault(spec, []).append(identity_ratio(result))
        out["tables"][rule] = rows
    if args.levers:
        rows = {}
        base = base_job(work / "ingested", training_stem, args.seeds[0], args, None)
        for name, overrides in LEVERS.items():
            result = compare.run_model("lstm_ae", with_overrides(base, overrides))
            rows[name] = [measure(result, training_file, other_file)]
            _print("lever", args.seeds[0], name, rows[name][0])
        out["tables"]["levers"] = rows
    return out


def _print(rule: str, seed: int, spec: str, row: dict) -> None:
    print(f"{rule:<11} seed {seed} {spec:<50} " + "  ".join(
        f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float) and ("auroc" in k or AT_FPR in k))
        + f"  fpr_other={row['fpr_other_day']:.3f}", flush=True)


def table(rows: dict[str, list[dict]], ordered: bool = True) -> str:
    """Mean ± standard deviation over seeds, one line per model, sorted by other-day AUROC."""
    columns = [k for k in next(iter(rows.values()))[0] if k not in ("seconds",)]

    def stat(spec, key):
        values = np.asarray([r[key] for r in rows[spec]], float)
        return np.nanmean(values), np.nanstd(values)

    order_key = next((k for k in columns if k.endswith("vs other-day")), columns[0])
    ordered = sorted(rows, key=lambda s: -np.nanmean([v for k in columns if k.endswith("vs other-day")
                                                       for v in [stat(s, k)[0]]] or [stat(s, order_key)[0]])) \
        if ordered else list(rows)
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


def mean(rows: dict[str, list[dict]], spec: str, key: str) -> float:
    return float(np.nanmean([r[key] for r in rows[spec]]))


#: single-flow baselines (own scores) the default detector is held against, as the report names them
FLOW_BASELINES = {"mahalanobis_flow": "mahalanobis_flow", "isolation_forest_flow": "IsolationForest",
                  "pca_flow": "PCA"}


def _families(rows: dict[str, list[dict]], spec: str) -> list[str]:
    return [k.split()[1] for k in rows[spec][0] if k.startswith("auroc") and k.endswith("vs other-day")]


def verdict(out: dict) -> str:
    """The bar: the default detector against the single-flow baselines, AUROC and recall at 1% FPR
    on other-day benign, per family (met: above every baseline's mean; a tie is not a win, since a
    network earns its place only by beating the no-network baselines, DESIGN.md)."""
    champion = TrainConfig().model
    rec, raw = out["tables"].get("recommended"), out["tables"].get("raw")
    if not rec or not raw or champion not in rec or not {"isolation_forest_flow", "pca_flow"} <= set(raw):
        return ""
    baselines = {spec: name for spec, name in FLOW_BASELINES.items() if spec in raw}
    intro = (f"**Against the single-flow baselines** (default detector `{champion}` with the recommended "
             "rule; baselines with their own scores, as users would run them; means over seeds):")
    lines = [intro, ""]
    ok = True
    for family in _families(rec, champion):
        for key in (f"auroc {family} vs other-day", f"{AT_FPR} {family} (other-day)"):
            mine = mean(rec, champion, key)
            theirs = {name: mean(raw, spec, key) for spec, name in baselines.items()}
            met = all(mine > v for v in theirs.values())
            ok &= met
            lines.append(f"- {key}: {mine:.3f} vs " + ", ".join(f"{n} {v:.3f}" for n, v in theirs.items())
                         + f": {'**met**' if met else '**not met**'}")
    fpr = mean(rec, champion, "fpr_other_day")
    ok &= fpr <= 0.02
    lines.append(f"- false positives on other-day benign at the calibrated threshold: {fpr:.2%} "
                 f"(goal at most 2%): {'**met**' if fpr <= 0.02 else '**not met**'}")
    lines += ["", f"Overall: {'met' if ok else 'not met'}.", "", network_vs_mahalanobis(out)]
    return "\n".join(lines)


def network_vs_mahalanobis(out: dict) -> str:
    """One plain statement: does the default network beat ``mahalanobis_flow``, by how much, where.

    It beats it on a family when its mean over seeds is higher on both other-day AUROC and recall
    at 1% FPR; the statement also counts the seeds on which each metric is higher, since a margin
    smaller than the spread between seeds is no win a user can count on.
    """
    champion = TrainConfig().model
    rec, raw = out["tables"].get("recommended"), out["tables"].get("raw")
    if not rec or not raw or champion not in rec or "mahalanobis_flow" not in raw:
        return ""
    seeds = len(rec[champion])

    def versus(key: str) -> tuple[float, str]:
        mine, theirs = mean(rec, champion, key), mean(raw, "mahalanobis_flow", key)
        higher = sum(r[key] > theirs for r in rec[champion])
        return mine - theirs, (f"{mine:.3f} vs {theirs:.3f} ({mine - theirs:+.3f}; higher on {higher} of "
                               f"{seeds} seeds)")

    parts, wins, every_seed = [], [], []
    families = _families(rec, champion)
    for family in families:
        a_key, r_key = f"auroc {family} vs other-day", f"{AT_FPR} {family} (other-day)"
        (da, a_text), (dr, r_text) = versus(a_key), versus(r_key)
        if da > 0 and dr > 0:
            wins.append(family)
            if all(r[a_key] > mean(raw, "mahalanobis_flow", a_key) and r[r_key] > mean(raw, "mahalanobis_flow", r_key)
                   for r in rec[champion]):
                every_seed.append(family)
        parts.append(f"{family}: AUROC {a_text}, recall@1%FPR {r_text}")
    if not wins:
        head = "no: on no family is it higher on both AUROC and recall at 1% FPR"
    else:
        head = f"on the means over seeds, {'on every family' if wins == families else 'only on ' + ', '.join(wins)}"
        head += (f"; on every seed on {', '.join(every_seed)}" if every_seed
                 else "; on no family on every seed (the margins are within the spread between seeds)")
    return (f"**Does the network beat `mahalanobis_flow` (no network)?** {head}. Default `{champion}` "
            f"(recommended rule) against the Ledoit-Wolf Mahalanobis distance of each flow's own scaled "
            f"features (deterministic), other-day benign: " + "; ".join(parts) + ".\n")


def family_answers(out: dict) -> str:
    raw = out["tables"].get("raw")
    if not raw:
        return ""
    keys = [k for k in next(iter(raw.values()))[0] if k.startswith("auroc") and "other-day" in k]

    def summary(spec: str) -> str:
        return ", ".join(f"{k.split()[1]} {mean(raw, spec, k):.3f}" for k in keys) if spec in raw else "n/a"

    ratio = {k: np.nanmean([v for v in vals if v is not None]) for k, vals in out["identity"].items() if vals}
    lines = ["**The family's questions** (each model's own score, other-day AUROC, mean over seeds):", ""]
    if "lstm_ae_seq" in ratio:
        lines.append(f"- Does the per-step `lstm_ae_seq` learn the identity? Its reconstruction error is "
                     f"{ratio['lstm_ae_seq']:.2f}x that of persistence (x_hat[t] = x[t-1]) on benign "
                     f"validation windows, against {ratio.get('lstm_ae', float('nan')):.2f}x for the "
                     f"bottlenecked `lstm_ae`: {'it mostly copies' if ratio['lstm_ae_seq'] < 1 else 'it does not simply copy'}. "
                     f"AUROC {summary('lstm_ae_seq')} vs `lstm_ae` {summary('lstm_ae')}.")
    lines.append(f"- Does feature attention beat the plain bottleneck? `attention_ae` {summary('attention_ae')} "
                 f"vs `lstm_ae` {summary('lstm_ae')}.")
    lines.append(f"- Does the sparse gate with Mahalanobis scoring help? `sparse_lstm_ae` {summary('sparse_lstm_ae')} "
                 f"vs `lstm_ae` {summary('lstm_ae')}.")
    lines.append(f"- Does IAE-LSTM-KL with a real KL over time beat a plain autoencoder with SVDD? "
                 f"`iae_lstm_kl` {summary('iae_lstm_kl')} vs the same without KL (`iae_lstm_svdd`) "
                 f"{summary('iae_lstm_svdd')}.")
    return "\n".join(lines) + "\n"


READING = """Reading the tables:

- Scored by their own reconstruction error, every family ranks other days' benign flows *above*
  the attacks on PortScan (AUROC below 0.5) and is far below a single-flow PCA or IsolationForest:
  the error measures how complex a flow is to reconstruct (scans are simple flows), and windows of
  repeated attack flows are easy to reconstruct. Shorter windows helped; a wider bottleneck,
  robust scaling and longer training did not (training to convergence fitted the training day and
  transferred worse).
- Scoring each flow by the Mahalanobis distance of its per-feature errors (fitted on benign
  validation flows) normalises that away; adding the flow's own scaled features to the same
  distance catches flows unlike any benign flow even when their neighbours look alike (the DDoS
  burst). With that rule the families are within a few hundredths of each other; `lstm_ae_seq`
  and a single-flow PCA rank higher by AUROC but exceed 2% false positives on other days, and
  scoring windows at stride 1 gains a little AUROC for 16 times the scoring work.
- A threshold set on the training day gives about twice its false-positive rate on other days,
  hence the 0.5% target. At that operating point few attack flows are flagged (the attack flows sit
  in the upper tail of benign scores, not beyond it): the score is best read as a ranking, as the
  nightly summary's top flows do.
- Recall at 1% false positives on other days' benign flows is the figure AUROC hides: every model,
  networks and baselines alike, catches at most a few percent of DDoS flows and at most about one
  percent of PortScan flows there; the other days' benign tail reaches above nearly every attack
  flow. Whether the default network beats `mahalanobis_flow` (no network) is stated above, per
  family and per seed: it is the question a network has to answer before it earns its place.
"""


def report(out: dict, args, seconds: float, command: str) -> str:
    header = (f"## Detection quality on the real rows\n\n- Machine: {args.machine}\n"
              f"- Date: {dt.date.today().isoformat()}\n- Command: `{command}` ({seconds / 60:.0f} min)\n"
              f"- Files: {', '.join(out['files'])}; trained on the earlier benign flows of `{out['training']}` "
              f"(later ones validate and calibrate, the last 20% are same-day test benign); other-day "
              f"benign: `{out['other_day']}`; seeds {out['seeds']}; each figure is mean ± std over seeds.\n")
    parts = [header]
    parts.append(verdict(out))
    if "recommended" in out["tables"]:
        parts += ["### Every model with the recommended rule\n", table(out["tables"]["recommended"]), ""]
    if "raw" in out["tables"]:
        parts += ["### Every model with its own score\n", table(out["tables"]["raw"]), "", family_answers(out)]
    if "levers" in out["tables"]:
        parts += ["### What moved the numbers (`lstm_ae`, first seed, in the order tried)\n",
                  table(out["tables"]["levers"], ordered=False), "", READING]
    parts.append("![ROC of every model, attacks vs other-day benign](quality_roc.png)\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="*", help="raw files (default: the shared CIC-IDS2017 rows)")
    parser.add_argument("--train-files", help="stem of the training file (default: the first file)")
    parser.add_argument("--other-day", help="a file of other days' benign flows")
    parser.add_argument("--models", default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rules", nargs="+", default=["recommended", "raw"], choices=list(RULES))
    parser.add_argument("--levers", action="store_true", help="also run the levers table (lstm_ae)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--window", type=int)
    parser.add_argument("--stride", type=int)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", help="folder for the ingested rows (default: a temp folder)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--machine", default=None)
    args = parser.parse_args(argv)
    if args.machine is None:
        from benchmarks.measure import machine

        args.machine = machine()
    started = time.perf_counter()
    out = run(args)
    command = ("python benchmarks/quality.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    text = report(out, args, time.perf_counter() - started, command)
    print(text)
    if args.write_docs:
        plots.roc_figure(out["curves"], title=f"Attacks vs other-day benign ({args.rules[0]} rule, seed {out['seeds'][0]})").savefig(
            REPO / "docs" / "quality_roc.png", dpi=110)
        write_docs(text, REPO / "docs" / "BENCHMARKS.md")
        (REPO / "docs" / "quality.json").write_text(json.dumps(out["tables"], indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
