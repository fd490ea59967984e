"""load_flows reads curated files batch by batch into preallocated arrays: the result must not
depend on where the batches and row groups fall."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.curated import CuratedDataError
from components.learn import dataset
from components.learn.dataset import load_flows
from components.learn.features import log_column


def _curated(path, labels, start_ms=0, row_group_size=7):
    n = len(labels)
    rng = np.random.default_rng(n)
    table = pa.table({
        "flow_duration": pa.array(rng.integers(0, 10**6, n), pa.int64()),
        "total_fwd_packets": pa.array(rng.integers(1, 50, n).astype(float), pa.float64()),
        "label": pa.array(labels, pa.string()),
        "row_number": pa.array(np.arange(1, n + 1) * 2, pa.int64()),  # not 1..n: taken from the file
        "timestamp": pa.array(start_ms + np.arange(n) * 1000, pa.timestamp("ms")),
    })
    pq.write_table(table, path, row_group_size=row_group_size)
    return table


def test_batches_and_row_groups_do_not_change_the_flows(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "READ_BATCH_ROWS", 5)  # batches inside and across 7-row groups
    a = _curated(tmp_path / "a.parquet", ["BENIGN"] * 12 + ["DDoS"] * 3 + ["BENIGN"] * 8)
    b = _curated(tmp_path / "b.parquet", ["PortScan"] * 4 + ["BENIGN"] * 9 + ["DDoS"] * 6, start_ms=10**9)
    flows = load_flows([tmp_path / "a.parquet", tmp_path / "b.parquet"],
                       feature_names=["flow_duration", "total_fwd_packets"])
    both = pa.concat_tables([a, b])
    assert len(flows) == 42
    assert flows.labels.tolist() == both.column("label").to_pylist()
    assert flows.file_index.tolist() == [0] * 23 + [1] * 19
    assert flows.row_number.tolist() == both.column("row_number").to_pylist()
    expected = log_column(both.column("flow_duration").to_numpy().astype(np.float64))
    np.testing.assert_array_equal(flows.x[:, 0], expected)
    assert flows.timestamp.astype(np.int64).tolist() == both.column("timestamp").cast(pa.int64()).to_pylist()
    assert flows.is_benign.sum() == 12 + 8 + 9


def test_a_feature_a_file_lacks_is_nan_there(tmp_path):
    _curated(tmp_path / "a.parquet", ["BENIGN"] * 10)
    flows = load_flows([tmp_path / "a.parquet"], feature_names=["flow_duration", "fwd_iat_min"])
    assert np.isnan(flows.x[:, 1]).all() and np.isfinite(flows.x[:, 0]).all()


def test_a_file_without_labels_is_a_clear_error(tmp_path):
    pq.write_table(pa.table({"flow_duration": [1, 2]}), tmp_path / "nolabel.parquet")
    with pytest.raises(CuratedDataError, match="nolabel.parquet: no label column"):
        load_flows([tmp_path / "nolabel.parquet"])
