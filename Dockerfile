# The operator's image: only the etcd-operator package and its pinned dependencies, in a
# virtualenv copied onto a slim Python; no compilers, localcluster, harness, tests or Go.
# Build: docker build -t ghcr.io/etcd-operator/etcd-operator:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY etcd_operator ./etcd_operator
# The wheel first, then it and its dependencies at the versions of constraints.txt.
RUN python -m venv /opt/etcd-operator \
    && /opt/etcd-operator/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/etcd-operator/bin/pip install --constraint constraints.txt /wheels/etcd_operator-*.whl \
    && /opt/etcd-operator/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/etcd-operator /opt/etcd-operator
ENV PATH=/opt/etcd-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    USER=etcd-operator
# The Deployment's runAsUser: a numeric id, so runAsNonRoot can be verified. It has no passwd
# entry, hence USER above: kopf asks getpass for a user name at start.
USER 65532:65532
ENTRYPOINT ["etcd-operator"]
CMD ["run"]
