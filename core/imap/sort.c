/* sort.c: the sort keys and orders of SORT (see sort.h). */
#include "sort.h"
#include "address.h"
#include "basesubject.h"
#include "message.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

/* The first mailbox of an address list: its local part and its display
   form (RFC 5957: the display name, else "mailbox@host"). */
struct first_addr {
	bool found;
	struct buf mailbox, display;
};

static void
first_addr_cb(const struct message_address *addr, void *context)
{
	struct first_addr *fa = context;

	if (fa->found || addr->kind == MESSAGE_ADDRESS_GROUP_END)
		return;
	fa->found = true;
	if (addr->kind == MESSAGE_ADDRESS_GROUP_START) {
		/* As in the IMAP envelope, a group's start is an address whose
		   mailbox is the group's name (RFC 3501 7.4.2): that is what
		   "the first address" is (Dovecot sorts the same way). */
		if (addr->name->len > 0) {
			buf_append(&fa->mailbox, addr->name->data, addr->name->len);
			message_decode_header(addr->name->data, addr->name->len, &fa->display);
		}
		return;
	}
	if (addr->mailbox->len > 0)
		buf_append(&fa->mailbox, addr->mailbox->data, addr->mailbox->len);
	if (addr->name->len > 0) {
		message_decode_header(addr->name->data, addr->name->len, &fa->display);
	} else {
		if (addr->mailbox->len > 0)
			buf_append(&fa->display, addr->mailbox->data, addr->mailbox->len);
		if (addr->host->len > 0) {
			buf_append_c(&fa->display, '@');
			buf_append(&fa->display, addr->host->data, addr->host->len);
		}
	}
}

/* U+00C0..U+00FF as the letters they are folded to ("" keeps the
   character): enough of RFC 5051's i;unicode-casemap (title case, then
   the canonical decomposition without its combining marks) for the
   Latin-1 names and subjects that Dovecot orders this way. */
static const char *const latin1_fold[64] = {
	"A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
	"D", "N", "O", "O", "O", "O", "O", "", "O", "U", "U", "U", "U", "Y", "TH", "SS",
	"A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
	"D", "N", "O", "O", "O", "O", "O", "", "O", "U", "U", "U", "U", "Y", "TH", "Y",
};

/* The key form of a string: ASCII letters upper case, Latin-1 letters
   folded (latin1_fold), everything else as it is. */
static char *
upper_dup(const struct buf *b)
{
	struct buf out = BUF_INIT;
	const unsigned char *p = (const unsigned char *)(b->data != NULL ? b->data : "");

	for (size_t i = 0; i < b->len; i++) {
		if (p[i] == 0xc3 && i + 1 < b->len && (p[i + 1] & 0xc0) == 0x80 &&
		    latin1_fold[p[i + 1] - 0x80][0] != '\0') {
			buf_append_str(&out, latin1_fold[p[i + 1] - 0x80]);
			i++;
			continue;
		}
		buf_append_c(&out, (char)toupper(p[i]));
	}
	if (out.data == NULL)
		return xstrdup("");
	return buf_steal(&out);
}

/* Sets *mailbox_r (upper case) and *display_r (may be NULL) from the
   first address of field. */
static void
fill_addr(const char *hdr, size_t hlen, const char *field, struct buf *tmp, char **mailbox_r,
	  char **display_r)
{
	struct first_addr fa = { false, BUF_INIT, BUF_INIT };

	buf_reset(tmp);
	if (hdr != NULL && message_header_get(hdr, hlen, field, tmp) > 0)
		message_address_list_parse(tmp->data, tmp->len, first_addr_cb, &fa);
	*mailbox_r = upper_dup(&fa.mailbox);
	if (display_r != NULL)
		*display_r = upper_dup(&fa.display);
	buf_free(&fa.mailbox);
	buf_free(&fa.display);
}

/* The msg-ids "<...>" of value, in order, into list. */
static void
add_msgids(const char *value, size_t len, struct strlist *list)
{
	size_t i = 0;

	while (i < len) {
		const char *lt = memchr(value + i, '<', len - i), *gt;

		if (lt == NULL)
			break;
		gt = memchr(lt, '>', len - (size_t)(lt - value));
		if (gt == NULL)
			break;
		if (gt - lt > 1) {
			char *id = xstrndup(lt, (size_t)(gt - lt) + 1);

			strlist_add_take(list, id);
		}
		i = (size_t)(gt - value) + 1;
	}
}

