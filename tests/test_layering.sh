#!/bin/sh
# tests/test_layering.sh: tests tests/layering.sh on small trees made in a
# temporary folder: a clean tree passes; each kind of bad include, an
# include loop and a long file without a reason fail, naming file:line.
#
# Prints each failed case, then one verdict line:
#   layering self-test: ok (N cases)
#   layering self-test: FAILED: N of N cases
# Exits 0 only if every case behaved. Run by tests/run.sh.

set -u

script=$(cd "$(dirname "$0")" && pwd)/layering.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_layering.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

cases=0
failed=0

# put TREE FILE LINE...: writes the lines to TREE/FILE.
put()
{
	tree=$1
	file=$2
	shift 2
	mkdir -p "$(dirname "$tree/$file")"
	printf '%s\n' "$@" >"$tree/$file"
}

# A small tree that follows every rule.
make_tree()
{
	t=$1
	rm -rf "$t"
	put "$t" core/lib/lib.h '/* lib.h */'
	put "$t" core/lib/buf.h '/* buf.h */' '#include "lib.h"'
	put "$t" core/lib/buf.c '#include "buf.h"'
	put "$t" core/io/event.h '#include "lib.h"'
	put "$t" core/mail/message.h '#include "buf.h"'
	put "$t" core/mail/message.c '#include "message.h"' '#include "buf.h"'
	put "$t" core/hub/storage.h '#include "buf.h"' '#include "message.h"'
	put "$t" core/hub/mailbox.c '#include "storage.h"' '#include "event.h"'
	put "$t" core/hub/registry.c '#include "storage.h"' '#include "backends/flat/flat.h"' \
		'#include "auth/pam.h"'
	put "$t" backends/flat/flat.h '#include "storage.h"'
	put "$t" backends/flat/flat_sync.c '#include "flat.h"' '#include "message.h"'
	put "$t" auth/pam.h '#include "lib.h"'
	put "$t" auth/pam.c '#include "pam.h"' '#include "storage.h"'
	put "$t" core/imap/imap_client.h '#include "storage.h"'
	put "$t" core/imap/imap_client.c '#include "imap_client.h"'
	put "$t" core/smtp/smtp_server.h '#include "storage.h"'
	put "$t" core/daemon/cmdline.h '#include "storage.h"'
	put "$t" core/daemon/main.c '#include "imap_client.h"' '#include "smtp_server.h"' \
		'#include "cmdline.h"'
	put "$t" client/netio.h '#include "buf.h"'
	put "$t" client/mailclient.c '#include "netio.h"' '#include "message.h"'
}

