# Pinned versions of the local control plane, and where its builds and state
# live; sourced by the hack/ scripts.
# ETCD_VERSION is the etcd client version in Kubernetes' own go.mod.
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
AI_MODERATOR_CACHE="${AI_MODERATOR_CACHE:-$HOME/.cache/ai-moderator}"
K8S_BIN="$AI_MODERATOR_CACHE/k8s/$K8S_VERSION/bin"
COREDNS_VERSION="${COREDNS_VERSION:-v1.12.1}"

# A local cluster's state directory: .cluster (kwok nodes), or .cluster-real with REAL=1.
cluster_dir() { if [[ "${REAL:-0}" == 1 ]]; then echo "$1/.cluster-real"; else echo "$1/.cluster"; fi; }
