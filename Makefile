# imapserver: one Makefile for the server, smtpmail, mailclient and the tests.
#
#   make              build everything into build/
#   make check        run every test (unit, backend contract, end to end)
#   make check-san    the same tests built with AddressSanitizer + UBSan
#   make run          build and start imapserver on etc/imapserver.conf
#   make bench        benchmarks (see bench/README)
#   make install PREFIX=/usr/local
#
# SANITIZE=address,undefined builds into build-san/ instead.

CC ?= cc
PREFIX ?= /usr/local
PKGS := libconfig
TEST_PKGS := cmocka

ifeq ($(SANITIZE),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# The core's layers, lowest first (see README, "Architecture"). Headers are
# included by name; tests/layering.sh checks that no layer includes a higher one.
CORE_LAYERS := lib io mail hub imap smtp daemon
CORE_INCS := -I. $(addprefix -Icore/,$(CORE_LAYERS))

WARNFLAGS := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wvla \
	-Wno-unused-parameter -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNFLAGS) $(CFLAGS) $(SANFLAGS) \
	$(CORE_INCS) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt
# zlib: COMPRESS=DEFLATE (core/io/compress.c). libunistring: the NFC
# check of new mailbox names (RFC 9051 5.1, core/imap/mutf7.c).
LIBS += -lz -lunistring
HAVE_PAM := $(shell test -f /usr/include/security/pam_appl.h && echo 1)
ifeq ($(HAVE_PAM),1)
ALL_CFLAGS += -DHAVE_PAM
LIBS += -lpam
endif
# TLS (OpenSSL 3) is optional like PAM: without its headers the server
# builds, and a configured certificate is refused as "not compiled in".
HAVE_OPENSSL := $(shell pkg-config --exists openssl 2>/dev/null && echo 1)
ifeq ($(HAVE_OPENSSL),1)
ALL_CFLAGS += -DHAVE_OPENSSL $(shell pkg-config --cflags openssl)
TLS_LIBS := $(shell pkg-config --libs openssl)
LIBS += $(TLS_LIBS)
endif
# PostgreSQL (storage.backend "pgsql", backends/pgsql/) is optional like
# PAM: without libpq's headers the backend is registered as not compiled in.
HAVE_PQ := $(shell test -f /usr/include/postgresql/libpq-fe.h && echo 1)
ifeq ($(HAVE_PQ),1)
ALL_CFLAGS += -DHAVE_PQ -I/usr/include/postgresql
LIBS += -lpq
endif
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

# A missing library stops the build at once, naming the package to
# install, rather than as a compiler error halfway through. Only for the
# goals that compile: deps and test-deps install the libraries, clean
# needs none, and check*, run install them first and build in a sub-make
# (which checks then).
GOALS := $(or $(MAKECMDGOALS),all)
NO_LIB_GOALS := deps test-deps clean check check-san check-valgrind run
ifneq ($(filter-out $(NO_LIB_GOALS),$(GOALS)),)
ifneq ($(shell command -v pkg-config),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error libconfig not found: install libconfig-dev (make deps))
endif
ifneq ($(shell pkg-config --exists libcrypt || test -f /usr/include/crypt.h && echo ok),ok)
$(error libcrypt not found: install libcrypt-dev (make deps))
endif
ifneq ($(shell test -f /usr/include/uninorm.h && echo ok),ok)
$(error libunistring not found: install libunistring-dev (make deps))
endif
# The unit tests need cmocka: tests, or one of their binaries by name.
ifneq ($(filter tests $(BUILD)/tests/test_%,$(GOALS)),)
ifneq ($(shell pkg-config --exists $(TEST_PKGS) && echo ok),ok)
$(error cmocka not found: install libcmocka-dev (make test-deps))
endif
endif
else
$(error pkg-config not found: install pkg-config (make deps))
endif
endif

