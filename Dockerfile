# syntax=docker/dockerfile:1
# One image for every raysvc process: the admission webhook, the reconciler, the certificate
# tools. The Helm chart runs it as `raysvc webhook ...` and `raysvc reconcile ...`.
#
#   docker build -t raysvc:0.1.0 .
#   docker run --rm raysvc:0.1.0 check --help
#
# Pinned base: the same image (exact tag and digest) for building and running, so the
# virtual environment's interpreter path exists in the final stage. Update both together.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# --- 1. the project's wheel ---------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rayservice/ rayservice/
COPY raysvc/ raysvc/
COPY webhook/ webhook/
COPY certs/ certs/
COPY reconciler/ reconciler/
COPY localkube/ localkube/
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

# --- 2. a virtual environment with the wheel and its dependencies (binary wheels only: no
#        compiler is needed, and none reaches the final image) -----------------------------------
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels/ /wheels/
RUN python -m venv --without-pip /opt/raysvc \
 && python -m pip --python /opt/raysvc/bin/python install --only-binary=:all: /wheels/*.whl

# --- 3. the runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="raysvc" \
      org.opencontainers.image.description="Admission webhook and reconciler for KubeRay's RayService" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.13-slim-bookworm"
# Nothing installs packages at run time: drop the base image's installers.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
 && rm -rf /root/.cache
COPY --from=venv /opt/raysvc/ /opt/raysvc/
ENV PATH=/opt/raysvc/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user, so that the kubelet can verify runAsNonRoot; the chart's runAsUser matches.
USER 65532:65532
# webhook HTTPS, reconciler metrics, health (and the webhook's metrics)
EXPOSE 9443 8080 8081
ENTRYPOINT ["raysvc"]
CMD ["--help"]
