# The image of the init containers that KFP's deployments run to wait for a port
# (`/bin/sh -ec "... nc -z -w 2 HOST PORT ..."`; upstream uses docker.io/alpine): Debian's
# OpenBSD netcat, which takes the same flags as busybox's. Built by scripts/kfp/support-images.sh.
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends netcat-openbsd >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
USER 1000:1000
CMD ["/bin/sh"]
