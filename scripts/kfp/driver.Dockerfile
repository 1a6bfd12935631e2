# KFP's driver (backend/src/v2/cmd/driver of the pinned KFP checkout), a static binary built by
# scripts/kfp/build.sh. Upstream's image (backend/Dockerfile.driver) is alpine with /bin/driver
# as uid 65532; the compiled workflows run it by name (`driver`, V2_DRIVER_COMMAND), hence PATH.
# rootfs/ holds only tmp/, mode 1777: the driver writes its outputs under /tmp, and FROM scratch
# has none. (`COPY tmp /tmp` would not do: COPY copies a folder's contents and makes the target
# 0755; the entries inside a copied folder keep their modes.)
FROM scratch
COPY rootfs/ /
COPY driver /bin/driver
ENV PATH=/bin
USER 65532:65532
ENTRYPOINT ["/bin/driver"]
