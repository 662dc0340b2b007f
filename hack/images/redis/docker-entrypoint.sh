#!/bin/sh
# Entrypoint of localhost/redis:7, as the official redis image's: options
# alone (or no arguments) run redis-server with them; root drops to the redis
# user. As uid 999 with a read-only root it writes only to /data (its --dir).
set -eu

# `redis-server`'s options (or a config file) alone: run redis-server with them.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- redis-server "$@"
fi
case "$1" in
*.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ]; then
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec setpriv --reuid=redis --regid=redis --init-groups /usr/local/bin/docker-entrypoint.sh "$@"
	fi
	# The official image is built with protected mode off by default (access
	# is the network's and --requirepass' business); a config file decides
	# for itself.
	shift
	case "${1:-}" in
	"" | -*) set -- redis-server --protected-mode no "$@" ;;
	*) set -- redis-server "$@" ;;
	esac
	if [ "$(umask)" = 0022 ]; then
		umask 0077
	fi
fi

exec "$@"
