/* sort.h: what SORT (RFC 5256, RFC 5957 SORT=DISPLAY) and THREAD (RFC
   5256: ORDEREDSUBJECT, REFERENCES) compare, taken from a message's
   header once; the orders; the thread trees. */
#ifndef SORT_H
#define SORT_H

#include "lib.h"
#include "buf.h"
#include "imap_parser.h"
#include "storage.h"

enum sort_key {
	SORT_ARRIVAL,
	SORT_CC,
	SORT_DATE,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
	SORT_DISPLAYFROM,
	SORT_DISPLAYTO,
};

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

#define SORT_MAX_CRITS 16

/* One message as the orders see it. Strings are malloc'ed ("" when the
   field is absent). */
struct sort_msg {
	uint32_t seq, uid;
	int64_t arrival;        /* internal date */
	int64_t date;           /* Date: in UTC, else the internal date */
	uint64_t size;
	char *subject;          /* base subject (RFC 5256 2.1) */
	bool is_reply;
	char *from, *to, *cc;   /* addr-mailbox of the first address, upper case */
	char *dfrom, *dto;      /* display name, else the address (RFC 5957) */
	char *msgid;            /* Message-ID, NULL if none */
	struct strlist refs;    /* References, else In-Reply-To's first id */
};

/* Fills m from rec and the message bytes (header is enough; msg may be
   NULL when no key needs the header). */
void sort_msg_fill(struct sort_msg *m, const struct mail_rec *rec, const char *msg,
		   size_t len);
void sort_msg_clear(struct sort_msg *m);

/* Parses a SORT criteria list "(REVERSE SUBJECT DATE)". Returns the
   number of criteria, or -1 with a static reason. */
int sort_parse(const struct imap_arg *list, struct sort_crit *crits, const char **error_r);
/* True if a criterion needs the message header (not ARRIVAL or SIZE). */
bool sort_needs_header(const struct sort_crit *crits, size_t count);
/* Orders msgs by crits, ties by sequence number (RFC 5256 section 3). */
void sort_msgs(struct sort_msg **msgs, size_t count, const struct sort_crit *crits,
	       size_t crit_count);

enum thread_algo {
	THREAD_ORDEREDSUBJECT,
	THREAD_REFERENCES,
};
/* Writes the thread list of msgs, " (1 2)(3 (4)(5))", each message as its
   UID (uid) or sequence number. */
void thread_write(enum thread_algo algo, struct sort_msg **msgs, size_t count, bool uid,
		  struct buf *out);

#endif
