#!/usr/bin/env bash
# Starts real PostgreSQL and Redis servers (Debian packages) on free loopback
# ports for tests and benchmarks, and writes their URLs to .services/env.
# Idempotent: running services are reused.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.services"
ENV_FILE="$STATE/env"
log() { printf '[services-up] %s\n' "$*" >&2; }
fail() { log "FAILED at step: $1"; [[ -n "${2:-}" && -f "$2" ]] && tail -n 20 "$2" >&2; exit 1; }

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[[ -x "$pg_bin/pg_ctl" ]] || fail "find PostgreSQL (install the Debian package postgresql)"
command -v redis-server >/dev/null || fail "find redis-server (install the Debian package redis-server)"

# PostgreSQL refuses to run as root and needs a data dir its user can reach,
# which a clone under /root is not; keep its files in a per-clone /tmp folder.
DATA_ROOT="/tmp/ai-moderator-services-$(printf '%s' "$ROOT" | md5sum | cut -c1-8)"
PGDATA="$DATA_ROOT/pg"
as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [[ -f "$ENV_FILE" ]]; then
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  if as_pg "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "already running (PostgreSQL :$PG_PORT, Redis :$REDIS_PORT)"
    exit 0
  fi
  "$ROOT/hack/services-down.sh" >/dev/null 2>&1 || true
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port); REDIS_PORT=$(free_port)
PG_PASSWORD="$(openssl rand -hex 16)"
mkdir -p "$STATE" "$DATA_ROOT"
rm -rf "$PGDATA"
if [[ $EUID -eq 0 ]]; then chown postgres "$DATA_ROOT"; fi
pwfile="$DATA_ROOT/pw"; printf '%s\n' "$PG_PASSWORD" >"$pwfile"
[[ $EUID -eq 0 ]] && chown postgres "$pwfile"
as_pg "$pg_bin/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" -A scram-sha-256 >"$DATA_ROOT/initdb.log" 2>&1 \
  || fail "initdb" "$DATA_ROOT/initdb.log"
rm -f "$pwfile"
as_pg "$pg_bin/pg_ctl" -D "$PGDATA" -l "$DATA_ROOT/postgres.log" -w -t 60 start \
  -o "-h 127.0.0.1 -p $PG_PORT -k $DATA_ROOT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  >/dev/null || fail "start PostgreSQL" "$DATA_ROOT/postgres.log"
PGPASSWORD="$PG_PASSWORD" "$pg_bin/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE moderation_db" \
  || fail "create database moderation_db"

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
  --dir "$DATA_ROOT" --pidfile "$DATA_ROOT/redis.pid" --logfile "$DATA_ROOT/redis.log" \
  || fail "start Redis" "$DATA_ROOT/redis.log"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || fail "Redis ping" "$DATA_ROOT/redis.log"

cat >"$ENV_FILE" <<ENV
PG_BIN=$pg_bin
PG_PORT=$PG_PORT
PG_PASSWORD=$PG_PASSWORD
PG_DATA_ROOT=$DATA_ROOT
REDIS_PORT=$REDIS_PORT
TEST_DATABASE_URL=postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/moderation_db
TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
ENV
log "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT (URLs in $ENV_FILE)"
