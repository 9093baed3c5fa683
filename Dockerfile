# syntax=docker/dockerfile:1
# sagemaker-executor: consumes BAI_APP_FETCHER and runs each benchmark as an Amazon SageMaker training job.
# Drop-in replacement for the Anubis `sm-executor` image; configured only through environment variables
# (see deploy/base/). Build from the repository root:  docker build -t sagemaker-executor .

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the package and its runtime dependencies (no dev tools) into a venv ---
FROM ${PYTHON_IMAGE} AS build
# No extras by default: the image has no SageMaker SDK. --build-arg EXTRAS='[sdk]' adds it, for
# REQUEST_BUILDER=sdk.
ARG EXTRAS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# setup.py reads README.md for the long description; pyproject.toml names the build backend.
COPY setup.py pyproject.toml README.md ./
COPY sagemaker_executor ./sagemaker_executor
# A non-editable install: the runtime stage needs only /opt/venv, not the source tree.
RUN pip install ".${EXTRAS}" \
    && pip check \
    && python -c "import sagemaker_executor.cli"

# --- runtime ---
FROM ${PYTHON_IMAGE}

# SAGEMAKER_SUPPRESS_V2_WARNING: with the sdk extra, the 2.x SDK prints a deprecation banner on import.
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in the cluster; bytecode is precompiled.
# HOME=/tmp: the only writable place in the cluster (an emptyDir); boto3 (and the SDK) may write there.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SAGEMAKER_SUPPRESS_V2_WARNING=1

# A numeric, non-root user, so that Kubernetes `runAsNonRoot` can verify it from the image alone.
RUN groupadd --system --gid 10001 executor \
    && useradd --system --uid 10001 --gid executor --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin executor

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /tmp

ENTRYPOINT ["sagemaker-executor"]
