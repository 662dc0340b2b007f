#!/usr/bin/env bash
# `make demo`: the local control plane, the CRD, the operator and the example
# ModerationStack brought to Ready; then the moderation API itself answering
# a request. With REAL=1 everything runs as real pods from the project's
# images (the operator installed by its Helm chart) and the request goes
# through `kubectl port-forward` to the stack's API Service.
# `hack/demo.sh down` stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/hack/versions.sh"
REAL="${REAL:-0}"
CLUSTER="$(cluster_dir "$ROOT")"
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$CLUSTER/kubeconfig")
STATE="$ROOT/.demo"
PY="$ROOT/.venv/bin/python"
log() { printf '\n[demo] %s\n' "$*" >&2; }

# `kubectl wait --for=condition=Established` fails outright ("conditions accessor
# error") when it reads the CRD before the API server has written any status, as
# happens on a busy machine; poll until the condition is there and True instead.
wait_established() {
  local crd=$1 deadline=$((SECONDS + $2)) status=""
  while ((SECONDS < deadline)); do
    status=$("${KUBECTL[@]}" get "$crd" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' \
      2>/dev/null || true)
    [[ $status == True ]] && return 0
    sleep 0.5
  done
  echo "[demo] $crd is not Established after $2 s (condition status: ${status:-not written yet})" >&2
  return 1
}

stop_pid() { if [[ -f "$1" ]]; then kill "$(cat "$1")" 2>/dev/null || true; fi; rm -f "$1"; }

if [[ "${1:-}" == down ]]; then
  stop_pid "$STATE/operator.pid"
  stop_pid "$STATE/api.pid"
  stop_pid "$STATE/port-forward.pid"
  rm -rf "$STATE"
  "$ROOT/hack/cluster-down.sh"
  exit 0
fi

"$ROOT/hack/cluster-up.sh"
mkdir -p "$STATE"
log "installing the ModerationStack CRD"
"${KUBECTL[@]}" apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
wait_established crd/moderationstacks.moderation.ai-moderator.io 60

restricted_namespace() {
  "${KUBECTL[@]}" create namespace "$1" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null
  "${KUBECTL[@]}" label namespace "$1" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
}
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")"

if [[ $REAL == 1 ]]; then
  log "installing the operator from its image with the Helm chart (namespace ai-moderator-system)"
  restricted_namespace ai-moderator-system
  "$K8S_BIN/helm" --kubeconfig "$CLUSTER/kubeconfig" upgrade --install aimod "$ROOT/charts/ai-moderator-operator" \
    --namespace ai-moderator-system --set image.repository=localhost/ai-moderator-operator \
    --set "image.tag=$VERSION" --set image.pullPolicy=Never --wait --timeout 180s >/dev/null
elif ! { [[ -f "$STATE/operator.pid" ]] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; }; then
  log "starting the operator (log: .demo/operator.log, metrics: http://127.0.0.1:8080/metrics)"
  KUBECONFIG="$ROOT/.cluster/kubeconfig" setsid "$PY" -m ai_moderator_workload.cli operator \
    --metrics-port 8080 --liveness http://127.0.0.1:8081/healthz >"$STATE/operator.log" 2>&1 < /dev/null &
  echo $! >"$STATE/operator.pid"
fi

operator_log() {
  if [[ $REAL == 1 ]]; then "${KUBECTL[@]}" logs -n ai-moderator-system deploy/aimod-operator --tail 30 >&2
  else tail -n 30 "$STATE/operator.log" >&2; fi
}

restricted_namespace moderation
if [[ $REAL == 1 ]]; then
  log "applying examples/moderationstack.yaml with the images built here (localhost/...)"
  "$PY" - "$ROOT/examples/moderationstack.yaml" <<'PY' | "${KUBECTL[@]}" apply -f -
import sys, yaml
stack = yaml.safe_load(open(sys.argv[1]))
spec = stack["spec"]
spec["image"] = "localhost/ai-moderator-workload"
spec["database"]["managed"]["image"] = "localhost/postgres:15"
spec["redis"]["managed"]["image"] = "localhost/redis:7"
print(yaml.safe_dump(stack))
PY
  READY_TIMEOUT=600s
else
  log "applying examples/moderationstack.yaml"
  "${KUBECTL[@]}" apply -f "$ROOT/examples/moderationstack.yaml"
  READY_TIMEOUT=120s
fi
if ! "${KUBECTL[@]}" wait -n moderation mstack/demo --for=jsonpath='{.status.phase}'=Ready --timeout=$READY_TIMEOUT >/dev/null; then
  log "the stack did not become Ready; operator log:"; operator_log; exit 1
fi
log "an on-demand backup (annotation moderation.ai-moderator.io/backup-now)"
"${KUBECTL[@]}" annotate -n moderation mstack/demo --overwrite "moderation.ai-moderator.io/backup-now=$(date +%s)" >/dev/null
if ! "${KUBECTL[@]}" wait -n moderation mstack/demo --for=condition=BackupSucceeded --timeout=$READY_TIMEOUT >/dev/null; then
  log "the backup did not succeed; operator log:"; operator_log; exit 1
fi
"${KUBECTL[@]}" get -n moderation mstack/demo -o jsonpath='{.status.backup}'; echo
log "kubectl get moderationstacks -A"
"${KUBECTL[@]}" get moderationstacks -A -o wide
log "children of moderation/demo"
"${KUBECTL[@]}" get deploy,statefulset,svc,pdb,cronjob,job,configmap,secret,pvc -n moderation \
  -l app.kubernetes.io/instance=demo

if [[ $REAL == 1 ]]; then
  log "the moderation API served by the stack's pods, through kubectl port-forward svc/demo-api 8000:80"
  "${KUBECTL[@]}" get pods -n moderation -o wide
  stop_pid "$STATE/port-forward.pid"
  setsid "${KUBECTL[@]}" port-forward -n moderation svc/demo-api 8000:80 >"$STATE/port-forward.log" 2>&1 </dev/null &
  echo $! >"$STATE/port-forward.pid"
  "${KUBECTL[@]}" exec -n moderation deploy/demo-api -- ai-moderator apikey create --name demo --admin 2>/dev/null \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["key"])' >"$STATE/admin.key"
else
  # Pods in this cluster are simulated (kwok), so the service itself is shown
  # running locally in its embedded mode (SQLite, in-process tasks).
  log "the moderation API itself (embedded mode) on http://127.0.0.1:8000"
  stop_pid "$STATE/api.pid"
  AI_MODERATOR_KEY_FILE="$STATE/admin.key" DATABASE_URL="sqlite:///$STATE/demo.sqlite3" \
    setsid "$PY" -m ai_moderator_workload.cli serve --port 8000 >"$STATE/api.log" 2>&1 < /dev/null &
  echo $! >"$STATE/api.pid"
fi
for _ in $(seq 100); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; sleep 0.2; done
KEY="$(cat "$STATE/admin.key")"
curl -sf http://127.0.0.1:8000/v1/moderations -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"input": ["Have a lovely day!", "I will kill you"]}' | "$PY" -c '
import json, sys
for text, r in zip(["Have a lovely day!", "I will kill you"], json.load(sys.stdin)["results"]):
    print("  %-24r flagged=%-5s %s" % (text, r["flagged"], [c for c, on in r["categories"].items() if on]))'
down="make demo-down"; [[ $REAL == 1 ]] && down="make demo-down REAL=1"
log "done. API key: .demo/admin.key; stop everything with: $down"
