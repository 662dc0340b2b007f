#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm) from the Go module proxy and caches
# the binaries per version outside the clone. With REAL=1 it also builds what a
# real node needs (kubelet, kube-proxy, CoreDNS). Skips the build when cached
# binaries already report the pinned versions.
set -euo pipefail
source "$(dirname "$0")/versions.sh"

BIN="$K8S_BIN"
mkdir -p "$BIN"
log() { printf '[build-k8s] %s\n' "$*" >&2; }
fail() { log "FAILED at step: $1"; exit 1; }

have_version() { # binary, expected substring, version args...
  local bin="$BIN/$1" want="$2" out; shift 2
  [[ -x "$bin" ]] || return 1
  # Captured first: `| grep -q` would end the pipe early (SIGPIPE under pipefail).
  out="$("$bin" "$@" 2>/dev/null)" || return 1
  [[ "$out" == *"$want"* ]]
}

CONTROL_PLANE=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
NODE=(kubelet kube-proxy)
k8s_ok() { # binaries...
  local b; for b in "$@"; do
    if [[ $b == kubectl ]]; then have_version kubectl "$K8S_VERSION" version --client || return 1
    else have_version "$b" "$K8S_VERSION" --version || return 1; fi
  done
}
etcd_ok() { have_version etcd "etcd Version: ${ETCD_VERSION#v}" --version; }
kwok_ok() { have_version kwok "$KWOK_VERSION" --version; }
helm_ok() { have_version helm "$HELM_VERSION" version --short; }
coredns_ok() { have_version coredns "CoreDNS-${COREDNS_VERSION#v}" -version; }

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ai-moderator-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_k8s() { # commands under k8s.io/kubernetes/cmd...
  log "building Kubernetes $K8S_VERSION ($*)"
  local dir="$WORK/k8s" minor staging
  mkdir -p "$dir"
  minor="$(cut -d. -f2 <<<"$K8S_VERSION")"
  staging="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')" \
    || fail "go mod download k8s.io/kubernetes@$K8S_VERSION"
  {
    echo "module ai-moderator.local/k8sbuild"
    echo "go 1.24.0"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    # Staging modules are replaced by relative paths in kubernetes' own go.mod,
    # which only works inside its repo; point them at their published tags.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$staging" \
      | awk -v v="v0.${K8S_VERSION#v1.}" '{print "replace " $1 " => " $1 " " v}'
  } >"$dir/go.mod"
  local pkgs=("${@/#/k8s.io/kubernetes/cmd/}")
  (cd "$dir" && go get "${pkgs[@]/%/@$K8S_VERSION}") || fail "go get kubernetes $K8S_VERSION"
  local pkgv="k8s.io/component-base/version" ldflags
  ldflags="-s -w -X $pkgv.gitVersion=$K8S_VERSION -X $pkgv.gitMajor=1 -X $pkgv.gitMinor=$minor \
    -X $pkgv.gitTreeState=clean -X $pkgv.buildDate=1970-01-01T00:00:00Z \
    -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  (cd "$dir" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}") \
    || fail "go build kubernetes $K8S_VERSION"
}

build_etcd() {
  log "building etcd $ETCD_VERSION"
  local dir="$WORK/etcd"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module ai-moderator.local/etcdbuild
go 1.24.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .) || fail "go build etcd $ETCD_VERSION"
}

build_go_install() { # name, module path, version, extra ldflags
  log "building $1 $3"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w $4" "$2@$3" || fail "go install $2@$3"
}

k8s_ok "${CONTROL_PLANE[@]}" || build_k8s "${CONTROL_PLANE[@]}"
etcd_ok || build_etcd
kwok_ok || build_go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
helm_ok || build_go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

if [[ "${REAL:-}" == 1 ]]; then
  k8s_ok "${NODE[@]}" || build_k8s "${NODE[@]}"
  coredns_ok || build_go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" ""
  k8s_ok "${NODE[@]}" || fail "kubelet/kube-proxy do not report $K8S_VERSION"
  coredns_ok || fail "coredns does not report $COREDNS_VERSION"
fi
k8s_ok "${CONTROL_PLANE[@]}" || fail "kubernetes binaries do not report $K8S_VERSION"
etcd_ok || fail "etcd does not report $ETCD_VERSION"
kwok_ok || fail "kwok does not report $KWOK_VERSION"
helm_ok || fail "helm does not report $HELM_VERSION"
log "binaries ready in $BIN"
