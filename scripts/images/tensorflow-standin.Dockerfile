# Stand-in for tensorflow/tensorflow:<version>-gpu, built by scripts/images/standin-bases.sh
# on the python stand-in: PyPI's tensorflow in the system Python, as the official image has
# it (without the CUDA libraries, so it trains on CPU only). Never tagged with an official name.
ARG PYTHON_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}
ARG TENSORFLOW_VERSION
# Debian marks its Python as externally managed; the official image installs into it anyway.
RUN test -n "${TENSORFLOW_VERSION}" \
    && python3 -m pip install --no-cache-dir --break-system-packages \
       "tensorflow==${TENSORFLOW_VERSION}" \
    && python3 -c "import tensorflow as tf; assert tf.__version__ == '${TENSORFLOW_VERSION}', tf.__version__"
LABEL org.opencontainers.image.description="landmarks stand-in for tensorflow/tensorflow:${TENSORFLOW_VERSION}-gpu: PyPI tensorflow==${TENSORFLOW_VERSION}, no CUDA"
CMD ["python3"]
