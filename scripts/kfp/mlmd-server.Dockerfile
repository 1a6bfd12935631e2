# ML Metadata's gRPC service (ml_metadata.MetadataStoreService, port 8080) for KFP's driver and
# launcher: scripts/kfp/mlmd_server.py serving the in-process store of PyPI's ml-metadata wheel,
# in place of upstream's C++ gcr.io/tfx-oss-public/ml_metadata_store_server, which is not built
# here. MLMD_VERSION comes from scripts/kfp/versions.env (the default below is only for a bare
# `docker build`). Its wheel caps protobuf below 5, absl-py below 2 and attrs below 24; the
# other pins are the newest that resolved with it (pip check runs below).
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
ARG MLMD_VERSION=1.17.1
# A virtual environment: Debian's python3 refuses pip installs into the system (PEP 668), and
# the official python image works the same way with one.
ENV PATH=/opt/mlmd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/mlmd \
    && pip install --no-cache-dir --disable-pip-version-check \
        "ml-metadata==${MLMD_VERSION}" \
        grpcio==1.85.4 \
        protobuf==4.25.9 \
        absl-py==1.4.0 \
        attrs==23.2.0 \
        six==1.17.0 \
        typing-extensions==4.16.0 \
    && pip check \
    && install -d -o 1000 -g 0 -m 0770 /data
COPY mlmd_server.py /opt/mlmd/mlmd_server.py
# KFP's metadata-grpc deployment runs its server as 1000:0; /data is writable by both. A volume:
# the store's state, writable under a read-only root filesystem (mount a PVC there to keep it).
VOLUME /data
USER 1000:0
EXPOSE 8080
LABEL org.opencontainers.image.version=${MLMD_VERSION}
ENTRYPOINT ["/opt/mlmd/bin/python", "/opt/mlmd/mlmd_server.py"]
CMD ["--grpc_port=8080", "--sqlite_path=/data/mlmd.sqlite"]
