#!/usr/bin/env bash
# Installs the Debian packages the tests use when any is missing: PostgreSQL,
# Redis, openssl, curl, Lua 5.1 (Argo CD health check), Prometheus (promtool),
# and what the real node and the image builds need (containerd, runc, CNI
# plugins, iptables, buildah, debootstrap, umoci, skopeo).
set -euo pipefail
need=()
[[ -n "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null)" ]] || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v lua5.1 >/dev/null || need+=(lua5.1)
command -v promtool >/dev/null || need+=(prometheus)
for tool in containerd runc iptables buildah debootstrap umoci skopeo busybox; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
need=("${need[@]/#busybox/busybox-static}")
[[ ${#need[@]} -eq 0 ]] && exit 0
echo "[install-deps] installing: ${need[*]}" >&2
sudo=""
[[ $EUID -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${need[@]}" ca-certificates >/dev/null
