/* smtp_listen.c: the listening sockets of the SMTP roles (see
   smtp_listen.h). */
#include "smtp_listen.h"
#include "log.h"
#include "net.h"

#include <stdlib.h>
#include <unistd.h>

void
smtp_listen_init(struct smtp_listen *l)
{
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		l->fds[i] = -1;
		l->bound[i] = NULL;
	}
}

int
smtp_listen_open(struct smtp_listen *l, const struct config *cfg, char **error_r)
{
	const unsigned ports[SMTP_PORT_ROLES] = {
		[SMTP_PORT_RECEIVER] = cfg->smtp_port,
		[SMTP_PORT_SUBMISSION] = cfg->smtp_submission_port,
		[SMTP_PORT_SUBMISSIONS] = cfg->smtp_submissions_port,
	};
	static const char *const keys[SMTP_PORT_ROLES] = {
		[SMTP_PORT_RECEIVER] = NULL,
		[SMTP_PORT_SUBMISSION] = "smtp.submission_port",
		[SMTP_PORT_SUBMISSIONS] = "smtp.submissions_port",
	};

	smtp_listen_init(l);
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		char *error = NULL;

		/* smtp.port 0 binds a free port; the others 0 are off. */
		if (i != SMTP_PORT_RECEIVER && ports[i] == 0)
			continue;
		l->fds[i] = net_listen(cfg->smtp_address, ports[i], &l->bound[i], &error);
		if (l->fds[i] < 0) {
			*error_r = keys[i] == NULL ? error : xasprintf("%s: %s", keys[i], error);
			if (keys[i] != NULL)
				free(error);
			smtp_listen_close(l);
			return -1;
		}
	}
	return 0;
}

void
smtp_listen_log(const struct smtp_listen *l, const char *first)
{
	if (l->bound[SMTP_PORT_RECEIVER] != NULL)
		log_info("-", "%s %s", first, l->bound[SMTP_PORT_RECEIVER]);
	if (l->bound[SMTP_PORT_SUBMISSION] != NULL)
		log_info("-", "submission listening on %s", l->bound[SMTP_PORT_SUBMISSION]);
	if (l->bound[SMTP_PORT_SUBMISSIONS] != NULL)
		log_info("-", "submissions listening on %s", l->bound[SMTP_PORT_SUBMISSIONS]);
}

struct smtp_server *
smtp_listen_serve(struct smtp_listen *l, struct event_loop *loop, struct server_gen *gen)
{
	struct smtp_server *server = smtp_server_new(loop, gen, l->fds[SMTP_PORT_RECEIVER]);

	l->fds[SMTP_PORT_RECEIVER] = -1;
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		if (l->fds[i] < 0)
			continue;
		smtp_server_listen(server, l->fds[i], (enum smtp_port_role)i);
		l->fds[i] = -1;
	}
	smtp_listen_close(l);
	return server;
}

void
smtp_listen_close(struct smtp_listen *l)
{
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		if (l->fds[i] >= 0)
			close(l->fds[i]);
		l->fds[i] = -1;
		free(l->bound[i]);
		l->bound[i] = NULL;
	}
}
