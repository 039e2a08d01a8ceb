/* quota.h: per-user quota (RFC 9208). One quota root "" per user covers
   all the user's mailboxes; its resources are STORAGE (units of 1024
   octets, counted from the RFC822.SIZE of each message) and MESSAGE. The
   limits come from the config (quota.storage, quota.messages; 0 means
   unlimited); nothing sets them over IMAP. */
#ifndef QUOTA_H
#define QUOTA_H

#include "lib.h"
#include "storage.h"

struct hub;

struct quota_limits {
	uint64_t storage_kib; /* 0 = unlimited */
	uint64_t messages;    /* 0 = unlimited */
};

struct quota_usage {
	uint64_t octets; /* sum of the messages' RFC822.SIZE */
	uint64_t messages;
};

/* The usage of user over all their mailboxes (opened through the hub,
   shared with the sessions that have them open, so as fresh as those
   sessions' views: a change by another process counts once the hub has
   picked it up, at the latest when the mailbox is opened here). Costs
   one open per mailbox (a lookup for one the hub has open), and a pass
   over a mailbox's messages only when they changed since the last check
   (mailbox_octets()). Returns 0, or -1 with *err_r. */
int quota_user_usage(struct hub *hub, const struct storage_ctx *storage, const char *sid,
		     const char *user, struct quota_usage *usage_r, enum storage_error *err_r);

/* True when usage plus add_octets octets in add_messages messages stays
   within limits (a resource at exactly its limit is within it). */
bool quota_allows(const struct quota_limits *limits, const struct quota_usage *usage,
		  uint64_t add_octets, uint64_t add_messages);

/* The STORAGE usage in KiB as RFC 9208 5.1 counts it (rounded up). */
uint64_t quota_usage_kib(const struct quota_usage *usage);

#endif
