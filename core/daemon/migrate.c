/* migrate.c: moving a user's mail between storage backends (see
   migrate.h). Runs outside the event loop, as a command of its own; both
   backends take their own locks, so a running server on either side stays
   safe (its clients see the copy appear as new mail, if it serves the
   target). */
#include "migrate.h"
#include "config.h"
#include "privileges.h"
#include "registry.h"
#include "username.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIGRATE_DEFAULT_CONFIG "etc/imapserver.conf"

static struct storage_box *
migrate_open(const struct storage_ctx *ctx, const char *user, const char *name,
	     struct mbox_state *state, char **error_r)
{
	struct storage_box *box = NULL;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;

	mbox_state_init(state);
	if (ctx->backend->open(ctx->st, user, name, state, &box, &err, &error) < 0) {
		*error_r = xasprintf("%s: open %s: %s", ctx->backend->name, name,
				     error != NULL ? error : "failed");
		free(error);
		mbox_state_deinit(state);
		return NULL;
	}
	return box;
}

static void
migrate_close(const struct storage_ctx *ctx, struct storage_box **box, struct mbox_state *state)
{
	ctx->backend->close(box);
	mbox_state_deinit(state);
}

/* Fails if any mailbox of user in ctx holds a message. */
static int
migrate_check_empty(const struct storage_ctx *ctx, const char *user, char **error_r)
{
	struct strlist names = { 0 };
	enum storage_error err;
	char *error = NULL;
	int ret = 0;

	if (ctx->backend->list(ctx->st, user, &names, &err, &error) < 0) {
		*error_r = xasprintf("%s: list: %s", ctx->backend->name, error);
		free(error);
		return -1;
	}
	for (size_t i = 0; i < names.count && ret == 0; i++) {
		struct mbox_state state;
		struct storage_box *box = migrate_open(ctx, user, names.items[i], &state, error_r);

		if (box == NULL) {
			ret = -1;
			break;
		}
		if (state.count > 0) {
			*error_r = xasprintf("%s already holds mail of %s (%s: %zu message(s)); "
					     "refusing to overwrite it, nothing was copied",
					     ctx->backend->name, user, names.items[i], state.count);
			ret = -1;
		}
		migrate_close(ctx, &box, &state);
	}
	strlist_clear(&names);
	return ret;
}

