# KFP's scheduled-workflow controller (backend/src/crd/controller/scheduledworkflow of the pinned
# KFP checkout), a static binary built by scripts/kfp/build.sh, on the Debian stand-in
# (scripts/images/standin-bases.sh, which has tzdata for the cron time zones): upstream's command
# (backend/Dockerfile.scheduledworkflow) is a /bin/sh line with defaults from the environment.
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
COPY controller /bin/controller
ENV NAMESPACE="" LOG_LEVEL=info
USER 1000:0
WORKDIR /bin
CMD ["/bin/sh", "-c", "/bin/controller --logtostderr=true --namespace=${NAMESPACE} --logLevel=${LOG_LEVEL} --clientQPS=${CLIENT_QPS:-5} --clientBurst=${CLIENT_BURST:-10} --recurringRunResyncIntervalSeconds=${RESYNC_INTERVAL_SECONDS:-30} --metricsPort=${METRICS_PORT:-9090} --userIdentityHeader=\"${USER_IDENTITY_HEADER:-}\" --userIdentityValue=\"${USER_IDENTITY_VALUE:-}\""]