MAIN_SRCS := core/daemon/imapserver_main.c core/daemon/smtpmail_main.c
LIB_SRCS := $(filter-out $(MAIN_SRCS), $(wildcard $(addsuffix /*.c,$(addprefix core/,$(CORE_LAYERS))))) \
	$(wildcard backends/*.c backends/*/*.c) $(wildcard auth/*.c auth/*/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
# What the mailclient links: the core's lib and mail layers and the TLS
# layer, nothing of the server (no libconfig, libcrypt or PAM).
CLIENT_LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard core/lib/*.c core/mail/*.c) core/io/tls.c)
CLIENT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard client/*.c))
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
PROGS := $(BUILD)/imapserver $(BUILD)/smtpmail \
	$(if $(wildcard client/*.c),$(BUILD)/mailclient)

.PHONY: all fuzz check check-san check-valgrind soak compliance run bench install deb clean deps test-deps tests

all: $(PROGS)

# V=1 shows the whole commands.
Q := $(if $(V),,@)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libimapcore.a: $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/imapserver: $(BUILD)/core/daemon/imapserver_main.o $(BUILD)/libimapcore.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/smtpmail: $(BUILD)/core/daemon/smtpmail_main.o $(BUILD)/libimapcore.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libmailbase.a: $(CLIENT_LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/mailclient: $(CLIENT_OBJS) $(BUILD)/libmailbase.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(TLS_LIBS)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libimapcore.a
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(TEST_LIBS) $(LIBS)

# A PAM module for the end-to-end tests only (tests/pam_sleep.c, a slow
# PAM stack): never installed; built without the sanitizers, as the PAM
# modules of a system are.
PAM_TEST_MODULES := $(if $(HAVE_PAM),$(BUILD)/tests/pam_sleep.so)
$(BUILD)/tests/pam_sleep.so: tests/pam_sleep.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARNFLAGS) $(CFLAGS) -fPIC -shared -o $@ $< -lpam

# A write fault injector for the end-to-end tests only (tests/fail_write.c:
# LD_PRELOAD, a write holding $FAILWRITE_MARKER fails with ENOSPC).
$(BUILD)/tests/fail_write.so: tests/fail_write.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE $(WARNFLAGS) $(CFLAGS) -fPIC -shared -o $@ $< -ldl

tests: $(TEST_BINS) $(PAM_TEST_MODULES) $(BUILD)/tests/fail_write.so

# Installs the Debian packages the build and tests need when run as root;
# otherwise prints the command to run.
deps:
	@sh tests/deps.sh

test-deps:
	@sh tests/deps.sh --test

check: test-deps
	@$(MAKE) --no-print-directory all tests
	@BUILD=$(BUILD) sh tests/run.sh

check-san:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined check

# The random concurrent workload (tests/e2e/workload.py) for 5 minutes:
# 20 clients on one mailbox must end agreeing on its state.
soak: all
	@IMAPSERVER=$(BUILD)/imapserver python3 tests/e2e/workload.py --clients 20 --seconds 300

# An independent IMAP compliance suite (Dovecot's imaptest) against our
# server, when it is installed (see bench/compliance.sh).
compliance: all
	@BUILD=$(BUILD) sh bench/compliance.sh $(IMAPTEST_TESTS)

# The unit tests under valgrind's memcheck: any error or leak fails.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--track-fds=no --trace-children=yes --trace-children-skip='/bin/*,/usr/bin/*' \
	--suppressions=tests/valgrind.supp
# The server under valgrind for the end-to-end tests of the big answers
# and the sliced commands (slow: about two minutes).
VALGRIND_E2E := test_large_answers test_slices
VALGRIND_SERVER := $(subst --suppressions=tests/,--suppressions=$(CURDIR)/tests/,$(VALGRIND))
check-valgrind: test-deps
	@$(MAKE) --no-print-directory all tests
	@fail=0; for t in $(TEST_BINS); do \
		echo "== valgrind $$t"; \
		$(VALGRIND) $$t >/tmp/valgrind.$$$$.log 2>&1; rc=$$?; \
		if [ $$rc -ne 0 ]; then fail=1; tail -40 /tmp/valgrind.$$$$.log; fi; \
		grep -E '^\[  (PASSED|FAILED)' /tmp/valgrind.$$$$.log; \
	done; rm -f /tmp/valgrind.$$$$.log; \
	if [ $$fail -ne 0 ]; then echo "check-valgrind: FAILED"; exit 1; fi; \
	echo "== valgrind: the server itself, under the end-to-end tests of $(VALGRIND_E2E)"; \
	cd tests/e2e && IMAPSERVER=$(CURDIR)/$(BUILD)/imapserver \
		IMAPSERVER_WRAPPER="$(VALGRIND_SERVER)" \
		timeout -k 10 1800 python3 -m unittest $(VALGRIND_E2E) || fail=1; \
	if [ $$fail -ne 0 ]; then echo "check-valgrind: FAILED"; exit 1; fi; \
	echo "check-valgrind: clean"

# `make run` starts the server in the foreground on var/imapserver-run.conf:
# etc/imapserver.conf with its relative paths made absolute, plus
# - TLS out of the box: on the first run a self-signed certificate for
#   localhost is made in var/tls (openssl); STARTTLS is offered on imap.port
#   and implicit TLS listens on imap.tls_port $(RUN_TLS_PORT) (unless the
#   file has a tls section of its own, which is then used as it is);
# - as root: server.user = $(RUN_USER) (tests/deps.sh creates that system
#   user; the server never touches mail as root), who gets var/mail and can
#   read the key (unless the file names a server user itself).
RUN_USER := imapserver
RUN_CONF := var/imapserver-run.conf
RUN_TLS_PORT ?= 9930
# Empty: the ports of etc/imapserver.conf (1430 and 2525).
IMAP_PORT ?=
SMTP_PORT ?=
# The run config from etc/imapserver.conf: SMTP served in the same
# process (smtp.enabled = true, for the lab's mailclient), IMAP_PORT and
# SMTP_PORT put in when given.
RUN_AWK := /^[a-z_]+:[ \t]*\{/ { grp = $$0; sub(/:.*/, "", grp); print; \
	if (grp == "smtp") { seen = 1; print "\tenabled = true;"; \
		if (smtp != "") print "\tport = " smtp ";" } \
	if (grp == "imap" && imap != "") print "\tport = " imap ";"; next } \
	/^\};/ { grp = "" } \
	grp == "smtp" && /^[ \t]*enabled[ \t]*=/ { next } \
	grp == "smtp" && smtp != "" && /^[ \t]*port[ \t]*=/ { next } \
	grp == "imap" && imap != "" && /^[ \t]*port[ \t]*=/ { next } \
	{ print } \
	END { if (!seen) { print "smtp: {\n\tenabled = true;"; \
		if (smtp != "") print "\tport = " smtp ";"; print "};" } }
