#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds every container image the local cluster runs, without any image
# registry (none is reachable here), with buildah:
#   localhost/debian:bookworm         debootstrap minbase + ca-certificates: the
#                                     machine's "corporate base image", trusting
#                                     the host's TLS-intercepting proxy (its CA
#                                     bundle and /etc/pip.conf are copied in)
#   python:3.11-slim-bookworm         hack/images/python: Debian's Python 3.11, the
#                                     base of Dockerfile.workload/.operator; a
#                                     build-time base only, named like the public
#                                     image in the local buildah storage alone
#   localhost/ai-moderator-workload:V Dockerfile.workload (V: pyproject.toml)
#   localhost/ai-moderator-operator:V Dockerfile.operator
#   localhost/postgres:15             hack/images/postgres (official image's contract)
#   localhost/redis:7                 hack/images/redis (official image's contract)
#   localhost/pause:3.10              hack/images/pause: containerd's sandbox image
# Each is saved as a docker-archive tar for `ctr -n k8s.io images import`:
# $AI_MODERATOR_CACHE/images/<name>-<hash of its inputs>.tar. An image whose tar
# exists is not built again; the inputs are its recipe, the files its context
# copies and its base image's hash. $AI_MODERATOR_CACHE/images/current.tsv lists
# REF<TAB>TAR of the images the cluster imports (not debian, not python).
set -euo pipefail
# shellcheck source=versions.sh disable=SC1091 # (followed with shellcheck -x)
source "$(dirname "$0")/versions.sh"

REPO="$(cd "$(dirname "$0")/.." && pwd)"
HACK="$REPO/hack"
IMAGES="$AI_MODERATOR_CACHE/images"
BUILDAH_ROOT="$AI_MODERATOR_CACHE/buildah/root"
BUILDAH_RUNROOT="$AI_MODERATOR_CACHE/buildah/runroot"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
DEBIAN_SUITE=bookworm
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
HOST_LOCAL_CAS=/usr/local/share/ca-certificates
# Stored on every image; lets a base be checked (and reloaded from its tar)
# before something is built on it.
INPUTS_LABEL=io.ai-moderator.build-inputs
# Bump to rebuild everything after a change of how images are built here.
RECIPE=1

log() { printf '[build-images] %s\n' "$*" >&2; }
fail() { STEP=""; log "FAILED at step: $1"; exit 1; }
# Builders run under set -e (not behind `|| fail`, which would switch it off
# inside them): the step that was running is reported on the way out.
STEP=""

[[ "$EUID" == 0 ]] || fail "run as root (debootstrap, buildah's rootful storage)"
for cmd in buildah debootstrap chroot python3 git flock sha256sum; do
  command -v "$cmd" >/dev/null || fail "find $cmd"
done
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || fail "find go (for the pause image)"