static int
migrate_set_uids(const struct storage_ctx *to, struct storage_box *box, struct mbox_state *state,
		 uint32_t uidvalidity, uint32_t uidnext, const char *name, char **error_r)
{
	enum storage_error err;
	char *error = NULL;

	if (to->backend->set_uids == NULL)
		return 0;
	if (to->backend->set_uids(box, state, uidvalidity, uidnext, &err, &error) < 0) {
		*error_r = xasprintf("%s: %s: cannot keep UIDs: %s", to->backend->name, name,
				     error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	return 0;
}

/* Gives the messages of dst (the same UIDs as src's) their modseqs in
   src, persisted. */
static int
migrate_modseqs(const struct storage_ctx *to, struct storage_box *dbox,
		const struct mbox_state *src, struct mbox_state *dst, const char *name,
		char **error_r)
{
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	int ret = 0;

	for (size_t i = 0; i < dst->count; i++) {
		ssize_t at = mbox_state_find(src, dst->mails[i].uid);

		if (at >= 0)
			dst->mails[i].modseq = src->mails[at].modseq;
		if (dst->mails[i].modseq > dst->highest_modseq)
			dst->highest_modseq = dst->mails[i].modseq;
	}
	if (to->backend->set_modseqs != NULL)
		ret = to->backend->set_modseqs(dbox, dst, &err, &error);
	for (size_t i = 0; ret == 0 && to->backend->set_modseqs == NULL && i < dst->count; i++)
		ret = to->backend->flags_changed(dbox, dst, i, &err, &error);
	if (ret < 0) {
		*error_r = xasprintf("%s: %s: modseqs: %s", to->backend->name, name,
				     error != NULL ? error : "failed");
		free(error);
		return -1;
	}
	return 0;
}

static int
migrate_mailbox(const struct storage_ctx *from, const struct storage_ctx *to, const char *user,
		const char *name, struct migrate_stats *stats, char **error_r)
{
	struct mbox_state src, dst;
	struct storage_box *sbox, *dbox;
	struct buf msg = BUF_INIT;
	enum storage_error err = STORAGE_ERR_NONE;
	char *error = NULL;
	bool keep = to->backend->set_uids != NULL;
	int ret = -1;

	sbox = migrate_open(from, user, name, &src, error_r);
	if (sbox == NULL)
		return -1;
	if (strcmp(name, "INBOX") != 0 &&
	    to->backend->create(to->st, user, name, &err, &error) < 0 && err != STORAGE_ERR_EXISTS) {
		*error_r = xasprintf("%s: create %s: %s", to->backend->name, name, error);
		free(error);
		migrate_close(from, &sbox, &src);
		return -1;
	}
	free(error);
	error = NULL;
	dbox = migrate_open(to, user, name, &dst, error_r);
	if (dbox == NULL) {
		migrate_close(from, &sbox, &src);
		return -1;
	}
	if (keep && migrate_set_uids(to, dbox, &dst, src.uidvalidity,
				     src.count > 0 ? src.mails[0].uid : src.uidnext, name,
				     error_r) < 0)
		goto out;
	for (size_t i = 0; i < src.count; i++) {
		const struct mail_rec *rec = &src.mails[i];
		uint64_t kw = 0;
		uint32_t uid = 0;

		buf_reset(&msg);
		if (from->backend->read(sbox, rec, &msg, &err, &error) < 0) {
			*error_r = xasprintf("%s: %s: read UID %u: %s", from->backend->name, name,
					     rec->uid, error != NULL ? error : "failed");
			free(error);
			goto out;
		}
		for (unsigned k = 0; k < src.keyword_count && k < MBOX_MAX_KEYWORDS; k++) {
			int idx;

			if ((rec->keywords & (1ULL << k)) == 0)
				continue;
			idx = mbox_state_keyword(&dst, src.keywords[k], true);
			if (idx >= 0)
				kw |= 1ULL << idx;
		}
		if (keep && rec->uid != dst.uidnext &&
		    migrate_set_uids(to, dbox, &dst, 0, rec->uid, name, error_r) < 0)
			goto out;
		if (to->backend->append(dbox, &dst, msg.data, msg.len, rec->flags, kw,
					rec->internal_date, rec->tz_minutes, &uid, &err, &error) < 0) {
			*error_r = xasprintf("%s: %s: append: %s", to->backend->name, name,
					     error != NULL ? error : "failed");
			free(error);
			goto out;
		}
		if (keep && uid != rec->uid) {
			*error_r = xasprintf("%s: %s: UID %u became %u", to->backend->name, name,
					     rec->uid, uid);
			goto out;
		}
		stats->messages++;
	}
	/* CONDSTORE/QRESYNC clients remember HIGHESTMODSEQ: it must not go
	   down, or they would miss the next changes. set_uids() persists it
	   with UIDNEXT. */
	if (dst.highest_modseq < src.highest_modseq)
		dst.highest_modseq = src.highest_modseq;
	/* and each message's modseq, or a client asking for the changes
	   since the modseq it knew would fetch every flag again */
	if (keep && migrate_modseqs(to, dbox, &src, &dst, name, error_r) < 0)
		goto out;
	if (keep && migrate_set_uids(to, dbox, &dst, 0,
				     src.uidnext > dst.uidnext ? src.uidnext : dst.uidnext, name,
				     error_r) < 0)
		goto out;
	stats->mailboxes++;
	ret = 0;
out:
	buf_free(&msg);
	migrate_close(to, &dbox, &dst);
	migrate_close(from, &sbox, &src);
	return ret;
}

int
migrate_user(const struct storage_ctx *from, const struct storage_ctx *to, const char *user,
	     struct migrate_stats *stats_r, char **error_r)
{
	struct strlist names = { 0 }, subs = { 0 };
	enum storage_error err;
	char *error = NULL;
	int ret = -1;

	i_zero(stats_r);
	stats_r->uids_kept = to->backend->set_uids != NULL;
	if (!username_is_valid(user)) {
		*error_r = xstrdup("invalid user name");
		return -1;
	}
	if (from->backend == to->backend) {
		*error_r = xstrdup("source and target backend are the same");
		return -1;
	}
	if (migrate_check_empty(to, user, error_r) < 0)
		return -1;
	if (from->backend->list(from->st, user, &names, &err, &error) < 0) {
		*error_r = xasprintf("%s: list: %s", from->backend->name, error);
		free(error);
		return -1;
	}
	/* INBOX first, then parents before their children */
	strlist_sort(&names);
	if (migrate_mailbox(from, to, user, "INBOX", stats_r, error_r) < 0)
		goto out;
	for (size_t i = 0; i < names.count; i++) {
		if (strcmp(names.items[i], "INBOX") == 0)
			continue;
		if (migrate_mailbox(from, to, user, names.items[i], stats_r, error_r) < 0)
			goto out;
	}
	if (from->backend->subscriptions_read(from->st, user, &subs, &err, &error) < 0 ||
	    to->backend->subscriptions_write(to->st, user, &subs, &err, &error) < 0) {
		*error_r = xasprintf("subscriptions: %s", error != NULL ? error : "failed");
		free(error);
		goto out;
	}
	ret = 0;
out:
	strlist_clear(&names);
	strlist_clear(&subs);
	return ret;
}

bool
migrate_requested(int argc, char *const argv[])
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--migrate") == 0 || strncmp(argv[i], "--migrate=", 10) == 0)
			return true;
	}
	return false;
}

