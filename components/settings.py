"""One typed settings object for the whole pipeline.

Read from the environment (``FLOWAE_*``, plus ``MLFLOW_TRACKING_URI``) and an optional YAML file
(``FLOWAE_CONFIG`` or ``flowae.yaml`` in the working directory). Invalid values fail at start with
a message that names the setting, so a nightly job never runs half-configured.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

Device = Literal["auto", "cpu", "cuda"]
InvalidValuePolicy = Literal["keep", "quarantine", "impute"]


class SettingsError(ValueError):
    """A setting is invalid; the message names it."""


class Settings(BaseSettings):
    """Where things live and how runs behave. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWAE_", extra="forbid", frozen=True, validate_default=True
    )

    tracking_uri: str = Field(
        default="sqlite:///mlflow/mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "FLOWAE_TRACKING_URI", "tracking_uri"),
    )
    artifact_root: Path = Path("mlflow/artifacts")
    data_experiment: str = "flowae-data"
    train_experiment: str = "flowae-train"
    retrain_experiment: str = "flowae-retrain"
    compare_experiment: str = "flowae-compare"
    evaluate_experiment: str = "flowae-evaluate"
    scoring_experiment: str = "flowae-scoring"
    registry_experiment: str = "flowae-registry"
    registered_model_name: str = "flowae"
    mlflow_ui_url: str | None = None  # links printed by retrain/compare/demo; default: see ui_base
    promotion_metric: Literal["auroc", "auprc", "f1", "recall"] = "auroc"
    promotion_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    # recall/f1 promotion: the challenger's benign FPR must stay within this factor of its target
    promotion_max_fpr_factor: float = Field(default=2.0, ge=1.0)
    work_dir: Path = Path("data/work")
    inbox_dir: Path = Path("data/inbox")  # score-nightly scores the new files found here
    inbox_settle_s: float = Field(default=60.0, ge=0)  # younger files may still be arriving
    max_attempts: int = Field(default=3, ge=1)  # score-nightly: tries per inbox file, across nights,
    # before it is quarantined (a data problem is quarantined at once)
    claim_ttl_s: float = Field(default=6 * 3600.0, gt=0)  # a claim on an inbox file not renewed
    # for this long is taken over (a claim whose process is gone on this host at once)
    max_parallel_files: int = Field(default=1, ge=1)  # files (or parts) scored or ingested at once
    # per flow run: memory is bounded per file
    score_cron: str = "0 2 * * *"  # score-nightly: every day at 02:00
    retrain_cron: str = "0 3 * * 0"  # retrain: Sundays at 03:00
    retrain_inputs: list[str] = ["data/raw"]  # raw files or folders the weekly retrain ingests
    retrain_days: list[str] = []  # capture days it trains on (empty: the time split of all files)
    retrain_model: str | None = None  # None: the recommended model (TrainConfig defaults, components/learn/training.py)
    curated_dir: Path = Path("data/ingested")
    scored_dir: Path = Path("data/scored")
    checkpoint_dir: Path = Path("checkpoints")
    device: Device = "auto"
    seed: int = Field(default=42, ge=0)
    invalid_values: InvalidValuePolicy = "keep"
    max_missing_feature_share: float = Field(default=0.25, ge=0, le=1)  # a night's file lacking more
    # of the model's inputs than this share is not scored (quarantined with the columns named)
    host_budget: float = Field(default=1.0, gt=0)  # benign hosts (and pairs) flagged per night, expected
    host_max_rate: float = Field(default=0.05, gt=0, le=1)  # never flag more than this share of a small night

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri_has_scheme(cls, value: str) -> str:
        if "://" not in value and not value.startswith(("file:", "databricks")):
            raise ValueError("must be a URI such as sqlite:///mlflow/mlflow.db or http://host:5000")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def _config_file() -> Path | None:
    explicit = os.environ.get("FLOWAE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SettingsError(f"FLOWAE_CONFIG: {path} does not exist")
        _check_yaml(path)
        return path
    local = Path("flowae.yaml")
    if local.is_file():
        _check_yaml(local)
        return local
    return None


def _check_yaml(path: Path) -> None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if doc is not None and not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a mapping of setting: value")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning pydantic's report into one line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            if name in ("MLFLOW_TRACKING_URI", "FLOWAE_TRACKING_URI", "tracking_uri"):
                name, env = "tracking_uri", "MLFLOW_TRACKING_URI"
            else:
                env = f"FLOWAE_{name.upper()}"
            problems.append(f"invalid setting {name} ({env}): {err['msg']}")
        raise SettingsError("; ".join(problems)) from None


def artifact_location(settings: Settings) -> str:
    """Artifact root for experiments created on the embedded (sqlite/file) store."""
    return settings.artifact_root.resolve().as_uri()
