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
#include <time.h>

#define MC_FETCH_BATCH 100                  /* UIDs per FETCH of whole mails */
#define MC_SENDER_COLUMN 40                 /* the widest sender column */
#define MC_PROMPT_NUMBERS 6                 /* numbers named in the delete prompt */

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

/* The numbers the user saw: number i + 1 of the listing is uids[i].
   Kept for the whole screen, so a mail keeps its listing number in the
   sender's view and for delete even if others are deleted meanwhile;
   mails that arrive after the listing get the numbers after it. */
struct mc_listing {
	uint32_t *uids;
	size_t count, alloc;
};

static void
mc_listing_add(struct mc_listing *list, uint32_t uid)
{
	xgrow(&list->uids, &list->alloc, list->count + 1, sizeof(*list->uids));
	list->uids[list->count++] = uid;
}

/* The listing number of uid, 0 if it was not listed. */
static size_t
mc_listing_number(const struct mc_listing *list, uint32_t uid)
{
	for (size_t i = 0; i < list->count; i++) {
		if (list->uids[i] == uid)
			return i + 1;
	}
	return 0;
}

static void
mc_pad(size_t n)
{
	while (n-- > 0)
		putc(' ', stdout);
}

/* Prints the mailbox in aligned columns: number, sender (as wide as the
   widest, up to MC_SENDER_COLUMN; a wider one overflows its row), the
   time the server received the mail (local zone, named in the column
   head), subject. Records the numbers in list. */