void
sort_msg_fill(struct sort_msg *m, const struct mail_rec *rec, const char *msg, size_t len)
{
	struct buf tmp = BUF_INIT;
	struct strlist ids = { 0 };
	size_t hlen = msg != NULL ? message_header_size(msg, len) : 0;
	int32_t tz;

	m->uid = rec->uid;
	m->arrival = rec->internal_date;
	m->date = rec->internal_date;
	m->size = rec->size;
	if (msg != NULL && message_header_get(msg, hlen, "Date", &tmp) > 0 &&
	    message_parse_date(tmp.data, &m->date, &tz) < 0)
		m->date = rec->internal_date;
	buf_reset(&tmp);
	if (msg != NULL)
		(void)message_header_get(msg, hlen, "Subject", &tmp);
	{
		struct buf base = BUF_INIT;

		base_subject(tmp.data != NULL ? tmp.data : "", tmp.len, &base, &m->is_reply);
		m->subject = upper_dup(&base);
		buf_free(&base);
	}
	fill_addr(msg, hlen, "From", &tmp, &m->from, &m->dfrom);
	fill_addr(msg, hlen, "To", &tmp, &m->to, &m->dto);
	fill_addr(msg, hlen, "Cc", &tmp, &m->cc, NULL);
	buf_reset(&tmp);
	if (msg != NULL && message_header_get(msg, hlen, "Message-ID", &tmp) > 0) {
		add_msgids(tmp.data, tmp.len, &ids);
		if (ids.count > 0)
			m->msgid = xstrdup(ids.items[0]);
		strlist_clear(&ids);
	}
	buf_reset(&tmp);
	if (msg != NULL && message_header_get(msg, hlen, "References", &tmp) > 0)
		add_msgids(tmp.data, tmp.len, &m->refs);
	if (m->refs.count == 0 && msg != NULL) {
		buf_reset(&tmp);
		if (message_header_get(msg, hlen, "In-Reply-To", &tmp) > 0) {
			add_msgids(tmp.data, tmp.len, &ids);
			if (ids.count > 0)
				strlist_add(&m->refs, ids.items[0]);
			strlist_clear(&ids);
		}
	}
	buf_free(&tmp);
}

void
sort_msg_clear(struct sort_msg *m)
{
	free(m->subject);
	free(m->from);
	free(m->to);
	free(m->cc);
	free(m->dfrom);
	free(m->dto);
	free(m->msgid);
	strlist_clear(&m->refs);
	i_zero(m);
}

static const struct {
	const char *name;
	enum sort_key key;
} sort_names[] = {
	{ "ARRIVAL", SORT_ARRIVAL }, { "CC", SORT_CC }, { "DATE", SORT_DATE },
	{ "FROM", SORT_FROM }, { "SIZE", SORT_SIZE }, { "SUBJECT", SORT_SUBJECT },
	{ "TO", SORT_TO }, { "DISPLAYFROM", SORT_DISPLAYFROM }, { "DISPLAYTO", SORT_DISPLAYTO },
};

int
sort_parse(const struct imap_arg *list, struct sort_crit *crits, const char **error_r)
{
	int count = 0;
	bool reverse = false;

	if (list->type != IMAP_ARG_LIST || list->list_count == 0) {
		*error_r = "SORT needs a list of sort criteria.";
		return -1;
	}
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		bool known = false;

		if (imap_arg_atom_equals(a, "REVERSE")) {
			if (reverse) {
				*error_r = "REVERSE twice.";
				return -1;
			}
			reverse = true;
			continue;
		}
		for (size_t j = 0; j < N_ELEMENTS(sort_names) && !known; j++) {
			if (imap_arg_atom_equals(a, sort_names[j].name)) {
				if (count >= SORT_MAX_CRITS) {
					*error_r = "Too many sort criteria.";
					return -1;
				}
				crits[count].key = sort_names[j].key;
				crits[count].reverse = reverse;
				count++;
				known = true;
			}
		}
		if (!known) {
			*error_r = "Unknown sort criterion.";
			return -1;
		}
		reverse = false;
	}
	if (reverse) {
		*error_r = "REVERSE must come before a sort criterion.";
		return -1;
	}
	return count;
}

bool
sort_needs_header(const struct sort_crit *crits, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (crits[i].key != SORT_ARRIVAL && crits[i].key != SORT_SIZE)
			return true;
	}
	return false;
}

static int
cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int
sort_cmp_key(const struct sort_msg *a, const struct sort_msg *b, enum sort_key key)
{
	switch (key) {
	case SORT_ARRIVAL:
		return cmp_num(a->arrival, b->arrival);
	case SORT_DATE:
		return cmp_num(a->date, b->date);
	case SORT_SIZE:
		return a->size < b->size ? -1 : a->size > b->size ? 1 : 0;
	case SORT_CC:
		return strcmp(a->cc, b->cc);
	case SORT_FROM:
		return strcmp(a->from, b->from);
	case SORT_TO:
		return strcmp(a->to, b->to);
	case SORT_SUBJECT:
		return strcmp(a->subject, b->subject);
	case SORT_DISPLAYFROM:
		return strcmp(a->dfrom, b->dfrom);
	case SORT_DISPLAYTO:
		return strcmp(a->dto, b->dto);
	}
	return 0;
}

/* qsort has no context argument: the criteria of the sort under way
   (the loop is single-threaded). */
static const struct sort_crit *cur_crits;
static size_t cur_count;

static int
sort_cmp(const void *pa, const void *pb)
{
	const struct sort_msg *a = *(const struct sort_msg *const *)pa;
	const struct sort_msg *b = *(const struct sort_msg *const *)pb;

	for (size_t i = 0; i < cur_count; i++) {
		int r = sort_cmp_key(a, b, cur_crits[i].key);

		if (r != 0)
			return cur_crits[i].reverse ? -r : r;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

void
sort_msgs(struct sort_msg **msgs, size_t count, const struct sort_crit *crits,
	  size_t crit_count)
{
	cur_crits = crits;
	cur_count = crit_count;
	qsort(msgs, count, sizeof(*msgs), sort_cmp);
	cur_crits = NULL;
	cur_count = 0;
}
