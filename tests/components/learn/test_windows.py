"""Windows are exact strided views and never cross groups (files, split segments)."""
from __future__ import annotations

import numpy as np
import pytest

from components.learn.windows import (
    benign_window_mask,
    build_windows,
    iter_batches,
    sliding_windows,
    window_starts,
)


def _naive_windows(x, window, stride, groups=None):
    """Python-loop reference: (list of [T, F] arrays, list of flow-index lists)."""
    keys = np.zeros(len(x), int) if groups is None else groups
    out, idx = [], []
    for g in dict.fromkeys(keys.tolist()):
        rows = [i for i in range(len(x)) if keys[i] == g]
        for s in range(0, len(rows) - window + 1, stride):
            members = rows[s:s + window]
            out.append(x[members])
            idx.append(members)
    order = sorted(range(len(idx)), key=lambda k: idx[k][0])
    return [out[k] for k in order], [idx[k] for k in order]


@pytest.mark.parametrize("n,window,stride", [(20, 4, 1), (20, 4, 3), (9, 9, 1), (5, 8, 1), (17, 5, 2)])
def test_shapes_view_and_equality_with_a_python_loop(n, window, stride):
    x = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
    v = sliding_windows(x, window, stride)
    ref, _ = _naive_windows(x, window, stride)
    assert v.shape == (len(ref), window, 3)
    assert len(window_starts(n, window, stride)) == len(ref)
    if len(ref):
        assert np.shares_memory(v, x)
        np.testing.assert_array_equal(v, np.stack(ref))
    w = build_windows(x, window, stride)
    assert w.values.shape == v.shape
    if len(ref):
        assert np.shares_memory(w.values, x)
        np.testing.assert_array_equal(w.values, np.stack(ref))
        np.testing.assert_array_equal(w.take(np.arange(len(w))), np.stack(ref))


def test_groups_are_never_crossed_and_match_the_reference():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 2))
    groups = rng.choice(np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3"]), size=60)
    w = build_windows(x, 4, 2, groups=groups)
    ref, ref_idx = _naive_windows(x, 4, 2, groups)
    np.testing.assert_array_equal(w.values, np.stack(ref))
    np.testing.assert_array_equal(w.flow_index(), np.array(ref_idx))
    np.testing.assert_array_equal(w.starts, [r[0] for r in ref_idx])
    members = groups[w.flow_index()]
    assert (members == members[:, :1]).all()
    assert np.all(np.diff(w.starts) >= 0)  # windows in time order of their first flow


def test_benign_mask_on_a_hand_made_label_vector():
    labels = np.array(["BENIGN"] * 4 + ["DDoS", "DDoS", "PortScan"] + ["BENIGN"] * 3)
    w = build_windows(np.zeros((10, 1)), 3, 1)
    assert benign_window_mask(labels == "BENIGN", w).tolist() == [
        True, True, False, False, False, False, False, True,
    ]


def test_benign_mask_with_groups_uses_the_flows_of_each_window():
    labels = np.array(["BENIGN", "X", "BENIGN", "BENIGN", "BENIGN", "X"])
    groups = np.array([0, 1, 0, 0, 1, 1])
    w = build_windows(np.arange(6.0)[:, None], 2, 1, groups=groups)
    assert w.flow_index().tolist() == [[0, 2], [1, 4], [2, 3], [4, 5]]
    assert benign_window_mask(labels == "BENIGN", w).tolist() == [True, False, True, False]


def test_iter_batches_copies_float32_and_covers_every_index_once():
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    w = build_windows(x, 4, 1)
    idx = np.array([0, 3, 5, 7, 11, 16])
    batches = list(iter_batches(w, idx, batch_size=4, shuffle=True, seed=1))
    assert [len(b) for b in batches] == [4, 2]
    assert all(b.dtype == np.float32 and b.flags.c_contiguous and not np.shares_memory(b, x) for b in batches)
    firsts = sorted(int(b[0, 0]) // 2 for batch in batches for b in batch)
    assert firsts == idx.tolist()
    again = list(iter_batches(w, idx, batch_size=4, shuffle=True, seed=1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


@pytest.mark.parametrize("n,window,stride", [(50, 4, 1), (50, 4, 3), (49, 7, 7), (6, 8, 2)])
def test_benign_mask_equals_the_python_loop_for_every_stride(n, window, stride):
    benign = np.random.default_rng(n + stride).random(n) > 0.1
    w = build_windows(np.zeros((n, 1), np.float32), window, stride)
    _, idx = _naive_windows(np.zeros((n, 1)), window, stride)
    assert benign_window_mask(benign, w).tolist() == [bool(benign[m].all()) for m in idx]
