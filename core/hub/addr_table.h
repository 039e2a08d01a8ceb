/* addr_table.h: what a server keeps per client address: how many
   connections it holds (limits.max_connections_per_address) and how many
   logins from it failed lately (the growing delay before a failed login is
   answered).

   An address is keyed as a network: an IPv4 address alone, an IPv6
   address by its /64 (one subscriber's prefix: a client that picks a new
   address in it is the same client), an IPv4-mapped IPv6 address as its
   IPv4 address. Anything else (a test's socketpair peer "local") is its
   own key. Entries that hold no connection and no recent failure are
   dropped; past ADDR_TABLE_MAX entries the failures of a new address are
   not remembered (it gets the plain delay), while connections are always
   counted (their entries are bounded by limits.max_connections). */
#ifndef ADDR_TABLE_H
#define ADDR_TABLE_H

#include "lib.h"

#define ADDR_TABLE_MAX 16384
/* Failures are forgotten this long after the last one. */
#define ADDR_PENALTY_FORGET_MS (15 * 60 * 1000)
/* The longest delay before a failed login is answered. */
#define ADDR_PENALTY_MAX_MS 15000
/* INET6_ADDRSTRLEN and "/64". */
#define ADDR_KEY_MAX 56

struct addr_table;

struct addr_table *addr_table_new(void);
void addr_table_free(struct addr_table **table);

/* The key of host (a numeric address as the listener gives it). */
void addr_key(const char *host, char key[ADDR_KEY_MAX]);

/* Connections: counts one more for key, unless it already has max
   (then returns false and counts nothing). max 0: no limit. */
bool addr_conn_add(struct addr_table *table, const char *key, unsigned max);
void addr_conn_remove(struct addr_table *table, const char *key);
unsigned addr_conn_count(const struct addr_table *table, const char *key);

/* Logins: a failure from key; returns how long to wait before answering
   it: base_ms for the first failure, doubling with each further one
   (within ADDR_PENALTY_FORGET_MS of the last) up to ADDR_PENALTY_MAX_MS
   (or base_ms, if that is more). base_ms 0 keeps every delay 0. */
unsigned addr_login_failed(struct addr_table *table, const char *key, unsigned base_ms);
/* A success from key forgets its failures. */
void addr_login_succeeded(struct addr_table *table, const char *key);
unsigned addr_failures(const struct addr_table *table, const char *key);

/* Refusals for limits.max_connections_per_address are logged once per
   address and burst: again only for another address, or after a minute. */
struct addr_refusal_log {
	char key[ADDR_KEY_MAX];
	int64_t last;           /* monotonic ms */
};
/* True if a refusal for key should be logged now (and remembers it). */
bool addr_refusal_log_due(struct addr_refusal_log *log, const char *key);

/* The table of the process's login failures, shared by its IMAP and
   SMTP listeners (created at the first call, freed by
   addr_penalties_free()). */
struct addr_table *addr_penalties(void);
void addr_penalties_free(void);

#endif
