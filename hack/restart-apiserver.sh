#!/usr/bin/env bash
# Restarts the local kube-apiserver with its exact command line (same port,
# certificates and etcd), as an upgrade or crash would: for reliability tests.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${CLUSTER_DIR:-$ROOT/.cluster}"
pidfile="$STATE/pids/kube-apiserver"
pid="$(cat "$pidfile")"
mapfile -d '' cmd < "/proc/$pid/cmdline"
kill "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -9 "$pid" 2>/dev/null || true
sleep "${1:-0}"
setsid "${cmd[@]}" >>"$STATE/logs/kube-apiserver.log" 2>&1 < /dev/null &
echo $! >"$pidfile"
source "$ROOT/hack/versions.sh"
for _ in $(seq 300); do
  [[ "$("$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz 2>/dev/null)" == ok ]] && exit 0
  sleep 0.2
done
echo "[restart-apiserver] kube-apiserver did not become ready" >&2
tail -n 20 "$STATE/logs/kube-apiserver.log" >&2
exit 1