# The port a group of the run config gives (first argument: imap or smtp).
RUN_PORT_AWK := $$0 ~ "^" g ":[ \t]*\\{" { on = 1 } /^\};/ { on = 0 } \
	on && /^[ \t]*port[ \t]*=/ { sub(/^[^=]*=[ \t]*/, ""); sub(/[^0-9].*/, ""); print; exit }
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var/mail/alice var/tls
	@# Demo mail for alice on the first run (the lab's own format).
	@test -e var/mail/alice/mymailbox.mail || \
		cp etc/sample-mymailbox.mail var/mail/alice/mymailbox.mail
	@test -e var/tls/cert.pem || { \
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-days 825 -subj /CN=localhost \
			-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
			-keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null && \
		chmod 0640 var/tls/key.pem && \
		echo "run: made a self-signed certificate for localhost: var/tls/cert.pem" \
			"(tell clients to trust it, e.g. curl --cacert var/tls/cert.pem)"; \
	} || { echo "run: could not make a certificate with openssl (make deps)" >&2; exit 1; }
	@root=0; [ "$$(id -u)" -eq 0 ] && root=1; \
	if [ $$root -eq 1 ] && ! grep -q '^server:' etc/imapserver.conf; then \
		chmod 0755 var && chown -R $(RUN_USER): var/mail && \
		chgrp $(RUN_USER) var/tls/key.pem || exit 1; \
		if ! setpriv --reuid=$(RUN_USER) --regid=$(RUN_USER) --clear-groups \
			sh -c 'test -r "$$1/etc/users" && test -w "$$1/var/mail"' sh "$(CURDIR)"; then \
			echo "run: the user $(RUN_USER) cannot reach $(CURDIR)/etc/users and" \
				"$(CURDIR)/var/mail: make the folders above $(CURDIR) searchable" \
				"(chmod o+x), or run as a normal user" >&2; \
			exit 1; \
		fi; \
	fi; \
	own_tls=0; grep -q '^tls:' etc/imapserver.conf && own_tls=1; \
	{ echo "# written by make run from etc/imapserver.conf: edit that file instead"; \
	  sed -E 's#^([[:space:]]*(root|file|aliases|[a-z_]+_file)[[:space:]]*=[[:space:]]*")([^/"][^"]*)"#\1$(CURDIR)/etc/\3"#' \
		etc/imapserver.conf | \
	  awk -v imap="$(IMAP_PORT)" -v smtp="$(SMTP_PORT)" '$(RUN_AWK)' | \
	  if [ $$own_tls -eq 1 ]; then cat; \
	  else sed -E 's/^imap:[[:space:]]*\{/imap: {\n\ttls_port = $(RUN_TLS_PORT);/'; fi; \
	  [ $$own_tls -eq 1 ] || echo 'tls: { cert_file = "$(CURDIR)/var/tls/cert.pem"; key_file = "$(CURDIR)/var/tls/key.pem"; };'; \
	  if [ $$root -eq 1 ] && ! grep -q '^server:' etc/imapserver.conf; then \
		echo 'server: { user = "$(RUN_USER)"; };'; fi; } >$(RUN_CONF) || exit 1; \
	imap=$$(awk -v g=imap '$(RUN_PORT_AWK)' $(RUN_CONF)); \
	smtp=$$(awk -v g=smtp '$(RUN_PORT_AWK)' $(RUN_CONF)); \
	echo "run: IMAP on 127.0.0.1:$$imap (STARTTLS), IMAP over TLS on 127.0.0.1:$(RUN_TLS_PORT)," \
		"SMTP on 127.0.0.1:$$smtp; users alice/alice123, bob/bob123, carol/carol123"; \
	echo "run: the lab's client, in another terminal:" \
		"./$(BUILD)/mailclient 127.0.0.1 $$smtp $$imap"; \
	echo "run: stop with Ctrl-C. ./$(BUILD)/imapserver -c $(RUN_CONF) -f"; \
	exec ./$(BUILD)/imapserver -c $(RUN_CONF) -f

