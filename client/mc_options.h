/* mc_options.h: the mailclient's command line, parsed without side
   effects so the unit tests can reach it.

	mailclient [OPTION]... SERVER_IP SMTP_PORT IMAP_PORT

   Options may come before or after the three arguments; "--" ends them.
   "--ca-file FILE" and "--ca-file=FILE" are the same. */
#ifndef MC_OPTIONS_H
#define MC_OPTIONS_H

#include "lib.h"
#include "client_tls.h"

#include <stdio.h>

struct mc_options {
	const char *host, *smtp_port, *imap_port; /* point into argv */
	enum client_tls_mode imap_mode, smtp_mode;
	const char *ca_file; /* NULL: the system's CAs */
	bool insecure;
	bool allow_plaintext;
};

/* Parses argv. Returns 0 with *opts_r, 1 for --help / -h, or -1 with
   *error_r (malloc'ed: the usage mistake, without the usage text). */
int mc_options_parse(int argc, char *const *argv, struct mc_options *opts_r, char **error_r);

/* The usage text; default_timeout_s is MAILCLIENT_TIMEOUT's default. */
void mc_options_usage(FILE *out, int default_timeout_s);

#endif
