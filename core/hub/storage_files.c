/* storage_files.c: the subscriptions file, the UIDVALIDITY record and
   the wait for space, shared by the backends. */
#include "storage_files.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUBSCRIPTIONS_FILE_MAX (16 * 1024 * 1024)

/* Adds the name on line (len octets, not terminated) to names_r unless it
   is a header, holds a NUL, is invalid or is there already. */
static void
subscriptions_add_line(char *line, size_t len, struct strlist *names_r)
{
	if (len == 0 || memchr(line, '\0', len) != NULL)
		return;
	if (len >= 2 && line[0] == 'V' && line[1] == '\t')
		return;
	line[len] = '\0';
	for (char *p = line; *p != '\0'; p++) {
		if (*p == '\t')
			*p = '/';
	}
	if (storage_name_is_valid(line) && !strlist_contains(names_r, line))
		strlist_add(names_r, line);
}

int
storage_subscriptions_file_read(const char *base, const char *path, size_t max,
				struct strlist *names_r,
				enum storage_error *err_r, char **error_r)
{
	char *data = NULL;
	size_t len, start = 0;
	int r;

	*err_r = STORAGE_ERR_NONE;
	r = file_read_small(base, path, SUBSCRIPTIONS_FILE_MAX, &data, &len, NULL);
	if (r < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("read %s: %s", path, strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	for (size_t i = 0; i <= len && names_r->count < max; i++) {
		if (i < len && data[i] != '\n' && data[i] != '\r')
			continue;
		subscriptions_add_line(data + start, i - start, names_r);
		start = i + 1;
	}
	free(data);
	return 0;
}

int
storage_subscriptions_file_write(const char *base, const char *path, const char *tmp_path,
				 const struct strlist *names, enum storage_error *err_r,
				 char **error_r)
{
	struct buf b = BUF_INIT;
	int ret = 0;

	*err_r = STORAGE_ERR_NONE;
	for (size_t i = 0; i < names->count; i++) {
		if (!storage_name_is_valid(names->items[i]))
			continue;
		buf_append_str(&b, names->items[i]);
		buf_append_c(&b, '\n');
	}
	if (file_replace(base, tmp_path, path, b.data != NULL ? b.data : "", b.len) < 0) {
		*err_r = storage_error_from_errno(errno);
		*error_r = xasprintf("write %s: %s", path, strerror(errno));
		ret = -1;
	}
	buf_free(&b);
	return ret;
}

uint32_t
storage_uidvalidity_new(const char *base, const char *path, const char *tmp_path, uint32_t old)
{
	uint32_t v = (uint32_t)time(NULL), last = 0;
	char tmp[32], *data = NULL;
	size_t len;

	if (file_read_small(base, path, 64, &data, &len, NULL) > 0)
		last = (uint32_t)strtoul(data, NULL, 10);
	free(data);
	if (v <= last)
		v = last + 1;
	if (v <= old)
		v = old + 1;
	if (v == 0)
		v = 1;
	if (tmp_path != NULL) {
		int n = snprintf(tmp, sizeof(tmp), "%u\n", v);

		(void)file_replace(base, tmp_path, path, tmp, (size_t)n);
	}
	return v;
}

bool
storage_errno_is_space(int err)
{
	return err == ENOSPC || err == EDQUOT;
}

void
storage_space_failed(struct storage_space *sp, const char *path, int err)
{
	sp->retry_at = mono_ms() + STORAGE_SPACE_RETRY_MS;
	if (sp->logged)
		return;
	sp->logged = true;
	log_warn("-", "%s not written (%s): kept in memory, written once space returns", path,
		 strerror(err));
}

bool
storage_space_pending(const struct storage_space *sp)
{
	return sp->retry_at != 0;
}

bool
storage_space_due(const struct storage_space *sp)
{
	return sp->retry_at != 0 && mono_ms() >= sp->retry_at;
}

void
storage_space_cleared(struct storage_space *sp, const char *path)
{
	if (sp->logged)
		log_info("-", "%s written again: space is back", path);
	sp->retry_at = 0;
	sp->logged = false;
}
