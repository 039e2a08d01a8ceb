/* hub_jobs.h: what the unit tests of the hub's jobs share: a hub on a
   storage with a job queue and its loop, waits bounded in count, and an
   append's answer. */
#ifndef TESTS_HUB_JOBS_H
#define TESTS_HUB_JOBS_H

#include <dirent.h>
#include <stdlib.h>

struct fx {
	char root[64];
	struct storage_ctx storage;
	struct event_loop *loop;
	struct job_queue *queue;
	struct hub *hub;
};

/* Runs the loop until *flag (bounded: 10 s). */
static inline void
run_until(struct fx *fx, const bool *flag)
{
	for (int i = 0; i < 1000 && !*flag; i++)
		assert_int_equal(event_loop_run_once(fx->loop, 10), 0);
	assert_true(*flag);
}

/* Files in alice's Maildir/<sub>. */
static inline unsigned
maildir_files(struct fx *fx, const char *sub)
{
	char *path = xasprintf("%s/alice/Maildir/%s", fx->root, sub);
	DIR *d = opendir(path);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	free(path);
	return n;
}

/* An append's answer (mailbox_append_start()). */
struct append_rec {
	bool done;
	int ret;
	uint32_t uid;
	enum storage_error err;
};

static inline void
on_append(void *ctx, int ret, uint32_t uid, enum storage_error err)
{
	struct append_rec *a = ctx;

	a->done = true;
	a->ret = ret;
	a->uid = uid;
	a->err = err;
}

#define MSG "From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n"

#endif