static void
mc_print_listing(struct mc *mc, struct mc_listing *list)
{
	list->count = 0;
	if (mc->count == 0) {
		mc_print("Your mailbox is empty.\n");
		return;
	}
	char digits[24];
	size_t num_w = (size_t)snprintf(digits, sizeof(digits), "%zu", mc->count);
	size_t from_w = strlen("Sender");
	if (num_w < 4)
		num_w = 4;
	for (size_t i = 0; i < mc->count; i++) {
		size_t w = mc_display_width(mc_or(mc->msgs[i].from, "(unknown sender)"));
		if (w > from_w)
			from_w = w < MC_SENDER_COLUMN ? w : MC_SENDER_COLUMN;
	}
	char zone[16] = "";
	time_t now = time(NULL);
	struct tm tm;
	if (localtime_r(&now, &tm) != NULL)
		strftime(zone, sizeof(zone), "%Z", &tm);
	char date_head[40];
	snprintf(date_head, sizeof(date_head), "Received (%s)", zone[0] != '\0' ? zone : "local");
	size_t date_w = strlen("YYYY-MM-DD : hh : mm");
	if (strlen(date_head) > date_w)
		date_w = strlen(date_head);

	printf("Your mailbox (%zu mail%s):\n", mc->count, mc->count == 1 ? "" : "s");
	printf("%*s  %-*s  %-*s  %s\n", (int)num_w, "#", (int)from_w, "Sender", (int)date_w,
	       date_head, "Subject");
	for (size_t i = 0; i < mc->count; i++) {
		const struct mc_msg *m = &mc->msgs[i];
		char when[64] = "(unknown date)";
		if (m->date >= 0)
			mc_format_time(m->date, MC_TIME_LIST, when, sizeof(when));
		printf("%*zu. ", (int)num_w, i + 1);
		const char *from = mc_or(m->from, "(unknown sender)");
		size_t w = mc_display_width(from);
		mc_write_safe(stdout, from, strlen(from));
		mc_pad(w < from_w ? from_w - w : 0);
		printf("  %-*s  ", (int)date_w, when);
		const char *subject = mc_or(m->subject, "(no subject)");
		mc_write_safe(stdout, subject, strlen(subject));
		putc('\n', stdout);
		mc_listing_add(list, m->uid);
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

/* The mails of one sender to show, by listing number (number[i] is
   the listing number of uid[i]). */
struct mc_selection {
	uint32_t *uids;
	size_t *numbers;
	size_t count;
};

static void
mc_selection_free(struct mc_selection *sel)
{
	free(sel->uids);
	free(sel->numbers);
	i_zero(sel);
}

/* The mails of addr the mirror has now, in listing order: the listed
   ones still there, then those that came after the listing (they get
   the next numbers). */
static void
mc_select_sender(struct mc *mc, struct mc_listing *list, const char *addr,
		 struct mc_selection *sel_r)
{
	i_zero(sel_r);
	for (size_t i = 0; i < mc->count; i++) {
		uint32_t uid = mc->msgs[i].uid;
		if (uid != 0 && mc_listing_number(list, uid) == 0)
			mc_listing_add(list, uid);
	}
	sel_r->uids = xcalloc(list->count + 1, sizeof(*sel_r->uids));
	sel_r->numbers = xcalloc(list->count + 1, sizeof(*sel_r->numbers));
	for (size_t k = 0; k < list->count; k++) {
		int seq = mc_msg_seq(mc, list->uids[k]);
		const char *from = seq > 0 ? mc->msgs[seq - 1].from : NULL;
		if (from != NULL && mc_address_equal(from, addr)) {
			sel_r->uids[sel_r->count] = list->uids[k];
			sel_r->numbers[sel_r->count++] = k + 1;
		}
	}
}

/* Shows the fetched mails of sel, each headed by its listing number;
   keeps in sel only those shown (a mail deleted meanwhile is not). */
static void
mc_show_selection(struct mc *mc, struct mc_selection *sel, const char *addr)
{
	size_t n = sel->count, shown = 0;

	printf("%zu mail%s from %s (numbered as in the list):\n", n, n == 1 ? "" : "s", addr);
	for (size_t i = 0; i < n; i++) {
		const struct mc_body *b = mc_body_find(mc, sel->uids[i]);
		if (b == NULL)
			continue;
		int seq = mc_msg_seq(mc, sel->uids[i]);
		int64_t date = seq > 0 ? mc->msgs[seq - 1].date : -1;
		sel->uids[shown] = sel->uids[i];
		sel->numbers[shown] = sel->numbers[i];
		shown++;
		printf("\n======== Mail %zu (%zu of %zu from ", sel->numbers[i], shown, n);
		mc_write_safe(stdout, addr, strlen(addr));
		printf(") ========\n");
		mail_view_print(stdout, b->data, b->len, date);
	}
	sel->count = shown;
}

/* "3", "3 or 5", "3, 5 or 7"; beyond MC_PROMPT_NUMBERS, the first and
   the last with "the numbers above". */
static char *
mc_numbers_text(const struct mc_selection *sel)
{
	struct buf b = BUF_INIT;
	size_t n = sel->count;

	if (n > MC_PROMPT_NUMBERS) {
		buf_printf(&b, "one of the numbers above, %zu to %zu", sel->numbers[0],
			   sel->numbers[n - 1]);
		return buf_steal(&b);
	}
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%zu", i == 0 ? "" : i + 1 == n ? " or " : ", ", sel->numbers[i]);
	return buf_steal(&b);
}

/* Asks which of the shown mails to delete, twice at most. Returns 0,
   or -1 at the end of input. */
static int
mc_ask_delete(struct mc *mc, const struct mc_selection *sel)
{
	char *numbers = mc_numbers_text(sel);
	char *prompt = xasprintf("Enter the number of a mail to delete it (%s), "
				 "or press Enter to go back: ", numbers);
	int ret = 0;

	free(numbers);
	for (unsigned attempt = 0; attempt < 2; attempt++) {
		char *line;
		if (mc_read_line(mc, prompt, &line) == 0) {
			ret = -1;
			break;
		}
		mc_trim(line);
		if (*line == '\0') {
			free(line);
			break;
		}
		uint64_t num;
		size_t k = sel->count;
		if (str_to_u64(line, UINT32_MAX, &num) == 0) {
			for (k = 0; k < sel->count && sel->numbers[k] != num; k++)
				;
		}
		if (k < sel->count) {
			free(line);
			mc_delete(mc, sel->uids[k], sel->numbers[k]);
			break;
		}
		printf("There is no mail number \"%s\" among those shown.\n", line);
		free(line);
	}
	free(prompt);
	return ret;
}

/* The Manage Mail screen. One numbering throughout: the listing's. */
int
mc_manage_mail(struct mc *mc)
{
	struct mc_listing list;
	struct mc_selection sel;

	if (mc_refresh(mc) < 0)
		return 0;
	i_zero(&list);
	mc_print_listing(mc, &list);
	if (mc->count == 0) {
		/* Nothing to filter: no sender is asked for. */
		mc_print("NO MAILS TO SHOW\n");
		free(list.uids);
		return 0;
	}

	char *addr = NULL;
	int ret = mc_ask_sender(mc, &addr);
	/* The sender's mails, as the server has them now. */
	if (ret <= 0 || mc_refresh(mc) < 0) {
		free(addr);
		free(list.uids);
		return ret < 0 ? -1 : 0;
	}
	mc_select_sender(mc, &list, addr, &sel);
	free(list.uids);
	if (sel.count > 0 && mc_fetch_bodies(mc, sel.uids, sel.count) < 0) {
		free(addr);
		mc_selection_free(&sel);
		return 0;
	}
	if (sel.count > 0)
		mc_show_selection(mc, &sel, addr);
	mc_bodies_clear(mc);
	free(addr);
	if (sel.count == 0) {
		mc_print("NO MAILS TO SHOW\n");
		mc_selection_free(&sel);
		return 0;
	}
	putc('\n', stdout);
	ret = mc_ask_delete(mc, &sel);
	mc_selection_free(&sel);
	return ret;
}
