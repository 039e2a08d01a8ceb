/* maildir_mail.c: reading a message (the read() op).

   Files are stored with LF line ends (as other Maildir tools do) and
   served with CRLF. Nothing here writes: a file renamed by another
   tool while we open it is looked for once more by its base name. */
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int
md_read(struct storage_box *box, const struct mail_rec *rec, struct buf *out,
	enum storage_error *err_r, char **error_r)
{
	ssize_t idx;
	struct mfile *f;
	char *path, *tmp;
	char prev = '\0';
	ssize_t n;
	int fd = -1;
	const char *iname = md_index_name(box, rec->uid);

	/* Opened from the index: its name, without loading the file table;
	   if the file is not there under it, the table (and md_locate()). */
	if (iname != NULL) {
		path = xasprintf("%s/%s", box->cur_dir, iname);
		fd = fs_open_beneath(box->user_dir, path, O_RDONLY, 0);
		if (fd >= 0)
			goto opened;
		free(path);
	}
	if (md_files_load(box, error_r) < 0) {
		*err_r = STORAGE_ERR_TEMP;
		return -1;
	}
	idx = md_ftable_find(&box->files, rec->uid);
	*err_r = STORAGE_ERR_NOT_FOUND;
	if (idx < 0) {
		*error_r = xasprintf("%s: message %u is not available", box->dir, rec->uid);
		return -1;
	}
	f = &box->files.f[idx];
	path = md_file_path(box, f);
	fd = fs_open_beneath(box->user_dir, path, O_RDONLY, 0);
	if (fd < 0 && errno == ENOENT && md_locate(box, f)) {
		free(path);
		path = md_file_path(box, f);
		fd = fs_open_beneath(box->user_dir, path, O_RDONLY, 0);
	}
	if (fd < 0) {
		/* ENOENT: removed by another process (not looked for again) */
		*err_r = errno == ENOENT ? STORAGE_ERR_NOT_FOUND : storage_error_from_errno(errno);
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
opened:
	*err_r = STORAGE_ERR_TEMP;
	buf_reserve(out, rec->size < MD_MAX_MSG ? (size_t)rec->size : 0);
	tmp = xmalloc(MD_READ_CHUNK);
	while ((n = read(fd, tmp, MD_READ_CHUNK)) != 0) {
		ssize_t start = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = xasprintf("read %s: %s", path, strerror(errno));
			free(tmp);
			free(path);
			close(fd);
			return -1;
		}
		/* LF -> CRLF, in runs */
		for (ssize_t i = 0; i < n; i++) {
			if (tmp[i] == '\n' && (i > 0 ? tmp[i - 1] : prev) != '\r') {
				buf_append(out, tmp + start, (size_t)(i - start));
				buf_append(out, "\r\n", 2);
				start = i + 1;
			}
		}
		buf_append(out, tmp + start, (size_t)(n - start));
		prev = tmp[n - 1];
	}
	free(tmp);
	free(path);
	close(fd);
	*err_r = STORAGE_ERR_NONE;
	return 0;
}
