/* mc_send.c: the mailclient's Send Mail screen: the mail typed in the
   lab's format (From:, To:, Subject:, body, a line "."), checked and
   sent over SMTP; when that fails, sent again, saved to a file or
   discarded as the user says, never dropped unasked. */
#include "lib.h"
#include "buf.h"
#include "fileio.h"
#include "mc_screens.h"
#include "mc_util.h"
#include "smtp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MC_MAX_BODY (10 * 1024 * 1024)      /* one mail typed in */

/* Reads one "Name: value" line of the lab's format; an invalid one is
   explained and asked again once. check returns NULL if the value is
   good or the explanation (malloc'ed). Returns 1 with *value_r, 0 if
   both tries failed, -1 at end of input. */
static int
mc_read_field(struct mc *mc, const char *name, char *(*check)(struct mc *, const char *),
	      char **value_r)
{
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line = NULL;
		/* Blank lines before a field are skipped; each one is
		   consumed, so this ends at the end of input. */
		do {
			free(line);
			if (mc_read_line(mc, "", &line) == 0)
				return -1;
		} while (*mc_trim(line) == '\0');
		char *value = NULL;
		char *why;
		if (mc_header_line(line, name, &value) == 0)
			why = xasprintf("expected a line \"%s: ...\", got \"%s\"", name, line);
		else
			why = check(mc, value);
		free(line);
		if (why == NULL) {
			*value_r = value;
			return 1;
		}
		free(value);
		printf("Invalid %s line: %s.\n", name, why);
		free(why);
		if (attempt == 0)
			printf("Please enter the %s line again:\n", name);
	}
	return 0;
}

static char *
mc_check_from(struct mc *mc, const char *value)
{
	if (!mc_address_valid(value))
		return xasprintf("\"%s\" is not a mail address of the form user@domain", value);
	if (!mc_address_is_users(value, mc->user))
		return xasprintf("\"%s\" is not your address: you are logged in as %s", value,
				 mc->user);
	return NULL;
}

static char *
mc_check_to(struct mc *mc, const char *value)
{
	struct strlist list;
	char *bad = NULL;

	i_zero(&list);
	int ret = mc_split_addresses(value, &list, &bad);
	strlist_clear(&list);
	if (ret == 0)
		return NULL;
	char *why = *bad == '\0' ? xstrdup("no recipient given") :
				   xasprintf("\"%s\" is not a mail address of the form user@domain",
					     bad);
	free(bad);
	return why;
}

static char *
mc_check_subject(struct mc *mc, const char *value)
{
	return NULL;
}

/* Saves the mail as it was typed, in the lab's format (a line "."
   ends it), so it can be pasted into Send Mail again: a new file
   $HOME/mailclient-unsent-YYYYMMDD-HHMMSS[-N].txt (the current folder
   without HOME), mode 0600, never overwriting one. Returns 0 with
   *path_r (malloc'ed), or -1 with *error_r. */
