#!/bin/bash
# Runs in each offline kind node at boot, before containerd and the kubelet (landmarks-cni.service):
# kind's own CNI (kindnetd) cannot be had offline, so the cluster is created with
# disableDefaultCNI and every node gets a static bridge network instead. A node at a.b.c.N on
# kind's Docker network gives its pods 10.244.N.0/24 (inside kind's default pod subnet), and
# routes every other 10.244.M.0/24 to a.b.c.M, the node that owns it: pod-to-pod traffic between
# nodes works without a routing daemon (all nodes share one Docker bridge).
set -euo pipefail

addr="$(ip -4 -o addr show dev eth0 | awk '{print $4}' | head -n1)"
[[ -n "$addr" ]] || { echo "landmarks-cni: eth0 has no IPv4 address" >&2; exit 1; }
ip="${addr%/*}"
prefix="${ip%.*}"
own="${ip##*.}"

mkdir -p /etc/cni/net.d
cat >/etc/cni/net.d/10-landmarks-bridge.conflist <<CONF
{
  "cniVersion": "1.0.0",
  "name": "landmarks-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.$own.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
CONF
for ((n = 1; n < 255; n++)); do
  ((n == own)) || ip route replace "10.244.$n.0/24" via "$prefix.$n" dev eth0 onlink
done
echo "landmarks-cni: pods on this node get 10.244.$own.0/24 (node $ip)"
