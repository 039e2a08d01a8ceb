/* imap_cmds.c: the IMAP4rev1 commands (RFC 3501 section 6) and the
   extensions we advertise. Each handler gets the parsed command and
   queues its answer; the dispatcher checks the state and brings the
   selected mailbox's view in line before the tagged answer. */
#include "imap_client.h"
#include "base64.h"
#include "fetch.h"
#include "imap_util.h"
#include "imap_view.h"
#include "log.h"
#include "message.h"
#include "mutf7.h"
#include "search.h"
#include "seqset.h"

#include <stdlib.h>
#include <time.h>

/* LITERAL- is not listed: RFC 7888 forbids advertising it next to
   LITERAL+, which allows more (non-synchronizing literals of any size). */
#define CAPS_COMMON "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS " \
		    "CHILDREN MOVE LIST-EXTENDED SPECIAL-USE ESEARCH CONDSTORE QRESYNC"

/* The special-use mailboxes (RFC 6154) every user gets, by name. */
static const struct {
	const char *name;
	const char *attr;
} special_use[] = {
	{ "Sent", "\\Sent" },
	{ "Drafts", "\\Drafts" },
	{ "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },
};

static const char *
special_use_attr(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(special_use); i++) {
		if (strcmp(name, special_use[i].name) == 0)
			return special_use[i].attr;
	}
	return NULL;
}

/* Where a command may run. */
#define ST_NOT_AUTH 0x1
#define ST_AUTH 0x2
#define ST_SELECTED 0x4
#define ST_ANY (ST_NOT_AUTH | ST_AUTH | ST_SELECTED)

struct cmd_ctx {
	struct client *c;
	const char *tag;
	const char *name;
	const struct imap_arg *args;
	size_t count;
	bool uid;
};

/* Returns true when done, false when the command goes on asynchronously. */
typedef bool cmd_func(struct cmd_ctx *ctx);

struct cmd_def {
	const char *name;
	cmd_func *func;
	unsigned states;
	/* The command takes no arguments at all. */
	bool no_args;
	/* RFC 3501 7.4.1: no EXPUNGE while answering FETCH, STORE, SEARCH
	   by sequence number. */
	bool no_expunge;
};

struct fetch_job {
	char *tag;
	struct fetch_spec *spec;
	uint32_t *seqs;
	size_t count, pos;
	bool uid;
	bool expunged_seen;
	bool flags_changed;
	/* CHANGEDSINCE (RFC 7162): only messages with a higher modseq. */
	bool changedsince_given;
	uint64_t changedsince;
	struct buf msg;
};

const char *
imap_capabilities(const struct client *c)
{
	if (c->state == CLIENT_NOT_AUTH)
		return CAPS_COMMON " AUTH=PLAIN";
	return CAPS_COMMON;
}

static void
tagged(struct cmd_ctx *ctx, const char *fmt, ...) ATTR_FORMAT(2, 3);

static void
tagged(struct cmd_ctx *ctx, const char *fmt, ...)
{
	struct buf *out = client_outbuf(ctx->c);
	va_list args;

	buf_append_str(out, ctx->tag);
	buf_append_c(out, ' ');
	va_start(args, fmt);
	buf_vprintf(out, fmt, args);
	va_end(args);
	buf_append(out, "\r\n", 2);
}

static bool
bad(struct cmd_ctx *ctx, const char *reason)
{
	tagged(ctx, "BAD %s", reason);
	ctx->c->bad_count++;
	return true;
}

/* The string value of an astring argument, or NULL. */
static const char *
arg_str(const struct cmd_ctx *ctx, size_t i)
{
	if (i >= ctx->count || !imap_arg_is_string(&ctx->args[i]))
		return NULL;
	/* A NUL inside a literal would cut the string short silently. */
	if (strlen(ctx->args[i].str) != ctx->args[i].len)
		return NULL;
	return ctx->args[i].str;
}

static const char *
storage_no_text(enum storage_error err)
{
	switch (err) {
	case STORAGE_ERR_NOT_FOUND:
		return "Mailbox doesn't exist.";
	case STORAGE_ERR_EXISTS:
		return "Mailbox already exists.";
	case STORAGE_ERR_BAD_NAME:
		return "Invalid mailbox name.";
	case STORAGE_ERR_NO_SPACE:
		return "Not enough disk space.";
	case STORAGE_ERR_LIMIT:
		return "Limit reached.";
	case STORAGE_ERR_IN_USE:
		return "Mailbox is locked, try again later.";
	case STORAGE_ERR_TEMP:
	case STORAGE_ERR_NONE:
		break;
	}
	return "Internal error occurred. Refer to server log for more information.";
}

static void
no_storage(struct cmd_ctx *ctx, enum storage_error err)
{
	tagged(ctx, "NO [%s] %s", storage_error_code(err), storage_no_text(err));
}

/* Mailbox names: INBOX in any case is INBOX (RFC 3501 5.1), also as the
   first level of a hierarchy; a trailing delimiter is dropped. Returns a
   malloc'ed name, or NULL if the name is not allowed. */
