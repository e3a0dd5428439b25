# syntax=docker/dockerfile:1
# Model-serving image: gunicorn + Flask + CPU TensorFlow, serving the repository at /models.
#
#   docker build -t model-serving .
#   make compose-secrets        # secrets/serving/tokens.yaml and client tokens (or: python -m service.auth new)
#   docker run --rm -p 127.0.0.1:8501:8501 -p 127.0.0.1:8500:8500 -v "$PWD/secrets/serving:/run/secrets/model-serving:ro" model-serving
#   docker run ... -v "$PWD/models:/models:ro" model-serving                            # your own models
#
# Auth is on by default: AUTH_TOKENS_FILE points at /run/secrets/model-serving/tokens.yaml, where a
# secret (a compose bind mount, a Kubernetes Secret) provides the token file. Without it the server
# still starts and answers health (the HEALTHCHECK, probes) but every other route is 401 until the
# file appears; `-e AUTH_TOKENS_FILE=` (empty) turns auth off, for a trusted network only.
#
# Two stages: the build stage creates a virtualenv in /opt/venv; the runtime stage copies only
# that venv and the models onto a clean base, so no pip caches or sources reach the final image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Keep the base image's PIP_CERT / SSL_CERT_FILE: in CI, egress TLS goes through a proxy whose CA
# only that bundle trusts.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, read from pyproject.toml itself: this layer is reused until they change,
# so editing the code rebuilds in seconds instead of re-downloading TensorFlow.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

COPY . .
# tensorflow/include holds C++ headers for building custom ops (~290 MB), never used at run time.
# models/ may be absent from a checkout (git keeps no empty folders): make sure it exists to copy.
# tensorflow-serving-api (the TF Serving gRPC API) alone: its `tensorflow` requirement would add a
# second TensorFlow beside tensorflow-cpu (see the Makefile).
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps "tensorflow-serving-api==$(python -c 'from importlib.metadata import version; print(*version("tensorflow-cpu").split(".")[:2], sep=".")').*" \
    && rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include \
    && mkdir -p models


FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG UID=10001
LABEL org.opencontainers.image.title="model-serving" \
      org.opencontainers.image.description="TensorFlow SavedModels over TF Serving REST (/v1) and the Open Inference Protocol (/v2), with Prometheus metrics." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="python:3.11-slim"

# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it and volumes can be chowned to it.
# /models belongs to that user so a named volume initialised from it is writable by the trainer.
RUN groupadd --system --gid "${UID}" serving \
    && useradd --system --uid "${UID}" --gid serving --home-dir /home/serving --create-home \
        --shell /usr/sbin/nologin serving \
    && install -d -o serving -g serving -m 0755 /var/lib/serving /reports

COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=serving:serving /src/models /models

# Listen on all interfaces inside the container; publish on loopback on the host (see compose).
# WORKERS x TF_INTRA_OP_THREADS should match the CPUs the container gets (0 = cores / workers,
# where "cores" are the host's: set it explicitly under a CPU quota). Inference runs on each
# worker's event loop; THREADS serves only the Flask routes (status, metadata, :evaluate, /metrics).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODEL_REPOSITORY=/models \
    DATA_DIR=/var/lib/serving \
    HOST=0.0.0.0 \
    PORT=8501 \
    GRPC_PORT=8500 \
    WORKERS=2 \
    THREADS=16 \
    TF_INTRA_OP_THREADS=0 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    LOG_LEVEL=info \
    AUTH_TOKENS_FILE=/run/secrets/model-serving/tokens.yaml

USER ${UID}:${UID}
WORKDIR /home/serving
VOLUME ["/var/lib/serving"]
# 8501: REST (TF Serving v1, V2, admin, metrics); 8500: gRPC (TF Serving's and V2's services).
EXPOSE 8501 8500

# Ready = models loaded (503 before). urlopen raises on any non-2xx, which exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ.get('PORT', '8501'), timeout=4)"]

# gunicorn (exec'd by python -m service) drains in-flight requests on SIGTERM for up to its
# graceful_timeout (30 s): give containers at least that long to stop (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service"]
