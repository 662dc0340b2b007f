#!/usr/bin/env bash
# `make demo`: the local control plane, the operator, and an example
# ModerationStack brought to Ready. `hack/demo.sh down` stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/hack/versions.sh"
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$ROOT/.cluster/kubeconfig")
STATE="$ROOT/.demo"
log() { printf '[demo] %s\n' "$*" >&2; }

if [[ "${1:-}" == down ]]; then
  [[ -f "$STATE/operator.pid" ]] && kill "$(cat "$STATE/operator.pid")" 2>/dev/null || true
  rm -rf "$STATE"
  "$ROOT/hack/cluster-down.sh"
  exit 0
fi

"$ROOT/hack/cluster-up.sh"
mkdir -p "$STATE"
log "nodes:"
"${KUBECTL[@]}" get nodes -o wide