static char *
mailbox_name_normalize(const char *name)
{
	char *norm;
	size_t len;

	if (ascii_strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		norm = xasprintf("INBOX%s", name + 5);
	else
		norm = xstrdup(name);
	len = strlen(norm);
	if (len > 1 && norm[len - 1] == '/')
		norm[len - 1] = '\0';
	if (!storage_name_is_valid(norm)) {
		free(norm);
		return NULL;
	}
	return norm;
}

/* The mailbox name argument i, decoded from modified UTF-7 and
   normalized; answers and returns NULL if it is missing or invalid. */
static char *
arg_mailbox(struct cmd_ctx *ctx, size_t i)
{
	const char *name = arg_str(ctx, i);
	char *utf8, *norm;

	if (name == NULL) {
		bad(ctx, "Missing or invalid mailbox name.");
		return NULL;
	}
	if (mutf7_to_utf8(name, &utf8) < 0) {
		tagged(ctx, "NO [CANNOT] Mailbox name is not valid modified UTF-7.");
		return NULL;
	}
	norm = mailbox_name_normalize(utf8);
	free(utf8);
	if (norm == NULL)
		tagged(ctx, "NO [CANNOT] Invalid mailbox name.");
	return norm;
}

/* Appends a mailbox name (UTF-8) as the client sees it: modified UTF-7,
   as an astring. */
static void
write_mailbox_name(struct buf *out, const char *name)
{
	char *enc = mutf7_from_utf8(name);

	buf_append_imap_nstring(out, enc);
	free(enc);
}

/* ---- any state ---- */

static bool
cmd_capability(struct cmd_ctx *ctx)
{
	client_send(ctx->c, "* CAPABILITY %s", imap_capabilities(ctx->c));
	tagged(ctx, "OK Capability completed.");
	return true;
}

static bool
cmd_noop(struct cmd_ctx *ctx)
{
	tagged(ctx, "OK %s completed.", ctx->name);
	return true;
}

static bool
cmd_logout(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;

	client_send(c, "* BYE Logging out.");
	tagged(ctx, "OK Logout completed.");
	c->state = CLIENT_LOGOUT;
	c->closing = true;
	if (c->close_reason == NULL)
		c->close_reason = xstrdup("logged out");
	return true;
}

static bool
cmd_id(struct cmd_ctx *ctx)
{
	if (ctx->count != 1 || (ctx->args[0].type != IMAP_ARG_NIL &&
				ctx->args[0].type != IMAP_ARG_LIST))
		return bad(ctx, "ID needs a parameter list or NIL.");
	client_send(ctx->c, "* ID (\"name\" \"imapserver\" \"version\" \"0.1\")");
	tagged(ctx, "OK ID completed.");
	return true;
}

/* Turns CONDSTORE (and with qresync QRESYNC) on for the rest of the
   connection. The first CONDSTORE enabling command with a mailbox
   selected announces its HIGHESTMODSEQ (RFC 7162 3.1). */
static void
client_enable_condstore(struct client *c, bool qresync)
{
	bool was = c->condstore;

	c->condstore = true;
	if (qresync)
		c->qresync = true;
	if (c->view != NULL) {
		c->view->condstore = true;
		c->view->qresync = c->qresync;
		if (!was)
			client_send(c, "* OK [HIGHESTMODSEQ %llu] Highest",
				    (unsigned long long)mailbox_state(c->mbox)->highest_modseq);
	}
}

static bool
cmd_enable(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool condstore = false, qresync = false;

	if (ctx->count == 0)
		return bad(ctx, "ENABLE needs capability names.");
	for (size_t i = 0; i < ctx->count; i++) {
		if (ctx->args[i].type != IMAP_ARG_ATOM)
			return bad(ctx, "ENABLE needs capability names.");
		if (ascii_strcasecmp(ctx->args[i].str, "CONDSTORE") == 0)
			condstore = true;
		else if (ascii_strcasecmp(ctx->args[i].str, "QRESYNC") == 0)
			qresync = true;
		/* RFC 5161: unknown names are ignored. */
	}
	/* ENABLED lists what this command turned on. */
	bool new_condstore = (condstore || qresync) && !c->condstore;
	bool new_qresync = qresync && !c->qresync;
	if (condstore || qresync)
		client_enable_condstore(c, qresync);
	client_send(c, "* ENABLED%s%s", new_condstore && condstore ? " CONDSTORE" : "",
		    new_qresync ? " QRESYNC" : "");
	tagged(ctx, "OK Enabled.");
	return true;
}

static bool
cmd_namespace(struct cmd_ctx *ctx)
{
	client_send(ctx->c, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	tagged(ctx, "OK Namespace completed.");
	return true;
}

/* ---- not authenticated ---- */

static void
login_delay_done(void *context)
{
	struct client *c = context;

	c->delay_timer = NULL;
	client_send_tagged(c, c->wait_tag, "NO [AUTHENTICATIONFAILED] Authentication failed.");
	free(c->wait_tag);
	c->wait_tag = NULL;
	if (++c->auth_failures >= 3)
		client_disconnect(c, "Too many authentication failures.");
	client_resume(c);
}

/* A user who has no mailbox but INBOX (a new user) gets the special-use
   mailboxes (RFC 6154), subscribed. Failures are logged by the storage
   wrappers and do not stop the login. */
static void
create_special_use(struct client *c)
{
	struct strlist names = { 0 }, subs = { 0 };
	enum storage_error err;
	bool created = false;

	if (storage_list(&c->gen->storage, c->sid, c->user, &names, &err) < 0 ||
	    names.count > 1 || (names.count == 1 && strcmp(names.items[0], "INBOX") != 0)) {
		strlist_clear(&names);
		return;
	}
	if (storage_subscriptions_read(&c->gen->storage, c->sid, c->user, &subs) < 0) {
		strlist_clear(&names);
		return;
	}
	for (size_t i = 0; i < N_ELEMENTS(special_use); i++) {
		if (storage_create(&c->gen->storage, c->sid, c->user, special_use[i].name, &err) < 0 &&
		    err != STORAGE_ERR_EXISTS)
			continue;
		if (!strlist_contains(&subs, special_use[i].name)) {
			strlist_add(&subs, special_use[i].name);
			created = true;
		}
	}
	if (created)
		(void)storage_subscriptions_write(&c->gen->storage, c->sid, c->user, &subs);
	strlist_clear(&names);
	strlist_clear(&subs);
}

static void
login_checked(enum auth_result res, void *context)
{
	struct client *c = context;

	c->auth_req = NULL;
	switch (res) {
	case AUTH_OK:
		free(c->user);
		c->user = c->pending_user;
		c->pending_user = NULL;
		c->state = CLIENT_AUTH;
		c->auth_failures = 0;
		create_special_use(c);
		client_send_tagged(c, c->wait_tag, "OK [CAPABILITY %s] Logged in.",
				   imap_capabilities(c));
		break;
	case AUTH_TEMPFAIL:
		client_send_tagged(c, c->wait_tag,
				   "NO [UNAVAILABLE] Authentication service unavailable.");
		break;
	case AUTH_FAIL:
		/* Answered after the delay, held by a timer: the other
		   sessions go on meanwhile. */
		free(c->pending_user);
		c->pending_user = NULL;
		c->delay_timer = event_timer_add(c->server->loop, c->gen->cfg->auth_fail_delay_ms,
						 login_delay_done, c);
		return;
	}
	free(c->pending_user);
	c->pending_user = NULL;
	free(c->wait_tag);
	c->wait_tag = NULL;
	client_resume(c);
}

/* Starts checking the password; the answer comes from login_checked(),
   so a slow backend never holds up the loop. Input waits meanwhile. */
static bool
do_login(struct client *c, const char *tag, const char *user, const char *password)
{
	free(c->wait_tag);
	c->wait_tag = xstrdup(tag);
	free(c->pending_user);
	c->pending_user = xstrdup(user);
	c->mode = MODE_DELAY;
	c->auth_req = auth_verify_start(&c->gen->auth, c->server->loop, c->sid, user, password,
					login_checked, c);
	return false;
}

static bool
cmd_login(struct cmd_ctx *ctx)
{
	const char *user = arg_str(ctx, 0), *pass = arg_str(ctx, 1);

	if (user == NULL || pass == NULL || ctx->count != 2)
		return bad(ctx, "LOGIN needs a user name and a password.");
	return do_login(ctx->c, ctx->tag, user, pass);
}

/* SASL PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
static bool
auth_plain_response(struct client *c, const char *tag, const char *b64, size_t len)
{
	struct buf dec = BUF_INIT;
	const char *authzid, *authcid, *pass, *end;
	bool done = true;

	if (len == 1 && b64[0] == '*') {
		client_send_tagged(c, tag, "BAD Authentication aborted by client.");
		return true;
	}
	if ((len == 1 && b64[0] == '=') || base64_decode(b64, len, &dec) < 0 || dec.len == 0) {
		client_send_tagged(c, tag, "BAD Invalid base64 data in the SASL response.");
		buf_free(&dec);
		return true;
	}
	authzid = dec.data;
	end = dec.data + dec.len;
	authcid = memchr(authzid, '\0', dec.len);
	pass = authcid == NULL ? NULL : memchr(authcid + 1, '\0', (size_t)(end - authcid - 1));
	if (authcid == NULL || pass == NULL || memchr(pass + 1, '\0', (size_t)(end - pass - 1))) {
		client_send_tagged(c, tag, "BAD Invalid SASL PLAIN response.");
	} else {
		authcid++;
		pass++;
		if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
			client_send_tagged(c, tag, "NO [AUTHORIZATIONFAILED] Authorization "
						   "identity differs from the login.");
		else
			done = do_login(c, tag, authcid, pass);
	}
	explicit_bzero(dec.data, dec.cap);
	buf_free(&dec);
	return done;
}

static bool
cmd_authenticate(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	const char *mech = arg_str(ctx, 0);

	if (mech == NULL || ctx->count > 2)
		return bad(ctx, "AUTHENTICATE needs a mechanism name.");
	if (ascii_strcasecmp(mech, "PLAIN") != 0) {
		tagged(ctx, "NO [CANNOT] Unsupported authentication mechanism.");
		return true;
	}
	if (ctx->count == 2) {
		/* SASL-IR (RFC 4959). */
		const char *ir = arg_str(ctx, 1);
		if (ir == NULL)
			return bad(ctx, "Invalid initial response.");
		return auth_plain_response(c, ctx->tag, ir, strlen(ir));
	}
	free(c->wait_tag);
	c->wait_tag = xstrdup(ctx->tag);
	c->mode = MODE_AUTH_CONT;
	client_send(c, "+ ");
	return false;
}

static bool
cmd_starttls(struct cmd_ctx *ctx)
{
	tagged(ctx, "NO [UNAVAILABLE] TLS is not available on this server.");
	return true;
}

/* ---- authenticated ---- */

static void
send_flags_lists(struct client *c, const struct mbox_state *st, bool readonly)
{
	struct buf *out = client_outbuf(c);

	buf_append_str(out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned i = 0; i < st->keyword_count; i++) {
		buf_append_c(out, ' ');
		buf_append_str(out, st->keywords[i]);
	}
	buf_append_str(out, ")\r\n");
	if (readonly) {
		buf_append_str(out, "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
		return;
	}
	buf_append_str(out, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned i = 0; i < st->keyword_count; i++) {
		buf_append_c(out, ' ');
		buf_append_str(out, st->keywords[i]);
	}
	buf_append_str(out, " \\*)] Flags permitted.\r\n");
}

/* The QRESYNC select parameter (RFC 7162 3.2.5). */
struct qresync_param {
	bool given;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct seqset known;       /* empty: not given */
	bool have_known;
	struct seqset match_seqs, match_uids;
	bool have_match;
};

static void
qresync_param_free(struct qresync_param *q)
{
	seqset_free(&q->known);
	seqset_free(&q->match_seqs);
	seqset_free(&q->match_uids);
}

static bool
arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *num_r)
{
	return arg->type == IMAP_ARG_ATOM && str_to_u64(arg->str, max, num_r) == 0;
}

/* Parses the SELECT parameter list. Returns NULL or a static reason. */
static const char *
parse_select_params(struct client *c, const struct imap_arg *list, bool *condstore_r,
		    struct qresync_param *q)
{
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		uint64_t n;

		if (imap_arg_atom_equals(a, "CONDSTORE")) {
			*condstore_r = true;
			continue;
		}
		if (!imap_arg_atom_equals(a, "QRESYNC"))
			return "Unknown SELECT parameter.";
		if (!c->qresync)
			return "QRESYNC must be enabled first (ENABLE QRESYNC).";
		if (q->given || i + 1 >= list->list_count || list->list[i + 1].type != IMAP_ARG_LIST)
			return "QRESYNC needs (uidvalidity modseq [known-uids [seq-match]]).";
		const struct imap_arg *p = list->list[++i].list;
		size_t pc = list->list[i].list_count;
		if (pc < 2 || pc > 4 || !arg_number(&p[0], UINT32_MAX, &n) || n == 0)
			return "Invalid QRESYNC parameters.";
		q->uidvalidity = (uint32_t)n;
		if (!arg_number(&p[1], INT64_MAX, &q->modseq) || q->modseq == 0)
			return "Invalid QRESYNC mod-sequence.";
		if (pc >= 3) {
			if (p[2].type != IMAP_ARG_ATOM ||
			    seqset_parse(p[2].str, UINT32_MAX, &q->known) < 0)
				return "Invalid QRESYNC known-uids.";
			q->have_known = true;
		}
		if (pc == 4) {
			const struct imap_arg *m = &p[3];
			if (m->type != IMAP_ARG_LIST || m->list_count != 2 ||
			    m->list[0].type != IMAP_ARG_ATOM || m->list[1].type != IMAP_ARG_ATOM ||
			    seqset_parse(m->list[0].str, UINT32_MAX, &q->match_seqs) < 0 ||
			    seqset_parse(m->list[1].str, UINT32_MAX, &q->match_uids) < 0)
				return "Invalid QRESYNC sequence match data.";
			q->have_match = true;
		}
		q->given = true;
	}
	return NULL;
}

/* Walks the members of a set in ascending order. */
struct seqset_iter {
	const struct seqset *set;
	size_t range;
	uint64_t next;
};

static bool
seqset_iter_next(struct seqset_iter *it, uint32_t *n_r)
{
	while (it->range < it->set->count) {
		const struct seq_range *r = &it->set->ranges[it->range];
		if (it->next < r->lo)
			it->next = r->lo;
		if (it->next <= r->hi) {
			*n_r = (uint32_t)it->next++;
			return true;
		}
		it->range++;
	}
	return false;
}

/* Writes "* VANISHED (EARLIER) ..." and the FETCH of every changed
   message after a SELECT (QRESYNC ...) whose UIDVALIDITY matched. */
