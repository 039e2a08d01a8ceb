/* maildir_uidlist.c: dovecot-uidlist read, rewritten and appended to, and
   the UIDVALIDITY of a new mailbox.

     dovecot-uidlist      UIDs <-> file names, in Dovecot's version 3 format:
                          "3 V<uidvalidity> N<next uid> R<first recent uid>
                          M<highest modseq>" then "<uid> W<rfc822.size>
                          T<internal date> Z<zone minutes> M<modseq>
                          :<file name>" per message. W is Dovecot's own
                          field; T, Z, M and R are ours. Dovecot keeps
                          header fields it does not know and record fields
                          named by a capital letter (it uses V N G P in the
                          header, S W P O G in records), so the file stays
                          valid for it; mutt and mbsync never read it.

   Safety: the uidlist is replaced atomically (temp file, fsync,
   rename) under the lock; a message file found without a UID gets the
   next one, a UID whose file is gone is dropped, and the next UID is
   never lowered, so a crash at any instant loses, duplicates or reuses
   nothing.

   Modification sequences (RFC 7162). The header's M is the mailbox's
   HIGHESTMODSEQ, never lowered: a read keeps the larger of it and what
   the state has. A record's M is its message's modseq; a record whose
   recorded name has other flag letters than the file has now (changed by
   a tool, or by us before a crash, while the uidlist was not written), or
   that has no M (an older file, or one another tool wrote), gets a new
   modseq above the highest.

   UIDs. append() adds its record at the end of the uidlist and
   fdatasync()s it before returning (O(1); Dovecot appends records the
   same way, and a record past the header's N raises the next UID): a UID
   given to a client is on disk. It reads the uidlist first only if
   another process wrote it (every UID our processes give is recorded
   there, under the lock); files other tools put in new/ or cur/ get
   their UIDs at the next sync(), after it. A record torn by a crash was
   never acknowledged; the next write rewrites the file. */
#include "fileio.h"
#include "log.h"
#include "storage_files.h"
#include "backends/maildir/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* UIDVALIDITY: see storage_uidvalidity_new(); the record is
   Maildir/imapserver-uidvalidity of the user. */
uint32_t
md_new_uidvalidity(struct storage_box *box, uint32_t old)
{
	char *tmp_path = xasprintf("%s.tmp.%ld", box->uidv_path, (long)getpid());
	uint32_t v = storage_uidvalidity_new(box->user_dir, box->uidv_path, tmp_path, old);

	free(tmp_path);
	return v;
}

/* The uidlist */

void
md_uidlist_free(struct uidlist *ul)
{
	md_ftable_free(&ul->t);
	i_zero(ul);
}

