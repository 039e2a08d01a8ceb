#!/bin/sh
# bench/compliance.sh: runs Dovecot's imaptest (an independent IMAP
# compliance and stress tester) against our server.
#
#   BUILD=build sh bench/compliance.sh [imaptest test directory]
#
# With an "imaptest" binary on PATH (or $IMAPTEST; it is not packaged in
# Debian 12, build it from https://github.com/dovecot/imaptest against
# dovecot-dev): with a test directory (imaptest's src/tests) the scripted
# compliance tests (test=DIR), without one a 30-second random stress run
# with its state checks on, 10 clients, one mailbox.
#
# Without the binary but with a test directory, the scripted tests are run
# by bench/imaptest_scripts.py, our reader of imaptest's script format.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
IMAPTEST=${IMAPTEST:-$(command -v imaptest || true)}
if [ -z "$IMAPTEST" ] && [ $# -lt 1 ]; then
	echo "compliance: imaptest is not installed (not in Debian 12) and no test" \
		"directory was given; skipped" >&2
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imapserver-compliance.XXXXXX") || exit 1
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/mail/alice"
: >"$tmp/mail/alice/mymailbox.mail"
echo "alice alice123" >"$tmp/users"
cat >"$tmp/imapserver.conf" <<CONF
imap: { address = "127.0.0.1"; port = 0; };
storage: { backend = "flat"; root = "mail"; };
auth: { backend = "passwd-file"; file = "users"; };
limits: { auth_fail_delay = 0; max_connections = 200; max_connections_per_address = 0; };
log: { level = "info"; };
CONF
# As root the server refuses to start without server.user: it runs as the
# end-to-end tests' service user, who gets the temp folder (the helpers of
# tests/e2e/server.py).
if [ "$(id -u)" -eq 0 ]; then
	PYTHONPATH=tests/e2e python3 -c '
import sys
from server import give_to_server_user, server_group_line
with open(sys.argv[1], "a") as f:
    f.write(server_group_line())
give_to_server_user(sys.argv[2], sys.argv[1])
' "$tmp/imapserver.conf" "$tmp" || exit 1
fi
"$BUILD/imapserver" -c "$tmp/imapserver.conf" -f 2>"$tmp/log" &
pid=$!
port=
i=0
while [ -z "$port" ] && [ $i -lt 100 ]; do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
	i=$((i + 1))
	sleep 0.1
done
[ -n "$port" ] || { echo "compliance: server did not start" >&2; cat "$tmp/log"; exit 1; }
if [ -z "$IMAPTEST" ]; then
	python3 bench/imaptest_scripts.py --port "$port" --user alice --password alice123 "$1"
elif [ $# -ge 1 ]; then
	"$IMAPTEST" host=127.0.0.1 port="$port" user=alice pass=alice123 test="$1"
else
	"$IMAPTEST" host=127.0.0.1 port="$port" user=alice pass=alice123 clients=10 secs=30
fi
rc=$?
if grep -q " error: " "$tmp/log"; then
	echo "compliance: errors in the server log:" >&2
	grep " error: " "$tmp/log" >&2
	rc=1
fi
exit $rc