static void
qresync_select(struct client *c, struct qresync_param *q)
{
	const struct mbox_state *st = mailbox_state(c->mbox);
	const struct seqset *known = q->have_known ? &q->known : NULL;
	struct seqset vanished = { 0 };
	uint32_t known_upto = 0;

	if (!mailbox_vanished_since(c->mbox, q->modseq, known, &vanished) && q->have_match) {
		/* Inexact answer: the client's pairs that still match say it
		   knows every expunge up to that UID (RFC 7162 3.2.5.2). The
		   walk stops at the first mismatch, so it is bounded by the
		   view's size. */
		struct seqset_iter si = { &q->match_seqs, 0, 0 }, ui = { &q->match_uids, 0, 0 };
		uint32_t seq, uid;
		while (seqset_iter_next(&si, &seq) && seqset_iter_next(&ui, &uid)) {
			if (seq > c->view->count || c->view->uids[seq - 1] != uid)
				break;
			known_upto = uid;
		}
	}
	if (vanished.count > 0 && known_upto > 0) {
		struct seqset rest = { 0 };
		for (size_t r = 0; r < vanished.count; r++) {
			if (vanished.ranges[r].hi > known_upto)
				seqset_add_range(&rest, vanished.ranges[r].lo > known_upto ?
							vanished.ranges[r].lo : known_upto + 1,
						 vanished.ranges[r].hi);
		}
		seqset_free(&vanished);
		vanished = rest;
	}
	if (vanished.count > 0) {
		buf_append_str(client_outbuf(c), "* VANISHED (EARLIER) ");
		seqset_write(&vanished, client_outbuf(c));
		buf_append_str(client_outbuf(c), "\r\n");
	}
	seqset_free(&vanished);
	for (size_t seq = 1; seq <= c->view->count; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx < 0)
			continue;
		const struct mail_rec *rec = &st->mails[idx];
		if (rec->modseq <= q->modseq || (known != NULL && !seqset_contains(known, rec->uid)))
			continue;
		buf_printf(client_outbuf(c), "* %zu FETCH (UID %u FLAGS ", seq, rec->uid);
		imap_write_flags(client_outbuf(c), rec->flags, rec->keywords,
				 mbox_view_is_recent(c->view, rec->uid), st);
		buf_printf(client_outbuf(c), " MODSEQ (%llu))\r\n", (unsigned long long)rec->modseq);
	}
}

static bool
cmd_select(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool readonly = ascii_strcasecmp(ctx->name, "EXAMINE") == 0;
	bool condstore = false;
	struct qresync_param q;
	enum storage_error err;
	struct mailbox *mbox;
	const char *error;
	char *name;

	if (ctx->count != 1 && !(ctx->count == 2 && ctx->args[1].type == IMAP_ARG_LIST))
		return bad(ctx, "SELECT needs one mailbox name (and parameters).");
	i_zero(&q);
	if (ctx->count == 2 &&
	    (error = parse_select_params(c, &ctx->args[1], &condstore, &q)) != NULL) {
		qresync_param_free(&q);
		return bad(ctx, error);
	}
	if ((name = arg_mailbox(ctx, 0)) == NULL) {
		qresync_param_free(&q);
		return true;
	}
	/* Selecting leaves the selected mailbox, even when it fails; the
	   CLOSED code marks where its responses end (RFC 7162 3.2.11). */
	if (c->mbox != NULL)
		client_send(c, "* OK [CLOSED] Previous mailbox closed.");
	client_unselect(c);
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		no_storage(ctx, err);
		qresync_param_free(&q);
		free(name);
		return true;
	}
	if (condstore || q.given)
		c->condstore = true;
	c->mbox = mbox;
	c->view = mbox_view_new(mbox, readonly, client_mailbox_notify, c);
	c->view->condstore = c->condstore;
	c->view->qresync = c->qresync;
	c->state = CLIENT_SELECTED;

	const struct mbox_state *st = mailbox_state(mbox);
	uint32_t unseen = 0;
	for (size_t seq = 1; seq <= c->view->count && unseen == 0; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx >= 0 && (st->mails[idx].flags & MAIL_SEEN) == 0)
			unseen = (uint32_t)seq;
	}
	send_flags_lists(c, st, readonly);
	client_send(c, "* %zu EXISTS", c->view->count);
	client_send(c, "* %zu RECENT", c->view->recent_count);
	if (unseen != 0)
		client_send(c, "* OK [UNSEEN %u] First unseen.", unseen);
	client_send(c, "* OK [UIDVALIDITY %u] UIDs valid.", st->uidvalidity);
	client_send(c, "* OK [UIDNEXT %u] Predicted next UID.", st->uidnext);
	if (c->condstore)
		client_send(c, "* OK [HIGHESTMODSEQ %llu] Highest",
			    (unsigned long long)st->highest_modseq);
	if (q.given && q.uidvalidity == st->uidvalidity)
		qresync_select(c, &q);
	tagged(ctx, "OK [%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
	       readonly ? "Examine" : "Select");
	log_debug(c->sid, "selected %s (%zu messages)", name, c->view->count);
	qresync_param_free(&q);
	free(name);
	return true;
}

