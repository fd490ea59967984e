"""Settings come from the environment and an optional YAML file; bad values fail naming the setting."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.settings import Settings, SettingsError, load_settings
from flows.cli import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("MLFLOW_TRACKING_URI", "FLOWAE_DEVICE", "FLOWAE_SEED", "FLOWAE_CONFIG",
                 "FLOWAE_ARTIFACT_ROOT", "FLOWAE_REGISTERED_MODEL_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_store():
    s = load_settings()
    assert s.tracking_uri == "sqlite:///mlflow/mlflow.db"
    assert s.artifact_root == Path("mlflow/artifacts")
    assert s.registered_model_name == "flowae"
    assert (s.device, s.seed, s.invalid_values) == ("auto", 42, "keep")
    assert s.data_experiment == "flowae-data" and s.train_experiment == "flowae-train"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("FLOWAE_DEVICE", "cpu")
    monkeypatch.setenv("FLOWAE_SEED", "7")
    s = load_settings()
    assert (s.tracking_uri, s.device, s.seed) == ("http://127.0.0.1:5000", "cpu", 7)


def test_yaml_file_is_read_and_env_wins(monkeypatch, tmp_path):
    (tmp_path / "flowae.yaml").write_text("device: cuda\nseed: 3\nregistered_model_name: ids\n")
    monkeypatch.setenv("FLOWAE_SEED", "5")
    s = load_settings()
    assert (s.device, s.seed, s.registered_model_name) == ("cuda", 5, "ids")


def test_explicit_config_file(monkeypatch, tmp_path):
    cfg = tmp_path / "conf" / "nightly.yaml"
    cfg.parent.mkdir()
    cfg.write_text("curated_dir: /srv/flowae/curated\n")
    monkeypatch.setenv("FLOWAE_CONFIG", str(cfg))
    assert load_settings().curated_dir == Path("/srv/flowae/curated")


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("FLOWAE_DEVICE", "tpu", "device (FLOWAE_DEVICE)"),
        ("FLOWAE_SEED", "-1", "seed (FLOWAE_SEED)"),
        ("FLOWAE_SEED", "many", "seed (FLOWAE_SEED)"),
        ("MLFLOW_TRACKING_URI", "mlflow.db", "tracking_uri (MLFLOW_TRACKING_URI)"),
        ("FLOWAE_INVALID_VALUES", "drop", "invalid_values (FLOWAE_INVALID_VALUES)"),
    ],
)
def test_invalid_setting_names_the_setting(monkeypatch, env, value, named):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=r"invalid setting " + named.replace("(", r"\(").replace(")", r"\)")):
        load_settings()


def test_unknown_key_in_yaml_is_rejected(tmp_path):
    (tmp_path / "flowae.yaml").write_text("devise: cpu\n")
    with pytest.raises(SettingsError, match="devise"):
        load_settings()


@pytest.mark.parametrize("text", ["device: [cpu\n", "- just\n- a list\n"])
def test_broken_yaml_names_the_file(tmp_path, text):
    (tmp_path / "flowae.yaml").write_text(text)
    with pytest.raises(SettingsError, match="flowae.yaml"):
        load_settings()


def test_missing_explicit_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWAE_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(SettingsError, match="FLOWAE_CONFIG"):
        load_settings()


def test_settings_are_frozen():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        Settings().seed = 1  # type: ignore[misc]


def test_cli_lists_every_design_command_and_each_has_help():
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0
    commands = ["synth", "ingest", "train", "evaluate", "promote", "retrain", "compare", "score",
                "serve", "demo"]
    for name in commands:
        assert name in listing.output
        assert runner.invoke(app, [name, "--help"]).exit_code == 0


def test_cli_bad_setting_fails_at_start_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWAE_DEVICE", "tpu")
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "invalid setting device (FLOWAE_DEVICE)" in result.output
    assert result.output.strip().count("\n") == 0
