#!/bin/sh
# Entrypoint of localhost/postgres:15: the official postgres image's contract
# on Debian's PostgreSQL 15.
#   POSTGRES_PASSWORD    the superuser's password (required unless
#                        POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_USER        the superuser (postgres)
#   POSTGRES_DB          a database created at initialisation ($POSTGRES_USER)
#   PGDATA               the cluster (/var/lib/postgresql/data)
#   POSTGRES_INITDB_ARGS more initdb arguments (word-split)
#   POSTGRES_HOST_AUTH_METHOD  for host connections (scram-sha-256)
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz run once after initdb.
# An empty PGDATA is initialised (trust on the local socket, the method above
# for TCP), then postgres is exec'd; arguments that start with `-` go to it.
# As root it prepares the directories and drops to postgres; as any other uid
# (70 in the operator's pods) it changes nothing outside PGDATA,
# /var/run/postgresql and /tmp, so a read-only root filesystem is fine.
set -eu

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:=}"
: "${POSTGRES_INITDB_ARGS:=}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA
SOCKETS=/var/run/postgresql

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" "$SOCKETS"
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 0700 "$PGDATA"
	chown postgres:postgres "$SOCKETS"
	chmod 3777 "$SOCKETS"
	exec setpriv --reuid=postgres --regid=postgres --init-groups /usr/local/bin/docker-entrypoint.sh "$@"
fi

# Not root: only what this uid may do anyway; a volume it does not own keeps
# its modes (initdb then checks them itself).
mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" 2>/dev/null || :

initdb_with_name() {
	# initdb needs a passwd entry for its uid; an arbitrary one gets a
	# temporary entry through nss_wrapper, as in the official image.
	if getent passwd "$(id -u)" >/dev/null 2>&1; then
		"$@"
		return
	fi
	wrapper=$(find /usr/lib -name libnss_wrapper.so -print -quit)
	[ -n "$wrapper" ] || die "uid $(id -u) has no passwd entry and nss_wrapper is missing"
	NSS_WRAPPER_PASSWD=$(mktemp /tmp/passwd.XXXXXX)
	NSS_WRAPPER_GROUP=$(mktemp /tmp/group.XXXXXX)
	printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" >"$NSS_WRAPPER_PASSWD"
	printf 'postgres:x:%s:\n' "$(id -g)" >"$NSS_WRAPPER_GROUP"
	export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
	LD_PRELOAD=$wrapper "$@"
	rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
	unset NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
}

psql_local() {
	psql -X -v ON_ERROR_STOP=1 --no-password --username "$POSTGRES_USER" "$@"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		die "PGDATA ($PGDATA) is not initialised and POSTGRES_PASSWORD is empty: set it (or POSTGRES_HOST_AUTH_METHOD=trust)"
	fi
	log "initialising $PGDATA (superuser $POSTGRES_USER)"
	# Ours first: POSTGRES_INITDB_ARGS may override them.
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is word-split on purpose
	if [ -n "$POSTGRES_PASSWORD" ]; then
		printf '%s\n' "$POSTGRES_PASSWORD" | initdb_with_name initdb --username="$POSTGRES_USER" \
			--pwfile=/dev/stdin --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS
	else
		initdb_with_name initdb --username="$POSTGRES_USER" --auth-local=trust \
			--auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS
	fi
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A server on the socket only, for the database and the init scripts.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	if [ "$POSTGRES_DB" != postgres ]; then
		psql_local --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)
			log "running $f"
			# shellcheck disable=SC1090 # the image user's own scripts
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			log "running $f"
			psql_local --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			log "running $f"
			gzip -dc "$f" | psql_local --dbname "$POSTGRES_DB"
			;;
		*)
			if [ -e "$f" ]; then log "ignoring $f"; fi
			;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	log "initialised; starting postgres"
fi

exec "$@"
