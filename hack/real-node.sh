#!/usr/bin/env bash
# A real node for the local control plane: containerd + runc, a kubelet,
# kube-proxy (iptables), a bridge CNI and CoreDNS, all as plain processes with
# their state under $STATE. Sourced by cluster-up.sh / cluster-down.sh (REAL=1),
# which provide $STATE, $BIN, $KUBECONFIG_OUT, log, fail, start, stop_pid,
# free_port, wait_for and kubectl.
#
# Pod and Service addresses exist only inside this machine: both CIDRs are
# routed to a sink interface (a packet kube-proxy has not NATed yet is dropped
# here instead of following the default route), pods may not send anywhere but
# to pods, Services and this host, and CoreDNS answers cluster.local only.

POD_CIDR="${REAL_POD_CIDR:-10.98.0.0/16}"
NODE_POD_CIDR="${REAL_NODE_POD_CIDR:-10.98.0.0/24}"
BRIDGE_IP="${REAL_BRIDGE_IP:-10.98.0.1}"
SERVICE_CIDR="${REAL_SERVICE_CIDR:-10.97.0.0/16}"
# shellcheck disable=SC2034 # the apiserver certificate's name, used by cluster-up.sh
KUBERNETES_SERVICE_IP="${REAL_KUBERNETES_SERVICE_IP:-10.97.0.1}"
BRIDGE="${REAL_BRIDGE:-aimod-br0}"
SINK="${REAL_SINK:-aimod-null0}"
EGRESS_CHAIN=AIMOD-POD-EGRESS
INPUT_CHAIN=AIMOD-NODE-INPUT
NODE_NAME=real-node-0
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
# kubelet sets these host sysctls at start; cluster-down puts them back.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
         kernel.keys.root_maxbytes net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
         net.bridge.bridge-nf-call-ip6tables)

ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

real_preflight() {
  local cmd
  for cmd in containerd runc ctr iptables ip6tables ip busybox; do
    command -v "$cmd" >/dev/null || fail "preflight: '$cmd' not found (hack/install-deps.sh REAL=1 installs it)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || fail "preflight: CNI plugins missing in /usr/lib/cni"
  [[ $EUID -eq 0 ]] || fail "preflight: a real node needs root (containerd, iptables, mounts)"
  # One container straight from runc: if the kernel refuses namespaces,
  # cgroups or pivot_root, say so before anything else starts.
  local bundle="$STATE/preflight" out
  rm -rf "$bundle"; mkdir -p "$bundle/rootfs/bin"
  cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
  (cd "$bundle" && runc spec && python3 - <<'PY'
import json
spec = json.load(open("config.json"))
spec["process"]["args"] = ["/bin/busybox", "true"]
spec["process"]["terminal"] = False
json.dump(spec, open("config.json", "w"))
PY
  ) >/dev/null
  if ! out="$(runc --root "$bundle/state" run --bundle "$bundle" ai-moderator-preflight 2>&1)"; then
    log "the kernel refuses containers here (runc run failed): $out"
    exit 3
  fi
  rm -rf "$bundle"
}

save_sysctls() {
  local s
  [[ -f "$STATE/sysctl-orig.txt" ]] && return 0
  for s in "${SYSCTLS[@]}"; do
    [[ -e "/proc/sys/${s//.//}" ]] && printf '%s %s\n' "$s" "$(cat "/proc/sys/${s//.//}")"
  done >"$STATE/sysctl-orig.txt"
}

real_network_up() {
  save_sysctls
  ip link add "$BRIDGE" type bridge 2>/dev/null || true
  ip addr replace "$BRIDGE_IP/${NODE_POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The sink: a dummy interface (as kube-proxy's IPVS mode uses kube-ipvs0) or,
  # on kernels without the dummy driver, a bridge without ports or ARP, which
  # discards what it is given just the same.
  if ! ip link show "$SINK" >/dev/null 2>&1; then
    ip link add "$SINK" type dummy 2>/dev/null || ip link add "$SINK" type bridge || fail "create $SINK"
  fi
  ip link set "$SINK" arp off up
  ip route replace "$SERVICE_CIDR" dev "$SINK"
  ip route replace "$POD_CIDR" dev "$SINK"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  iptables -N "$EGRESS_CHAIN" 2>/dev/null || iptables -F "$EGRESS_CHAIN"
  iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -j DROP
  iptables -A "$EGRESS_CHAIN" -i "$BRIDGE" -j DROP
  iptables -A "$EGRESS_CHAIN" -o "$BRIDGE" -j DROP
  iptables -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$EGRESS_CHAIN"
  # The node's address answers on the bridge and loopback only, never to a
  # host outside that routes to it through this machine's other interfaces.
  iptables -N "$INPUT_CHAIN" 2>/dev/null || iptables -F "$INPUT_CHAIN"
  iptables -A "$INPUT_CHAIN" -i lo -j RETURN
  iptables -A "$INPUT_CHAIN" -i "$BRIDGE" -j RETURN
  iptables -A "$INPUT_CHAIN" -d "$BRIDGE_IP" -j DROP
  iptables -C INPUT -j "$INPUT_CHAIN" 2>/dev/null || iptables -I INPUT 1 -j "$INPUT_CHAIN"
  ip6tables -N "$EGRESS_CHAIN" 2>/dev/null || ip6tables -F "$EGRESS_CHAIN"
  ip6tables -A "$EGRESS_CHAIN" -i "$BRIDGE" -j DROP
  ip6tables -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || ip6tables -I FORWARD 1 -j "$EGRESS_CHAIN"
}

write_configs() {
  mkdir -p "$STATE"/{containerd,cni/net.d,cni/ipam,kubelet/root,kubelet/logs,kubelet/pki}
  cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
oom_score = 0
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.10"
  # No CAP_SYS_RESOURCE in this sandbox: never try to lower an oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  stream_server_address = "127.0.0.1"
  # Pod network namespaces under our state dir, so teardown's unmount frees
  # them (and their veths) even when a pod was never deleted.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
  # No masquerading: pod traffic never leaves the machine.
  cat >"$STATE/cni/net.d/10-ai-moderator.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "ai-moderator",
 "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$BRIDGE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  # Pods get the cluster's resolver and search path only, nothing of the host's.
  : >"$STATE/kubelet/resolv.conf"
  cat >"$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
address: $BRIDGE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: $KUBELET_HEALTHZ_PORT
healthzBindAddress: 127.0.0.1
podLogsDir: $STATE/kubelet/logs
clusterDNS: [$BRIDGE_IP]
clusterDomain: cluster.local
resolvConf: $STATE/kubelet/resolv.conf
oomScoreAdj: 0
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
registerNode: true
YAML
  cat >"$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_OUT}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $BRIDGE_IP
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
conntrack: {maxPerCore: 0}
oomScoreAdj: 0
iptables: {localhostNodePorts: false}
nodePortAddresses: ["$BRIDGE_IP/32"]
YAML
  # cluster.local only: every other name is refused, nothing is forwarded.
  cat >"$STATE/Corefile" <<CORE
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $BRIDGE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_OUT local
        pods insecure
    }
    cache 5
}
CORE
}

