"""Host windows: each window holds one source host's consecutive flows in timestamp order, in
training (``build_windows`` with ``within``) and in scoring (``host_sequences``, ``score_by_host``)."""
from __future__ import annotations

import numpy as np

from components.detect.flow_scores import FlowScorer
from components.detect.host_windows import host_sequences, score_by_host
from components.jobs import FlowRule
from components.learn.windows import build_windows


def interleaved(n: int = 400, seed: int = 0):
    """Flows of 5 hosts (and some without a host), interleaved, timestamps not in file order."""
    rng = np.random.default_rng(seed)
    hosts = rng.choice(np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", None],
                                dtype=object), n)
    times = np.datetime64("2017-07-07T15:00") + rng.integers(0, 600, n).astype("timedelta64[s]")
    x = rng.normal(size=(n, 3)).astype(np.float32)
    x[:, 0] = np.arange(n)  # the flow's own index, to read windows back
    return x, hosts, times


def test_training_windows_never_mix_hosts_and_follow_timestamp_order():
    x, hosts, times = interleaved()
    codes = np.array([{None: 0}.get(h, 1 + ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
                                             "10.0.0.5"].index(h) if h else 0) for h in hosts])
    stamps = times.astype("datetime64[ms]").astype(np.int64)
    windows = build_windows(x, 4, 2, groups=codes, within=np.where(codes == 0, 0, stamps))
    flows = windows.flow_index()
    assert len(windows) > 50
    for w in flows:
        assert len(set(codes[w])) == 1  # one host (or the unknown-host sequence) per window
        if codes[w[0]] != 0:
            assert np.all(np.diff(stamps[w]) >= 0)  # timestamp order
            # consecutive: no flow of the same host lies between two flows of a window
            host = np.flatnonzero(codes == codes[w[0]])
            ordered = host[np.lexsort((host, stamps[host]))]
            at = np.searchsorted(ordered, w, sorter=np.argsort(ordered))
            position = np.argsort(ordered)[at]
            assert np.all(np.diff(position) == 1)
        else:
            assert np.all(np.diff(w) > 0)  # flows without a host: file order
    np.testing.assert_array_equal(windows.take(np.arange(len(windows)))[:, :, 0], flows)


def test_scoring_sequences_are_one_host_each_in_time_order_and_cover_every_flow():
    x, hosts, times = interleaved()
    seqs = host_sequences(hosts, times, len(x))
    assert sorted(np.concatenate(seqs).tolist()) == list(range(len(x)))
    for seq in seqs:
        assert len({h for h in hosts[seq]}) == 1
        if hosts[seq[0]] is not None:
            assert np.all(np.diff(times[seq]) >= np.timedelta64(0))
        else:
            assert np.all(np.diff(seq) > 0)
    assert host_sequences(None, None, 5)[0].tolist() == [0, 1, 2, 3, 4]  # global order fallback


class _Persist:
    """A stand-in network: each flow's error is its squared distance to the previous flow of its
    window (so a score depends on which flows share its window)."""

    has_feature_errors = True


def test_a_hosts_scores_do_not_depend_on_other_hosts_flows(monkeypatch):
    from components.detect import flow_scores
    from components.learn.models import ScoreOutput

    def fake_score_array(model, windows, batch_size, device):
        prev = np.concatenate([windows[:, :1], windows[:, :-1]], axis=1)
        err = (windows - prev) ** 2
        return ScoreOutput(window_scores=err.mean(axis=(1, 2)), flow_scores=err.mean(axis=2), flow_errors=err)

    monkeypatch.setattr(flow_scores, "score_array", fake_score_array)
    x, hosts, times = interleaved()
    make = lambda: FlowScorer(_Persist(), 4, FlowRule(windows="host"))
    whole = score_by_host(make, x, hosts, times)
    one = hosts == "10.0.0.3"
    alone = score_by_host(make, x[one], hosts[one], times[one])
    np.testing.assert_allclose(whole.scores[one], alone.scores)
    glob = FlowScorer(_Persist(), 4, FlowRule()).score_all(x)
    assert not np.allclose(glob.scores[one], alone.scores)  # global windows mix the hosts