# expect NAME STATUS PATTERN: runs the script on $tmp/t; it must exit
# with STATUS (0 or 1) and, if PATTERN is not empty, print a line that
# matches it (grep -E).
expect()
{
	name=$1
	want=$2
	pattern=$3
	cases=$((cases + 1))
	out=$(sh "$script" "$tmp/t" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "!! $name: exit status $rc, not $want; output:"
		printf '%s\n' "$out" | sed 's/^/     /'
		failed=$((failed + 1))
	elif [ -n "$pattern" ] && ! printf '%s\n' "$out" | grep -Eq "$pattern"; then
		echo "!! $name: no line matching /$pattern/; output:"
		printf '%s\n' "$out" | sed 's/^/     /'
		failed=$((failed + 1))
	fi
}

# bad NAME FILE LINE... PATTERN: a clean tree with FILE (re)written with
# the given lines must fail with a line matching PATTERN.
bad()
{
	make_tree "$tmp/t"
	bad_name=$1
	bad_file=$2
	shift 2
	n=$#
	lines=
	i=1
	for arg in "$@"; do
		[ "$i" -lt "$n" ] || break
		lines="$lines$arg
"
		i=$((i + 1))
	done
	eval "pattern=\${$n}"
	mkdir -p "$(dirname "$tmp/t/$bad_file")"
	printf '%s' "$lines" >"$tmp/t/$bad_file"
	expect "$bad_name" 1 "$pattern"
}

make_tree "$tmp/t"
expect "clean tree" 0 '^layering: ok '

bad "hub includes imap" core/hub/mailbox.c \
	'#include "storage.h"' '#include "imap_client.h"' \
	'core/hub/mailbox\.c:2: hub includes the higher layer imap'
bad "lib includes mail" core/lib/buf.c \
	'#include "message.h"' \
	'core/lib/buf\.c:1: lib includes the higher layer mail'
bad "smtp includes imap" core/smtp/smtp_server.c \
	'#include "smtp_server.h"' '#include "lib.h"' '#include "imap_client.h"' \
	'core/smtp/smtp_server\.c:3: smtp includes its peer imap'
bad "imap includes daemon" core/imap/imap_client.c \
	'#include "imap_client.h"' '#include "cmdline.h"' \
	'core/imap/imap_client\.c:2: imap includes the higher layer daemon'
bad "backend includes imap" backends/flat/flat_sync.c \
	'#include "flat.h"' '#include "imap_client.h"' \
	'backends/flat/flat_sync\.c:2: backends includes the higher layer imap'
bad "auth includes a backend" auth/pam.c \
	'#include "pam.h"' '#include "backends/flat/flat.h"' \
	'auth/pam\.c:2: includes backends/'
bad "hub outside registry.c includes auth" core/hub/mailbox.c \
	'#include "auth/pam.h"' \
	'core/hub/mailbox\.c:1: includes auth/.*registry\.c'
bad "client includes hub" client/mailclient.c \
	'#include "netio.h"' '#include "storage.h"' \
	'client/mailclient\.c:2: client/ includes hub'
bad "server includes client" core/daemon/main.c \
	'#include "client/netio.h"' \
	'core/daemon/main\.c:1: daemon includes client/'
bad "unknown header" core/mail/message.c \
	'#include "message.h"' '#include "nowhere.h"' \
	'core/mail/message\.c:2: "nowhere\.h" is not a header'
bad "folder of no layer" core/misc/x.c \
	'#include "lib.h"' \
	'core/misc/x\.c: in a folder of no known layer'

# Two modules of one layer that include each other.
make_tree "$tmp/t"
put "$tmp/t" core/mail/mime_x.h '#include "buf.h"'
put "$tmp/t" core/mail/mime_x.c '#include "mime_x.h"' '#include "message.h"'
put "$tmp/t" core/mail/message.c '#include "message.h"' '#include "mime_x.h"'
expect "include cycle" 1 \
	'include cycle: .*core/mail/message -> core/mail/mime_x \(core/mail/message\.c:2\)'
# And round three modules, through headers.
make_tree "$tmp/t"
put "$tmp/t" core/hub/a.h '#include "b.h"'
put "$tmp/t" core/hub/b.h '#include "c.h"'
put "$tmp/t" core/hub/c.h '#include "lib.h"'
put "$tmp/t" core/hub/c.c '#include "a.h"'
expect "include loop of three" 1 'include cycle: .*core/hub/c -> core/hub/a \(core/hub/c\.c:1\)'
# A loop listed in the script's known exceptions passes, with a note.
make_tree "$tmp/t"
put "$tmp/t" core/mail/mime.h '#include "buf.h"'
put "$tmp/t" core/mail/mime.c '#include "mime.h"' '#include "message.h"'
put "$tmp/t" core/mail/message.c '#include "message.h"' '#include "mime.h"'
LAYERING_KNOWN_EXCEPTIONS='cycle core/mail/message core/mail/mime'
export LAYERING_KNOWN_EXCEPTIONS
expect "known exception" 0 '^layering: ok .*1 known exceptions'
unset LAYERING_KNOWN_EXCEPTIONS

# Long files: a failure in core/, a warning in backends/, fine with a reason.
long_file()
{
	i=0
	{
		printf '/* %s */\n' "$2"
		while [ "$i" -lt 1001 ]; do
			echo "int x$i;"
			i=$((i + 1))
		done
	} >"$tmp/t/$1"
}
make_tree "$tmp/t"
long_file core/hub/big.c "a long file"
expect "long file" 1 'core/hub/big\.c: 1002 lines and no "Why this file is long"'
make_tree "$tmp/t"
long_file core/hub/big.c "Why this file is long: one table."
expect "long file with a reason" 0 '^layering: ok '
make_tree "$tmp/t"
long_file backends/flat/big.c "a long file"
expect "long backend file is a warning" 0 'warning: backends/flat/big\.c: 1002 lines'

if [ "$failed" -gt 0 ]; then
	echo "layering self-test: FAILED: $failed of $cases cases"
	exit 1
fi
echo "layering self-test: ok ($cases cases)"
