# KFP's API server (backend/src/apiserver of the pinned KFP checkout), a static binary built by
# scripts/kfp/build.sh, on the Debian stand-in (scripts/images/standin-bases.sh): upstream's
# command (backend/Dockerfile) is a /bin/sh line that expands LOG_LEVEL. /config holds the
# checkout's backend/src/apiserver/config/config.json, upstream's defaults; deployments override
# it with environment variables (viper) or by mounting their own /config. The samples upstream
# compiles into /samples (Python, at image build time) are left out, so --sampleconfig is too
# (backend/src/apiserver/config/config.go: LoadSamples skips a path that does not exist).
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
COPY config/config.json /config/config.json
COPY apiserver /bin/apiserver
ARG COMMIT_SHA=unknown
ARG TAG_NAME=unknown
ENV COMMIT_SHA=${COMMIT_SHA} TAG_NAME=${TAG_NAME} LOG_LEVEL=info
USER 1000:0
WORKDIR /bin
EXPOSE 8888 8887
CMD ["/bin/sh", "-c", "/bin/apiserver --config=/config -logtostderr=true --logLevel=${LOG_LEVEL}"]