mkdir -p "$IMAGES" "$BUILDAH_ROOT" "$BUILDAH_RUNROOT"
# One build at a time per cache.
exec 9>"$IMAGES/.lock"
flock -n 9 || { log "waiting for another build-images run to finish"; flock 9; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ai-moderator-images.XXXXXX")"
CTR=""
cleanup() {
  local rc=$?
  if [[ "$rc" != 0 && -n "$STEP" ]]; then log "FAILED at step: $STEP"; fi
  [[ -z "$CTR" ]] || bld rm "$CTR" >/dev/null 2>&1 || true
  # debootstrap mounts /proc, /sys (and may bind /dev) into its target: never
  # delete through a mount point.
  unmount_under "$WORK" || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

mounts_under() { awk -v d="$1/" 'index($5 "/", d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
unmount_under() {
  local m
  for m in $(mounts_under "$1"); do umount -l "$m" || return 1; done
}

# Storage outside the clone. overlay works on this machine (ext4, native
# overlay diff), checked by mounting a scratch container in a throw-away store;
# vfs (full copies, slow) only where it does not. A store keeps its driver.
if [[ -d "$BUILDAH_ROOT/overlay" ]]; then
  DRIVER=overlay
elif [[ -d "$BUILDAH_ROOT/vfs" ]]; then
  DRIVER=vfs
else
  probe="$WORK/probe"
  if c="$(buildah --root "$probe/root" --runroot "$probe/runroot" --storage-driver overlay from -q scratch 2>/dev/null)" &&
     buildah --root "$probe/root" --runroot "$probe/runroot" --storage-driver overlay mount "$c" >/dev/null 2>&1; then
    DRIVER=overlay
  else
    DRIVER=vfs
    log "the overlay storage driver does not work here; using vfs"
  fi
  buildah --root "$probe/root" --runroot "$probe/runroot" --storage-driver overlay rm -a >/dev/null 2>&1 || true
  unmount_under "$probe" || true
fi
bld() { buildah --root "$BUILDAH_ROOT" --runroot "$BUILDAH_RUNROOT" --storage-driver "$DRIVER" "$@"; }

# RUN steps use the host's network: buildah's default (CNI bridge) works too,
# but leaves a cni-podman0 bridge and iptables chains on the host.
BUD=(bud --pull=never --layers --force-rm --network host --format docker)

# ---------------------------------------------------------------- input hashes
digest() { sha256sum | cut -c1-16; }
# Names, modes and contents of the files under the given directories.
dir_digest() {
  local f
  while IFS= read -r -d '' f; do
    printf '%s %s %s\n' "${f#"$REPO/"}" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"
  done < <(find "$@" -type f -print0 | sort -z) | digest
}
# The Dockerfile, .dockerignore, and the files (tracked or untracked but not
# git-ignored, as in the working tree) that its COPY/ADD instructions take from
# the context, less what .dockerignore excludes.
context_digest() { # context dockerfile
  python3 - "$1" "$2" <<'PY'
import hashlib, json, os, re, subprocess, sys

context, dockerfile = sys.argv[1], sys.argv[2]

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""

def docker_regex(pattern):
    # moby/patternmatcher: ** spans directories, * and ? do not.
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out += re.escape(c)
            else:
                out, i = out + pattern[i:j + 1], j + 1
                continue
        elif c == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
            continue
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "$")

rules = []
ignore = read(os.path.join(context, ".dockerignore")).decode()
for line in ignore.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    negate = line.startswith("!")
    line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
    rules.append((negate, docker_regex(line)))

def ignored(path):
    parts, result = path.split("/"), False
    for negate, rx in rules:
        if any(rx.match("/".join(parts[:i])) for i in range(len(parts), 0, -1)):
            result = not negate
    return result

# COPY/ADD sources of the Dockerfile (not --from another stage).
text, logical, current = read(dockerfile).decode(), [], ""
for raw in text.splitlines():
    s = raw.strip()
    if s.startswith("#") or (not s and not current):
        continue
    if s.endswith("\\"):
        current += s[:-1] + " "
        continue
    logical.append(current + s)
    current = ""
if current:
    logical.append(current)
sources = []
for line in logical:
    words = line.split(None, 1)
    if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
        continue
    rest = words[1].strip()
    flags = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if any(f.startswith("--from") for f in flags):
        continue
    args = json.loads(rest) if rest.startswith("[") else rest.split()
    for src in args[:-1]:
        if "://" in src:
            sys.exit(f"context_digest: {dockerfile}: remote ADD source {src} cannot be hashed")
        src = os.path.normpath(src).lstrip("/")
        sources.append(src)

h = hashlib.sha256()
h.update(b"dockerfile\0" + read(dockerfile) + b"\0dockerignore\0" + ignore.encode() + b"\0")
if sources:
    files = subprocess.run(["git", "-C", context, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                            "--", *sources], check=True, capture_output=True).stdout.decode().split("\0")
    for path in sorted({f for f in files if f and not ignored(f)}):
        full = os.path.join(context, path)
        if os.path.islink(full):
            h.update(f"{path}\0link\0{os.readlink(full)}\0".encode())
        elif os.path.isfile(full):
            mode = "755" if os.access(full, os.X_OK) else "644"
            h.update(f"{path}\0{mode}\0".encode() + hashlib.sha256(read(full)).digest())
print(h.hexdigest()[:16])
PY
}

declare -A HASH=() TAR=() REF=() TOOK=()
ORDER=()

# ------------------------------------------------------------------- builders
# The base image: debootstrap's minbase plus ca-certificates, as one layer.
build_debian() { # ref hash
  local ref="$1" hash="$2" rootfs="$WORK/debian" mnt f
  log "debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR"
  debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log" >&2; return 1; }
  [[ -z "$(mounts_under "$rootfs")" ]] || { log "debootstrap left mounts in $rootfs"; return 1; }

  # The corporate base image: whatever it builds trusts the proxy that
  # intercepts TLS here. The host's local CAs are installed the Debian way (so
  # they survive update-ca-certificates) and its bundle is copied as is.
  for f in "$HOST_LOCAL_CAS"/*.crt; do
    if [[ -e "$f" ]]; then install -m 0644 "$f" "$rootfs/usr/local/share/ca-certificates/"; fi
  done
  chroot "$rootfs" update-ca-certificates >"$WORK/update-ca-certificates.log" 2>&1 ||
    { cat "$WORK/update-ca-certificates.log" >&2; return 1; }
  install -m 0644 "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"

  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As Debian's own container images (the -slim ones): no services started
  # by package scripts, no documentation, no apt caches left in layers.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,locale,man}/* "$rootfs/usr/share/lintian/overrides"/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf" "${rootfs:?}"/dev/*

  CTR="$(bld from -q scratch)"
  mnt="$(bld mount "$CTR")"
  cp -a "$rootfs/." "$mnt/"
  bld umount "$CTR" >/dev/null
  bld config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["bash"]' \
    --created-by "hack/build-images.sh: debootstrap --variant=minbase $DEBIAN_SUITE" \
    --label "$INPUTS_LABEL=$hash" "$CTR"
  # debootstrap takes the release alone: add bookworm-updates' and -security's fixes.
  bld run --network host --env DEBIAN_FRONTEND=noninteractive "$CTR" -- sh -c \
    'apt-get update -qq && apt-get upgrade -y -qq && rm -rf /var/lib/apt/lists/*' >"$WORK/upgrade.log" 2>&1 ||
    { tail -n 20 "$WORK/upgrade.log" >&2; return 1; }
  bld commit -q --format docker --rm "$CTR" "$ref" >/dev/null
  CTR=""
}

build_dockerfile() { # ref hash context dockerfile
  bld "${BUD[@]}" --label "$INPUTS_LABEL=$2" -f "$4" -t "$1" "$3" >"$WORK/bud.log" 2>&1 ||
    { tail -n 40 "$WORK/bud.log" >&2; return 1; }
}

build_pause() { # ref hash
  local dir="$WORK/pause"
  mkdir -p "$dir"
  (cd "$HACK/images/pause" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' \
    -o "$dir/pause" main.go) || return 1
  build_dockerfile "$1" "$2" "$dir" "$HACK/images/pause/Dockerfile"
}

# The image with this input hash, in the store: kept, pushed from the store if
# only its tar is gone, or built; then saved as a tar (replacing older ones).
image() { # name ref hash builder [args...]
  local name="$1" ref="$2" hash="$3" builder="$4" tar start old
  shift 4
  tar="$IMAGES/$name-$hash.tar"
  HASH[$name]="$hash" REF[$name]="$ref" TAR[$name]="$tar"
  ORDER+=("$name")
  if [[ -s "$tar" ]]; then
    TOOK[$name]=cached
    return
  fi
  start=$SECONDS
  local done_as=built
  if [[ "$(stored_inputs "$ref")" == "$hash" ]]; then
    log "$ref: in the store already ($hash)"
    done_as=saved
  else
    log "$ref: building ($hash)"
    STEP="build $ref"
    "$builder" "$ref" "$hash" "$@"
    STEP=""
  fi
  rm -f "$tar.tmp"
  bld push -q "$ref" "docker-archive:$tar.tmp:$ref" >"$WORK/push.log" 2>&1 ||
    { cat "$WORK/push.log" >&2; fail "save $ref to $tar"; }
  mv -f "$tar.tmp" "$tar"
  for old in "$IMAGES/$name"-????????????????.tar; do
    [[ "$old" == "$tar" || ! -e "$old" ]] || rm -f "$old"
  done
  TOOK[$name]="$done_as in $((SECONDS - start))s"
  BUILT=1
  log "$ref: ${TOOK[$name]}, $(du -h "$tar" | cut -f1) $tar"
}

stored_inputs() { # ref
  bld inspect --type image --format "{{index .OCIv1.Config.Labels \"$INPUTS_LABEL\"}}" "$1" 2>/dev/null || true
}

# A base must be in the store with its current inputs before a build FROM it;
# it is reloaded from its tar when the store lost it or holds an older one.
need_base() { # name
  local name="$1" id
  [[ "$(stored_inputs "${REF[$name]}")" != "${HASH[$name]}" ]] || return 0
  log "${REF[$name]}: loading ${TAR[$name]} into the store"
  id="$(bld pull -q "docker-archive:${TAR[$name]}")" || fail "load ${TAR[$name]}"
  bld tag "$id" "${REF[$name]}" || fail "tag ${REF[$name]}"
}

# --------------------------------------------------------------------- images
BUILT=0
VERSION="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$REPO/pyproject.toml")" || fail "read the version from pyproject.toml"
START=$SECONDS

h="$( { echo "$RECIPE $DEBIAN_SUITE $DEBIAN_MIRROR $DEBIAN_SECURITY_MIRROR"; declare -f build_debian
        sha256sum <"$HOST_CA_BUNDLE"; cat "$HOST_LOCAL_CAS"/*.crt 2>/dev/null || true; } | digest)" ||
  fail "hash debian inputs"
image debian localhost/debian:bookworm "$h" build_debian

base_then() { # base name ref dir: an image of hack/images/<dir> FROM base
  local h
  h="$(echo "$RECIPE $3 ${HASH[$1]} $(dir_digest "$HACK/images/$4")" | digest)" || fail "hash $3 inputs"
  if [[ ! -s "$IMAGES/$2-$h.tar" ]]; then need_base "$1"; fi
  image "$2" "$3" "$h" build_dockerfile "$HACK/images/$4" "$HACK/images/$4/Dockerfile"
}
base_then debian python docker.io/library/python:3.11-slim-bookworm python
base_then debian postgres localhost/postgres:15 postgres
base_then debian redis localhost/redis:7 redis

for component in workload operator; do
  ref="localhost/ai-moderator-$component:$VERSION"
  ctx="$(context_digest "$REPO" "$REPO/Dockerfile.$component")" || fail "hash the context of Dockerfile.$component"
  h="$(echo "$RECIPE $ref ${HASH[python]} $ctx" | digest)"
  if [[ ! -s "$IMAGES/$component-$h.tar" ]]; then need_base python; fi
  image "$component" "$ref" "$h" build_dockerfile "$REPO" "$REPO/Dockerfile.$component"
done

h="$( { echo "$RECIPE"; go version; dir_digest "$HACK/images/pause"; } | digest)" || fail "hash pause inputs"
image pause localhost/pause:3.10 "$h" build_pause

# Untagged leftovers of earlier builds (superseded images, finished stages).
if [[ "$BUILT" == 1 ]]; then
  bld rmi --prune >/dev/null 2>&1 || log "warning: buildah rmi --prune failed"
fi

tsv="$IMAGES/current.tsv"
for name in workload operator postgres redis pause; do
  printf '%s\t%s\n' "${REF[$name]}" "${TAR[$name]}"
done >"$tsv.tmp"
mv -f "$tsv.tmp" "$tsv"

for name in "${ORDER[@]}"; do
  log "$(printf '%-46s %-16s %6s  %s' "${REF[$name]}" "${TOOK[$name]}" "$(du -h "${TAR[$name]}" | cut -f1)" \
    "${TAR[$name]}")"
done
log "done in $((SECONDS - START))s ($DRIVER storage in $BUILDAH_ROOT); images: $tsv"
