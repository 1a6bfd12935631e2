# KFP's launcher (backend/src/v2/cmd/launcher-v2 of the pinned KFP checkout), a static binary built
# by scripts/kfp/build.sh. Upstream's image (backend/Dockerfile.launcher) is alpine with
# /bin/launcher-v2 as uid 65532. Each task's init container runs `launcher-v2 --copy
# /kfp-launcher/launch` by name (V2_LAUNCHER_COMMAND), hence PATH; the copy then runs inside the
# component's own image, which is why it must be static.
FROM scratch
COPY rootfs/ /
COPY launcher-v2 /bin/launcher-v2
ENV PATH=/bin
USER 65532:65532
ENTRYPOINT ["/bin/launcher-v2"]
