#!/usr/bin/env bash
# Stops exactly the processes cluster-up.sh started (by pid) and removes their state.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${CLUSTER_DIR:-$ROOT/.cluster}"
[[ -d "$STATE/pids" ]] || { echo "[cluster-down] no cluster in $STATE"; rm -rf "$STATE"; exit 0; }
# Reverse start order, so that controllers go before the apiserver and etcd.
for name in pv-provisioner kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  f="$STATE/pids/$name"
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  # Each was started with setsid: its pid is its process group, so the
  # group kill also ends children (the provisioner's kubectl calls).
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  fi
done
rm -rf "$STATE"
echo "[cluster-down] stopped and removed $STATE"
