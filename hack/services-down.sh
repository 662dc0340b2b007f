#!/usr/bin/env bash
# Stops the PostgreSQL and Redis servers started by services-up.sh.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_FILE="$ROOT/.services/env"
[[ -f "$ENV_FILE" ]] || { echo "[services-down] nothing running"; exit 0; }
# shellcheck disable=SC1090
source "$ENV_FILE"
if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA_ROOT/pg" -m fast stop
else "$PG_BIN/pg_ctl" -D "$PG_DATA_ROOT/pg" -m fast stop; fi
redis-cli -p "$REDIS_PORT" shutdown nosave 2>/dev/null
rm -rf "$PG_DATA_ROOT" "$ROOT/.services"
echo "[services-down] stopped"
