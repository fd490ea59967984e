"""A seeded, uniform sample of a file's rows across all its batches, in bounded memory (for GX).

Why: Great Expectations costs about two seconds per validation plus time per row, and validating
every row of a 1 GB file in chunks took most of the ingest time; the exact per-row decisions are
made by ``validation`` anyway, so GX reports on a sample. Every row gets a key from one seeded
random stream in file order and the sample is the ``size`` rows with the smallest keys (bottom-k,
uniform without replacement): the same rows whatever the batch size, the same on every run. Once
the sample is full, a row whose key cannot get in any more is never copied.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa


class RowSample:
    """Offer each batch's rows with ``candidates``, add those rows with ``add``; ``table`` at the end."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"sample size must be at least 1, got {size}")
        self.size = size
        self.rows_seen = 0
        self._rng = np.random.default_rng(seed)
        self._threshold = np.inf
        self._keys: list[np.ndarray] = []
        self._tables: list[pa.Table] = []
        self._held = 0
        self._pending = np.zeros(0)

    def candidates(self, n: int) -> np.ndarray:
        """Positions of the batch's rows that may enter the sample, in row order."""
        keys = self._rng.random(n)
        self.rows_seen += n
        idx = np.flatnonzero(keys < self._threshold)
        self._pending = keys[idx]
        return idx

    def add(self, rows: pa.Table) -> None:
        """The rows at the positions ``candidates`` returned last, in that order."""
        if rows.num_rows != len(self._pending):
            raise ValueError("add() needs exactly the rows of the last candidates() call")
        if rows.num_rows:
            self._keys.append(self._pending)
            self._tables.append(rows)
            self._held += rows.num_rows
        if self._held >= 2 * self.size:
            self._compact()

    def _compact(self) -> None:
        keys = np.concatenate(self._keys)
        table = pa.concat_tables(self._tables)
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            keys, table = keys[keep], table.take(pa.array(keep))
            self._threshold = float(keys.max())
        self._keys, self._tables, self._held = [keys], [table], len(keys)

    def table(self) -> pa.Table | None:
        """The sample in file order (None when no row was offered)."""
        if not self._tables:
            return None
        self._compact()
        return self._tables[0].combine_chunks()
