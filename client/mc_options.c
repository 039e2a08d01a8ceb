/* mc_options.c: the mailclient's command line (see mc_options.h). */
#include "mc_options.h"

#include <stdlib.h>

static bool
mc_port_valid(const char *s)
{
	uint64_t n;
	return str_to_u64(s, 65535, &n) == 0 && n > 0;
}

/* One option at argv[*i] (it starts with "--"); a value is taken from
   "=VALUE" or the next argument. Returns 0, 1 (--help), -1. */
static int
mc_option(int argc, char *const *argv, int *i, struct mc_options *o, bool *starttls, char **error_r)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	size_t name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

	if (name_len == strlen("--ca-file") && strncmp(arg, "--ca-file", name_len) == 0) {
		if (eq != NULL) {
			o->ca_file = eq + 1;
		} else if (*i + 1 < argc) {
			o->ca_file = argv[++*i];
		} else {
			*error_r = xstrdup("--ca-file needs a FILE");
			return -1;
		}
		if (*o->ca_file == '\0') {
			*error_r = xstrdup("--ca-file needs a FILE");
			return -1;
		}
		return 0;
	}
	if (eq != NULL) {
		*error_r = xasprintf("%s takes no value", arg);
		return -1;
	}
	if (strcmp(arg, "--help") == 0)
		return 1;
	if (strcmp(arg, "--tls") == 0) {
		o->imap_mode = o->smtp_mode = CLIENT_TLS_IMPLICIT;
	} else if (strcmp(arg, "--imap-tls") == 0) {
		o->imap_mode = CLIENT_TLS_IMPLICIT;
	} else if (strcmp(arg, "--smtp-tls") == 0) {
		o->smtp_mode = CLIENT_TLS_IMPLICIT;
	} else if (strcmp(arg, "--starttls") == 0) {
		*starttls = true;
	} else if (strcmp(arg, "--insecure") == 0) {
		o->insecure = true;
	} else if (strcmp(arg, "--allow-plaintext") == 0) {
		o->allow_plaintext = true;
	} else {
		*error_r = xasprintf("unknown option %s", arg);
		return -1;
	}
	return 0;
}

int
mc_options_parse(int argc, char *const *argv, struct mc_options *opts_r, char **error_r)
{
	struct mc_options o;
	const char *pos[3];
	size_t npos = 0;
	bool starttls = false, options_end = false;

	i_zero(&o);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!options_end && strcmp(arg, "--") == 0) {
			options_end = true;
		} else if (!options_end && strcmp(arg, "-h") == 0) {
			return 1;
		} else if (!options_end && strncmp(arg, "--", 2) == 0) {
			int ret = mc_option(argc, argv, &i, &o, &starttls, error_r);
			if (ret != 0)
				return ret;
		} else if (!options_end && arg[0] == '-' && arg[1] != '\0') {
			*error_r = xasprintf("unknown option %s", arg);
			return -1;
		} else if (npos == 3) {
			*error_r = xasprintf("too many arguments: %s", arg);
			return -1;
		} else {
			pos[npos++] = arg;
		}
	}
	if (npos != 3) {
		*error_r = xstrdup("SERVER_IP, SMTP_PORT and IMAP_PORT are needed");
		return -1;
	}
	for (size_t i = 1; i < 3; i++) {
		if (!mc_port_valid(pos[i])) {
			*error_r = xasprintf("\"%s\" is not a port (1 to 65535)", pos[i]);
			return -1;
		}
	}
	if (o.insecure && o.ca_file != NULL) {
		*error_r = xstrdup("--insecure checks no certificate: --ca-file would be unused");
		return -1;
	}
	/* --starttls: a port without implicit TLS must get STARTTLS. */
	if (starttls && o.imap_mode == CLIENT_TLS_IMPLICIT && o.smtp_mode == CLIENT_TLS_IMPLICIT) {
		*error_r =
			xstrdup("--starttls and --tls: choose one (--tls is implicit TLS on both "
				"ports)");
		return -1;
	}
	if (starttls && o.imap_mode == CLIENT_TLS_AUTO)
		o.imap_mode = CLIENT_TLS_STARTTLS;
	if (starttls && o.smtp_mode == CLIENT_TLS_AUTO)
		o.smtp_mode = CLIENT_TLS_STARTTLS;
	o.host = pos[0];
	o.smtp_port = pos[1];
	o.imap_port = pos[2];
	*opts_r = o;
	return 0;
}

void
mc_options_usage(FILE *out, int default_timeout_s)
{
	fprintf(out,
		"usage: mailclient SERVER_IP SMTP_PORT IMAP_PORT\n"
		"       mailclient [OPTION]... SERVER_IP SMTP_PORT IMAP_PORT\n"
		"\n"
		"The lab's mail client. Asks for a username and a password, logs in\n"
		"over IMAP, then offers:\n"
		"  1. Send Mail     type a mail (From:, To:, Subject:, body, a line \".\")\n"
		"                   and send it over SMTP\n"
		"  2. Manage Mail   list the mailbox, show the mails of one sender,\n"
		"                   delete one of them\n"
		"  3. Quit\n"
		"\n"
		"TLS: STARTTLS is used whenever a server offers it. The server's\n"
		"certificate must name SERVER_IP and be signed by a CA the system\n"
		"trusts (or the one given with --ca-file). A password is never sent in\n"
		"clear to a server that is not on this machine (loopback).\n"
		"  --tls              implicit TLS on both ports (IMAP 993, SMTP 465)\n"
		"  --imap-tls         implicit TLS on the IMAP port only\n"
		"  --smtp-tls         implicit TLS on the SMTP port only\n"
		"  --starttls         require STARTTLS on a port without implicit TLS\n"
		"  --ca-file FILE     trust the CA certificates in FILE (PEM) instead\n"
		"                     of the system's\n"
		"  --insecure         do not check the server's certificate (unsafe)\n"
		"  --allow-plaintext  send the password even without TLS to a server\n"
		"                     on the network\n"
		"SMTP logs in (AUTH) with the IMAP username and password when the\n"
		"server offers it (a submission port).\n"
		"\n"
		"Changes made on another device are announced while it waits for input.\n"
		"Prompts go to stdout and input is read from stdin, so a script can\n"
		"drive it. Exit status: 0 after Quit, 1 on end of input or an error,\n"
		"2 for a usage error.\n"
		"\n"
		"Environment: MAILCLIENT_TIMEOUT  seconds to wait for a server's answer\n"
		"             (default %d).\n",
		default_timeout_s);
}
