"""Bounded work: every flow that maps over files runs FLOWAE_MAX_PARALLEL_FILES files at a time,
also when another flow calls it (a Prefect subflow does not inherit its caller's task runner)."""
from __future__ import annotations

import threading

import pytest
from flow_test_rows import DDOS


def test_every_flow_that_maps_over_files_is_defined_with_the_bounded_runner():
    from flows.demo import demo_flow
    from flows.ingest import ingest_flow
    from flows.retries import FileRunner
    from flows.score import score_flow, score_nightly_flow

    for f in (ingest_flow, score_flow, score_nightly_flow, demo_flow):
        assert isinstance(f.task_runner, FileRunner), f.name


@pytest.mark.parametrize("bound", [1, 2])
def test_ingest_called_from_another_flow_keeps_the_bound(shared_data, tmp_path, monkeypatch, bound):
    from prefect import flow

    import flows.ingest as ingest_module

    monkeypatch.setenv("FLOWAE_MAX_PARALLEL_FILES", str(bound))
    inputs = []
    for i in range(4):
        path = tmp_path / "raw" / f"day{i}.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes((shared_data / DDOS).read_bytes())
        inputs.append(str(path))
    real, changed = ingest_module.ingest_file, threading.Condition()
    seen = {"now": 0, "peak": 0}

    def counted(*args, **kwargs):
        with changed:
            seen["now"] += 1
            seen["peak"] = max(seen["peak"], seen["now"])
            changed.notify_all()
            # hold the slot until one file more than the bound runs (a pool that breaks the bound is
            # caught at once) or for 0.5 s (a pool that keeps it has had time to start its others)
            changed.wait_for(lambda: seen["now"] > bound, timeout=0.5)
        try:
            return real(*args, **kwargs)
        finally:
            with changed:
                seen["now"] -= 1

    monkeypatch.setattr(ingest_module, "ingest_file", counted)

    @flow  # Prefect's default runner: unbounded
    def caller() -> dict:
        return ingest_module.ingest_flow(inputs, str(tmp_path / "out"), log_to_mlflow=False, run_gx=False)

    result = caller()
    assert [f["status"] for f in result["files"]] == ["ok"] * 4
    assert seen["peak"] == bound
