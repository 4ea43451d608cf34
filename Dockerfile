# The images of wallbounce-rollouts: one Dockerfile, one target per product, sharing a runtime base.
# Build from the repository root:
#   docker build --target operator -t REGISTRY/wallbounce-operator:0.1.0 .
#   docker build --target service  -t REGISTRY/wallbounce-service:0.1.0 .
# Each image holds its product's distribution, wallbounce-api and their declared dependencies, nothing else:
# the operator image has no LLM client, no Redis client and nothing of e2e/. Both run as UID 10001 with a
# read-only root filesystem (bytecode is compiled at build time; the service wants an emptyDir on /tmp).
# No HEALTHCHECK: Kubernetes probes /healthz (and the service's /readyz); provider keys come from a Secret.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ----- build: a virtualenv per product, from its distribution's own dependencies -------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY api/ api/

FROM builder AS operator-build
COPY operator/ operator/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ./api ./operator \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM builder AS service-build
COPY service/ service/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ./api ./service \
 && /opt/venv/bin/python -m compileall -q /opt/venv

# ----- run: the same base for both -------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 wallbounce \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wallbounce
WORKDIR /tmp

FROM runtime AS service
COPY --from=service-build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 4000
ENTRYPOINT ["wallbounce-service"]
CMD ["--host", "0.0.0.0", "--port", "4000"]

FROM runtime AS operator
COPY --from=operator-build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["wallbounce-operator"]
CMD ["--all-namespaces", "--metrics-port", "8080", "--log-format", "json"]
