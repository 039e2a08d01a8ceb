#!/bin/sh
# tests/layering.sh: checks the shape of the source tree.
#
#   tests/layering.sh [-v] [ROOT]
#
# Reads every #include "..." of ROOT's core/, backends/, auth/ and client/
# (ROOT: the top of the clone by default) and fails, naming file:line,
# when:
#
#  - a layer includes a higher one. The order, lowest first:
#        core/lib < core/io < core/mail < core/hub < core/imap, core/smtp
#        < core/daemon
#    core/imap and core/smtp are peers that never include each other.
#    backends/ and auth/ sit at hub level: they may include lib, io, mail
#    and hub headers (and their own), not imap, smtp or daemon ones, nor
#    each other's. core/hub/registry.c is the one file that includes
#    backends/ and auth/ headers. client/ (the mailclient) may include
#    lib and mail headers (and its own), and of io only the TLS layer
#    (tls.h, conn_layer.h: what the Makefile links it with); nothing
#    includes it;
#  - two modules (foo.c + foo.h) include each other, directly or round a
#    longer loop;
#  - a file of core/, auth/ or client/ is over 1,000 lines and has no
#    "Why this file is long" line in its first 30 lines (for backends/
#    this is a warning).
#
# An include is resolved as the compiler does with the Makefile's flags:
# the including file's folder, then -I. and -Icore/<layer> for each layer.
# A header found nowhere in the checked folders is a failure too.
#
# Prints the problems, then one verdict line:
#   layering: ok (N files, N includes[, N known exceptions])
#   layering: FAILED: N problem(s) (...)
# Exits 0 only if nothing failed. -v also lists the known exceptions met.
# Run by tests/run.sh (make check); tests/test_layering.sh tests it.

set -u

verbose=0
if [ "${1:-}" = "-v" ]; then
	verbose=1
	shift