static void
migrate_usage(void)
{
	fprintf(stderr, "usage: imapserver [-c FILE] --migrate USER|--all --from BACKEND "
			"--to BACKEND\n");
}

/* Takes "--opt VALUE" or "--opt=VALUE" at argv[*i]. */
static bool
take_opt(int argc, char *argv[], int *i, const char *opt, const char **val_r)
{
	size_t len = strlen(opt);

	if (strcmp(argv[*i], opt) == 0) {
		if (*i + 1 >= argc)
			return false;
		*val_r = argv[++*i];
		return true;
	}
	if (strncmp(argv[*i], opt, len) == 0 && argv[*i][len] == '=') {
		*val_r = argv[*i] + len + 1;
		return true;
	}
	return false;
}

/* Has user any mail under root (the folder <root>/<user>, which both
   backends keep each user's mail in)? Prints why not. */
static bool
migrate_user_has_mail(const char *root, const char *user)
{
	char *dir;
	struct stat st;
	bool ok;

	if (!username_is_valid(user)) {
		fprintf(stderr, "imapserver: migrate: '%s' is not a valid user name\n", user);
		return false;
	}
	dir = xasprintf("%s/%s", root, user);
	ok = lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	if (!ok)
		fprintf(stderr, "imapserver: migrate: %s has no mail (no folder %s); nothing was "
			"done\n", user, dir);
	free(dir);
	return ok;
}

