#!/usr/bin/env bash
# Starts a local Kubernetes control plane as plain processes: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, and either kwok with
# one fake Node (on 127.0.0.1; writes .cluster/kubeconfig) or, with REAL=1, one
# real node from hack/real-node.sh (the apiserver on the pod bridge's address;
# writes .cluster-real/kubeconfig). The two can run at once. Idempotent: a
# healthy running cluster is left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/hack/versions.sh"
REAL="${REAL:-0}"
STATE="${CLUSTER_DIR:-$(cluster_dir "$ROOT")}"
KUBECONFIG_OUT="$STATE/kubeconfig"
BIN="$K8S_BIN"
log() { printf '[cluster-up] %s\n' "$*" >&2; }
fail() {
  log "FAILED at step: $1"
  if [[ -n "${2:-}" && -f "$STATE/logs/$2.log" ]]; then
    log "last lines of $2's log:"; tail -n 25 "$STATE/logs/$2.log" >&2
  fi
  exit 1
}
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

alive() { [[ -f "$STATE/pids/$1" ]] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }
if [[ $REAL == 1 ]]; then
  source "$ROOT/hack/real-node.sh"
  NODE_PROCESSES=(containerd kubelet kube-proxy coredns)
  API_ADDRESS="$BRIDGE_IP"
  KWOK_APISERVER_FLAGS=()
  CONTROLLERS='*,-nodeipam'
else
  NODE_PROCESSES=(kwok)
  SERVICE_CIDR=10.96.0.0/16
  KUBERNETES_SERVICE_IP=10.96.0.1
  API_ADDRESS=127.0.0.1
  # No node lifecycle controller and no not-ready taint at node creation:
  # kwok's nodes have no kubelet, and a heartbeat delayed by a busy machine
  # must not mark every pod NotReady for good.
  KWOK_APISERVER_FLAGS=(--disable-admission-plugins TaintNodesByCondition)
  CONTROLLERS='*,-nodeipam,-nodelifecycle'
fi
cluster_healthy() {
  [[ -f "$KUBECONFIG_OUT" ]] || return 1
  local c; for c in etcd kube-apiserver kube-controller-manager kube-scheduler pv-provisioner "${NODE_PROCESSES[@]}"; do
    alive "$c" || return 1
  done
  [[ "$(kubectl get --raw /readyz 2>/dev/null)" == ok ]]
}

if cluster_healthy; then
  log "already running; kubeconfig: $KUBECONFIG_OUT"
  exit 0
fi
if [[ -d "$STATE/pids" ]]; then
  log "stale cluster state found; stopping it first"
  REAL=$REAL CLUSTER_DIR="$STATE" "$ROOT/hack/cluster-down.sh"
fi

REAL=$REAL "$ROOT/hack/build-k8s.sh" || fail "build of the cluster binaries"
mkdir -p "$STATE"/{pki,pids,logs,etcd}
if [[ $REAL == 1 ]]; then
  "$ROOT/hack/build-images.sh" || fail "build of the images"
  real_preflight
  real_network_up
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port); API_PORT=$(free_port); KWOK_PORT=$(free_port)

pki="$STATE/pki"
{
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ai-moderator-local-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
  printf 'subjectAltName=IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' \
    "$API_ADDRESS" "$KUBERNETES_SERVICE_IP" >"$pki/san.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/san.ext" -out "$pki/apiserver.crt"
  # The apiserver's identity towards kubelets (logs, exec, port-forward).
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$pki/kubelet-client.key" -out "$pki/kubelet-client.csr"
  openssl x509 -req -in "$pki/kubelet-client.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/kubelet-client.crt"
  openssl genrsa -out "$pki/sa.key" 2048
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
} >"$STATE/logs/openssl.log" 2>&1 || fail "openssl certificates" openssl
TOKEN="$(openssl rand -hex 24)"
printf '%s,admin,admin,system:masters\n' "$TOKEN" >"$pki/tokens.csv"

cat >"$KUBECONFIG_OUT" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$API_ADDRESS:$API_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
KC
chmod 600 "$KUBECONFIG_OUT"

start() { # name, binary, args...
  local name="$1" bin="$2"; shift 2
  setsid "$BIN/$bin" "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/pids/$name"
}
wait_for() { # description, log name, seconds, command...
  local what="$1" name="$2" secs="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail "$what ($name exited)" "$name"
    (( SECONDS < deadline )) || fail "$what (timed out after ${secs}s)" "$name"
    sleep 0.2
  done
}

start_kwok() {
  log "starting kwok"
  start kwok kwok --kubeconfig "$KUBECONFIG_OUT" --manage-all-nodes=true --config "$ROOT/hack/kwok-stages.yaml" \
    --server-address "127.0.0.1:$KWOK_PORT" --cidr 10.244.0.0/16 --node-ip 127.0.0.1
  kubectl apply -f - >"$STATE/logs/node.log" 2>&1 <<NODE || fail "create the kwok Node" node
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "10000"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "10000"}
NODE
  node_ready() {
    [[ "$(kubectl get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
  }
  wait_for "kwok marks the Node Ready" kwok 60 node_ready
}

log "starting etcd on 127.0.0.1:$ETCD_PORT"
start etcd etcd --name local --data-dir "$STATE/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
wait_for "etcd health" etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

log "starting kube-apiserver on $API_ADDRESS:$API_PORT"
start kube-apiserver kube-apiserver --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$API_ADDRESS" --advertise-address "$API_ADDRESS" --secure-port "$API_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --allow-privileged=true --profiling=false \
  --kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP,Hostname "${KWOK_APISERVER_FLAGS[@]}"
wait_for "kube-apiserver /readyz" kube-apiserver 60 kubectl get --raw /readyz

log "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager kube-controller-manager --kubeconfig "$KUBECONFIG_OUT" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --use-service-account-credentials=false --controllers "$CONTROLLERS" \
  --horizontal-pod-autoscaler-sync-period 5s
start kube-scheduler kube-scheduler --kubeconfig "$KUBECONFIG_OUT" \
  --authentication-kubeconfig "$KUBECONFIG_OUT" --authorization-kubeconfig "$KUBECONFIG_OUT" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
if [[ $REAL == 1 ]]; then
  real_node_up
else
  start_kwok
fi
wait_for "the default ServiceAccount exists" kube-controller-manager 60 kubectl get serviceaccount default -n default

kubectl apply -f - >"$STATE/logs/storageclass.log" 2>&1 <<SC || fail "create the default StorageClass" storageclass
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: ai-moderator.local/hostpath
volumeBindingMode: Immediate
reclaimPolicy: Delete
SC
setsid "$ROOT/hack/pv-provisioner.sh" "$BIN/kubectl" "$KUBECONFIG_OUT" "$STATE/pv" >"$STATE/logs/pv-provisioner.log" 2>&1 < /dev/null &
echo $! >"$STATE/pids/pv-provisioner"
log "ready in ${SECONDS}s; kubeconfig: $KUBECONFIG_OUT"
