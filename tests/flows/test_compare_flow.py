"""`flowae compare` trains several models on the same windows and split, evaluates them the same
way as sibling runs of one parent, and prints and logs a leaderboard, with recall at 1% false
positives on the other days' benign flows beside AUROC."""
from __future__ import annotations

import pandas as pd
import pytest
from flow_test_rows import BENIGN, DDOS, PORTSCAN, TINY, WEEK
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from components.detect.compare import SPECS
from flows.cli import app

MODELS = "lstm_ae,persistence,isolation_forest_flow,mahalanobis_flow"


@pytest.mark.slow  # trains four models (30-60 s)
def test_compare_leaderboard_and_sibling_runs(shared_data, store, tmp_path):
    inputs = [arg for f in (BENIGN, DDOS, PORTSCAN, WEEK) for arg in ("--data", str(shared_data / f))]
    result = CliRunner().invoke(app, ["compare", *inputs, "--models", MODELS, "--out", str(tmp_path / "in"),
                                      "--files", BENIGN.removesuffix(".csv"), *TINY])
    assert result.exit_code == 0, result.output
    table = result.stdout.split("\n| model |")[0]
    assert "| model | auroc | recall@1%FPR | auprc | f1 |" in result.stdout
    for name in MODELS.split(","):
        assert f"| {name} |" in result.stdout, table
    assert "recall DDoS" in result.stdout and "recall PortScan" in result.stdout
    assert "| auroc DDoS | recall@1%FPR DDoS |" in result.stdout and "recall@1%FPR PortScan" in result.stdout
    week = WEEK.removesuffix(".csv") + ".parquet"
    assert f"other-day benign flows ({week})" in result.stdout

    client = MlflowClient(store.tracking_uri, registry_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name(store.compare_experiment)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert len(parent) == 1 and sorted(r.data.tags["flowae.compare_model"] for r in children) == sorted(MODELS.split(","))
    for child in children:  # identical evaluation data for every model
        assert child.data.metrics["test_flows"] == children[0].data.metrics["test_flows"]
        spec = child.data.tags["flowae.compare_model"]
        assert child.data.params["train.window"] == str(SPECS[spec][1].get("window", 8))
        assert child.data.tags["flowae.other_day_benign_files"] == week
        # one name per setting; each child names its training and test files and its figures
        assert "rule.stride" not in child.data.params and child.data.params["detector.rule.stride"]
        assert child.data.params["training_files"] == BENIGN.replace(".csv", ".parquet")
        assert week in child.data.params["test_files"] and DDOS.replace(".csv", ".parquet") in child.data.params["test_files"]
        assert child.data.tags["mlflow.note.content"].startswith(f"**{spec}**: AUROC ")
    description = parent[0].data.tags["mlflow.note.content"]  # the leaderboard, best first
    assert description.startswith(f"Best: **{parent[0].data.tags['flowae.best_model']}**")
    assert all(f"| {name} |" in description for name in MODELS.split(","))
    assert f"viewStateShareKey=children-{parent[0].info.run_id}&workflowType=machine_learning" in result.stdout
    artifacts = {a.path for a in client.list_artifacts(parent[0].info.run_id, "leaderboard")}
    assert artifacts == {"leaderboard/leaderboard.csv", "leaderboard/leaderboard.md"}
    board = pd.read_csv(client.download_artifacts(parent[0].info.run_id, "leaderboard/leaderboard.csv"))
    assert set(board["model"]) == set(MODELS.split(",")) and board["auroc"].is_monotonic_decreasing
    assert board[["recall@1%FPR", "recall@1%FPR DDoS", "recall@1%FPR PortScan"]].notna().all().all()
    by_model = board.set_index("model")  # each child logged the figure its leaderboard row shows
    for child in children:
        spec = child.data.tags["flowae.compare_model"]
        assert child.data.metrics["test_recall_at_1pct_fpr_other_day.DDoS"] == pytest.approx(
            by_model.loc[spec, "recall@1%FPR DDoS"]), spec


def test_unknown_model_in_the_list_is_one_line(tmp_path, mlflow_env):
    result = CliRunner().invoke(app, ["compare", "--data", str(tmp_path), "--models", "lstm_ae,gpt"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("flowae: compare: unknown model(s) gpt; valid: all, lstm_ae, lstm_ae_seq, ")
    assert "isolation_forest_flow, pca_flow" in line and "\n" not in line


def test_several_inputs_after_one_data_flag_reach_the_command(tmp_path, mlflow_env):
    """``--data DIR/*.csv`` in a shell is ``--data a.csv b.csv``: both are inputs, and the options
    after them still parse (the unknown model is what fails, not 'unexpected extra argument')."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    result = CliRunner().invoke(app, ["compare", "--data", str(a), str(b), "--models", "lstm_ae,gpt"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("flowae: compare: unknown model(s) gpt")
    bogus = CliRunner().invoke(app, ["retrain", "--data", str(a), str(b), "--bogus"])
    assert bogus.exit_code == 2 and "--bogus" in bogus.output
