"""Training-data preparation as it was before issue 9 (commit 9aa477f: one pandas frame of every
curated file, float64 transform and window copies), on a curated folder, for the "before" figure
beside ``benchmarks/speed.py``'s preparation table. Runs in its own process; prints seconds and
peak RSS.

    git worktree add /tmp/flowae-9aa477f 9aa477f
    python benchmarks/prepare_before.py /tmp/flowae-9aa477f data/bench/prepare-2800000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.measure import mb, run_child

_OLD_PREPARE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from components.curated import curated_files, file_columns, read_curated
from components.experiment import prepare_training_data
from components.features import select_features
from components.training import TrainConfig
t = time.perf_counter()
files = curated_files(Path(sys.argv[2]))
cols = file_columns(files)
frame = read_curated(files, columns=select_features(cols) + ["timestamp", "label", "source_file", "row_number"])
data = prepare_training_data(frame, TrainConfig(model="lstm_ae", window=16, stride=4, device="cpu"))
print(json.dumps({"seconds": time.perf_counter() - t, "flows": data.n_flows}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old_checkout", type=Path, help="a worktree of commit 9aa477f")
    parser.add_argument("curated", type=Path, help="an ingested folder (speed.py caches data/bench/prepare-N)")
    args = parser.parse_args(argv)
    result = run_child(_OLD_PREPARE, [str(args.old_checkout.resolve()), str(args.curated.resolve())])
    print(json.dumps(result))
    print(f"{result['flows']:,} flows: {result['seconds']:.1f} s, peak RSS {mb(result['peak_rss_bytes'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