import_images() {
  local list="$AI_MODERATOR_CACHE/images/current.tsv" ref tar
  [[ -f "$list" ]] || fail "no image list at $list (hack/build-images.sh writes it)"
  while IFS=$'\t' read -r ref tar; do
    ctr_ images import "$tar" >>"$STATE/logs/images.log" 2>&1 || fail "import $ref from $tar" images
  done <"$list"
}

real_node_up() {
  KUBELET_PORT=$(free_port); KUBELET_HEALTHZ_PORT=$(free_port)
  KUBE_PROXY_HEALTHZ_PORT=$(free_port); KUBE_PROXY_METRICS_PORT=$(free_port)
  write_configs

  log "starting containerd"
  setsid containerd --config "$STATE/containerd/config.toml" >"$STATE/logs/containerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/containerd"
  wait_for "containerd socket" containerd 30 ctr_ version
  log "importing images"
  import_images

  log "starting kubelet, kube-proxy and CoreDNS"
  start kubelet kubelet --config "$STATE/kubelet/config.yaml" --kubeconfig "$KUBECONFIG_OUT" \
    --root-dir "$STATE/kubelet/root" --cert-dir "$STATE/kubelet/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$BRIDGE_IP"
  start kube-proxy kube-proxy --config "$STATE/kube-proxy.yaml"
  start coredns coredns -conf "$STATE/Corefile"
  node_ready() {
    [[ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
  }
  wait_for "the kubelet registers a Ready node" kubelet 120 node_ready
}

real_node_down() {
  local p t
  for p in coredns kube-proxy kubelet; do stop_pid "$p"; done
  if [[ -S "$CONTAINERD_SOCK" ]]; then
    for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s KILL "$t" >/dev/null 2>&1; done
    sleep 0.5
  fi
  stop_pid containerd
  # The shims outlive containerd by design; ours are the ones on our socket.
  pkill -9 -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null
  [[ -x "$BIN/kube-proxy" ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
  # Mounts left by the kubelet (secret tmpfs, volumes) and containerd (rootfs, shm).
  grep -o " $STATE/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  real_network_down
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null
  if [[ -f "$STATE/sysctl-orig.txt" ]]; then
    while read -r s v; do echo "$v" >"/proc/sys/${s//.//}" 2>/dev/null; done <"$STATE/sysctl-orig.txt"
  fi
  true
}

real_network_down() {
  local ipt t c
  ip link del "$BRIDGE" 2>/dev/null
  ip link del "$SINK" 2>/dev/null
  for ipt in iptables ip6tables; do
    $ipt -D FORWARD -j "$EGRESS_CHAIN" 2>/dev/null; $ipt -F "$EGRESS_CHAIN" 2>/dev/null; $ipt -X "$EGRESS_CHAIN" 2>/dev/null
    $ipt -D INPUT -j "$INPUT_CHAIN" 2>/dev/null; $ipt -F "$INPUT_CHAIN" 2>/dev/null; $ipt -X "$INPUT_CHAIN" 2>/dev/null
    # The kubelet's own chains and the portmap plugin's.
    $ipt -D INPUT -j KUBE-FIREWALL 2>/dev/null; $ipt -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
    $ipt -F KUBE-FIREWALL 2>/dev/null; $ipt -X KUBE-FIREWALL 2>/dev/null
    for t in mangle nat filter; do $ipt -t "$t" -F KUBE-KUBELET-CANARY 2>/dev/null; $ipt -t "$t" -X KUBE-KUBELET-CANARY 2>/dev/null; done
    $ipt -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null
    $ipt -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
    $ipt -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null
    for c in $($ipt-save -t nat 2>/dev/null | grep -oE '^:CNI-[A-Za-z0-9-]+' | tr -d :); do $ipt -t nat -F "$c"; done
    for c in $($ipt-save -t nat 2>/dev/null | grep -oE '^:CNI-[A-Za-z0-9-]+' | tr -d :); do $ipt -t nat -X "$c"; done
  done
  true
}
