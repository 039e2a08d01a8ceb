#!/bin/sh
# tests/run.sh: runs every test of the project and prints one summary line
#
#   N passed, N failed[, N skipped]
#
# 1. the source layout: tests/layering.sh (no layer includes a higher
#    one, no include loop, no long file without a reason) and its own
#    test, tests/test_layering.sh; each counts as one test;
# 2. every cmocka binary $BUILD/tests/test_* (from the top of the clone,
#    each under a timeout; a crash or a timeout counts as one failure);
# 3. the end-to-end suite tests/e2e/test_*.py (Python's unittest) against
#    the real $BUILD/imapserver.
#
# Exits 0 only if nothing failed. Run by "make check" and "make check-san"
# (BUILD=build-san: the sanitizers are told to stop at the first report).

set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
E2E_TIMEOUT=${E2E_TIMEOUT:-1200}

case "$BUILD" in
*san*)
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	export ASAN_OPTIONS UBSAN_OPTIONS
	# Everything runs a few times slower under the sanitizers.
	UNIT_TIMEOUT=$((UNIT_TIMEOUT * 3))
	;;
esac

passed=0
failed=0
skipped=0
broken=""      # names of binaries/suites that crashed, timed out or did not run

tmp=$(mktemp -d "${TMPDIR:-/tmp}/imapserver-run.XXXXXX") || exit 1
pgdir=""
trap '[ -n "$pgdir" ] && { sh tests/pg_cluster.sh stop "$pgdir/c"; rm -rf "$pgdir"; }; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# The pgsql backend's tests need a database: a throw-away cluster
# (tests/pg_cluster.sh) when PostgreSQL is installed, named to the tests
# in PGTEST_CONNINFO; without it they say so and are not counted.
if [ -z "${PGTEST_CONNINFO:-}" ]; then
	pgdir=$(mktemp -d "${TMPDIR:-/tmp}/imapserver-pg.XXXXXX") || exit 1
	chmod 755 "$pgdir"      # the cluster's owner (postgres, as root) goes in
	if PGTEST_CONNINFO=$(sh tests/pg_cluster.sh start "$pgdir/c"); then
		export PGTEST_CONNINFO
		echo "== PostgreSQL for the pgsql tests: $PGTEST_CONNINFO"
	else
		echo "== no PostgreSQL: the pgsql backend is not tested (install postgresql)"
		unset PGTEST_CONNINFO
	fi
fi

# Sum of the N of every line "[  WORD  ] N test(s)" (cmocka prints one per
# group; WORD is PASSED, FAILED or SKIPPED).
cmocka_count()
{
	sed -n "s/^\[  *$1  *\] \([0-9][0-9]*\) test(s).*/\1/p" "$2" |
		awk '{ n += $1 } END { print n + 0 }'
}

echo "== source layout (tests/layering.sh)"
for check in layering.sh test_layering.sh; do
	timeout -k 5 "$UNIT_TIMEOUT" sh "tests/$check" >"$tmp/out" 2>&1 </dev/null
	rc=$?
	cat "$tmp/out"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		broken="$broken $check(exit $rc)"
	fi
done

echo
echo "== unit tests ($BUILD/tests)"
nbin=0
for bin in "$BUILD"/tests/test_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case "$bin" in *.o|*.d) continue ;; esac
	nbin=$((nbin + 1))
	name=${bin##*/}
	echo "-- $name"
	timeout -k 5 "$UNIT_TIMEOUT" "$bin" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	cat "$tmp/out" "$tmp/err"
	p=$(cmocka_count PASSED "$tmp/err")
	f=$(cmocka_count FAILED "$tmp/err")
	s=$(cmocka_count SKIPPED "$tmp/err")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "!! $name: timed out after ${UNIT_TIMEOUT}s"
		failed=$((failed + 1))
		broken="$broken $name(timeout)"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# Non-zero exit but no failed test reported: it crashed, a
		# sanitizer stopped it, or it leaked.
		echo "!! $name: exited with status $rc without reporting a failed test"
		failed=$((failed + 1))
		broken="$broken $name(exit $rc)"
	fi
done
[ "$nbin" -gt 0 ] || echo "(no unit test binaries in $BUILD/tests)"

echo
echo "== end-to-end tests (tests/e2e)"
IMAPSERVER=$PWD/$BUILD/imapserver
export IMAPSERVER
[ -x "$BUILD/smtpmail" ] && SMTPMAIL=$PWD/$BUILD/smtpmail && export SMTPMAIL
[ -x "$BUILD/mailclient" ] && MAILCLIENT=$PWD/$BUILD/mailclient && export MAILCLIENT
if [ ! -x "$IMAPSERVER" ]; then
	echo "!! $IMAPSERVER is missing: build it first (make)"
	failed=$((failed + 1))
	broken="$broken e2e(no-server)"
elif ! command -v python3 >/dev/null 2>&1; then
	echo "!! python3 is missing: run tests/deps.sh"
	failed=$((failed + 1))
	broken="$broken e2e(no-python3)"
else
	timeout -k 10 "$E2E_TIMEOUT" python3 -m unittest discover -s tests/e2e \
		-p 'test_*.py' -v >"$tmp/e2e" 2>&1 </dev/null
	rc=$?
	cat "$tmp/e2e"
	# unittest ends with "Ran N tests in Xs" and then "OK", "OK (skipped=1)"
	# or "FAILED (failures=1, errors=2, skipped=3, ...)".
	eval "$(awk '
		/^Ran [0-9]+ tests? in / { ran = $2 }
		/^(OK|FAILED)( \(|$)/ {
			s = $0; sub(/^[A-Z]+ ?\(?/, "", s); sub(/\)$/, "", s)
			n = split(s, kv, ", ")
			for (i = 1; i <= n; i++) {
				split(kv[i], p, "=")
				if (p[1] == "failures") f += p[2]
				else if (p[1] == "errors") e += p[2]
				else if (p[1] == "skipped") sk += p[2]
				else if (p[1] == "unexpected successes") u += p[2]
			}
			done = 1
		}
		END { printf "ran=%d ef=%d es=%d edone=%d\n", ran, f + e + u, sk, done }
	' "$tmp/e2e")"
	passed=$((passed + ran - ef - es))
	failed=$((failed + ef))
	skipped=$((skipped + es))
	if [ "$edone" -ne 1 ]; then
		echo "!! end-to-end suite did not finish (exit status $rc)"
		failed=$((failed + 1))
		broken="$broken e2e(exit $rc)"
	elif [ "$rc" -ne 0 ] && [ "$ef" -eq 0 ]; then
		echo "!! end-to-end suite exited with status $rc"
		failed=$((failed + 1))
		broken="$broken e2e(exit $rc)"
	fi
fi

echo
[ -n "$broken" ] && echo "did not finish cleanly:$broken"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