static bool
parse_u64_token(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* Parses one record line "uid [fields] :name" (version 3) or "uid name"
   (version 1). Returns false if malformed. */
static bool
uidlist_parse_rec(char *line, int version, struct mfile *f)
{
	char *p = line, *sp;
	uint64_t v;
	bool have_w = false, have_t = false;

	sp = strchr(p, ' ');
	if (sp == NULL || !parse_u64_token(p, (size_t)(sp - p), &v) || v == 0 || v > UINT32_MAX)
		return false;
	f->uid = (uint32_t)v;
	p = sp + 1;
	if (version == 1) {
		if (*p == '\0')
			return false;
		f->name = xstrdup(p);
		return true;
	}
	while (*p != ':' && *p != '\0') {
		size_t len = strcspn(p, " ");
		int64_t sign = 1;
		const char *num = p + 1;
		size_t nlen = len - 1;

		if (len >= 2 && p[0] == 'Z' && p[1] == '-') {
			sign = -1;
			num++;
			nlen--;
		}
		if (len >= 2 && parse_u64_token(num, nlen, &v)) {
			if (p[0] == 'W') {
				f->vsize = v;
				have_w = true;
			} else if (p[0] == 'T') {
				f->date = (int64_t)v;
				have_t = true;
			} else if (p[0] == 'Z' && v <= 24 * 60) {
				f->tz = (int32_t)(sign * (int64_t)v);
			} else if (p[0] == 'M' && sign > 0) {
				f->modseq = v;
			}
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	if (*p != ':' || p[1] == '\0' || strchr(p + 1, '/') != NULL)
		return false;
	f->name = xstrdup(p + 1);
	f->described = have_w && have_t;
	return true;
}

/* Parses the header line of the uidlist into ul; sets *version_r (1 or
   3). Returns false if it is not a header we know. */
static bool
uidlist_parse_header(char *line, struct uidlist *ul, int *version_r)
{
	if (line[0] == '3' && line[1] == ' ') {
		char *p = line + 2, *save = NULL, *tok;

		*version_r = 3;
		for (tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
			uint64_t v;

			if (!parse_u64_token(tok + 1, strlen(tok + 1), &v))
				continue;
			if (tok[0] == 'M' || tok[0] == 'C') {
				if (tok[0] == 'M' && v > ul->highest_modseq)
					ul->highest_modseq = v;
				if (v > ul->ceiling)
					ul->ceiling = v;
				continue;
			}
			if (v > UINT32_MAX)
				continue;
			if (tok[0] == 'V')
				ul->uidvalidity = (uint32_t)v;
			else if (tok[0] == 'N')
				ul->uidnext = (uint32_t)v;
			else if (tok[0] == 'R') {
				ul->first_recent = (uint32_t)v;
				ul->have_recent = true;
			}
		}
	} else if (line[0] == '1' && line[1] == ' ') {
		unsigned long long v1, v2;

		*version_r = 1;
		if (sscanf(line + 2, "%llu %llu", &v1, &v2) != 2 || v1 > UINT32_MAX ||
		    v2 > UINT32_MAX)
			return false;
		ul->uidvalidity = (uint32_t)v1;
		ul->uidnext = (uint32_t)v2;
	} else {
		return false;
	}
	return ul->uidvalidity != 0 && ul->uidnext != 0;
}

/* Parses the record lines from line on into ul->t; a malformed or
   out-of-order record is skipped. */
static void
uidlist_parse_records(char *line, int version, struct uidlist *ul)
{
	char *next;

	for (; line != NULL && *line != '\0'; line = next) {
		struct mfile *f;

		next = strchr(line, '\n');
		if (next == NULL) {
			/* a record append() was writing when the system
			   crashed: it never returned, so the UID was never
			   given; the next write rewrites the file */
			ul->torn = true;
			break;
		}
		*next++ = '\0';
		f = md_ftable_add(&ul->t);
		if (!uidlist_parse_rec(line, version, f) ||
		    (ul->t.count > 1 && f->uid <= ul->t.f[ul->t.count - 2].uid) ||
		    ul->t.count > MD_MAX_FILES || (version == 1 && f->uid >= ul->uidnext)) {
			free(f->name);
			ul->t.count--;
			continue;
		}
		/* Records append() added after the header was written: the
		   header's N is older than they are. */
		if (f->uid >= ul->uidnext)
			ul->uidnext = f->uid == UINT32_MAX ? UINT32_MAX : f->uid + 1;
		if (f->modseq > ul->highest_modseq)
			ul->highest_modseq = f->modseq;
		f->base = xstrndup(f->name, md_base_len(f->name));
		f->rec_letters = md_name_letters(f->name);
	}
	if (ul->highest_modseq > ul->ceiling)
		ul->ceiling = ul->highest_modseq;
}

/* Reads the uidlist. Returns 0 (ul->valid false if missing or broken)
   or -1 on an I/O error. */
int
md_uidlist_read(struct storage_box *box, struct uidlist *ul, char **error_r)
{
	char *data = NULL, *next;
	size_t len;
	int version = 0, r;

	i_zero(ul);
	r = file_read_small(box->user_dir, box->uidlist_path, 512 * 1024 * 1024, &data, &len, NULL);
	if (r < 0) {
		*error_r = xasprintf("read %s: %s", box->uidlist_path, strerror(errno));
		return -1;
	}
	if (r == 0)
		return 0;
	next = strchr(data, '\n');
	if (next == NULL)
		goto broken;
	*next++ = '\0';
	if (!uidlist_parse_header(data, ul, &version))
		goto broken;
	uidlist_parse_records(next, version, ul);
	free(data);
	ul->valid = true;
	return 0;
broken:
	free(data);
	log_warn("-", "%s: unreadable, UIDs start over (no mail is lost)", box->uidlist_path);
	md_uidlist_free(ul);
	return 0;
}

static void
uidlist_rec_print(struct buf *b, const struct mfile *f)
{
	buf_printf(b, "%u W%llu T%lld Z%d M%llu :%s\n", f->uid, (unsigned long long)f->vsize,
		   (long long)f->date, (int)f->tz, (unsigned long long)f->modseq, f->name);
}

/* Writes box->files with the modseqs, first recent UID and highest
   modseq of state (box->files and state hold the same UIDs, both
   ascending; a UID state lacks keeps the modseq it had), and the ceiling
   C: the one it had, raised to highest + MD_MODSEQ_RESERVE (or + the
   number of messages, if more) if reserve.
   This is the batch point of flag changes: the box is clean after. */
int
md_uidlist_write(struct storage_box *box, const struct mbox_state *state, bool reserve,
	      char **error_r)
{
	struct buf b = BUF_INIT;
	uint64_t highest = state->highest_modseq, ceiling = box->disk_ceiling;
	size_t j = 0;
	int ret;

	if (box->disk_highest > highest)
		highest = box->disk_highest;
	for (size_t i = 0; i < box->files.count; i++) {
		struct mfile *f = &box->files.f[i];

		while (j < state->count && state->mails[j].uid < f->uid)
			j++;
		if (j < state->count && state->mails[j].uid == f->uid)
			f->modseq = state->mails[j].modseq;
		if (f->modseq > highest)
			highest = f->modseq;
	}
	/* At least as many as the folder has messages, so that a STORE on
	   all of them reserves once or twice, not once per 1,024 (each of
	   these writes costs the whole folder). */
	uint64_t room = box->files.count > MD_MODSEQ_RESERVE ? box->files.count :
							       MD_MODSEQ_RESERVE;
	if (reserve && highest + room > ceiling)
		ceiling = highest + room;
	buf_printf(&b, "3 V%u N%u R%u M%llu", box->uidvalidity, box->uidnext,
		   state->first_recent_uid, (unsigned long long)highest);
	if (ceiling > highest)
		buf_printf(&b, " C%llu", (unsigned long long)ceiling);
	buf_append_c(&b, '\n');
	for (size_t i = 0; i < box->files.count; i++)
		uidlist_rec_print(&b, &box->files.f[i]);
	ret = file_replace(box->user_dir, box->uidlist_tmp, box->uidlist_path, b.data, b.len);
	for (size_t i = 0; ret == 0 && i < box->files.count; i++)
		box->files.f[i].rec_letters = md_name_letters(box->files.f[i].name);
	if (ret < 0) {
		*error_r = xasprintf("write %s: %s", box->uidlist_path, strerror(errno));
	} else {
		md_stamp_file(box->user_dir, box->uidlist_path, &box->uidlist_stamp);
		box->disk_highest = highest;
		box->disk_ceiling = ceiling > highest ? ceiling : highest;
		box->highest = highest;
		box->first_recent = state->first_recent_uid;
		box->dirty = false;
		box->rewrite = false;
	}
	buf_free(&b);
	return ret;
}

int
md_uidlist_write_soft(struct storage_box *box, const struct mbox_state *state, bool reserve,
		      char **error_r)
{
	bool pending = storage_space_pending(&box->space);

	if (md_uidlist_write(box, state, reserve, error_r) == 0) {
		if (pending)
			storage_space_cleared(&box->space, box->uidlist_path);
		return 0;
	}
	if (!storage_errno_is_space(errno))
		return -1;
	storage_space_failed(&box->space, box->uidlist_path, errno);
	free(*error_r);
	*error_r = NULL;
	if (!box->dirty)
		box->dirty_since = mono_ms();
	box->dirty = true;
	return 0;
}

void
md_uidlist_rec_line(struct buf *b, const struct mfile *f)
{
	uidlist_rec_print(b, f);
}

int
md_uidlist_append_line(const char *user_dir, const char *path, const struct buf *line)
{
	int fd = fs_open_beneath(user_dir, path, O_WRONLY | O_APPEND, 0);
	int ret = -1, saved;

	if (fd < 0)
		return -1;
	if (fd_write_full(fd, line->data, line->len) == 0 && fdatasync(fd) == 0)
		ret = 0;
	saved = errno;
	if (close(fd) < 0 && ret == 0)
		return -1;
	errno = saved;
	return ret;
}

void
md_uidlist_rec_done(struct storage_box *box, const struct mfile *f, bool written)
{
	if (!written) {
		/* whatever reached the file (a torn line?) goes at the
		   next write */
		box->rewrite = true;
		return;
	}
	md_stamp_file(box->user_dir, box->uidlist_path, &box->uidlist_stamp);
	((struct mfile *)f)->rec_letters = md_name_letters(f->name);
	if (f->modseq > box->disk_highest)
		box->disk_highest = f->modseq;
	if (f->modseq > box->disk_ceiling)
		box->disk_ceiling = f->modseq;
}

/* Adds the record of f (just appended) at the end of the uidlist and
   fdatasync()s it: O(1), where a rewrite is O(messages). The lock is held
   and the file is the one we last read or wrote (so it ends in a LF).
   Readers take a record past the header's N as raising the next UID. */
int
md_uidlist_append_rec(struct storage_box *box, const struct mfile *f, char **error_r)
{
	struct buf b = BUF_INIT;
	int ret;

	uidlist_rec_print(&b, f);
	ret = md_uidlist_append_line(box->user_dir, box->uidlist_path, &b);
	if (ret < 0)
		*error_r = xasprintf("append to %s: %s", box->uidlist_path, strerror(errno));
	md_uidlist_rec_done(box, f, ret == 0);
	buf_free(&b);
	return ret;
}
