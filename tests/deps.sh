#!/bin/sh
# tests/deps.sh: makes sure the Debian packages that the build and the tests
# need are installed.
#
#   tests/deps.sh          what the build and `make run` need
#   tests/deps.sh --test   also what `make check` uses: real IMAP clients
#                          (mutt, curl), a reference server (dovecot) and
#                          the PAM test harness (pam_wrapper)
#
#   As root:      installs what is missing (apt-get, no prompts), and
#                 creates the system user "imapserver" (no shell, no home)
#                 that `make run` and the tests run the server as: started
#                 as root, the server needs server.user.
#   Otherwise:    prints the exact command to run and exits 1.
#
# Quiet (one line) when everything is there; safe to run again and again.

set -u

# Build: compiler, make, pkg-config, the libraries the Makefile links
# (libssl-dev: TLS; zlib1g-dev: COMPRESS=DEFLATE; libunistring-dev: NFC of
# mailbox names; libpq-dev: storage.backend "pgsql"), openssl to make `make run`'s demo certificate.
# Tests: cmocka for the unit tests, python3 for the end-to-end tests,
# curl as a second real IMAP client.
PKGS="gcc make pkg-config libc6-dev libconfig-dev libcmocka-dev libpam0g-dev libcrypt-dev \
libssl-dev zlib1g-dev libunistring-dev libpq-dev openssl python3 curl"
# What the tests drive besides our own code (sslscan: the TLS scan of
# the default TLS settings; libnet-ssleay-perl: swaks's TLS;
# iproute2: a local address beyond loopback for the mailclient's
# no-password-in-clear tests; fail2ban: its fail2ban-regex checks the
# shipped filter on the server's failed-login lines; postgresql: the
# throw-away cluster of tests/pg_cluster.sh that the pgsql backend's
# tests run against).
TEST_PKGS="mutt dovecot-imapd libpam-wrapper valgrind swaks isync offlineimap fetchmail groff-base \
sslscan libnet-ssleay-perl iproute2 fail2ban postgresql"
# `make deb`: the Debian packaging tools (and zlib, which the package
# builds with).
DEB_PKGS="dpkg-dev debhelper lintian fakeroot zlib1g-dev"
if [ "${1:-}" = "--test" ]; then
	PKGS="$PKGS $TEST_PKGS"
elif [ "${1:-}" = "--deb" ]; then
	PKGS="$PKGS $DEB_PKGS"
fi

is_installed()
{
	# "dpkg -s" also succeeds for a removed package whose config files
	# are left, so look at the status line itself.
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

if ! command -v dpkg >/dev/null 2>&1; then
	echo "deps: no dpkg here (not Debian?); needed: $PKGS" >&2
	exit 1
fi

# The unprivileged user a server started as root runs as (server.user);
# tests/e2e/server.py and `make run` name it.
SERVICE_USER=imapserver

ensure_service_user()
{
	[ "$(id -u)" -eq 0 ] || return 0
	getent passwd "$SERVICE_USER" >/dev/null 2>&1 && return 0
	if ! useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$SERVICE_USER"; then
		echo "deps: could not create the system user $SERVICE_USER" >&2
		return 1
	fi
	echo "deps: created the system user $SERVICE_USER (no shell, no home)"
}

ensure_service_user || exit 1

missing=
for p in $PKGS; do
	is_installed "$p" || missing="$missing $p"
done
missing=${missing# }

if [ -z "$missing" ]; then
	echo "deps: all build and test packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: $missing" >&2
	echo "deps: run:  sudo apt-get install -y $missing" >&2
	exit 1
fi

echo "deps: installing: $missing"
export DEBIAN_FRONTEND=noninteractive
# Fresh machines have no package lists yet: update once, then install.
if ! apt-get update -q </dev/null; then
	echo "deps: apt-get update failed" >&2
	exit 1
fi
if ! apt-get install -y -q --no-install-recommends $missing </dev/null; then
	echo "deps: apt-get install failed" >&2
	exit 1
fi

still=
for p in $missing; do
	is_installed "$p" || still="$still $p"
done
if [ -n "$still" ]; then
	echo "deps: still missing after install:$still" >&2
	exit 1
fi
echo "deps: installed: $missing"