# bench/flat_ops.c: the flat backend's operations timed through its API.
$(BUILD)/bench/flat_ops: $(BUILD)/bench/flat_ops.o $(BUILD)/libimapcore.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

bench: all $(BUILD)/bench/flat_ops
	@BUILD=$(BUILD) sh bench/run.sh

# Coverage-guided fuzzing with libFuzzer (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRCS = $(LIB_SRCS)
build-fuzz/%: tests/fuzz/%.c $(FUZZ_SRCS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $(CORE_INCS) \
		$(shell pkg-config --cflags $(PKGS)) -o $@ $< $(FUZZ_SRCS) $(LIBS)
fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$(basename $$t); \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		seeds=tests/data; [ -d tests/fuzz/$$(basename $$t | sed 's/^fuzz_//')-seeds ] && \
			seeds=tests/fuzz/$$(basename $$t | sed 's/^fuzz_//')-seeds; \
		$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
			build-fuzz/corpus-$$(basename $$t) $$seeds >/dev/null 2>build-fuzz/$$(basename $$t).log \
			|| { tail -60 build-fuzz/$$(basename $$t).log; exit 1; }; \
		tail -1 build-fuzz/$$(basename $$t).log; \
	done

# `make install`: the programs, the man pages, a working configuration, the
# systemd units of both daemons and the sysusers.d file of their system
# user, in the usual places. PREFIX=/usr (a package) puts the
# configuration in /etc, the default PREFIX=/usr/local in /usr/local/etc.
# The configuration is etc/imapserver.conf with absolute paths: mail in
# $(STATEDIR)/mail, the users file and the aliases beside the
# configuration, server.user = imapserver. An existing configuration,
# users file or aliases file is never overwritten (the new one is put
# beside it as .dist). As root without DESTDIR it also creates the system
# user (systemd-sysusers, else useradd) and gives it the users file.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
LOCALSTATEDIR ?= /var
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
CONFDIR = $(SYSCONFDIR)/imapserver
STATEDIR = $(LOCALSTATEDIR)/lib/imapserver
INSTALL_SUBST = sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@CONFDIR@|$(CONFDIR)|g' \
	-e 's|@STATEDIR@|$(STATEDIR)|g'

# install_new SRC DEST MODE: DEST from SRC unless DEST exists (then DEST.dist).
define install_new
	if [ -e $(DESTDIR)$(2) ]; then install -m $(3) $(1) $(DESTDIR)$(2).dist; \
		echo "install: kept $(2); the new one is $(2).dist"; \
	else install -m $(3) $(1) $(DESTDIR)$(2); fi
endef

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(CONFDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(STATEDIR)
	install -m 755 $(BUILD)/imapserver $(DESTDIR)$(PREFIX)/sbin/
	install -m 755 $(BUILD)/smtpmail $(DESTDIR)$(PREFIX)/sbin/
	install -m 755 $(BUILD)/mailclient $(DESTDIR)$(PREFIX)/bin/
	@mkdir -p $(BUILD)/install
	sed -E -e 's#^([[:space:]]*root[[:space:]]*=[[:space:]]*)"[^"]*"#\1"$(STATEDIR)/mail"#' \
		-e 's#^([[:space:]]*(file|aliases)[[:space:]]*=[[:space:]]*")([^/"][^"]*)"#\1$(CONFDIR)/\3"#' \
		etc/imapserver.conf >$(BUILD)/install/imapserver.conf
	grep -q '^server:' etc/imapserver.conf || \
		printf '\n# Written by make install: the system user of sysusers.d/imapserver.conf.\nserver: { user = "imapserver"; };\n' \
		>>$(BUILD)/install/imapserver.conf
	printf '%s\n' '# Users of imapserver and smtpmail (passwd-file): "name password-hash".' \
		'# Add one with: imapserver -c $(CONFDIR)/imapserver.conf --user-add NAME' \
		>$(BUILD)/install/users
	sed -e 's/^postmaster: alice$$/#postmaster: NAME   (a user of the users file: RFC 5321 4.5.1)/' \
		etc/aliases >$(BUILD)/install/aliases
	$(call install_new,$(BUILD)/install/imapserver.conf,$(CONFDIR)/imapserver.conf,644)
	$(call install_new,$(BUILD)/install/users,$(CONFDIR)/users,640)
	$(call install_new,$(BUILD)/install/aliases,$(CONFDIR)/aliases,644)
	$(INSTALL_SUBST) etc/imapserver.service.in >$(BUILD)/install/imapserver.service
	$(INSTALL_SUBST) etc/smtpmail.service.in >$(BUILD)/install/smtpmail.service
	install -m 644 $(BUILD)/install/imapserver.service $(BUILD)/install/smtpmail.service \
		$(DESTDIR)$(UNITDIR)/
	install -m 644 etc/imapserver.sysusers $(DESTDIR)$(SYSUSERSDIR)/imapserver.conf
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 etc/mailclient.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 etc/imapserver.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 etc/imapserver.8 etc/smtpmail.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then \
		if ! getent passwd imapserver >/dev/null; then \
			if command -v systemd-sysusers >/dev/null; then \
				systemd-sysusers $(SYSUSERSDIR)/imapserver.conf; \
			else useradd --system --user-group --no-create-home \
				--home-dir $(STATEDIR) --shell /usr/sbin/nologin imapserver; fi; \
		fi; \
		chgrp imapserver $(CONFDIR)/users; \
		echo "install: done; add a user: $(PREFIX)/sbin/imapserver -c $(CONFDIR)/imapserver.conf --user-add NAME"; \
		echo "install: then: systemctl daemon-reload && systemctl enable --now imapserver smtpmail"; \
	fi

# `make deb`: the Debian package (debian/), built from a copy of the
# committed tree (git archive HEAD; the working tree when there is no git)
# in build-deb/, then checked with lintian (errors fail).
deb:
	@sh tests/deps.sh --deb
	rm -rf build-deb && mkdir -p build-deb
	if git rev-parse --git-dir >/dev/null 2>&1; then \
		git archive --format=tar --prefix=imapserver/ HEAD | tar -x -C build-deb; \
	else mkdir build-deb/imapserver && tar -c --exclude='./build*' --exclude=./var . | \
		tar -x -C build-deb/imapserver; fi
	cd build-deb/imapserver && dpkg-buildpackage -us -uc -b
	lintian --fail-on error build-deb/*.deb
	@ls build-deb/*.deb

clean:
	rm -rf build build-san build-fuzz build-deb

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
