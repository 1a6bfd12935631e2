# kube-proxy's image for the offline kind node (scripts/kind/node-image.sh): the pinned
# kube-proxy binary on Debian with the packet-filtering tools it runs.
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       iptables nftables ipset conntrack kmod \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY kube-proxy /usr/local/bin/kube-proxy
