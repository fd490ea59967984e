"""Evaluation never counts a flow the model was fitted or calibrated on, counts attack flows of
every segment, refuses data whose bytes moved (``DataChanged``), and compares two records only on
flows neither fitted on. Real CIC-IDS2017 rows: a curated training file with DDoS flows inside its
training segment, and PortScan as a file the model never trained on."""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.detect.fit import fit_detector
from components.detect.holdout import DataChanged, evaluate_data, evaluate_recorded_test, score_test
from components.jobs import SplitConfig
from components.learn.dataset import load_flows
from components.learn.split import TEST, TRAIN, split_flows

MIXED = "friday-mixed.parquet"  # benign rows 1..2000, 300 DDoS, the other benign rows
PORTSCAN = "friday-portscan-1000.TrafficLabelling.parquet"
N_DDOS = 300


@pytest.fixture(scope="module")
def mixed(real_ingested, names, tmp_path_factory) -> Path:
    """A curated folder: one file with attack flows inside its training segment, one attack file."""
    curated = real_ingested / "curated"
    benign = pq.read_table(curated / f"{Path(names['benign']).stem}.parquet")
    ddos = pq.read_table(curated / f"{Path(names['ddos']).stem}.parquet").slice(0, N_DDOS)
    common = [c for c in benign.column_names if c in set(ddos.column_names)]
    parts = [benign.select(common).slice(0, 2000), ddos.select(common).cast(benign.select(common).schema),
             benign.select(common).slice(2000)]
    table = pa.concat_tables(parts)
    table = table.set_column(common.index("row_number"), "row_number",
                             pa.array(np.arange(1, table.num_rows + 1), pa.int64()))
    out = tmp_path_factory.mktemp("mixed")
    (out / "curated").mkdir()
    pq.write_table(table, out / "curated" / MIXED)
    shutil.copy(curated / PORTSCAN, out / "curated" / PORTSCAN)
    return out


def _job(data: Path, make_job, **split):
    job = make_job(data)
    return job.model_copy(update={"files": (Path(MIXED).stem,), "split": SplitConfig(**split)})


@pytest.fixture(scope="module")
def fit_a(mixed, make_job):
    return fit_detector(_job(mixed, make_job), progress=False)


@pytest.fixture(scope="module")
def fit_b(mixed, make_job):
    """Same files, another split: its test segment is the last 30% of the benign flows."""
    return fit_detector(_job(mixed, make_job, test=0.3), progress=False)


def _keys(scored) -> set[tuple[str, int]]:
    """(file, row_number) of every counted flow."""
    return set(zip(scored.files.tolist(), scored.row_number.tolist()))


def _mixed_roles(mixed: Path, cfg: SplitConfig):
    flows = load_flows([mixed / "curated" / MIXED], feature_names=[])
    split = split_flows(flows.is_benign, np.ones(len(flows), bool), cfg)
    return flows, split.roles


def _rows(scored, file: str) -> set[int]:
    """Row numbers of the counted flows of one file (``MIXED``'s are 1..n in file order)."""
    return set(scored.row_number[scored.files == file].tolist())


def test_recorded_test_counts_test_benign_and_every_attack_flow(fit_a, mixed):
    info = fit_a.detector.info
    assert set(info.file_digests) == {MIXED, PORTSCAN} and all(len(d) == 64 for d in info.file_digests.values())
    scored = evaluate_recorded_test(fit_a.detector, info)
    benign = scored.labels == "BENIGN"
    assert int(benign.sum()) == info.split_counts["test"]["benign"]  # the test segment's benign flows
    assert int((scored.labels == "DDoS").sum()) == N_DDOS and int((scored.labels == "PortScan").sum()) == 1000
    flows, roles = _mixed_roles(mixed, SplitConfig(**info.split))
    ddos_rows = np.flatnonzero(flows.labels == "DDoS")
    assert (roles[ddos_rows] == TRAIN).all()  # the attack flows lie in the training segment, counted all the same
    fitted = set((np.flatnonzero(flows.is_benign & (roles != TEST)) + 1).tolist())
    counted = _rows(scored, MIXED)
    assert fitted and not fitted & counted  # no training, validation or calibration flow
    assert counted == set((np.flatnonzero(roles == TEST) + 1).tolist()) | set((ddos_rows + 1).tolist())
    assert scored.left_out.flows == len(fitted) and scored.left_out.per_file == {MIXED: len(fitted)}
    # windows: only those made of counted flows, attack windows among them
    assert len(scored.window_scores) == len(scored.window_labels) and (scored.window_labels == "DDoS").any()

    in_memory = score_test(fit_a.detector, fit_a.data)  # retrain/compare evaluate the same flows
    assert _keys(in_memory) == _keys(scored)
    np.testing.assert_allclose(in_memory.scores, scored.scores, rtol=1e-5)
    np.testing.assert_array_equal(in_memory.window_labels, scored.window_labels)