static int
mc_save_unsent(const char *from, const char *to, const char *subject, const struct buf *body,
	       char **path_r, char **error_r)
{
	const char *home = getenv("HOME");
	const char *dir = home != NULL && *home != '\0' ? home : ".";
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int fd = -1;
	char *path = NULL;

	if (localtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	for (unsigned n = 1; n <= 100 && fd < 0; n++) {
		free(path);
		path = n == 1 ? xasprintf("%s/mailclient-unsent-%s.txt", dir, stamp) :
				xasprintf("%s/mailclient-unsent-%s-%u.txt", dir, stamp, n);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		*error_r = xasprintf("cannot create %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	struct buf text = BUF_INIT;
	buf_printf(&text, "From: %s\nTo: %s\nSubject: %s\n", from, to, subject);
	buf_append(&text, body->data != NULL ? body->data : "", body->len);
	buf_append_str(&text, ".\n");
	int ret = fd_write_full(fd, text.data, text.len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -1;
	if (ret < 0)
		*error_r = xasprintf("cannot write %s: %s", path, strerror(errno));
	if (close(fd) < 0 && ret == 0) {
		*error_r = xasprintf("cannot write %s: %s", path, strerror(errno));
		ret = -1;
	}
	buf_free(&text);
	if (ret < 0) {
		(void)unlink(path);
		free(path);
		return -1;
	}
	*path_r = path;
	return 0;
}

/* What to do with a mail that was not sent. Returns 'r' (try again),
   's' (save it) or 'd' (discard it); at the end of input 's'. */
static int
mc_ask_unsent(struct mc *mc)
{
	for (;;) {
		char *line;
		if (mc_read_line(mc, "The mail is kept: type R to try again, S to save it to a "
				 "file, D to discard it: ", &line) == 0)
			return 's';
		mc_trim(line);
		int c = strlen(line) == 1 ? line[0] | 0x20 : 0;
		free(line);
		if (c == 'r' || c == 's' || c == 'd')
			return c;
		mc_print("Please type R, S or D.\n");
	}
}

/* Sends the mail; when that fails, offers to try again, save it or
   discard it, so what was typed is never lost without being asked.
   Returns 0, or -1 if the input ended (the mail is saved then). */
static int
mc_send_typed(struct mc *mc, const char *from, const char *to, const char *subject,
	      const struct buf *body)
{
	struct strlist rcpts;
	char *bad = NULL;
	struct buf msg = BUF_INIT;
	const char *domain = strrchr(from, '@') + 1;
	int ret = 0;

	i_zero(&rcpts);
	(void)mc_split_addresses(to, &rcpts, &bad);
	free(bad);
	mc_build_message(from, to, subject, body->data != NULL ? body->data : "", domain,
			 (int64_t)time(NULL), &msg);
	struct smtpc_mail mail = {
		.from = from,
		.to = (const char *const *)rcpts.items,
		.to_count = rcpts.count,
		.data = msg.data,
		.data_len = msg.len,
	};
	struct smtpc_settings set = {
		.host = mc->host,
		.port = mc->smtp_port,
		.timeout_ms = mc->timeout_ms,
		.helo_name = domain,
		.tls = &mc->smtp_tls,
		.user = mc->user,
		.password = mc->password,
	};
	/* Each round sends, or consumes input: ends at the end of input. */
	for (;;) {
		char *verdict = NULL, *err = NULL, *path = NULL;
		int sret = smtpc_send(&set, &mail, &verdict, &err);
		if (sret == 1)
			printf("Mail sent successfully (server: %s).\n", verdict);
		else
			printf("Mail not sent: %s\n", sret == 0 ? verdict : err);
		free(verdict);
		free(err);
		if (sret == 1)
			break;
		int choice = mc_ask_unsent(mc);
		if (choice == 'r')
			continue;
		if (choice == 'd') {
			mc_print("Mail discarded.\n");
			break;
		}
		if (mc->in_eof)
			ret = -1;
		if (mc_save_unsent(from, to, subject, body, &path, &err) == 0) {
			printf("Mail saved in %s (paste it into Send Mail to send it again).\n", path);
			free(path);
			break;
		}
		printf("Mail not saved: %s\n", err);
		free(err);
		if (ret < 0)
			break;
	}
	buf_free(&msg);
	strlist_clear(&rcpts);
	return ret;
}

int
mc_send_mail(struct mc *mc)
{
	char *from = NULL, *to = NULL, *subject = NULL;
	struct buf body = BUF_INIT;
	int ret;

	mc_print("Enter the mail in this format, ending with a line holding a single \".\":\n"
		 "From: user@domain\n"
		 "To: user@domain\n"
		 "Subject: subject\n"
		 "message body, one or more lines\n"
		 ".\n");
	/* Notices would land between the lines being typed: they wait
	   until the mail is complete. */
	mc->hold_notices = true;
	ret = mc_read_field(mc, "From", mc_check_from, &from);
	if (ret == 1)
		ret = mc_read_field(mc, "To", mc_check_to, &to);
	if (ret == 1)
		ret = mc_read_field(mc, "Subject", mc_check_subject, &subject);
	/* The body: every line up to a line that is a single ".". */
	bool too_long = false;
	while (ret == 1) {
		char *line;
		if (mc_read_line(mc, "", &line) == 0) {
			ret = -1;
			break;
		}
		if (strcmp(line, ".") == 0) {
			free(line);
			break;
		}
		if (body.len + strlen(line) + 1 <= MC_MAX_BODY) {
			buf_append_str(&body, line);
			buf_append_c(&body, '\n');
		} else {
			too_long = true;
		}
		free(line);
	}
	mc->hold_notices = false;
	mc_notices_flush(mc);
	if (ret == 1 && too_long) {
		printf("Mail not sent: the body is longer than %d MB.\n", MC_MAX_BODY / 1024 / 1024);
		ret = 0;
	}
	if (ret == 1)
		ret = mc_send_typed(mc, from, to, subject, &body) < 0 ? -1 : 0;
	else if (ret == 0)
		mc_print("Mail not sent.\n");
	free(from);
	free(to);
	free(subject);
	buf_free(&body);
	return ret < 0 ? -1 : 0;
}
