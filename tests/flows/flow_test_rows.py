"""Names of the real CIC-IDS2017 excerpts, the tiny training options and the small helpers the
flow tests share."""
BENIGN = "friday-afternoon-benign-head.MachineLearningCVE.csv"
DDOS = "friday-ddos-1000.TrafficLabelling.csv"
PORTSCAN = "friday-portscan-1000.TrafficLabelling.csv"
WEEK = "week-benign-sample.CICIDS2017_sample.csv"
#: every network and baseline in these tests: tiny, a few epochs, CPU
TINY = ["--epochs", "2", "--window", "8", "--stride", "4", "--hidden", "8", "--batch-size", "256",
        "--device", "cpu", "--seed", "0"]


def tiny_detector(data, model: str = "lstm_ae", calibration: str = "mahalanobis", seed: int = 0):
    """A small detector trained on the benign file of an ingest folder (component path, no flow)."""
    from components.detect.fit import fit_detector
    from components.jobs import DetectorConfig, TrainConfig, TrainJob

    job = TrainJob(data=data, files=(BENIGN.removesuffix(".csv"),),
                   train=TrainConfig(model=model, epochs=2, window=8, stride=4, hidden=8, batch_size=256,
                                     lr=1e-3, device="cpu", seed=seed),
                   detector=DetectorConfig(calibration=calibration, mahalanobis_inputs=calibration == "mahalanobis",
                                           target_fpr=0.01))
    return fit_detector(job, progress=False).detector


def register_detector(settings, detector) -> str:
    """Log ``detector`` as flowae's pyfunc and register it (it becomes the challenger)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from components.serve.packaging import log_detector
    from components.serve.registry import register
    from components.tracking import stage_run

    first = Path(detector.info.data_dir) / "curated" / detector.info.files[0]
    example = pq.read_table(first).slice(0, 3).to_pandas().drop(columns=["source_file", "row_number"])
    with stage_run(settings, settings.train_experiment, detector.name):
        info = log_detector(detector, example)
    return register(settings, info.model_uri, {"flowae.family": detector.name})


def champion(settings, data) -> str:
    """A tiny registered model made champion; returns its version."""
    from components.serve.registry import make_champion

    version = register_detector(settings, tiny_detector(data))
    make_champion(settings, version)
    return version


def latest_artifact(key: str):
    """The newest Prefect artifact with this key, from the session's test server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no Prefect artifact {key!r}"
    return found[0]