/* --all: every user folder under root, sorted by name. */
static int
migrate_list_users(const char *root, struct strlist *users_r)
{
	struct dirent **names = NULL;
	int n = scandir(root, &names, NULL, alphasort);

	if (n < 0) {
		fprintf(stderr, "imapserver: migrate: %s: %s\n", root, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct stat st;
		char *dir = xasprintf("%s/%s", root, names[i]->d_name);

		if (username_is_valid(names[i]->d_name) && lstat(dir, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			strlist_add(users_r, names[i]->d_name);
		free(dir);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* Copies one user and says what it did. Returns 0 or -1. */
static int
migrate_one(struct storage_ctx *from, struct storage_ctx *to, const char *user)
{
	struct migrate_stats stats;
	char *error = NULL;

	if (migrate_user(from, to, user, &stats, &error) < 0) {
		fprintf(stderr, "imapserver: migrate %s from %s to %s: %s\n", user,
			from->backend->name, to->backend->name, error);
		free(error);
		return -1;
	}
	printf("migrated %zu message(s) in %u mailbox(es) of %s from %s to %s%s\n",
	       stats.messages, stats.mailboxes, user, from->backend->name, to->backend->name,
	       stats.uids_kept ? " (UIDs and UIDVALIDITY kept)" :
	       " (new UIDs: clients will download the mail again)");
	return 0;
}

int
migrate_main(int argc, char *argv[])
{
	const char *path = NULL, *user = NULL, *from_name = NULL, *to_name = NULL;
	const struct storage_backend *fb = NULL, *tb = NULL;
	struct storage_ctx from = { 0 }, to = { 0 };
	struct strlist users = { 0 };
	struct config *cfg = NULL;
	char *error = NULL;
	size_t failed = 0;
	bool all = false;
	int status = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--migrate") == 0 && i + 1 < argc &&
			 strcmp(argv[i + 1], "--all") == 0) {
			all = true;
			user = argv[++i];
		} else if (take_opt(argc, argv, &i, "--migrate", &user) ||
			 take_opt(argc, argv, &i, "--from", &from_name) ||
			 take_opt(argc, argv, &i, "--to", &to_name))
			continue;
		else {
			fprintf(stderr, "imapserver: unexpected argument '%s' with --migrate\n",
				argv[i]);
			migrate_usage();
			return 1;
		}
	}
	if (user == NULL || from_name == NULL || to_name == NULL) {
		migrate_usage();
		return 1;
	}
	if (path == NULL && access(MIGRATE_DEFAULT_CONFIG, F_OK) == 0)
		path = MIGRATE_DEFAULT_CONFIG;
	if (path != NULL) {
		if (config_load(path, &cfg, &error) < 0) {
			fprintf(stderr, "%s\n", error);
			free(error);
			return 1;
		}
	} else {
		char cwd[4096];

		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			fprintf(stderr, "imapserver: getcwd: %s\n", strerror(errno));
			return 1;
		}
		cfg = config_defaults(cwd);
	}
	/* As when serving: never mail as root. Started as root, refuse
	   without server.user, else become that user before either backend
	   starts, so that whatever the copy writes is the server's. */
	if (privileges_check_start(cfg->server_user, cfg->path, &error) < 0 ||
	    privileges_prepare_folder(cfg->storage.root, cfg->server_user, cfg->server_group,
				      &error) < 0 ||
	    privileges_drop(cfg->server_user, cfg->server_group, &error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		goto out;
	}
	fb = registry_storage_find(from_name);
	tb = registry_storage_find(to_name);
	if (fb == NULL || tb == NULL || !fb->compiled_in || !tb->compiled_in) {
		char *known = registry_storage_names();

		fprintf(stderr, "imapserver: unknown or not compiled-in storage backend '%s' "
			"(known: %s)\n", fb == NULL || !fb->compiled_in ? from_name : to_name, known);
		free(known);
		goto out;
	}
	/* Before either backend starts: a user with no mail gets nothing
	   created (a backend makes a user's folder when it first looks). */
	if (all && fb->init_db != NULL) {
		fprintf(stderr, "imapserver: migrate --all: the users of storage backend '%s' "
			"are not listed: name each user\n", from_name);
		goto out;
	}
	if (all) {
		if (migrate_list_users(cfg->storage.root, &users) < 0)
			goto out;
		if (users.count == 0) {
			fprintf(stderr, "imapserver: migrate --all: no user folders under %s\n",
				cfg->storage.root);
			goto out;
		}
	} else {
		/* a database backend has no folder to look at */
		if (fb->init_db == NULL && !migrate_user_has_mail(cfg->storage.root, user))
			goto out;
		strlist_add(&users, user);
	}
	from.backend = fb;
	to.backend = tb;
	if (fb->init(&cfg->storage, &from.st, &error) < 0 ||
	    tb->init(&cfg->storage, &to.st, &error) < 0) {
		fprintf(stderr, "imapserver: %s\n", error);
		free(error);
		goto out;
	}
	for (size_t i = 0; i < users.count; i++) {
		if (migrate_one(&from, &to, users.items[i]) < 0)
			failed++;
	}
	if (failed > 0) {
		fprintf(stderr, "imapserver: migrate: %zu of %zu user(s) failed (see above)\n",
			failed, users.count);
		goto out;
	}
	printf("set storage.backend = \"%s\" and restart; the %s copy is left in place\n",
	       to_name, from_name);
	status = 0;
out:
	strlist_clear(&users);
	if (from.st != NULL)
		fb->deinit(&from.st);
	if (to.st != NULL)
		tb->deinit(&to.st);
	config_free(&cfg);
	return status;
}
