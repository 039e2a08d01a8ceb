/* imap_status.c: the IMAP sessions as the status report shows them (see
   imap_status.h). */
#include "imap_status.h"
#include "imap_client.h"
#include "mailbox.h"

#include <stdlib.h>

static const char *
state_name(const struct client *c)
{
	switch (c->state) {
	case CLIENT_NOT_AUTH:
		return "not logged in";
	case CLIENT_AUTH:
		return "logged in";
	case CLIENT_SELECTED:
		return "selected";
	case CLIENT_LOGOUT:
		return "logging out";
	}
	return "?";
}

void
imap_server_status(const struct imap_server *server, struct buf *out)
{
	size_t logged_in = 0;
	struct strlist users = { 0 }, boxes = { 0 };

	for (const struct client *c = server->clients; c != NULL; c = c->next) {
		if (c->user != NULL) {
			logged_in++;
			if (!strlist_contains(&users, c->user))
				strlist_add(&users, c->user);
		}
	}
	buf_printf(out, "imap sessions: %zu (%zu logged in, %zu users)\n", server->client_count,
		   logged_in, users.count);
	for (const struct client *c = server->clients; c != NULL; c = c->next) {
		buf_printf(out, "  %-6s %-24s %-16s %s", c->sid, c->peer,
			   c->user != NULL ? c->user : "-", state_name(c));
		if (c->mbox != NULL) {
			char *key = xasprintf("%s/%s", mailbox_user(c->mbox), mailbox_name(c->mbox));

			buf_printf(out, " %s", mailbox_name(c->mbox));
			if (!strlist_contains(&boxes, key))
				strlist_add(&boxes, key);
			free(key);
		}
		if (c->tls)
			buf_append_str(out, " (TLS)");
		buf_append_c(out, '\n');
	}
	buf_printf(out, "open mailboxes: %zu\n", boxes.count);
	for (size_t i = 0; i < boxes.count; i++)
		buf_printf(out, "  %s\n", boxes.items[i]);
	strlist_clear(&users);
	strlist_clear(&boxes);
}
