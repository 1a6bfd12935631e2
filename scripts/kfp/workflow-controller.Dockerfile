# Argo Workflows' workflow-controller at the version KFP pins (scripts/kfp/versions.env), a static
# binary built by scripts/kfp/build.sh from the Go module proxy. Upstream's image is
# distroless/static with /bin/workflow-controller as uid 8737.
FROM scratch
COPY rootfs/ /
COPY workflow-controller /bin/workflow-controller
ENV PATH=/bin
USER 8737:8737
ENTRYPOINT ["/bin/workflow-controller"]
