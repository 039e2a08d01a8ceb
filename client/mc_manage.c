/* mc_manage.c: the mailclient's Manage Mail screen: the listing of the
   mailbox, the mails of one sender shown whole, one of them deleted. */
#include "lib.h"
#include "buf.h"
#include "imap_client_lib.h"
#include "mail_view.h"
#include "mc_screens.h"
#include "mc_util.h"

#include <stdio.h>
#include <stdlib.h>

#define MC_FETCH_BATCH 100                  /* UIDs per FETCH of whole mails */

/* Brings the mirror to the server's state now: NOOP for pending
   changes, then the headers of every message again. Returns 0 or -1. */
static int
mc_refresh(struct mc *mc)
{
	char *reply = NULL;

	if (mc_imap(mc, "NOOP", &reply) < 0)
		return -1;
	free(reply);
	reply = NULL;
	if (mc->count == 0)
		return 0;
	int ret = mc_imap(mc, "FETCH 1:* (UID ENVELOPE INTERNALDATE)", &reply);
	if (ret == 0)
		printf("Cannot list the mailbox: %s\n", reply);
	free(reply);
	if (ret != 1)
		return -1;
	for (size_t i = 0; i < mc->count; i++)
		mc->msgs[i].is_new = false;
	return 0;
}

static void
mc_print_listing(struct mc *mc)
{
	if (mc->count == 0) {
		mc_print("Your mailbox is empty.\n");
		return;
	}
	printf("Your mailbox (%zu mail%s):\n", mc->count, mc->count == 1 ? "" : "s");
	for (size_t i = 0; i < mc->count; i++) {
		const struct mc_msg *m = &mc->msgs[i];
		char when[64] = "(unknown date)";
		if (m->date >= 0)
			mc_format_time(m->date, MC_TIME_LIST, when, sizeof(when));
		printf("%4zu. ", i + 1);
		const char *from = mc_or(m->from, "(unknown sender)");
		mc_write_safe(stdout, from, strlen(from));
		printf("  %s  ", when);
		const char *subject = mc_or(m->subject, "(no subject)");
		mc_write_safe(stdout, subject, strlen(subject));
		putc('\n', stdout);
	}
}

/* Asks for a sender's address, twice at most. Returns 1 with *addr_r,
   0 after two invalid ones, -1 at end of input. */
static int
mc_ask_sender(struct mc *mc, char **addr_r)
{
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line;
		if (mc_read_line(mc, "Enter the sender's mail address: ", &line) == 0)
			return -1;
		mc_trim(line);
		size_t len = strlen(line);
		if (len >= 2 && line[0] == '<' && line[len - 1] == '>') {
			memmove(line, line + 1, len - 2);
			line[len - 2] = '\0';
		}
		if (mc_address_valid(line)) {
			*addr_r = line;
			return 1;
		}
		free(line);
		mc_print("INVALID MAIL-ID\n");
	}
	return 0;
}

/* Fetches the whole mails of uids (in batches) into mc->bodies. */
static int
mc_fetch_bodies(struct mc *mc, const uint32_t *uids, size_t count)
{
	mc_bodies_clear(mc);
	mc->collect_bodies = true;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i += MC_FETCH_BATCH) {
		struct buf cmd = BUF_INIT;
		buf_append_str(&cmd, "UID FETCH ");
		for (size_t j = i; j < count && j < i + MC_FETCH_BATCH; j++)
			buf_printf(&cmd, "%s%u", j == i ? "" : ",", uids[j]);
		buf_append_str(&cmd, " (UID INTERNALDATE BODY[])");
		char *reply = NULL;
		int r = mc_imap(mc, cmd.data, &reply);
		if (r == 0)
			printf("Cannot fetch the mails: %s\n", reply);
		if (r != 1)
			ret = -1;
		free(reply);
		buf_free(&cmd);
	}
	mc->collect_bodies = false;
	return ret;
}

static int
mc_msg_seq(const struct mc *mc, uint32_t uid)
{
	for (size_t i = 0; i < mc->count; i++) {
		if (mc->msgs[i].uid == uid)
			return (int)(i + 1);
	}
	return 0;
}