static bool
cmd_create(struct cmd_ctx *ctx)
{
	enum storage_error err;
	char *name;

	if (ctx->count != 1 && !(ctx->count == 2 && ctx->args[1].type == IMAP_ARG_LIST))
		return bad(ctx, "CREATE needs one mailbox name.");
	if ((name = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if (ctx->count == 2) {
		/* CREATE name (USE (attrs)) (RFC 6154 3): special-use is by
		   name here, so only the attribute the name has is accepted. */
		const struct imap_arg *l = &ctx->args[1];
		const char *attr = special_use_attr(name);
		if (l->list_count != 2 || !imap_arg_atom_equals(&l->list[0], "USE") ||
		    l->list[1].type != IMAP_ARG_LIST) {
			free(name);
			return bad(ctx, "CREATE: invalid parameters.");
		}
		for (size_t i = 0; i < l->list[1].list_count; i++) {
			const struct imap_arg *u = &l->list[1].list[i];
			if (u->type != IMAP_ARG_ATOM || attr == NULL ||
			    ascii_strcasecmp(u->str, attr) != 0) {
				tagged(ctx, "NO [USEATTR] Special-use attributes follow the "
					    "mailbox name here.");
				free(name);
				return true;
			}
		}
	}
	if (strcmp(name, "INBOX") == 0)
		tagged(ctx, "NO [ALREADYEXISTS] Mailbox already exists.");
	else if (storage_create(&ctx->c->gen->storage, ctx->c->sid, ctx->c->user, name, &err) < 0)
		no_storage(ctx, err);
	else
		tagged(ctx, "OK Create completed.");
	free(name);
	return true;
}

/* A mailbox that another session has selected is not deleted or renamed
   under it. */
static bool
mailbox_busy(struct cmd_ctx *ctx, const char *name)
{
	struct mailbox *mbox = hub_find(ctx->c->gen->hub, ctx->c->user, name);

	return mbox != NULL && mailbox_is_used(mbox);
}

static bool
cmd_delete(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	enum storage_error err;
	char *name;

	if (ctx->count != 1)
		return bad(ctx, "DELETE needs one mailbox name.");
	if ((name = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if (strcmp(name, "INBOX") == 0)
		tagged(ctx, "NO [CANNOT] INBOX can't be deleted.");
	else if (mailbox_busy(ctx, name))
		tagged(ctx, "NO [INUSE] Mailbox is selected by a session.");
	else {
		hub_forget(c->gen->hub, c->user, name);
		if (storage_delete(&c->gen->storage, c->sid, c->user, name, &err) < 0)
			no_storage(ctx, err);
		else
			tagged(ctx, "OK Delete completed.");
	}
	free(name);
	return true;
}

static bool
cmd_rename(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	enum storage_error err;
	char *from, *to;

	if (ctx->count != 2)
		return bad(ctx, "RENAME needs two mailbox names.");
	if ((from = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if ((to = arg_mailbox(ctx, 1)) == NULL) {
		free(from);
		return true;
	}
	if (strcmp(to, "INBOX") == 0)
		tagged(ctx, "NO [ALREADYEXISTS] INBOX always exists.");
	else if (mailbox_busy(ctx, from) || mailbox_busy(ctx, to))
		tagged(ctx, "NO [INUSE] Mailbox is selected by a session.");
	else {
		hub_forget(c->gen->hub, c->user, from);
		hub_forget(c->gen->hub, c->user, to);
		if (storage_rename(&c->gen->storage, c->sid, c->user, from, to, &err) < 0)
			no_storage(ctx, err);
		else
			tagged(ctx, "OK Rename completed.");
	}
	free(from);
	free(to);
	return true;
}

static bool
cmd_subscribe(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool subscribe = ascii_strcasecmp(ctx->name, "SUBSCRIBE") == 0;
	struct strlist subs = { 0 }, next = { 0 };
	char *name;

	if (ctx->count != 1)
		return bad(ctx, "Needs one mailbox name.");
	if ((name = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if (storage_subscriptions_read(&c->gen->storage, c->sid, c->user, &subs) < 0) {
		no_storage(ctx, STORAGE_ERR_TEMP);
		goto out;
	}
	for (size_t i = 0; i < subs.count; i++) {
		if (strcmp(subs.items[i], name) != 0)
			strlist_add(&next, subs.items[i]);
	}
	if (subscribe)
		strlist_add(&next, name);
	if (storage_subscriptions_write(&c->gen->storage, c->sid, c->user, &next) < 0)
		no_storage(ctx, STORAGE_ERR_TEMP);
	else
		tagged(ctx, "OK %s completed.", subscribe ? "Subscribe" : "Unsubscribe");
out:
	strlist_clear(&subs);
	strlist_clear(&next);
	free(name);
	return true;
}

/* LIST wildcard match (RFC 3501 6.3.8): '*' matches anything, '%' anything
   but the hierarchy delimiter. Dynamic programming over pattern x name, so
   a pattern like "*a*a*a*b" costs O(len * len), never exponential. */
static bool
list_match(const char *pattern, const char *name)
{
	size_t plen = strlen(pattern), nlen = strlen(name);
	bool *row = xcalloc(nlen + 1, sizeof(bool)), *next = xcalloc(nlen + 1, sizeof(bool));
	bool ret;

	row[0] = true;
	for (size_t j = 1; j <= nlen; j++)
		row[j] = false;
	for (size_t i = 0; i < plen; i++) {
		char p = pattern[i];
		/* INBOX matches case-insensitively at the start of a name. */
		bool ci = i < 5 && ascii_strncasecmp(pattern, "INBOX", 5) == 0;
		next[0] = row[0] && (p == '*' || p == '%');
		for (size_t j = 1; j <= nlen; j++) {
			char n = name[j - 1];
			if (p == '*')
				next[j] = next[j - 1] || row[j];
			else if (p == '%')
				next[j] = (next[j - 1] && n != '/') || row[j];
			else if (ci)
				next[j] = row[j - 1] && ascii_strncasecmp(&p, &n, 1) == 0;
			else
				next[j] = row[j - 1] && p == n;
		}
		bool *tmp = row;
		row = next;
		next = tmp;
	}
	ret = row[nlen];
	free(row);
	free(next);
	return ret;
}

static bool
name_has_children(const struct strlist *names, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < names->count; i++) {
		if (strncmp(names->items[i], name, len) == 0 && names->items[i][len] == '/')
			return true;
	}
	return false;
}

/* LIST options (RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE). */
struct list_opts {
	bool sel_subscribed, sel_recursive, sel_special;
	bool ret_subscribed, ret_special;
	bool extended;             /* any option or several patterns given */
};

static const char *
parse_list_select(const struct imap_arg *list, struct list_opts *o)
{
	bool remote = false;

	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "SUBSCRIBED"))
			o->sel_subscribed = true;
		else if (imap_arg_atom_equals(a, "REMOTE"))
			remote = true;
		else if (imap_arg_atom_equals(a, "RECURSIVEMATCH"))
			o->sel_recursive = true;
		else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
			o->sel_special = true;
		else
			return "Unknown LIST selection option.";
	}
	(void)remote;
	/* RFC 5258 3: RECURSIVEMATCH alone (or with REMOTE only) is BAD. */
	if (o->sel_recursive && !o->sel_subscribed && !o->sel_special)
		return "RECURSIVEMATCH needs another selection option.";
	return NULL;
}

static const char *
parse_list_return(const struct imap_arg *list, struct list_opts *o)
{
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "SUBSCRIBED"))
			o->ret_subscribed = true;
		else if (imap_arg_atom_equals(a, "CHILDREN"))
			; /* \HasChildren / \HasNoChildren are always sent */
		else if (imap_arg_atom_equals(a, "SPECIAL-USE"))
			o->ret_special = true;
		else
			return "Unknown LIST return option.";
	}
	return NULL;
}

static bool list_match_any(const struct strlist *patterns, const char *name, bool *pct_r);

/* RFC 5258 3.5 (RECURSIVEMATCH): true if name has a descendant in names
   that the patterns do not match (so it is not listed itself). */
static bool
has_unlisted_descendant(const struct strlist *names, const char *name,
			const struct strlist *patterns)
{
	size_t len = strlen(name);
	bool pct;

	for (size_t i = 0; i < names->count; i++) {
		if (strncmp(names->items[i], name, len) == 0 && names->items[i][len] == '/' &&
		    !list_match_any(patterns, names->items[i], &pct))
			return true;
	}
	return false;
}

static bool
list_match_any(const struct strlist *patterns, const char *name, bool *pct_r)
{
	bool any = false;

	*pct_r = false;
	for (size_t i = 0; i < patterns->count; i++) {
		if (list_match(patterns->items[i], name)) {
			any = true;
			if (strchr(patterns->items[i], '%') != NULL)
				*pct_r = true;
		}
	}
	return any;
}

static bool
cmd_list(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool lsub = ascii_strcasecmp(ctx->name, "LSUB") == 0;
	struct list_opts o;
	struct strlist names = { 0 }, subs = { 0 }, all = { 0 }, patterns = { 0 };
	const struct imap_arg *pat_arg;
	enum storage_error err;
	const char *ref, *error = NULL;
	char *uref = NULL;
	size_t i = 0;

	i_zero(&o);
	if (!lsub && ctx->count > 0 && ctx->args[0].type == IMAP_ARG_LIST) {
		if ((error = parse_list_select(&ctx->args[0], &o)) != NULL)
			return bad(ctx, error);
		o.extended = true;
		i++;
	}
	ref = arg_str(ctx, i);
	pat_arg = i + 1 < ctx->count ? &ctx->args[i + 1] : NULL;
	if (ref == NULL || pat_arg == NULL)
		return bad(ctx, "LIST needs a reference and a mailbox pattern.");
	if (i + 2 < ctx->count) {
		if (lsub || i + 4 != ctx->count || !imap_arg_atom_equals(&ctx->args[i + 2], "RETURN") ||
		    ctx->args[i + 3].type != IMAP_ARG_LIST)
			return bad(ctx, "LIST: invalid arguments.");
		if ((error = parse_list_return(&ctx->args[i + 3], &o)) != NULL)
			return bad(ctx, error);
		o.extended = true;
	}
	if (mutf7_to_utf8(ref, &uref) < 0)
		return bad(ctx, "LIST reference is not valid modified UTF-7.");
	/* One pattern, or a list of them (LIST-EXTENDED). */
	const struct imap_arg *pats = pat_arg;
	size_t npats = 1;
	if (pat_arg->type == IMAP_ARG_LIST) {
		if (lsub || pat_arg->list_count == 0) {
			free(uref);
			return bad(ctx, "LIST: invalid mailbox patterns.");
		}
		pats = pat_arg->list;
		npats = pat_arg->list_count;
		o.extended = true;
	}
	for (size_t p = 0; p < npats; p++) {
		char *upat;

		if (!imap_arg_is_string(&pats[p]) || strlen(pats[p].str) != pats[p].len ||
		    mutf7_to_utf8(pats[p].str, &upat) < 0) {
			free(uref);
			strlist_clear(&patterns);
			return bad(ctx, "LIST: invalid mailbox pattern.");
		}
		if (*upat == '\0' && npats == 1 && !o.extended && !lsub) {
			/* The hierarchy delimiter and root (RFC 3501 6.3.8). */
			free(upat);
			free(uref);
			client_send(c, "* LIST (\\Noselect) \"/\" \"\"");
			tagged(ctx, "OK List completed.");
			return true;
		}
		if (*uref != '\0' && *upat != '/' && uref[strlen(uref) - 1] != '/' && *upat != '\0')
			strlist_add_take(&patterns, xasprintf("%s/%s", uref, upat));
		else
			strlist_add_take(&patterns, xasprintf("%s%s", uref, upat));
		free(upat);
	}
	free(uref);
	if (storage_list(&c->gen->storage, c->sid, c->user, &names, &err) < 0) {
		no_storage(ctx, err);
		goto out;
	}
	if ((lsub || o.sel_subscribed || o.ret_subscribed) &&
	    storage_subscriptions_read(&c->gen->storage, c->sid, c->user, &subs) < 0) {
		no_storage(ctx, STORAGE_ERR_TEMP);
		goto out;
	}
	/* Parents that are folders but not mailboxes are listed as
	   \Noselect when a pattern reaches them. */
	for (size_t k = 0; k < names.count; k++) {
		strlist_add(&all, names.items[k]);
		for (char *p = strchr(names.items[k], '/'); p != NULL; p = strchr(p + 1, '/')) {
			char *parent = xstrndup(names.items[k], (size_t)(p - names.items[k]));
			if (!strlist_contains(&all, parent) && !strlist_contains(&names, parent))
				strlist_add_take(&all, parent);
			else
				free(parent);
		}
	}
	if (lsub) {
		/* RFC 3501 6.3.9: with "%", a subscribed "foo/bar" whose parent
		   "foo" is not subscribed shows "foo" as \Noselect. */
		struct strlist shown = { 0 };
		for (size_t k = 0; k < subs.count; k++) {
			const char *name = subs.items[k];
			bool pct, noselect = !strlist_contains(&names, name);
			char *parent = NULL;

			if (!list_match_any(&patterns, name, &pct)) {
				for (char *p = strrchr(name, '/'); p != NULL && parent == NULL;) {
					char *cand = xstrndup(name, (size_t)(p - name));
					if (list_match_any(&patterns, cand, &pct) && pct &&
					    !strlist_contains(&subs, cand))
						parent = cand;
					else
						free(cand);
					while (--p > name && *p != '/')
						;
					if (p <= name)
						p = NULL;
				}
				if (parent == NULL)
					continue;
				name = parent;
				noselect = true;
			}
			if (!strlist_contains(&shown, name)) {
				strlist_add(&shown, name);
				buf_printf(client_outbuf(c), "* LSUB (%s) \"/\" ", noselect ? "\\Noselect" : "");
				write_mailbox_name(client_outbuf(c), name);
				buf_append(client_outbuf(c), "\r\n", 2);
			}
			free(parent);
		}
		strlist_clear(&shown);
		tagged(ctx, "OK Lsub completed.");
		goto out;
	}
	if (o.sel_subscribed) {
		/* Subscribed names that no longer exist are listed too, as
		   \NonExistent (RFC 5258 3.1). */
		for (size_t k = 0; k < subs.count; k++) {
			if (!strlist_contains(&all, subs.items[k]))
				strlist_add(&all, subs.items[k]);
		}
	}
	strlist_sort(&all);
	for (size_t k = 0; k < all.count; k++) {
		const char *name = all.items[k];
		bool real = strlist_contains(&names, name);
		bool subscribed = strlist_contains(&subs, name);
		const char *special = real ? special_use_attr(name) : NULL;
		bool pct, childinfo = false;
		struct buf attrs = BUF_INIT;

		if (!list_match_any(&patterns, name, &pct))
			continue;
		if (o.sel_subscribed || o.sel_special) {
			bool selected = (!o.sel_subscribed || subscribed) &&
					(!o.sel_special || special != NULL);
			if (o.sel_recursive && o.sel_subscribed &&
			    has_unlisted_descendant(&subs, name, &patterns))
				childinfo = true;
			if (!selected && !childinfo)
				continue;
		} else if (!real && !pct) {
			/* A virtual parent only when '%' stops at it. */
			continue;
		}
		if (!real)
			buf_append_str(&attrs, strlist_contains(&subs, name) && !name_has_children(&all, name) ?
						       "\\NonExistent" : "\\Noselect");
		if (attrs.len > 0)
			buf_append_c(&attrs, ' ');
		buf_append_str(&attrs, name_has_children(&all, name) ? "\\HasChildren" :
								       "\\HasNoChildren");
		if (subscribed && (o.sel_subscribed || o.ret_subscribed))
			buf_append_str(&attrs, " \\Subscribed");
		if (special != NULL) {
			buf_append_c(&attrs, ' ');
			buf_append_str(&attrs, special);
		}
		buf_printf(client_outbuf(c), "* LIST (%s) \"/\" ", attrs.data);
		write_mailbox_name(client_outbuf(c), name);
		if (childinfo)
			buf_append_str(client_outbuf(c), " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		buf_append(client_outbuf(c), "\r\n", 2);
		buf_free(&attrs);
	}
	tagged(ctx, "OK List completed.");
out:
	strlist_clear(&patterns);
	strlist_clear(&names);
	strlist_clear(&all);
	strlist_clear(&subs);
	return true;
}

static bool
cmd_status(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	const struct imap_arg *items = ctx->count == 2 ? &ctx->args[1] : NULL;
	enum storage_error err;
	struct mailbox *mbox;
	struct buf reply = BUF_INIT;
	char *name;

	if (items == NULL || items->type != IMAP_ARG_LIST || items->list_count == 0)
		return bad(ctx, "STATUS needs a mailbox and a list of items.");
	if ((name = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		no_storage(ctx, err);
		free(name);
		return true;
	}
	const struct mbox_state *st = mailbox_state(mbox);
	for (size_t i = 0; i < items->list_count; i++) {
		const struct imap_arg *it = &items->list[i];
		uint64_t value = 0;

		if (it->type != IMAP_ARG_ATOM)
			goto bad_item;
		if (ascii_strcasecmp(it->str, "MESSAGES") == 0)
			value = st->count;
		else if (ascii_strcasecmp(it->str, "RECENT") == 0) {
			for (size_t j = 0; j < st->count; j++)
				value += st->mails[j].uid >= st->first_recent_uid;
		} else if (ascii_strcasecmp(it->str, "UIDNEXT") == 0)
			value = st->uidnext;
		else if (ascii_strcasecmp(it->str, "UIDVALIDITY") == 0)
			value = st->uidvalidity;
		else if (ascii_strcasecmp(it->str, "HIGHESTMODSEQ") == 0)
			/* RFC 7162 3.1.7 */
			value = st->highest_modseq;
		else if (ascii_strcasecmp(it->str, "UNSEEN") == 0) {
			for (size_t j = 0; j < st->count; j++)
				value += (st->mails[j].flags & MAIL_SEEN) == 0;
		} else
			goto bad_item;
		buf_printf(&reply, "%s%s %llu", reply.len > 0 ? " " : "", it->str,
			   (unsigned long long)value);
	}
	buf_append_str(client_outbuf(c), "* STATUS ");
	write_mailbox_name(client_outbuf(c), name);
	buf_printf(client_outbuf(c), " (%s)\r\n", reply.data != NULL ? reply.data : "");
	tagged(ctx, "OK Status completed.");
	goto out;
bad_item:
	bad(ctx, "Unknown STATUS item.");
out:
	buf_free(&reply);
	mailbox_unref(&mbox);
	free(name);
	return true;
}

static void
keywords_remap(const struct mbox_state *from, struct mbox_state *to, uint64_t keywords,
	       uint64_t *keywords_r)
{
	*keywords_r = 0;
	for (unsigned i = 0; i < from->keyword_count && i < 64; i++) {
		if ((keywords & ((uint64_t)1 << i)) == 0)
			continue;
		int idx = mbox_state_keyword(to, from->keywords[i], true);
		if (idx >= 0)
			*keywords_r |= (uint64_t)1 << idx;
	}
}

static bool
cmd_append(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	const struct imap_arg *flags_arg = NULL, *date_arg = NULL, *msg;
	uint8_t flags = 0;
	uint64_t keywords = 0;
	int64_t date = time(NULL);
	int32_t tz = 0;
	enum storage_error err;
	struct mailbox *mbox;
	const char *error;
	uint32_t uid;
	size_t i = 1;
	char *name;

	if (ctx->count < 2)
		return bad(ctx, "APPEND needs a mailbox and a message.");
	if (ctx->args[i].type == IMAP_ARG_LIST)
		flags_arg = &ctx->args[i++];
	if (i < ctx->count && ctx->args[i].type == IMAP_ARG_STRING && i + 1 < ctx->count)
		date_arg = &ctx->args[i++];
	if (i + 1 != ctx->count || (ctx->args[i].type != IMAP_ARG_LITERAL &&
				    ctx->args[i].type != IMAP_ARG_STRING))
		return bad(ctx, "APPEND: invalid arguments.");
	msg = &ctx->args[i];
	if (date_arg != NULL) {
		struct tm tm;
		if (message_parse_imap_datetime(date_arg->str, &date, &tz) < 0)
			return bad(ctx, "APPEND: invalid date-time.");
		(void)tm;
	} else {
		struct tm tm;
		time_t now = (time_t)date;
		localtime_r(&now, &tm);
		tz = (int32_t)(tm.tm_gmtoff / 60);
	}
	if (msg->len == 0) {
		tagged(ctx, "NO Can't save an empty message.");
		return true;
	}
	if ((name = arg_mailbox(ctx, 0)) == NULL)
		return true;
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &mbox, &err) < 0) {
		if (err == STORAGE_ERR_NOT_FOUND)
			tagged(ctx, "NO [TRYCREATE] Mailbox doesn't exist.");
		else
			no_storage(ctx, err);
		free(name);
		return true;
	}
	if (flags_arg != NULL &&
	    imap_parse_flags(flags_arg, mailbox_state(mbox), true, &flags, &keywords, &error) < 0) {
		bad(ctx, error);
	} else if (mailbox_append(mbox, msg->str, msg->len, flags, keywords, date, tz, &uid, &err,
				  c->sid) < 0) {
		no_storage(ctx, err);
	} else {
		mailbox_changed(mbox, c->view);
		tagged(ctx, "OK [APPENDUID %u %u] Append completed.", mailbox_state(mbox)->uidvalidity,
		       uid);
	}
	mailbox_unref(&mbox);
	free(name);
	return true;
}

static bool
cmd_idle(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;

	free(c->wait_tag);
	c->wait_tag = xstrdup(ctx->tag);
	c->mode = MODE_IDLE;
	client_send(c, "+ idling");
	if (c->mbox != NULL)
		(void)mailbox_refresh(c->mbox, c->sid);
	client_sync_view(c, true);
	return false;
}

/* ---- selected ---- */

static bool
cmd_check(struct cmd_ctx *ctx)
{
	tagged(ctx, "OK Check completed.");
	return true;
}

static bool
cmd_close(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	bool unselect = ascii_strcasecmp(ctx->name, "UNSELECT") == 0;

	if (ctx->count != 0)
		return bad(ctx, "No arguments expected.");
	if (!unselect && !c->view->readonly) {
		/* CLOSE expunges silently (RFC 3501 6.4.2). */
		if (mailbox_expunge(c->mbox, NULL, c->sid) == 0)
			mailbox_changed(c->mbox, c->view);
	}
	client_unselect(c);
	tagged(ctx, "OK %s completed.", unselect ? "Unselect" : "Close");
	return true;
}

static bool
cmd_expunge(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	struct seqset uids = { 0 };
	uint64_t before = mailbox_state(c->mbox)->highest_modseq;

	if (c->view->readonly) {
		tagged(ctx, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	if (ctx->uid) {
		if (ctx->count != 1 || ctx->args[0].type != IMAP_ARG_ATOM ||
		    seqset_parse(ctx->args[0].str, mailbox_state(c->mbox)->uidnext, &uids) < 0)
			return bad(ctx, "UID EXPUNGE needs a UID set.");
	} else if (ctx->count != 0)
		return bad(ctx, "EXPUNGE takes no arguments.");
	if (mailbox_expunge(c->mbox, ctx->uid ? &uids : NULL, c->sid) < 0) {
		seqset_free(&uids);
		no_storage(ctx, STORAGE_ERR_TEMP);
		return true;
	}
	seqset_free(&uids);
	mailbox_changed(c->mbox, c->view);
	client_sync_view(c, true);
	if (c->qresync && mailbox_state(c->mbox)->highest_modseq != before)
		/* RFC 7162 3.2.7 and 3.2.9 */
		tagged(ctx, "OK [HIGHESTMODSEQ %llu] Expunge completed.",
		       (unsigned long long)mailbox_state(c->mbox)->highest_modseq);
	else
		tagged(ctx, "OK Expunge completed.");
	return true;
}

/* The view's sequence numbers that the set names: by number, or by UID.
   For numbers past the end returns -1 (BAD, RFC 3501 9 seq-number). */
static int
collect_seqs(struct cmd_ctx *ctx, const char *setstr, uint32_t **seqs_r, size_t *count_r)
{
	const struct mbox_view *view = ctx->c->view;
	uint32_t max_uid = view->count > 0 ? view->uids[view->count - 1] : 0;
	struct seqset set = { 0 };
	uint32_t *seqs = NULL;
	size_t count = 0, alloc = 0;

	if (seqset_parse(setstr, ctx->uid ? max_uid : (uint32_t)view->count, &set) < 0)
		return -1;
	if (ctx->uid) {
		for (size_t s = 1; s <= view->count; s++) {
			if (!seqset_contains(&set, view->uids[s - 1]))
				continue;
			xgrow(&seqs, &alloc, count + 1, sizeof(*seqs));
			seqs[count++] = (uint32_t)s;
		}
	} else {
		for (size_t r = 0; r < set.count; r++) {
			if (set.ranges[r].lo == 0 || set.ranges[r].hi > view->count) {
				seqset_free(&set);
				free(seqs);
				return -1;
			}
			for (uint64_t s = set.ranges[r].lo; s <= set.ranges[r].hi; s++) {
				xgrow(&seqs, &alloc, count + 1, sizeof(*seqs));
				seqs[count++] = (uint32_t)s;
			}
		}
	}
	seqset_free(&set);
	*seqs_r = seqs;
	*count_r = count;
	return 0;
}

struct search_load_ctx {
	struct client *c;
	const struct mail_rec *rec;
	struct buf *msg;
	bool loaded;
};

static int
search_load(void *context, const char **data_r, size_t *len_r)
{
	struct search_load_ctx *lc = context;

	if (!lc->loaded) {
		buf_reset(lc->msg);
		if (mailbox_read(lc->c->mbox, lc->rec, lc->msg, lc->c->sid) < 0)
			return -1;
		lc->loaded = true;
	}
	*data_r = lc->msg->data != NULL ? lc->msg->data : "";
	*len_r = lc->msg->len;
	return 0;
}

static bool
cmd_search(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	const struct mbox_state *st = mailbox_state(c->mbox);
	struct search_key *key;
	struct buf msg = BUF_INIT;
	const char *error = "Invalid search program.";
	bool badcharset = false, failed = false;
	uint32_t max_uid = c->view->count > 0 ? c->view->uids[c->view->count - 1] : 0;
	/* ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT) keys. */
	bool esearch = false, r_min = false, r_max = false, r_all = false, r_count = false;
	const struct imap_arg *args = ctx->args;
	size_t nargs = ctx->count;
	struct seqset result = { 0 };
	uint64_t count = 0, max_modseq = 0, min_modseq_of = 0, max_modseq_of = 0;
	uint32_t min_val = 0, max_val = 0;

	if (nargs >= 2 && imap_arg_atom_equals(&args[0], "RETURN") &&
	    args[1].type == IMAP_ARG_LIST) {
		esearch = true;
		for (size_t i = 0; i < args[1].list_count; i++) {
			const struct imap_arg *o = &args[1].list[i];
			if (imap_arg_atom_equals(o, "MIN"))
				r_min = true;
			else if (imap_arg_atom_equals(o, "MAX"))
				r_max = true;
			else if (imap_arg_atom_equals(o, "ALL"))
				r_all = true;
			else if (imap_arg_atom_equals(o, "COUNT"))
				r_count = true;
			else
				return bad(ctx, "Unknown SEARCH RETURN option.");
		}
		/* RETURN () means ALL. */
		if (!r_min && !r_max && !r_count)
			r_all = true;
		args += 2;
		nargs -= 2;
	}
	if (nargs == 0)
		return bad(ctx, "SEARCH needs search keys.");
	if (search_parse(args, nargs, st, (uint32_t)c->view->count, max_uid, &key,
			 &error, &badcharset) < 0) {
		if (badcharset)
			tagged(ctx, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.");
		else
			bad(ctx, error);
		return true;
	}
	bool with_modseq = search_uses_modseq(key);
	if (with_modseq)
		client_enable_condstore(c, false);
	if (!esearch)
		buf_append_str(client_outbuf(c), "* SEARCH");
	for (size_t seq = 1; seq <= c->view->count; seq++) {
		ssize_t idx = mbox_view_index(c->view, (uint32_t)seq);
		if (idx < 0)
			continue;
		struct search_load_ctx lc = { c, &st->mails[idx], &msg, false };
		struct search_msg sm = {
			.seq = (uint32_t)seq,
			.uid = st->mails[idx].uid,
			.rec = &st->mails[idx],
			.recent = mbox_view_is_recent(c->view, st->mails[idx].uid),
			.load = search_load,
			.load_ctx = &lc,
		};
		int ret = search_match(key, &sm);
		if (ret < 0) {
			failed = true;
		} else if (ret > 0) {
			uint32_t v = ctx->uid ? sm.uid : sm.seq;
			if (!esearch)
				buf_printf(client_outbuf(c), " %u", v);
			else if (r_all)
				seqset_add_range(&result, v, v);
			if (count++ == 0) {
				min_val = v;
				min_modseq_of = st->mails[idx].modseq;
			}
			max_val = v;
			max_modseq_of = st->mails[idx].modseq;
			if (st->mails[idx].modseq > max_modseq)
				max_modseq = st->mails[idx].modseq;
		}
	}
	if (!esearch) {
		/* RFC 7162 3.1.6 */
		if (with_modseq && count > 0)
			buf_printf(client_outbuf(c), " (MODSEQ %llu)", (unsigned long long)max_modseq);
	} else {
		buf_append_str(client_outbuf(c), "* ESEARCH (TAG ");
		buf_append_imap_nstring(client_outbuf(c), ctx->tag);
		buf_append_c(client_outbuf(c), ')');
		if (ctx->uid)
			buf_append_str(client_outbuf(c), " UID");
		if (r_min && count > 0)
			buf_printf(client_outbuf(c), " MIN %u", min_val);
		if (r_max && count > 0)
			buf_printf(client_outbuf(c), " MAX %u", max_val);
		if (r_all && count > 0) {
			buf_append_str(client_outbuf(c), " ALL ");
			seqset_write(&result, client_outbuf(c));
		}
		if (r_count)
			buf_printf(client_outbuf(c), " COUNT %llu", (unsigned long long)count);
		/* RFC 7162 3.1.10: the highest mod-sequence of the messages
		   returned: MIN's and/or MAX's alone unless ALL or COUNT. */
		if (with_modseq && count > 0) {
			uint64_t m = max_modseq;
			if (!r_all && !r_count) {
				m = 0;
				if (r_min)
					m = min_modseq_of;
				if (r_max && max_modseq_of > m)
					m = max_modseq_of;
			}
			buf_printf(client_outbuf(c), " MODSEQ %llu", (unsigned long long)m);
		}
	}
	buf_append(client_outbuf(c), "\r\n", 2);
	seqset_free(&result);
	search_key_free(&key);
	buf_free(&msg);
	if (failed)
		tagged(ctx, "NO Some messages could not be read.");
	else
		tagged(ctx, "OK Search completed.");
	return true;
}

static void
fetch_job_free(struct fetch_job **_job)
{
	struct fetch_job *job = *_job;

	if (job == NULL)
		return;
	*_job = NULL;
	fetch_spec_free(&job->spec);
	free(job->seqs);
	free(job->tag);
	buf_free(&job->msg);
	free(job);
}

void
imap_cmd_fetch_abort(struct client *c)
{
	fetch_job_free(&c->fetch);
}

/* Writes FETCH answers until the output reaches the high-water mark.
   Returns true when the command is complete (tagged answer queued). */
bool
imap_cmd_fetch_continue(struct client *c)
{
	struct fetch_job *job = c->fetch;
	struct mbox_state *st = mailbox_state(c->mbox);
	bool needs_msg = fetch_spec_needs_message(job->spec);
	bool sets_seen = fetch_spec_sets_seen(job->spec) && !c->view->readonly;
	bool read_failed = false;

	while (job->pos < job->count && client_out_pending(c) < CLIENT_OUT_HIGH_WATER) {
		uint32_t seq = job->seqs[job->pos++];
		ssize_t idx = mbox_view_index(c->view, seq);
		struct fetch_msg fm;

		if (idx < 0) {
			/* Expunged by another session. By UID it is simply not
			   there (its EXPUNGE follows this answer, RFC 2180 4.1.2);
			   by number the client needs to be told. */
			if (!job->uid)
				job->expunged_seen = true;
			continue;
		}
		if (job->changedsince_given && st->mails[idx].modseq <= job->changedsince)
			continue;
		i_zero(&fm);
		fm.cache = hub_mime_cache(c->gen->hub);
		fm.cache_owner = c->mbox;
		fm.seq = seq;
		fm.state = st;
		fm.recent = mbox_view_is_recent(c->view, st->mails[idx].uid);
		if (needs_msg) {
			buf_reset(&job->msg);
			if (mailbox_read(c->mbox, &st->mails[idx], &job->msg, c->sid) < 0) {
				read_failed = true;
				continue;
			}
			fm.data = job->msg.data != NULL ? job->msg.data : "";
			fm.len = job->msg.len;
		}
		if (sets_seen && (st->mails[idx].flags & MAIL_SEEN) == 0) {
			(void)mailbox_set_flags(c->mbox, c->view, (size_t)idx,
						st->mails[idx].flags | MAIL_SEEN,
						st->mails[idx].keywords, c->sid);
			job->flags_changed = true;
			fm.add_flags = !fetch_spec_has_flags(job->spec);
		}
		fm.rec = &st->mails[idx];
		fetch_write(job->spec, &fm, client_outbuf(c));
	}
	if (read_failed)
		job->expunged_seen = true;
	if (job->pos < job->count)
		return false;
	if (job->flags_changed)
		mailbox_changed(c->mbox, c->view);
	client_sync_view(c, job->uid);
	if (job->expunged_seen)
		client_send_tagged(c, job->tag, "NO [EXPUNGEISSUED] Some messages could not "
						"be fetched (expunged or unreadable).");
	else
		client_send_tagged(c, job->tag, "OK Fetch completed.");
	fetch_job_free(&c->fetch);
	return true;
}

static bool
cmd_fetch(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	struct fetch_job *job;
	struct fetch_spec *spec;
	const char *error;
	uint32_t *seqs;
	size_t count;

	size_t nitems = ctx->count - 1;
	bool changedsince_given = false, vanished = false;
	uint64_t changedsince = 0;

	if (ctx->count < 2 || ctx->args[0].type != IMAP_ARG_ATOM)
		return bad(ctx, "FETCH needs a sequence set and data items.");
	/* FETCH modifiers (RFC 4466): a last list after the items. */
	if (ctx->count >= 3 && ctx->args[ctx->count - 1].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &ctx->args[ctx->count - 1];
		nitems--;
		for (size_t i = 0; i < m->list_count; i++) {
			if (imap_arg_atom_equals(&m->list[i], "CHANGEDSINCE") && i + 1 < m->list_count &&
			    !changedsince_given &&
			    arg_number(&m->list[i + 1], INT64_MAX, &changedsince)) {
				changedsince_given = true;
				i++;
			} else if (imap_arg_atom_equals(&m->list[i], "VANISHED") && !vanished) {
				vanished = true;
			} else {
				return bad(ctx, "Unknown FETCH modifier.");
			}
		}
		/* RFC 7162 3.2.6 */
		if (vanished && (!ctx->uid || !c->qresync || !changedsince_given))
			return bad(ctx, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC.");
	}
	if (fetch_parse(ctx->args + 1, nitems, &spec, &error) < 0)
		return bad(ctx, error);
	if (collect_seqs(ctx, ctx->args[0].str, &seqs, &count) < 0) {
		fetch_spec_free(&spec);
		return bad(ctx, "Invalid sequence set.");
	}
	if (ctx->uid)
		fetch_spec_add_uid(spec);
	if (changedsince_given || fetch_spec_has_modseq(spec))
		client_enable_condstore(c, false);
	if (changedsince_given)
		fetch_spec_add_modseq(spec);
	if (c->condstore && fetch_spec_sets_seen(spec) && !c->view->readonly) {
		/* RFC 7162 3.2.4: FETCHes that set \Seen carry UID and MODSEQ. */
		fetch_spec_add_uid(spec);
		fetch_spec_add_modseq(spec);
	}
	if (vanished) {
		/* VANISHED (EARLIER) for the UIDs of the set that are gone,
		   before any FETCH (RFC 7162 3.2.6). */
		struct seqset uids = { 0 }, gone = { 0 };
		const struct mbox_state *st = mailbox_state(c->mbox);
		if (seqset_parse(ctx->args[0].str, st->uidnext > 1 ? st->uidnext - 1 : 0, &uids) == 0)
			(void)mailbox_vanished_since(c->mbox, changedsince, &uids, &gone);
		if (gone.count > 0) {
			buf_append_str(client_outbuf(c), "* VANISHED (EARLIER) ");
			seqset_write(&gone, client_outbuf(c));
			buf_append_str(client_outbuf(c), "\r\n");
		}
		seqset_free(&uids);
		seqset_free(&gone);
	}
	job = xcalloc(1, sizeof(*job));
	job->changedsince_given = changedsince_given;
	job->changedsince = changedsince;
	job->tag = xstrdup(ctx->tag);
	job->spec = spec;
	job->seqs = seqs;
	job->count = count;
	job->uid = ctx->uid;
	c->fetch = job;
	if (imap_cmd_fetch_continue(c))
		return true;
	c->mode = MODE_FETCH;
	return false;
}

static bool
cmd_store(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	struct mbox_state *st = mailbox_state(c->mbox);
	const char *item, *error;
	struct imap_arg list_arg;
	uint8_t flags;
	uint64_t keywords;
	uint32_t *seqs;
	size_t count;
	bool silent, changed = false, expunged = false;
	int mode; /* 0 replace, 1 add, -1 remove */
	/* STORE set [(UNCHANGEDSINCE n)] item flags (RFC 7162 3.1.3):
	   args[] without the modifier. */
	struct imap_arg args[2];
	const struct imap_arg *rest;
	size_t nrest;
	bool unchangedsince_given = false;
	uint64_t unchangedsince = 0;
	struct seqset modified = { 0 };

	if (ctx->count < 3 || ctx->args[0].type != IMAP_ARG_ATOM)
		return bad(ctx, "STORE needs a sequence set, an item and flags.");
	args[0] = ctx->args[0];
	rest = ctx->args + 1;
	nrest = ctx->count - 1;
	if (rest[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *m = &rest[0];
		if (m->list_count != 2 || !imap_arg_atom_equals(&m->list[0], "UNCHANGEDSINCE") ||
		    !arg_number(&m->list[1], INT64_MAX, &unchangedsince))
			return bad(ctx, "Unknown STORE modifier.");
		unchangedsince_given = true;
		rest++;
		nrest--;
	}
	if (nrest < 2 || rest[0].type != IMAP_ARG_ATOM)
		return bad(ctx, "STORE needs a sequence set, an item and flags.");
	args[1] = rest[0];
	item = args[1].str;
	mode = *item == '+' ? 1 : *item == '-' ? -1 : 0;
	if (mode != 0)
		item++;
	if (ascii_strcasecmp(item, "FLAGS") == 0)
		silent = false;
	else if (ascii_strcasecmp(item, "FLAGS.SILENT") == 0)
		silent = true;
	else
		return bad(ctx, "Unknown STORE item.");
	if (c->view->readonly) {
		tagged(ctx, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	/* The flags: one list, or flags separated by spaces. */
	if (nrest == 2 && rest[1].type == IMAP_ARG_LIST)
		list_arg = rest[1];
	else {
		i_zero(&list_arg);
		list_arg.type = IMAP_ARG_LIST;
		list_arg.list = (struct imap_arg *)(uintptr_t)(rest + 1);
		list_arg.list_count = nrest - 1;
	}
	if (imap_parse_flags(&list_arg, st, mode >= 0, &flags, &keywords, &error) < 0)
		return bad(ctx, error);
	if (collect_seqs(ctx, args[0].str, &seqs, &count) < 0)
		return bad(ctx, "Invalid sequence set.");
	if (unchangedsince_given)
		client_enable_condstore(c, false);
	for (size_t i = 0; i < count; i++) {
		ssize_t idx = mbox_view_index(c->view, seqs[i]);
		if (idx < 0) {
			/* As in FETCH: only a STORE by number says so. */
			if (!ctx->uid)
				expunged = true;
			continue;
		}
		struct mail_rec *rec = &st->mails[idx];
		if (unchangedsince_given && rec->modseq > unchangedsince) {
			/* Changed since the client looked: not stored. */
			uint32_t v = ctx->uid ? rec->uid : seqs[i];
			seqset_add_range(&modified, v, v);
			continue;
		}
		uint8_t nf = mode == 0 ? flags : mode > 0 ? rec->flags | flags : rec->flags & ~flags;
		uint64_t nk = mode == 0 ? keywords : mode > 0 ? rec->keywords | keywords :
								rec->keywords & ~keywords;
		if (nf != rec->flags || nk != rec->keywords) {
			(void)mailbox_set_flags(c->mbox, c->view, (size_t)idx, nf, nk, c->sid);
			changed = true;
		}
		/* With UNCHANGEDSINCE the new MODSEQ is always sent. */
		if (!silent || unchangedsince_given) {
			buf_printf(client_outbuf(c), "* %u FETCH (", seqs[i]);
			if (ctx->uid || c->condstore)
				buf_printf(client_outbuf(c), "UID %u ", rec->uid);
			buf_append_str(client_outbuf(c), "FLAGS ");
			imap_write_flags(client_outbuf(c), rec->flags, rec->keywords,
					 mbox_view_is_recent(c->view, rec->uid), st);
			if (c->condstore)
				buf_printf(client_outbuf(c), " MODSEQ (%llu)", (unsigned long long)rec->modseq);
			buf_append_str(client_outbuf(c), ")\r\n");
		}
	}
	free(seqs);
	if (changed)
		mailbox_changed(c->mbox, c->view);
	if (modified.count > 0) {
		struct buf set = BUF_INIT;
		seqset_write(&modified, &set);
		tagged(ctx, "OK [MODIFIED %s] Conditional STORE failed for some messages.", set.data);
		buf_free(&set);
		seqset_free(&modified);
	} else if (expunged)
		tagged(ctx, "NO [EXPUNGEISSUED] Some messages were expunged.");
	else
		tagged(ctx, "OK Store completed.");
	return true;
}

static bool
cmd_copy(struct cmd_ctx *ctx)
{
	struct client *c = ctx->c;
	struct mbox_state *src = mailbox_state(c->mbox), *dst;
	enum storage_error err = STORAGE_ERR_NONE;
	struct mailbox *dest;
	struct seqset src_uids = { 0 }, dst_uids = { 0 };
	struct buf msg = BUF_INIT, set1 = BUF_INIT, set2 = BUF_INIT;
	uint32_t *seqs;
	size_t count;
	bool failed = false;
	/* MOVE (RFC 6851): a COPY, then the originals are expunged. */
	bool move = ascii_strcasecmp(ctx->name, "MOVE") == 0;
	char *name;

	if (ctx->count != 2 || ctx->args[0].type != IMAP_ARG_ATOM)
		return bad(ctx, move ? "MOVE needs a sequence set and a mailbox." :
				       "COPY needs a sequence set and a mailbox.");
	if (move && c->view->readonly) {
		tagged(ctx, "NO [READ-ONLY] Mailbox is read-only.");
		return true;
	}
	if ((name = arg_mailbox(ctx, 1)) == NULL)
		return true;
	if (collect_seqs(ctx, ctx->args[0].str, &seqs, &count) < 0) {
		free(name);
		return bad(ctx, "Invalid sequence set.");
	}
	if (mailbox_open(c->gen->hub, c->sid, c->user, name, &dest, &err) < 0) {
		if (err == STORAGE_ERR_NOT_FOUND)
			tagged(ctx, "NO [TRYCREATE] Mailbox doesn't exist.");
		else
			no_storage(ctx, err);
		free(seqs);
		free(name);
		return true;
	}
	dst = mailbox_state(dest);
	for (size_t i = 0; i < count && !failed; i++) {
		ssize_t idx = mbox_view_index(c->view, seqs[i]);
		if (idx < 0)
			continue;
		/* A copy of the record: appending to the same mailbox may move
		   the array. */
		struct mail_rec rec = src->mails[idx];
		uint64_t keywords;
		uint32_t uid;

		buf_reset(&msg);
		if (mailbox_read(c->mbox, &rec, &msg, c->sid) < 0) {
			failed = true;
			err = STORAGE_ERR_TEMP;
			break;
		}
		keywords_remap(src, dst, rec.keywords, &keywords);
		if (mailbox_append(dest, msg.data, msg.len, rec.flags, keywords, rec.internal_date,
				   rec.tz_minutes, &uid, &err, c->sid) < 0) {
			failed = true;
			break;
		}
		seqset_add_range(&src_uids, rec.uid, rec.uid);
		seqset_add_range(&dst_uids, uid, uid);
		/* src may have moved if dest is the same mailbox. */
		src = mailbox_state(c->mbox);
	}
	if (dst_uids.count > 0)
		mailbox_changed(dest, c->view);
	if (failed)
		no_storage(ctx, err);
	else if (dst_uids.count == 0)
		tagged(ctx, "OK %s completed (no messages).", move ? "Move" : "Copy");
	else if (move) {
		/* The COPYUID goes first, in an untagged OK, then the
		   EXPUNGEs (or VANISHED) of the originals (RFC 6851 4.3). */
		seqset_write(&src_uids, &set1);
		seqset_write(&dst_uids, &set2);
		client_send(c, "* OK [COPYUID %u %s %s] Moved.", dst->uidvalidity, set1.data,
			    set2.data);
		if (mailbox_expunge_uids(c->mbox, &src_uids, c->sid) < 0) {
			no_storage(ctx, STORAGE_ERR_TEMP);
		} else {
			mailbox_changed(c->mbox, c->view);
			client_sync_view(c, true);
			tagged(ctx, "OK Move completed.");
		}
	} else {
		seqset_write(&src_uids, &set1);
		seqset_write(&dst_uids, &set2);
		tagged(ctx, "OK [COPYUID %u %s %s] Copy completed.", dst->uidvalidity, set1.data,
		       set2.data);
	}
	mailbox_unref(&dest);
	seqset_free(&src_uids);
	seqset_free(&dst_uids);
	buf_free(&msg);
	buf_free(&set1);
	buf_free(&set2);
	free(seqs);
	free(name);
	return true;
}

static const struct cmd_def commands[] = {
	{ "CAPABILITY", cmd_capability, ST_ANY, true, false },
	{ "NOOP", cmd_noop, ST_ANY, true, false },
	{ "LOGOUT", cmd_logout, ST_ANY, true, false },
	{ "ID", cmd_id, ST_ANY, false, false },
	{ "STARTTLS", cmd_starttls, ST_NOT_AUTH, true, false },
	{ "LOGIN", cmd_login, ST_NOT_AUTH, false, false },
	{ "AUTHENTICATE", cmd_authenticate, ST_NOT_AUTH, false, false },
	{ "ENABLE", cmd_enable, ST_AUTH | ST_SELECTED, false, false },
	{ "NAMESPACE", cmd_namespace, ST_AUTH | ST_SELECTED, true, false },
	{ "SELECT", cmd_select, ST_AUTH | ST_SELECTED, false, false },
	{ "EXAMINE", cmd_select, ST_AUTH | ST_SELECTED, false, false },
	{ "CREATE", cmd_create, ST_AUTH | ST_SELECTED, false, false },
	{ "DELETE", cmd_delete, ST_AUTH | ST_SELECTED, false, false },
	{ "RENAME", cmd_rename, ST_AUTH | ST_SELECTED, false, false },
	{ "SUBSCRIBE", cmd_subscribe, ST_AUTH | ST_SELECTED, false, false },
	{ "UNSUBSCRIBE", cmd_subscribe, ST_AUTH | ST_SELECTED, false, false },
	{ "LIST", cmd_list, ST_AUTH | ST_SELECTED, false, false },
	{ "LSUB", cmd_list, ST_AUTH | ST_SELECTED, false, false },
	{ "STATUS", cmd_status, ST_AUTH | ST_SELECTED, false, false },
	{ "APPEND", cmd_append, ST_AUTH | ST_SELECTED, false, false },
	{ "IDLE", cmd_idle, ST_AUTH | ST_SELECTED, true, false },
	{ "CHECK", cmd_check, ST_SELECTED, true, false },
	{ "CLOSE", cmd_close, ST_SELECTED, true, false },
	{ "UNSELECT", cmd_close, ST_SELECTED, true, false },
	{ "EXPUNGE", cmd_expunge, ST_SELECTED, false, false },
	{ "SEARCH", cmd_search, ST_SELECTED, false, true },
	{ "FETCH", cmd_fetch, ST_SELECTED, false, true },
	{ "STORE", cmd_store, ST_SELECTED, false, true },
	{ "COPY", cmd_copy, ST_SELECTED, false, false },
	{ "MOVE", cmd_copy, ST_SELECTED, false, false },
};

/* Commands that UID may prefix. */
static bool
uid_allowed(const char *name)
{
	return ascii_strcasecmp(name, "FETCH") == 0 || ascii_strcasecmp(name, "STORE") == 0 ||
	       ascii_strcasecmp(name, "SEARCH") == 0 || ascii_strcasecmp(name, "COPY") == 0 ||
	       ascii_strcasecmp(name, "EXPUNGE") == 0 || ascii_strcasecmp(name, "MOVE") == 0;
}

static unsigned
state_bit(enum client_state state)
{
	switch (state) {
	case CLIENT_NOT_AUTH:
		return ST_NOT_AUTH;
	case CLIENT_AUTH:
		return ST_AUTH;
	case CLIENT_SELECTED:
		return ST_SELECTED;
	case CLIENT_LOGOUT:
		break;
	}
	return 0;
}

bool
imap_cmd_dispatch(struct client *c, const struct imap_command *cmd)
{
	struct cmd_ctx ctx = {
		.c = c,
		.tag = cmd->tag,
		.name = cmd->name,
		.args = cmd->args,
		.count = cmd->arg_count,
	};
	const struct cmd_def *def = NULL;
	bool done;

	if (ascii_strcasecmp(cmd->name, "UID") == 0) {
		if (cmd->arg_count == 0 || cmd->args[0].type != IMAP_ARG_ATOM ||
		    !uid_allowed(cmd->args[0].str))
			return bad(&ctx, "UID needs FETCH, STORE, SEARCH, COPY, MOVE or EXPUNGE.");
		ctx.uid = true;
		ctx.name = cmd->args[0].str;
		ctx.args++;
		ctx.count--;
	}
	for (size_t i = 0; i < N_ELEMENTS(commands); i++) {
		if (ascii_strcasecmp(ctx.name, commands[i].name) == 0) {
			def = &commands[i];
			break;
		}
	}
	if (def == NULL)
		return bad(&ctx, "Unknown command.");
	if ((def->states & state_bit(c->state)) == 0) {
		if (c->state == CLIENT_NOT_AUTH)
			return bad(&ctx, "Log in first.");
		if (c->state == CLIENT_AUTH && def->states == ST_SELECTED)
			return bad(&ctx, "Select a mailbox first.");
		return bad(&ctx, "Command not valid in this state.");
	}
	if (def->no_args && ctx.count > 0)
		return bad(&ctx, "This command takes no arguments.");
	log_debug(c->sid, "command %s%s", ctx.uid ? "UID " : "", def->name);
	/* Changes made by other processes show up before the command. */
	if (c->mbox != NULL)
		(void)mailbox_refresh(c->mbox, c->sid);
	/* The view is brought in line before the tagged answer, which the
	   handler writes last: so untagged updates go before it. */
	struct buf *out = client_outbuf(c);
	size_t mark = out->len;
	done = def->func(&ctx);
	if (done && c->view != NULL && def->func != cmd_fetch && def->func != cmd_idle) {
		/* Insert the updates before the tagged line. */
		struct buf updates = BUF_INIT;
		imap_view_sync(c->view, &updates, !(def->no_expunge && !ctx.uid));
		if (updates.len > 0) {
			const char *tail = out->data + mark;
			const char *tline = NULL;
			/* The tagged line is the last line written. */
			for (const char *p = out->data + out->len - 2; p > tail; p--) {
				if (p[-1] == '\n') {
					tline = p;
					break;
				}
			}
			if (tline == NULL)
				tline = tail;
			size_t off = (size_t)(tline - out->data);
			struct buf rest = BUF_INIT;
			buf_append(&rest, out->data + off, out->len - off);
			buf_truncate(out, off);
			buf_append(out, updates.data, updates.len);
			buf_append(out, rest.data, rest.len);
			buf_free(&rest);
		}
		buf_free(&updates);
	}
	return done;
}

void
imap_cmd_continuation_line(struct client *c, const char *line, size_t len)
{
	char *tag = c->wait_tag;

	c->wait_tag = NULL;
	if (c->mode == MODE_IDLE) {
		c->mode = MODE_COMMAND;
		if (len == 4 && ascii_strncasecmp(line, "DONE", 4) == 0)
			client_send_tagged(c, tag, "OK Idle completed.");
		else
			client_send_tagged(c, tag, "BAD Expected DONE.");
		free(tag);
		return;
	}
	/* MODE_AUTH_CONT */
	c->mode = MODE_COMMAND;
	/* A failed login is answered after the delay (MODE_DELAY). */
	(void)auth_plain_response(c, tag, line, len);
	free(tag);
}