def test_evaluate_data_on_the_training_folder_and_with_training_data(fit_a, mixed, tmp_path):
    own = evaluate_data(fit_a.detector, mixed)
    assert _keys(own) == _keys(evaluate_recorded_test(fit_a.detector, fit_a.detector.info))
    assert own.left_out.line().startswith(f"left out {own.left_out.flows} flows")
    everything = evaluate_data(fit_a.detector, mixed, include_training_data=True)
    assert len(everything.scores) == len(fit_a.data.flows) == len(own.scores) + own.left_out.flows
    assert everything.left_out.included and everything.left_out.line().startswith(
        f"includes training data: {own.left_out.flows} flows")

    # the same bytes in another folder are still the training file; other bytes of that name are not
    copy = tmp_path / "copy" / "curated"
    copy.mkdir(parents=True)
    shutil.copy(mixed / "curated" / MIXED, copy / MIXED)
    assert _keys(evaluate_data(fit_a.detector, copy.parent)) == {k for k in _keys(own) if k[0] == MIXED}
    table = pq.read_table(copy / MIXED)
    pq.write_table(table.slice(0, table.num_rows - 1), copy / MIXED)
    unseen = evaluate_data(fit_a.detector, copy.parent)
    assert len(unseen.scores) == table.num_rows - 1 and unseen.left_out.flows == 0
    assert unseen.left_out.notes == [f"{MIXED}: named like a training file of the model but other "
                                     + "content: counted as unseen data"]


def test_old_record_without_file_digests_uses_the_aggregate(fit_a, mixed, tmp_path):
    old = {k: v for k, v in fit_a.detector.info.as_json().items() if k != "file_digests"}
    assert _keys(evaluate_recorded_test(fit_a.detector, old)) == _keys(
        evaluate_recorded_test(fit_a.detector, fit_a.detector.info))
    # its folder changed and cannot vouch for the bytes: every benign flow of the same-named file is left out
    moved = tmp_path / "moved"
    shutil.copytree(mixed, moved)
    table = pq.read_table(moved / "curated" / MIXED)
    pq.write_table(table.slice(0, table.num_rows - 1), moved / "curated" / MIXED)
    scored = evaluate_data(replace(fit_a.detector, info={**old, "data_dir": str(moved)}), moved)
    benign = int((table.slice(0, table.num_rows - 1).column("label").to_numpy(zero_copy_only=False) == "BENIGN").sum())
    assert scored.left_out.flows == benign and (scored.labels != "BENIGN").all()
    assert "cannot be re-derived" in scored.left_out.notes[-1]


def test_data_changed_names_the_file_in_one_line(fit_a, mixed, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(mixed, copy)
    info = {**fit_a.detector.info.as_json(), "data_dir": str(copy)}
    elsewhere = evaluate_recorded_test(fit_a.detector, info)  # same bytes elsewhere: the same flows
    assert _keys(elsewhere) == _keys(evaluate_recorded_test(fit_a.detector, fit_a.detector.info))
    frame = pq.read_table(copy / "curated" / PORTSCAN).to_pandas()
    frame.loc[0, "flow_duration"] = frame.loc[0, "flow_duration"] + 1  # a curated file rewritten
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), copy / "curated" / PORTSCAN)
    with pytest.raises(DataChanged) as changed:
        evaluate_recorded_test(fit_a.detector, info)
    message = str(changed.value)
    assert "\n" not in message and PORTSCAN in message and MIXED not in message
    assert message == (f"{copy / 'curated'}: data changed since the model was trained: {PORTSCAN} "
                       "(sha256 differs from the model's record)")
    aggregate = {k: v for k, v in info.items() if k != "file_digests"}
    with pytest.raises(DataChanged, match=re.escape(f"one of {', '.join(info['files'])} (data digest differs")):
        evaluate_recorded_test(fit_a.detector, aggregate)
    (copy / "curated" / PORTSCAN).unlink()
    with pytest.raises(DataChanged, match=f"is gone \\({PORTSCAN}\\)$"):
        evaluate_recorded_test(fit_a.detector, info)
    assert isinstance(changed.value, RuntimeError)


def test_exclude_leaves_out_what_the_other_record_fitted_on(fit_a, fit_b, mixed):
    a, b = fit_a.detector, fit_b.detector
    flows, roles_a = _mixed_roles(mixed, SplitConfig(**a.info.split))
    _, roles_b = _mixed_roles(mixed, SplitConfig(**b.info.split))
    benign_rows = lambda roles: set((np.flatnonzero(flows.is_benign & (roles == TEST)) + 1).tolist())
    test_a, test_b = benign_rows(roles_a), benign_rows(roles_b)
    assert test_a < test_b  # B tests on more: the stretch A calibrated on is in B's test segment

    alone = evaluate_recorded_test(b, b.info)
    assert {r for r in _rows(alone, MIXED) if flows.is_benign[r - 1]} == test_b
    challenger = evaluate_recorded_test(b, b.info, exclude=[a.info])
    champion = evaluate_recorded_test(a, b.info, exclude=[a.info])
    assert {r for r in _rows(challenger, MIXED) if flows.is_benign[r - 1]} == test_a == test_b & test_a
    assert _keys(challenger) == _keys(champion)  # both models on the same flows
    assert int((challenger.labels == "DDoS").sum()) == N_DDOS and int((challenger.labels == "PortScan").sum()) == 1000
    left = challenger.left_out
    assert left.per_file == {MIXED: left.flows}
    assert left.flows == int((flows.is_benign & ((roles_a != TEST) | (roles_b != TEST))).sum())
    # and the other way round: A's own test set is already outside what B fitted on
    assert _keys(evaluate_recorded_test(a, a.info, exclude=[b.info])) == _keys(evaluate_recorded_test(a, a.info))
