# The Kubeflow training-operator v1 as an image of its static binary, built on this machine
# (scripts/kind/training-operator.sh image): FROM scratch pulls nothing. The binary comes from
# the Go module proxy (scripts/test-cluster/build.sh training-operator), pinned there.
FROM scratch
COPY manager /manager
# The upstream image runs as distroless "nonroot"; the same uid keeps the restricted profile.
USER 65532:65532
ENTRYPOINT ["/manager"]
