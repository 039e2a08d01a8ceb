#!/bin/sh
# bench/run.sh: benchmarks of $BUILD/imapserver (and of Dovecot, side by
# side, when /usr/sbin/dovecot is installed). Not part of "make check".
#
#   make bench                       100,000 messages, 500 idle connections
#   sh bench/run.sh --messages 10000 --conns 100 --samples 50
#   sh bench/run.sh --no-dovecot
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
python3 bench/bench.py --server "$BUILD/imapserver" "$@"
# SMTP delivery to a session in IDLE, inside imapserver and from smtpmail.
if [ -x "$BUILD/smtpmail" ]; then
	python3 bench/smtp_push.py --server "$BUILD/imapserver"
fi
