"""One-shot job: create the MLflow artifact bucket on the S3 store when it is not there yet.

docker-compose.yml runs it (service ``create-bucket``) once SeaweedFS is healthy, and the MLflow
server starts only after it exited 0; tests/integration/stack.py runs the same script. Idempotent.

Environment: MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_BUCKET,
AWS_DEFAULT_REGION (default us-east-1).
"""
from __future__ import annotations

import os
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ATTEMPTS = 30  # the S3 gateway can answer /healthz a moment before its filer accepts writes


def ensure_bucket(endpoint: str, bucket: str) -> str:
    s3 = boto3.client("s3", endpoint_url=endpoint,
                      region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if bucket in names:
                return "exists"
            s3.create_bucket(Bucket=bucket)
            return "created"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return "exists"
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                        "InvalidBucketName") or attempt == ATTEMPTS:
                raise
        except BotoCoreError:
            if attempt == ATTEMPTS:
                raise
        time.sleep(1)
    raise AssertionError("unreachable")


def main() -> None:
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    bucket = os.environ.get("S3_BUCKET")
    if not endpoint or not bucket:
        raise SystemExit("create_bucket: set MLFLOW_S3_ENDPOINT_URL and S3_BUCKET")
    try:
        outcome = ensure_bucket(endpoint, bucket)
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"create_bucket: {bucket} on {endpoint}: {exc}") from None
    print(f"bucket {bucket} {outcome} on {endpoint}", flush=True)


if __name__ == "__main__":
    main()
