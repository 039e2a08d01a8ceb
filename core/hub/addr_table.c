/* addr_table.c: per-address connection counts and login penalties (see
   addr_table.h). A chained hash table of fixed size: lookups are O(1) on
   average, and a sweep (O(entries)) happens only when the table is full. */
#include "addr_table.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#define ADDR_BUCKETS 4096

struct addr_entry {
	struct addr_entry *next;
	char key[ADDR_KEY_MAX];
	unsigned conns;
	unsigned failures;
	int64_t last_failure;   /* monotonic ms */
};

struct addr_table {
	struct addr_entry *buckets[ADDR_BUCKETS];
	size_t count;
};

static struct addr_table *penalties;

struct addr_table *
addr_table_new(void)
{
	return xcalloc(1, sizeof(struct addr_table));
}

void
addr_table_free(struct addr_table **_table)
{
	struct addr_table *table = *_table;

	if (table == NULL)
		return;
	*_table = NULL;
	for (size_t i = 0; i < ADDR_BUCKETS; i++) {
		while (table->buckets[i] != NULL) {
			struct addr_entry *e = table->buckets[i];
			table->buckets[i] = e->next;
			free(e);
		}
	}
	free(table);
}

void
addr_key(const char *host, char key[ADDR_KEY_MAX])
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1) {
		inet_ntop(AF_INET, &a4, key, ADDR_KEY_MAX);
		return;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			inet_ntop(AF_INET, &a4, key, ADDR_KEY_MAX);
			return;
		}
		char net[INET6_ADDRSTRLEN];
		memset(&a6.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &a6, net, sizeof(net));
		snprintf(key, ADDR_KEY_MAX, "%s/64", net);
		return;
	}
	snprintf(key, ADDR_KEY_MAX, "%s", host);
}

static size_t
addr_hash(const char *key)
{
	size_t h = 5381;

	for (; *key != '\0'; key++)
		h = h * 33 + (unsigned char)*key;
	return h % ADDR_BUCKETS;
}

static struct addr_entry *
addr_find(const struct addr_table *table, const char *key)
{
	for (struct addr_entry *e = table->buckets[addr_hash(key)]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static bool
addr_idle(const struct addr_entry *e, int64_t now)
{
	return e->conns == 0 &&
	       (e->failures == 0 || now - e->last_failure >= ADDR_PENALTY_FORGET_MS);
}

/* Drops the entries that hold nothing (a full table only). */
static void
addr_sweep(struct addr_table *table)
{
	int64_t now = mono_ms();

	for (size_t i = 0; i < ADDR_BUCKETS; i++) {
		struct addr_entry **p = &table->buckets[i];
		while (*p != NULL) {
			struct addr_entry *e = *p;
			if (addr_idle(e, now)) {
				*p = e->next;
				free(e);
				table->count--;
			} else {
				p = &e->next;
			}
		}
	}
}

/* The entry of key, made if missing. Past ADDR_TABLE_MAX entries that
   still hold something, NULL unless always: a connection is always
   counted (those entries are bounded by limits.max_connections), a
   failure from a new address is not remembered. */
static struct addr_entry *
addr_get(struct addr_table *table, const char *key, bool always)
{
	struct addr_entry *e = addr_find(table, key);
	size_t b;

	if (e != NULL)
		return e;
	if (table->count >= ADDR_TABLE_MAX) {
		addr_sweep(table);
		if (table->count >= ADDR_TABLE_MAX && !always)
			return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	b = addr_hash(key);
	e->next = table->buckets[b];
	table->buckets[b] = e;
	table->count++;
	return e;
}

/* Frees e if it holds nothing any more. */
static void
addr_release(struct addr_table *table, struct addr_entry *e)
{
	struct addr_entry **p;

	if (!addr_idle(e, mono_ms()))
		return;
	for (p = &table->buckets[addr_hash(e->key)]; *p != e; p = &(*p)->next)
		;
	*p = e->next;
	free(e);
	table->count--;
}

bool
addr_conn_add(struct addr_table *table, const char *key, unsigned max)
{
	struct addr_entry *e = addr_get(table, key, true);

	if (max != 0 && e->conns >= max) {
		addr_release(table, e);
		return false;
	}
	e->conns++;
	return true;
}

void
addr_conn_remove(struct addr_table *table, const char *key)
{
	struct addr_entry *e = addr_find(table, key);

	if (e == NULL || e->conns == 0)
		return;
	e->conns--;
	addr_release(table, e);
}

unsigned
addr_conn_count(const struct addr_table *table, const char *key)
{
	const struct addr_entry *e = addr_find(table, key);

	return e != NULL ? e->conns : 0;
}

unsigned
addr_login_failed(struct addr_table *table, const char *key, unsigned base_ms)
{
	struct addr_entry *e = addr_get(table, key, false);
	int64_t now = mono_ms();
	uint64_t delay = base_ms;

	if (e == NULL || base_ms == 0)
		return base_ms;
	if (e->failures > 0 && now - e->last_failure >= ADDR_PENALTY_FORGET_MS)
		e->failures = 0;
	e->failures++;
	e->last_failure = now;
	for (unsigned i = 1; i < e->failures && delay < ADDR_PENALTY_MAX_MS; i++)
		delay *= 2;
	if (delay > ADDR_PENALTY_MAX_MS)
		delay = base_ms > ADDR_PENALTY_MAX_MS ? base_ms : ADDR_PENALTY_MAX_MS;
	return (unsigned)delay;
}

void
addr_login_succeeded(struct addr_table *table, const char *key)
{
	struct addr_entry *e = addr_find(table, key);

	if (e == NULL)
		return;
	e->failures = 0;
	addr_release(table, e);
}

unsigned
addr_failures(const struct addr_table *table, const char *key)
{
	const struct addr_entry *e = addr_find(table, key);

	if (e == NULL || mono_ms() - e->last_failure >= ADDR_PENALTY_FORGET_MS)
		return 0;
	return e->failures;
}

bool
addr_refusal_log_due(struct addr_refusal_log *log, const char *key)
{
	int64_t now = mono_ms();

	if (strcmp(log->key, key) == 0 && now - log->last < 60000)
		return false;
	snprintf(log->key, sizeof(log->key), "%s", key);
	log->last = now;
	return true;
}

struct addr_table *
addr_penalties(void)
{
	if (penalties == NULL)
		penalties = addr_table_new();
	return penalties;
}

void
addr_penalties_free(void)
{
	addr_table_free(&penalties);
}
