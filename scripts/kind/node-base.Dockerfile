# The node image's system, built offline by scripts/kind/node-image.sh (classic builder) on the
# Debian stand-in base: what kind's own images/base Dockerfile installs, from Debian's packages
# instead of upstream downloads (containerd, runc, CNI plugins), plus kind's node files read
# from the pinned kind module and the Kubernetes binaries built from the pinned wrapper module.
# node.Dockerfile then adds the preloaded control-plane images.
ARG BASE_IMAGE=landmarks-standin/python:3.11-bookworm
FROM ${BASE_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian's packages of the stand-in's release; versions are the release's (no pins on purpose:
# bookworm's security updates should land at the next build).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       systemd dbus \
       conntrack iptables nftables ipset iproute2 ethtool util-linux mount kmod \
       libseccomp2 pigz bash ca-certificates curl jq procps \
       containerd runc containernetworking-plugins catatonit \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
       /etc/systemd/system/*.wants/* \
       /lib/systemd/system/local-fs.target.wants/* \
       /lib/systemd/system/sockets.target.wants/*udev* \
       /lib/systemd/system/sockets.target.wants/*initctl* \
       /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init \
    # kind's units and config expect containerd in /usr/local/bin and the plugins in /opt/cni/bin.
    && ln -s /usr/bin/containerd /usr/local/bin/containerd \
    && mkdir -p /opt/cni && ln -s /usr/lib/cni /opt/cni/bin
# kind's node files (entrypoint, units, containerd config), as node-image.sh prepared them.
COPY kind-files/ /
COPY bin/kubelet bin/kubeadm bin/kubectl /usr/bin/
COPY bin/crictl /usr/local/bin/
COPY node/landmarks-cni.sh /kind/bin/
COPY node/landmarks-cni.service /etc/systemd/system/
# cri-base.json as kind generates it: containerd's default spec, kind's product-uuid hook, no rlimits.
RUN chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/* \
    && ctr oci spec \
       | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
       | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service landmarks-cni.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests \
    && kubelet --version && kubeadm version -o short && containerd --version && runc --version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
