/* migrate.h: copying a user's mail from one storage backend to another,
   keeping UIDs, UIDVALIDITY, flags, keywords, internal dates and
   subscriptions, so that IMAP clients see no change when storage.backend
   is switched in the config (imapserver --migrate). */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "storage.h"

struct migrate_stats {
	unsigned mailboxes;
	size_t messages;
	/* false if the target backend has no set_uids(): the copy got new
	   UIDs, and clients will download the mail again. */
	bool uids_kept;
};

/* Copies every mailbox of user from `from` into `to`. Refuses (-1, nothing
   copied) if any mailbox of user in `to` already holds a message. The
   source is left as it is. On a failure half-way the target may hold part
   of the mail: remove it and run again. */
int migrate_user(const struct storage_ctx *from, const struct storage_ctx *to,
		 const char *user, struct migrate_stats *stats_r, char **error_r);

/* True if argv asks for a migration (has --migrate). */
bool migrate_requested(int argc, char *const argv[]);
/* imapserver [-c FILE] --migrate USER --from NAME --to NAME: reads the
   config, runs migrate_user() with storage.root for both backends, prints
   the outcome. Returns the exit status. Started as root it follows the
   server's rule (privileges.h): without server.user it refuses, with one
   line that names the fix; with it, it drops to server.user and
   server.group before either backend starts, so that every file it
   writes belongs to the server. */
int migrate_main(int argc, char *argv[]);

#endif
