# The artifact store of the kind test cluster: the pinned SeaweedFS `weed` (a static binary built
# by scripts/s3/build.sh from the Go module proxy), as KFP 2.17 deploys it. Built by
# scripts/kind/artifact-store.sh; the binary is the only file.
FROM scratch
COPY weed /weed
USER 1000:1000
ENTRYPOINT ["/weed"]