static void
mc_delete(struct mc *mc, uint32_t uid, size_t number)
{
	char *reply = NULL;

	/* The server's state now: was it deleted elsewhere meanwhile? */
	if (mc_imap(mc, "NOOP", &reply) < 0)
		return;
	free(reply);
	reply = NULL;
	if (mc_msg_seq(mc, uid) == 0) {
		printf("Mail %zu was already deleted on another device.\n", number);
		return;
	}
	mc->deleting_uid = uid;
	char *cmd = xasprintf("UID STORE %u +FLAGS.SILENT (\\Deleted)", uid);
	int ret = mc_imap(mc, cmd, &reply);
	free(cmd);
	if (ret == 1) {
		free(reply);
		reply = NULL;
		bool uidplus = mc->conn != NULL && imapc_has_capability(mc->conn, "UIDPLUS");
		cmd = uidplus ? xasprintf("UID EXPUNGE %u", uid) : xstrdup("EXPUNGE");
		ret = mc_imap(mc, cmd, &reply);
		free(cmd);
	}
	if (ret == 1 && mc_msg_seq(mc, uid) == 0)
		printf("Mail %zu deleted.\n", number);
	else if (ret >= 0)
		printf("Mail %zu could not be deleted: %s\n", number,
		       reply != NULL ? reply : "the server kept it");
	free(reply);
	mc->deleting_uid = 0;
}

int
mc_manage_mail(struct mc *mc)
{
	if (mc_refresh(mc) < 0)
		return 0;
	mc_print_listing(mc);
	if (mc->count == 0) {
		/* Nothing to filter: no sender is asked for. */
		mc_print("NO MAILS TO SHOW\n");
		return 0;
	}

	char *addr = NULL;
	int ret = mc_ask_sender(mc, &addr);
	if (ret <= 0)
		return ret;

	/* The sender's mails, as the server has them now. */
	if (mc_refresh(mc) < 0) {
		free(addr);
		return 0;
	}
	uint32_t *uids = xcalloc(mc->count + 1, sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < mc->count; i++) {
		if (mc->msgs[i].from != NULL && mc->msgs[i].uid != 0 &&
		    mc_address_equal(mc->msgs[i].from, addr))
			uids[n++] = mc->msgs[i].uid;
	}
	free(addr);
	if (n == 0 || mc_fetch_bodies(mc, uids, n) < 0) {
		if (n == 0)
			mc_print("NO MAILS TO SHOW\n");
		free(uids);
		return 0;
	}
	/* Mails deleted meanwhile are simply not there. */
	uint32_t *shown = xcalloc(n, sizeof(*shown));
	size_t shown_count = 0;
	for (size_t i = 0; i < n; i++) {
		const struct mc_body *b = mc_body_find(mc, uids[i]);
		if (b == NULL)
			continue;
		int seq = mc_msg_seq(mc, uids[i]);
		int64_t date = seq > 0 ? mc->msgs[seq - 1].date : -1;
		shown[shown_count++] = uids[i];
		printf("\n======== Mail %zu of %zu ========\n", shown_count, n);
		mail_view_print(stdout, b->data, b->len, date);
	}
	mc_bodies_clear(mc);
	free(uids);
	if (shown_count == 0) {
		mc_print("NO MAILS TO SHOW\n");
		free(shown);
		return 0;
	}
	putc('\n', stdout);

	ret = 0;
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line;
		char *prompt = xasprintf("Enter the number of a mail to delete it (1-%zu), "
					 "or press Enter to go back: ", shown_count);
		int r = mc_read_line(mc, prompt, &line);
		free(prompt);
		if (r == 0) {
			ret = -1;
			break;
		}
		mc_trim(line);
		uint64_t num;
		if (*line == '\0') {
			free(line);
			break;
		}
		if (str_to_u64(line, UINT32_MAX, &num) == 0 && num >= 1 && num <= shown_count) {
			free(line);
			mc_delete(mc, shown[num - 1], (size_t)num);
			break;
		}
		printf("There is no mail number \"%s\".\n", line);
		free(line);
	}
	free(shown);
	return ret;
}
