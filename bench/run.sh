#!/bin/sh
# bench/run.sh: benchmarks of $BUILD/imapserver (and of Dovecot, side by
# side, when /usr/sbin/dovecot is installed). Not part of "make check".
#
#   make bench                       100,000 messages, 500 idle connections
#   sh bench/run.sh --messages 10000 --conns 100 --samples 50
#   sh bench/run.sh --no-dovecot
#
# Then the same over TLS (bench/tls_bench.py: memory per idle TLS
# connection, handshakes per second, FETCH BODY[] over TLS and in clear,
# IDLE push over TLS), Dovecot with ssl = yes beside it; pipelined
# APPEND into a growing Maildir folder (bench/append_bench.py); and, with
# --testssl, a testssl.sh scan of the default TLS settings (slow, about
# two minutes: bench/testssl.py).
#
# Prints progress on stderr and a table on stdout. Everything runs in a
# temp folder that is removed at the end, as are the servers it starts.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ ! -x "$BUILD/imapserver" ]; then
	echo "bench: $BUILD/imapserver is missing: run make first" >&2
	exit 1
fi
testssl=no
for arg in "$@"; do
	[ "$arg" = "--testssl" ] && testssl=yes
done
# bench.py and tls_bench.py take the same options; --testssl is ours.
set -- $(for arg in "$@"; do [ "$arg" = "--testssl" ] || printf '%s\n' "$arg"; done)
python3 bench/bench.py --server "$BUILD/imapserver" "$@"
# The same server over TLS, side by side with Dovecot over TLS.
python3 bench/tls_bench.py --server "$BUILD/imapserver" "$@"
if [ "$testssl" = yes ]; then
	python3 bench/testssl.py --server "$BUILD/imapserver"
fi
# Pipelined APPEND into one Maildir folder as it grows (20,000 messages:
# Dovecot's rate falls far enough that more takes long; run
# bench/append_bench.py --messages 100000 for the full size).
nodove=
for arg in "$@"; do
	[ "$arg" = "--no-dovecot" ] && nodove=--no-dovecot
done
BUILD="$BUILD" python3 bench/append_bench.py --messages 20000 $nodove
# The loop under real load (issue "one loop, never stalled"): 10 clients
# listing 1,000 mixed messages (ENVELOPE) beside Dovecot; SELECT of a big
# mailbox right after a restart on both backends; another session's NOOP
# while a 1 GB flat mailbox is expunged and a 100,000-message one is
# opened for the first time.
BUILD="$BUILD" python3 bench/sessions_bench.py --seconds 10 $nodove
python3 bench/select_restart.py --server "$BUILD/imapserver" $nodove
python3 bench/heavy_bench.py --binary "$BUILD/imapserver"
# COMPRESS=DEFLATE: memory per idle connection and FETCH BODY[] on the
# wire, COMPRESS off and on, beside Dovecot's imap_zlib.
python3 bench/compress_bench.py --server "$BUILD/imapserver" $nodove
# What each real client's commands cost (imaplib, curl, mbsync,
# offlineimap; smtplib, swaks, msmtp), beside one-write and Dovecot.
IMAPSERVER="$PWD/$BUILD/imapserver" python3 bench/client_latency.py $nodove
# 10,000 idle connections per event.backend (900 with select): memory per
# connection and push latency with them all connected.
python3 bench/idle_conns.py --server "$BUILD/imapserver" --conns 10000
# SMTP delivery to a session in IDLE, inside imapserver and from smtpmail.
if [ -x "$BUILD/smtpmail" ]; then
	python3 bench/smtp_push.py --server "$BUILD/imapserver"
fi
# The flat backend's own operations (bench/flat_ops.c, built by "make
# bench") on a mailbox of as many messages (at least 2,000): open, sync,
# append, expunge. In $TMPDIR or /tmp: the disk matters (fsync).
messages=100000
prev=
for arg in "$@"; do
	case "$prev" in
	--messages) messages=$arg ;;
	esac
	case "$arg" in
	--messages=*) messages=${arg#--messages=} ;;
	esac
	prev=$arg
done
if [ "$messages" -lt 2000 ] 2>/dev/null; then
	messages=2000
fi
if [ -x "$BUILD/bench/flat_ops" ]; then
	echo
	"$BUILD/bench/flat_ops" -n "$messages"
else
	echo "bench: $BUILD/bench/flat_ops is missing (make $BUILD/bench/flat_ops):" \
		"flat backend timings skipped" >&2
fi
# PostgreSQL storage beside flat, Maildir and Dovecot; IDLE push across
# two nodes of one database; 1, 2 and 3 nodes (skipped without
# PostgreSQL).
python3 bench/pgsql_bench.py --binary "$BUILD/imapserver" $nodove
# Another session's latency while a pgsql mailbox of 100,000 messages is
# first opened and a 20 MB message appended (worker threads, not the
# loop; skipped without PostgreSQL).
python3 bench/pgsql_stall.py --binary "$BUILD/imapserver"
