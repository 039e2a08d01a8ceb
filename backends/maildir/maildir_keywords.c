/* maildir_keywords.c: dovecot-keywords, the keyword of each letter.

     dovecot-keywords     "<n> <keyword>": letter 'a' + n in file names

   Safety: the file is replaced atomically (temp file, fsync, rename)
   under the lock, and a letter once given keeps its keyword; a missing
   or broken file leaves the letters we know as they are. */
#include "fileio.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <stdlib.h>

/* Keywords file */

void
md_kw_clear(struct storage_box *box)
{
	for (unsigned i = 0; i < box->kw_count; i++) {
		free(box->kw[i]);
		box->kw[i] = NULL;
	}
	box->kw_count = 0;
}

/* Reads dovecot-keywords; keeps what we have when it is missing. */
void
md_kw_read(struct storage_box *box)
{
	char *data = NULL, *line, *save = NULL;
	size_t len;
	char *names[MD_MAX_LETTERS] = { 0 };
	unsigned count = 0;

	if (file_read_small(box->user_dir, box->kw_path, 64 * 1024, &data, &len, NULL) <= 0)
		return;
	for (line = strtok_r(data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long n = strtoul(line, &end, 10);

		if (end == line || *end != ' ' || n >= MD_MAX_LETTERS || end[1] == '\0')
			continue;
		free(names[n]);
		names[n] = xstrdup(end + 1);
		if (n + 1 > count)
			count = (unsigned)n + 1;
	}
	free(data);
	md_kw_clear(box);
	for (unsigned i = 0; i < count; i++)
		box->kw[i] = names[i] != NULL ? names[i] : xstrdup("");
	box->kw_count = count;
}

int
md_kw_write(struct storage_box *box, char **error_r)
{
	struct buf b = BUF_INIT;
	int ret;

	for (unsigned i = 0; i < box->kw_count; i++) {
		if (box->kw[i][0] != '\0')
			buf_printf(&b, "%u %s\n", i, box->kw[i]);
	}
	ret = file_replace(box->user_dir, box->kw_tmp, box->kw_path, b.data != NULL ? b.data : "", b.len);
	if (ret < 0)
		*error_r = xasprintf("write %s: %s", box->kw_path, strerror(errno));
	buf_free(&b);
	return ret;
}

/* The letter index of keyword name, adding it (and writing the file,
   the lock held) if add. -1 if it has no letter. */
int
md_kw_letter(struct storage_box *box, const char *name, bool add, bool *wrote_r)
{
	for (unsigned i = 0; i < box->kw_count; i++) {
		if (ascii_strcasecmp(box->kw[i], name) == 0)
			return (int)i;
	}
	if (!add || box->kw_count >= MD_MAX_LETTERS)
		return -1;
	box->kw[box->kw_count++] = xstrdup(name);
	*wrote_r = true;
	return (int)box->kw_count - 1;
}
