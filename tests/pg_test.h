/* pg_test.h: the unit tests' database. tests/run.sh starts a throw-away
   PostgreSQL cluster (tests/pg_cluster.sh) and says where in
   PGTEST_CONNINFO; a backend that keeps its mail in a database (one with
   init_db(), "pgsql") is tested only then, starting each test from an
   empty schema. */
#ifndef TESTS_PG_TEST_H
#define TESTS_PG_TEST_H

#include <stdio.h>
#include <stdlib.h>

#include "storage.h"

#ifdef HAVE_PQ
#include <libpq-fe.h>
#endif

static inline const char *
pg_test_conninfo(void)
{
	const char *c = getenv("PGTEST_CONNINFO");

	return c != NULL && c[0] != '\0' ? c : NULL;
}

/* True if backend b can be tested here (a database backend needs one). */
static inline bool
pg_test_backend_usable(const struct storage_backend *b)
{
	if (b->init_db == NULL)
		return true;
	if (pg_test_conninfo() != NULL)
		return true;
	fprintf(stderr, "%s: not tested: PGTEST_CONNINFO is not set (tests/run.sh sets it "
		"when PostgreSQL is installed)\n", b->name);
	return false;
}

/* Drops everything in the database and creates b's schema. 0, or -1
   with *error_r. */
static inline int
pg_test_reset(const struct storage_backend *b, char **error_r)
{
#ifdef HAVE_PQ
	struct storage_settings set = { .root = "/nonexistent", .conninfo = pg_test_conninfo() };
	PGconn *conn = PQconnectdb(set.conninfo);
	PGresult *res;
	char *msg = NULL;
	int ret;

	if (PQstatus(conn) != CONNECTION_OK) {
		*error_r = xasprintf("connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	res = PQexec(conn, "SET client_min_messages = warning; "
		     "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	ret = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
	if (ret < 0)
		*error_r = xasprintf("reset: %s", PQerrorMessage(conn));
	PQclear(res);
	PQfinish(conn);
	if (ret == 0 && (ret = b->init_db(&set, &msg, error_r)) == 0)
		free(msg);
	return ret;
#else
	*error_r = xstrdup("built without libpq");
	return -1;
#endif
}

#endif