fi
if [ $# -gt 0 ]; then
	root=$1
else
	root=$(dirname "$0")/..
fi
cd "$root" || exit 2

# Known exceptions. Each is met by the line it would fail with (its
# "key"); a key no longer met is reported (not a failure), so that it is
# removed.
#   cycle KEY:  the modules of the loop, sorted, space separated;
#   long PATH:  a file over 1,000 lines.
# LAYERING_KNOWN_EXCEPTIONS replaces the list (tests/test_layering.sh).
# None today: write why next to any that is added.
KNOWN_EXCEPTIONS=${LAYERING_KNOWN_EXCEPTIONS-''}

dirs=
for d in core backends auth client; do
	[ -d "$d" ] && dirs="$dirs $d"
done
if [ -z "$dirs" ]; then
	echo "layering: FAILED: no core/, backends/, auth/ or client/ under $root"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/layering.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086 # $dirs is a list of plain folder names
find $dirs -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort >"$tmp/files"
# file TAB line TAB included name, for every #include "..."; and
# file TAB lines TAB (1 if a "Why this file is long" line is in its first
# 30) for every file over 1,000 lines.
xargs awk -v lengths="$tmp/lengths" '
function done_file() {
	if (cur != "" && n > 1000)
		printf "%s\t%d\t%d\n", cur, n, why >>lengths
}
FNR == 1 { done_file(); cur = FILENAME; why = 0 }
{ n = FNR }
FNR <= 30 && tolower($0) ~ /why this file is long/ { why = 1 }
/^[ \t]*#[ \t]*include[ \t]*"/ {
	s = $0
	sub(/^[^"]*"/, "", s)
	sub(/".*/, "", s)
	printf "%s\t%d\t%s\n", FILENAME, FNR, s
}
END { done_file() }
' <"$tmp/files" >"$tmp/includes"
touch "$tmp/lengths"

printf '%s\n' "$KNOWN_EXCEPTIONS" | sed '/^$/d' >"$tmp/known"

awk -F '\t' -v verbose="$verbose" -v files_path="$tmp/files" \
	-v lengths_path="$tmp/lengths" -v known_path="$tmp/known" '
function dirname(p,    i) {
	i = match(p, /\/[^\/]*$/)
	return i ? substr(p, 1, i - 1) : "."
}
# Removes "." and "dir/.." components.
function normalize(p,    n, parts, out, k, i) {
	n = split(p, parts, "/")
	k = 0
	for (i = 1; i <= n; i++) {
		if (parts[i] == "" || parts[i] == ".")
			continue
		if (parts[i] == ".." && k > 0 && out[k] != "..") {
			k--
			continue
		}
		out[++k] = parts[i]
	}
	p = ""
	for (i = 1; i <= k; i++)
		p = p (i > 1 ? "/" : "") out[i]
	return p
}
# The file an include names, as the compiler finds it; "" if none.
function resolve(from, name,    c, i) {
	c = normalize(dirname(from) "/" name)
	if (c in exists)
		return c
	c = normalize(name)
	if (c in exists)
		return c
	for (i = 1; i <= nlayers; i++) {
		c = "core/" layer_dirs[i] "/" name
		if (c in exists)
			return c
	}
	return ""
}
# The group of a file: a core layer name, backends, auth, client, or ""
# for a folder this script does not know.
function group(p,    parts) {
	split(p, parts, "/")
	if (parts[1] == "core")
		return (parts[2] in rank && p ~ /^core\/[^\/]+\/[^\/]+$/) ? parts[2] : ""
	if (parts[1] == "backends" || parts[1] == "auth" || parts[1] == "client")
		return parts[1]
	return ""
}
function module(p) {
	sub(/\.[ch]$/, "", p)
	return p
}
function problem(where, msg) {
	nproblems++
	print "layering: " where ": " msg
}
# Tarjan: strongly connected components of the module graph.
function strongconnect(v,    i, w, comp, n, members, key, j) {
	index_of[v] = next_index
	low[v] = next_index
	next_index++
	stack[++sp] = v
	on_stack[v] = 1
	for (i = 1; i <= out_count[v]; i++) {
		w = out_edge[v, i]
		if (!(w in index_of)) {
			strongconnect(w)
			if (low[w] < low[v])
				low[v] = low[w]
		} else if (on_stack[w] && index_of[w] < low[v]) {
			low[v] = index_of[w]
		}
	}
	if (low[v] != index_of[v])
		return
	n = 0
	do {
		w = stack[sp--]
		on_stack[w] = 0
		members[++n] = w
		comp_of[w] = v
	} while (w != v)
	if (n < 2)
		return
	# Sorted member list: the key of the loop.
	for (i = 2; i <= n; i++) {
		key = members[i]
		for (j = i - 1; j >= 1 && members[j] > key; j--)
			members[j + 1] = members[j]
		members[j + 1] = key
	}
	key = members[1]
	for (i = 2; i <= n; i++)
		key = key " " members[i]
	ncycles++
	cycle_key[ncycles] = key
	cycle_root[ncycles] = v
}
BEGIN {
	nlayers = split("lib io mail hub imap smtp daemon", layer_dirs, " ")
	rank["lib"] = 0; rank["io"] = 1; rank["mail"] = 2; rank["hub"] = 3
	rank["imap"] = 4; rank["smtp"] = 4; rank["daemon"] = 5
	rank["backends"] = 3; rank["auth"] = 3
	while ((getline line < files_path) > 0) {
		exists[line] = 1
		nfiles++
	}
	while ((getline line < known_path) > 0) {
		known[line] = 1
		nknown_listed++
	}
}
{
	file = $1; line = $2; name = $3
	nincludes++
	where = file ":" line
	gf = group(file)
	if (gf == "") {
		if (!(file in unknown_reported))
			problem(file, "in a folder of no known layer (see tests/layering.sh)")
		unknown_reported[file] = 1
		next
	}
	target = resolve(file, name)
	if (target == "") {
		problem(where, "\"" name "\" is not a header of core/, backends/, auth/ or client/")
		next
	}
	gh = group(target)
	if (gh == "") {
		problem(where, "\"" name "\" is in a folder of no known layer")
		next
	}
	mf = module(file); mh = module(target)
	if (mf != mh && !((mf, mh) in edge)) {
		edge[mf, mh] = where
		out_edge[mf, ++out_count[mf]] = mh
		modules[mf] = 1
		modules[mh] = 1
	}
	if (gf == gh)
		next
	if (gf == "client") {
		if (gh != "lib" && gh != "mail" && !(gh == "io" && (name == "tls.h" || name == "conn_layer.h")))
			problem(where, "client/ includes " gh " (\"" name "\"): the mailclient may use lib, mail and the TLS layer of io only")
		next
	}
	if (gh == "client") {
		problem(where, gf " includes client/ (\"" name "\")")
		next
	}
	if (gh == "backends" || gh == "auth") {
		if (file != "core/hub/registry.c")
			problem(where, "includes " gh "/ (\"" name "\"): only core/hub/registry.c may")
		next
	}
	if (rank[gh] > rank[gf]) {
		problem(where, gf " includes the higher layer " gh " (\"" name "\")")
		next
	}
	if (rank[gh] == rank[gf] && gh != "hub")
		problem(where, gf " includes its peer " gh " (\"" name "\")")
}
END {
	for (m in modules)
		if (!(m in index_of))
			strongconnect(m)
	for (c = 1; c <= ncycles; c++) {
		key = "cycle " cycle_key[c]
		# Every include inside the loop, for the reader.
		n = split(cycle_key[c], members, " ")
		detail = ""
		for (i = 1; i <= n; i++)
			for (j = 1; j <= n; j++)
				if ((members[i], members[j]) in edge)
					detail = detail (detail == "" ? "" : ", ") members[i] " -> " \
						members[j] " (" edge[members[i], members[j]] ")"
		if (key in known) {
			met[key] = 1
			nknown++
			if (verbose)
				print "layering: known exception: include cycle: " detail
		} else {
			problem("include cycle", detail)
		}
	}
	while ((getline line < lengths_path) > 0) {
		split(line, l, "\t")
		if (l[3] == 1)
			continue
		key = "long " l[1]
		msg = l[2] " lines and no \"Why this file is long\" line in its first 30"
		if (key in known) {
			met[key] = 1
			nknown++
			if (verbose)
				print "layering: known exception: " l[1] ": " msg
		} else if (l[1] ~ /^backends\//) {
			print "layering: warning: " l[1] ": " msg
		} else {
			problem(l[1], msg)
		}
	}
	for (k in known)
		if (!(k in met))
			print "layering: known exception no longer met (remove it): " k
	if (nproblems > 0) {
		printf "layering: FAILED: %d problem(s) (%d files, %d includes)\n", nproblems,
			nfiles, nincludes
		exit 1
	}
	printf "layering: ok (%d files, %d includes%s)\n", nfiles, nincludes,
		(nknown > 0 ? ", " nknown " known exceptions" : "")
}
' "$tmp/includes"
