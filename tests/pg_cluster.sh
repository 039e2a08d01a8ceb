#!/bin/sh
# tests/pg_cluster.sh: a throw-away PostgreSQL cluster for the tests.
#
#   sh tests/pg_cluster.sh start DIR   creates DIR, starts a cluster in it
#                                      on 127.0.0.1 at a free port, and
#                                      prints its conninfo on stdout
#   sh tests/pg_cluster.sh stop DIR    stops it and removes DIR
#
# Exits 77 (skip) if PostgreSQL's server programs are not installed
# (Debian's package postgresql), 1 if the cluster did not start. As root
# the cluster runs as the user postgres (initdb refuses root). The data
# is not fsynced (the tests kill imapserver, never the machine) unless
# PG_CLUSTER_FSYNC=on (the benchmarks: a commit waits for the disk, as
# flat's and Maildir's appends do).

set -u

find_bin()
{
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 &&
		{ dirname "$(command -v initdb)"; return 0; }
	return 1
}

as_owner()
{
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

case "$cmd" in
start)
	bin=$(find_bin) || { echo "pg_cluster: PostgreSQL is not installed" >&2; exit 77; }
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		echo "pg_cluster: running as root and there is no user postgres" >&2
		exit 77
	fi
	mkdir -p "$dir" || exit 1
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
	as_owner "$bin/initdb" -D "$dir/data" -U imaptest -A trust --no-sync \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	for attempt in 1 2 3; do
		port=$(free_port)
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
			-o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c fsync=${PG_CLUSTER_FSYNC:-off} -c full_page_writes=${PG_CLUSTER_FSYNC:-off} -c max_connections=200" \
			start >/dev/null 2>&1; then
			echo "host=127.0.0.1 port=$port user=imaptest dbname=postgres"
			exit 0
		fi
	done
	cat "$dir/server.log" >&2
	exit 1
	;;
stop)
	bin=$(find_bin) || exit 0
	[ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
		>/dev/null 2>&1
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
