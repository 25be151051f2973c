# One image for every aigis process: `aigis operator`, `aigis webhook` and the injected
# `aigis gateway` sidecar (the entrypoint is `aigis`; the chart passes the subcommand).
#
# BASE is the runtime base and BUILDER_BASE the build stage's; both must carry the same Python
# (3.11+) at the same path, because the virtual environment built in the first stage is copied
# into the second. Users build from the public Python image:
#   podman build -t aigis:dev .            (or docker build)
# hack/build-image.sh builds from a local Debian 12 base made with mmdebstrap instead, because
# this project's machines have no registry.
ARG BASE=docker.io/library/python:3.11-slim-bookworm
ARG BUILDER_BASE=${BASE}

FROM ${BUILDER_BASE} AS build
# A CA bundle for a TLS-intercepting proxy, when the build host sits behind one (declared
# without a default: unset unless given, so pip and uv keep their own roots).
ARG PIP_CERT
ARG SSL_CERT_FILE
# uv installs the locked dependencies (uv.lock) and aigis itself into /opt/aigis, not editable.
ARG UV_VERSION=0.13.9
# Optional extras, e.g. `onnx` for gateways that load a workload's ONNX prompt-injection
# classifier (onnxruntime and tokenizers, about 90 MB more).
ARG AIGIS_EXTRAS=
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/aigis PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m pip install --no-cache-dir --break-system-packages --root-user-action=ignore \
        "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
# Dependencies first, so a source change reuses this layer. Wheels only: no compiler needed.
RUN uv sync --frozen --no-dev --no-install-project --no-build --python python3 \
        ${AIGIS_EXTRAS:+--extra ${AIGIS_EXTRAS}}
COPY README.md ./
COPY operator ./operator
RUN uv sync --frozen --no-dev --no-editable --no-build --python python3 \
        ${AIGIS_EXTRAS:+--extra ${AIGIS_EXTRAS}} \
    # the local control plane is a development tool; it never runs in a cluster
    && rm -rf /opt/aigis/lib/python3*/site-packages/aigis/devcluster \
    && rm -f /opt/aigis/bin/activate* /opt/aigis/bin/deactivate

FROM ${BASE}
LABEL org.opencontainers.image.title="aigis" \
      org.opencontainers.image.description="aigis operator, admission webhook and AI gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/aigis-dev/aigis"
COPY --from=build /opt/aigis /opt/aigis
# Bytecode is compiled at build time, so a read-only root filesystem costs nothing at start;
# /tmp is the only writable path the chart mounts (an emptyDir).
ENV PATH=/opt/aigis/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
# A numeric non-root user, so `runAsNonRoot` can verify it without an /etc/passwd entry.
USER 65532:65532
ENTRYPOINT ["/opt/aigis/bin/aigis"]
CMD ["--help"]
