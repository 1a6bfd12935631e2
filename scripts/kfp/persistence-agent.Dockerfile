# KFP's persistence agent (backend/src/agent/persistence of the pinned KFP checkout), a static
# binary built by scripts/kfp/build.sh, on the Debian stand-in (scripts/images/standin-bases.sh):
# upstream's command (backend/Dockerfile.persistenceagent) is a /bin/sh line that expands the
# environment below, which the deployment sets (NAMESPACE from the pod's namespace).
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
COPY persistence_agent /bin/persistence_agent
ENV NAMESPACE="" TTL_SECONDS_AFTER_WORKFLOW_FINISH=86400 NUM_WORKERS=2 LOG_LEVEL=info EXECUTIONTYPE=Workflow
USER 1000:0
WORKDIR /bin
CMD ["/bin/sh", "-c", "persistence_agent --logtostderr=true --namespace=${NAMESPACE} --ttlSecondsAfterWorkflowFinish=${TTL_SECONDS_AFTER_WORKFLOW_FINISH} --numWorker ${NUM_WORKERS} --executionType ${EXECUTIONTYPE} --logLevel=${LOG_LEVEL}"]
