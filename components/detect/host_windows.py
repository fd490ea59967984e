"""Windows of one source host's consecutive flows (``FlowRule.windows == "host"``).

Why: a capture of a whole network interleaves every host's flows, so a window of T adjacent flows
mixes whatever happened to be adjacent; a sequence model only has a reason to exist when its
sequence is one host's behaviour. Here each host's flows are taken in timestamp order (ties keep
file order) and scored by the same per-flow rule as a file's flows (``flow_scores``): windows of
the host's flows, the host's first flows and hosts shorter than one window included. Flows without
a source host (logs without identifiers) form one sequence in file order: global order is the
fallback. Identifiers only order and group flows; they are never model inputs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from components.detect.flow_scores import TOP_K, FlowScorer, ScoredFlows


def host_sequences(hosts: np.ndarray | None, times: np.ndarray | None, n: int) -> list[np.ndarray]:
    """Index arrays into ``n`` flows: one per source host, in timestamp order (ties: file order);
    flows with no host (or no ``hosts`` at all) form one sequence in file order."""
    if hosts is None or n == 0:
        return [np.arange(n)] if n else []
    codes, _ = pd.factorize(np.asarray(hosts, dtype=object), use_na_sentinel=True)
    # NaT becomes the smallest int64: a flow without a time goes first within its host
    stamps = np.zeros(n, np.int64) if times is None else np.asarray(times).astype("datetime64[ms]").astype(np.int64)
    unknown = codes < 0
    stamps = np.where(unknown, 0, stamps)  # no host: file order, whatever the clock says
    order = np.lexsort((np.arange(n), stamps, codes))
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, cuts)


def score_by_host(make_scorer: Callable[[], FlowScorer], x: np.ndarray, hosts: np.ndarray | None,
                  times: np.ndarray | None) -> ScoredFlows:
    """Per-flow scores of ``x`` (one file's scaled flows) in input order, each host's flows scored
    as one sequence. Window-level scores are not returned (a host window is not a file range)."""
    n = len(x)
    scores = np.zeros(n, np.float64)
    top = np.zeros((n, TOP_K), np.int16)
    errors: np.ndarray | None = None
    for seq in host_sequences(hosts, times, n):
        part = make_scorer().score_all(np.ascontiguousarray(x[seq]))
        scores[seq] = part.scores
        top[seq, :part.top_features.shape[1]] = part.top_features
        if part.feature_errors is not None:
            if errors is None:
                errors = np.zeros((n, part.feature_errors.shape[1]), np.float32)
            errors[seq] = part.feature_errors
    return ScoredFlows(0, scores, top[:, :min(TOP_K, x.shape[1])] if n else top, errors,
                       np.zeros(0, np.float32), np.zeros(0, np.int64))
