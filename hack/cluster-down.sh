#!/usr/bin/env bash
# Stops exactly the processes cluster-up.sh started (by pid) and removes their
# state. With REAL=1 (the real-node cluster) it also stops the containers and
# puts back what the node changed on the host: iptables rules, interfaces,
# mounts and sysctls.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/hack/versions.sh"
REAL="${REAL:-0}"
STATE="${CLUSTER_DIR:-$(cluster_dir "$ROOT")}"
BIN="$K8S_BIN"
log() { printf '[cluster-down] %s\n' "$*" >&2; }
[[ -d "$STATE/pids" ]] || { log "no cluster in $STATE"; rm -rf "$STATE"; exit 0; }

stop_pid() { # name
  local f="$STATE/pids/$1" pid
  [[ -f "$f" ]] || return 0
  pid="$(cat "$f")"
  # Each was started with setsid: its pid is its process group, so the
  # group kill also ends children (the provisioner's kubectl calls).
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_pid pv-provisioner
if [[ $REAL == 1 ]]; then
  source "$ROOT/hack/real-node.sh"
  real_node_down
else
  stop_pid kwok
fi
# Controllers go before the apiserver and etcd.
for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$name"; done
rm -rf "$STATE"
log "stopped and removed $STATE"
