# The offline kind node image: node-base.Dockerfile's system with the control-plane images
# already in containerd's store (/var/lib/containerd, imported by scripts/kind/node-image.sh),
# under the names kubeadm expects, so `kind create cluster` pulls nothing.
ARG NODE_BASE=landmarks-kind/node-base:latest
FROM ${NODE_BASE}
COPY containerd/ /var/lib/containerd/
