/* cmdline.c: the daemons' shared command line (see cmdline.h). */
#include "cmdline.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void ATTR_NORETURN
cmdline_usage(const struct cmdline *cl, int status)
{
	FILE *out = status == 0 ? stdout : stderr;

	fprintf(out,
		"usage: %s [-c FILE] [-f] [-t] [%s]\n"
		"  -c FILE   configuration file (default %s if present, else built-in defaults)\n"
		"  -f        stay in the foreground, log to stderr\n"
		"  -t        check the configuration and exit\n"
		"  %-9s port to listen on (overrides %s)\n",
		cl->prog, cl->port_name, CMDLINE_DEFAULT_CONFIG, cl->port_name, cl->port_key);
	if (cl->extra_usage != NULL)
		fputs(cl->extra_usage, out);
	exit(status);
}

void
cmdline_parse(struct cmdline *cl, int argc, char *argv[])
{
	int opt;

	cl->config_path = NULL;
	cl->foreground = cl->test_only = false;
	cl->port = -1;
	while ((opt = getopt(argc, argv, "c:fth")) != -1) {
		switch (opt) {
		case 'c':
			cl->config_path = optarg;
			break;
		case 'f':
			cl->foreground = true;
			break;
		case 't':
			cl->test_only = true;
			break;
		case 'h':
			cmdline_usage(cl, 0);
		default:
			cmdline_usage(cl, 1);
		}
	}
	if (optind < argc) {
		uint64_t port;

		if (optind + 1 != argc || str_to_u64(argv[optind], 65535, &port) < 0) {
			fprintf(stderr, "%s: invalid port '%s' (0..65535)\n", cl->prog, argv[optind]);
			cmdline_usage(cl, 1);
		}
		cl->port = (int)port;
	}
}

int
cmdline_load_config(const struct cmdline *cl, struct config **cfg_r, char **error_r)
{
	char cwd[4096];

	if (cl->config_path != NULL)
		return config_load(cl->config_path, cfg_r, error_r);
	if (access(CMDLINE_DEFAULT_CONFIG, F_OK) == 0)
		return config_load(CMDLINE_DEFAULT_CONFIG, cfg_r, error_r);
	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		*error_r = xasprintf("getcwd: %s", strerror(errno));
		return -1;
	}
	*cfg_r = config_defaults(cwd);
	return 0;
}

const char *
cmdline_config_name(const struct cmdline *cl)
{
	if (cl->config_path != NULL)
		return cl->config_path;
	if (access(CMDLINE_DEFAULT_CONFIG, F_OK) == 0)
		return CMDLINE_DEFAULT_CONFIG;
	return "(built-in defaults)";
}
