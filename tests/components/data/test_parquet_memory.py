"""Reading a parquet log holds one row group at a time, however long the file (pyarrow's single
``iter_batches`` over a whole file kept every decoded row group: 2 GB more at 1e7 flows)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.data.readers import iter_parquet_batches

GROUP_ROWS = 20_000
GROUPS = 30


def _many_row_groups(path):
    rng = np.random.default_rng(0)
    table = pa.table({"Flow ID": pa.array([f"10.0.0.{i % 250}-80-6" for i in range(GROUP_ROWS)], pa.large_string()),
                      **{f"f{j}": rng.standard_normal(GROUP_ROWS) for j in range(20)}})
    with pq.ParquetWriter(path, table.schema) as writer:
        for _ in range(GROUPS):
            writer.write_table(table, row_group_size=GROUP_ROWS)
    return table.nbytes


def test_reading_every_row_group_keeps_memory_at_one_row_group(tmp_path):
    path = tmp_path / "long.parquet"
    group_bytes = _many_row_groups(path)
    base = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for batch in iter_parquet_batches(pq.ParquetFile(path), 8_192):
        rows += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes() - base)
        del batch
    assert rows == GROUP_ROWS * GROUPS
    # one row group decoded plus its buffers: about 3.4 row groups here; a single reader over
    # the whole file peaked at about 35 (all 30 kept)
    assert peak < 6 * group_bytes


def test_batches_come_in_file_order_with_the_columns_asked_for(tmp_path):
    path = tmp_path / "long.parquet"
    _many_row_groups(path)
    batches = list(iter_parquet_batches(pq.ParquetFile(path), 7_000, columns=["f3"]))
    assert all(b.schema.names == ["f3"] for b in batches)
    got = np.concatenate([b.column(0).to_numpy() for b in batches])
    assert np.array_equal(got, pq.read_table(path, columns=["f3"]).column(0).to_numpy())
