#!/bin/sh
# Entrypoint of the SeaweedFS container: write the S3 identities file, then become the command.
#
#   entrypoint.sh weed ... -s3.config=$S3_IDENTITIES_PATH
#
# Two S3 identities, one per service that talks S3:
# - the admin (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by weed itself): only the one-shot
#   create-bucket job uses it;
# - the MLflow server (MLFLOW_S3_ACCESS_KEY / MLFLOW_S3_SECRET_KEY): read, write, list and tag
#   objects of S3_BUCKET, nothing else (no bucket creation or deletion, no other bucket).
# The file is generated from the environment at every start, readable by this user only, so no
# key is baked into an image or committed. Keys must be letters, digits, '-' or '_' (hex from
# `openssl rand -hex` is), which keeps the JSON below free of escaping.
# The filer's and volume servers' own HTTP APIs are closed by JWT signing keys that weed reads from
# WEED_JWT_* variables (security.toml's [jwt.signing] and [jwt.filer_signing] sections).
# tests/integration/stack.py runs this same script.
set -eu

fail() { echo "seaweedfs entrypoint: $*" >&2; exit 64; }

[ "$#" -gt 0 ] || fail "usage: entrypoint.sh COMMAND [ARGS...]  (e.g. weed server ...)"
for name in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_S3_ACCESS_KEY MLFLOW_S3_SECRET_KEY \
            S3_BUCKET S3_IDENTITIES_PATH WEED_JWT_SIGNING_KEY WEED_JWT_SIGNING_READ_KEY \
            WEED_JWT_FILER_SIGNING_KEY WEED_JWT_FILER_SIGNING_READ_KEY; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || fail "set $name"
done
for name in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_S3_ACCESS_KEY MLFLOW_S3_SECRET_KEY S3_BUCKET; do
    eval "value=\${$name}"
    case "$value" in
        *[!A-Za-z0-9_-]*) fail "$name may hold only letters, digits, '-' and '_'" ;;
    esac
done
[ "$MLFLOW_S3_ACCESS_KEY" != "$AWS_ACCESS_KEY_ID" ] || fail "MLflow's S3 key must not be the admin's"

umask 077
mkdir -p "$(dirname "$S3_IDENTITIES_PATH")"
printf '{"identities": [{"name": "mlflow", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Read:%s", "Write:%s", "List:%s", "Tagging:%s"]}]}\n' \
    "$MLFLOW_S3_ACCESS_KEY" "$MLFLOW_S3_SECRET_KEY" "$S3_BUCKET" "$S3_BUCKET" "$S3_BUCKET" "$S3_BUCKET" \
    > "$S3_IDENTITIES_PATH"
unset MLFLOW_S3_ACCESS_KEY MLFLOW_S3_SECRET_KEY
exec "$@"
