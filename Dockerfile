# syntax=docker/dockerfile:1
# The flowae worker of docker-compose.yml: `flowae serve` runs the scheduled deployments
# (retrain weekly, score-nightly daily) against the stack's Prefect and MLflow servers.
# Build context: the repository root. Every version is pinned in constraints.txt. torch from PyPI is
# the CUDA build (for the GPU reservation in docker-compose.yml); for a CPU-only image pass
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu   (see docker-compose.cpu.yml)
FROM python:3.11.15-slim-bookworm

ARG TORCH_INDEX_URL=
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1

WORKDIR /app
COPY constraints.txt ./
# torch first, in a layer of its own: by far the largest download and the least often changed.
# The CPU index gets the pinned version alone: constraints.txt's other pins need not be on it.
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" "$(grep '^torch==' constraints.txt)"; \
    else \
        pip install -c constraints.txt torch; \
    fi

COPY pyproject.toml README.md ./
COPY components ./components
COPY flows ./flows
COPY data_contracts ./data_contracts
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --create-home --home-dir /home/flowae flowae \
    && mkdir -p /app/data /app/checkpoints \
    && chown flowae:flowae /app/data /app/checkpoints

# Paths in flowae's settings are relative to /app: data/, checkpoints/ (volumes in compose);
# Prefect keeps its local state under the user's home (~/.prefect).
USER flowae
CMD ["flowae", "serve"]
