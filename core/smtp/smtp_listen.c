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
	i_zero(l);
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
		if (net_listen_set_open(&l->set[i], cfg->smtp_address, ports[i], &error) < 0) {
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
	if (l->set[SMTP_PORT_RECEIVER].bound != NULL)
		log_info("-", "%s %s", first, l->set[SMTP_PORT_RECEIVER].bound);
	if (l->set[SMTP_PORT_SUBMISSION].bound != NULL)
		log_info("-", "submission listening on %s", l->set[SMTP_PORT_SUBMISSION].bound);
	if (l->set[SMTP_PORT_SUBMISSIONS].bound != NULL)
		log_info("-", "submissions listening on %s",
			 l->set[SMTP_PORT_SUBMISSIONS].bound);
}

struct smtp_server *
smtp_listen_serve(struct smtp_listen *l, struct event_loop *loop, struct server_gen *gen)
{
	struct smtp_server *server = smtp_server_new(loop, gen, l->set[SMTP_PORT_RECEIVER].fds[0]);

	for (size_t i = 0; i < SMTP_PORT_ROLES; i++) {
		for (size_t k = i == SMTP_PORT_RECEIVER ? 1 : 0; k < l->set[i].count; k++)
			smtp_server_listen(server, l->set[i].fds[k], (enum smtp_port_role)i);
		/* The server closes them now. */
		l->set[i].count = 0;
	}
	smtp_listen_close(l);
	return server;
}

void
smtp_listen_close(struct smtp_listen *l)
{
	for (size_t i = 0; i < SMTP_PORT_ROLES; i++)
		net_listen_set_close(&l->set[i]);
}
