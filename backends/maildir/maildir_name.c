/* maildir_name.c: names in a Maildir: mailbox names to folders, and the
   base, the ":2," info and the flag letters of a message file name.

   A message is one file named "<base>:2,<flags>" (flags D F P R S T and
   keyword letters a-z, in ASCII order); our bases are
   "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<rfc822.size>". Files are
   stored with LF line ends (as other Maildir tools do) and served with
   CRLF: RFC822.SIZE is the file size plus one octet per bare LF.

   Flag letters are the durable record of a message's flags: a flag
   change is one rename() of the file (atomic), done in maildir_flags.c. */
#include "backends/maildir/maildir_private.h"
#include "username.h"

/* Names */

/* Maildir++ keeps the hierarchy in one folder name with '.' between the
   levels, so a level may not itself hold a '.'. */
static bool
md_name_ok(const char *name)
{
	if (!storage_name_is_valid(name))
		return false;
	if (strcmp(name, "INBOX") == 0)
		return true;
	return strchr(name, '.') == NULL;
}

int
md_check_names(const char *user, const char *name, enum storage_error *err_r, char **error_r)
{
	if (!username_is_valid(user)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xstrdup("invalid user name");
		return -1;
	}
	if (name != NULL && !md_name_ok(name)) {
		*err_r = STORAGE_ERR_BAD_NAME;
		*error_r = xasprintf("invalid mailbox name for Maildir storage "
				     "(no '.' inside a level): %s", name);
		return -1;
	}
	return 0;
}

char *
md_user_dir(struct storage *st, const char *user)
{
	return xasprintf("%s/%s", st->root, user);
}

char *
md_root(struct storage *st, const char *user)
{
	return xasprintf("%s/%s/%s", st->root, user, MD_DIR);
}

/* The folder of mailbox name: "a/b" -> Maildir/.a.b */
char *
md_box_dir(struct storage *st, const char *user, const char *name)
{
	char *p, *dir;

	if (strcmp(name, "INBOX") == 0)
		return md_root(st, user);
	dir = xasprintf("%s/%s/%s/.%s", st->root, user, MD_DIR, name);
	for (p = dir + strlen(dir) - strlen(name); *p != '\0'; p++) {
		if (*p == '/')
			*p = '.';
	}
	return dir;
}

/* Length of the base of a file name (up to the ":2," info). */
size_t
md_base_len(const char *name)
{
	return strcspn(name, ":");
}

/* The info letters of a file name ("" if none). */
const char *
md_name_flags(const char *name)
{
	const char *p = strstr(name, ":2,");

	return p != NULL ? p + 3 : "";
}

/* The info letters A-Z a-z of a file name as a bit set. */
uint64_t
md_name_letters(const char *name)
{
	uint64_t set = 0;

	for (const char *p = md_name_flags(name); *p != '\0' && *p != ','; p++) {
		if (*p >= 'A' && *p <= 'Z')
			set |= 1ULL << (*p - 'A');
		else if (*p >= 'a' && *p <= 'z')
			set |= 1ULL << (26 + *p - 'a');
	}
	return set;
}

/* ,W=<n> (or failing that nothing) from a base name. */
bool
md_base_field(const char *base, size_t len, char key, uint64_t *val_r)
{
	for (size_t i = 0; i + 3 <= len; i++) {
		if (base[i] == ',' && base[i + 1] == key && base[i + 2] == '=') {
			uint64_t v = 0;
			size_t j = i + 3, digits = 0;

			while (j < len && base[j] >= '0' && base[j] <= '9' && digits < 19) {
				v = v * 10 + (uint64_t)(base[j] - '0');
				j++;
				digits++;
			}
			if (digits > 0 && (j == len || base[j] == ',')) {
				*val_r = v;
				return true;
			}
		}
	}
	return false;
}

/* Flags and keywords from a name's info letters. */
void
md_flags_from_name(struct storage_box *box, struct mbox_state *state, const char *name,
		   uint8_t *flags_r, uint64_t *kw_r)
{
	const char *p = md_name_flags(name);
	uint8_t flags = 0;
	uint64_t kw = 0;

	for (; *p != '\0' && *p != ','; p++) {
		switch (*p) {
		case 'D': flags |= MAIL_DRAFT; break;
		case 'F': flags |= MAIL_FLAGGED; break;
		case 'R': flags |= MAIL_ANSWERED; break;
		case 'S': flags |= MAIL_SEEN; break;
		case 'T': flags |= MAIL_DELETED; break;
		default:
			if (*p >= 'a' && *p <= 'z' && (unsigned)(*p - 'a') < box->kw_count &&
			    box->kw[*p - 'a'][0] != '\0') {
				int k = mbox_state_keyword(state, box->kw[*p - 'a'], true);

				if (k >= 0)
					kw |= 1ULL << k;
			}
			break;
		}
	}
	*flags_r = flags;
	*kw_r = kw;
}

/* The file name for base with these flags and keywords; letters of the
   old name that we do not manage (P, unknown keyword letters, anything
   after a ',') are kept. Sets *kw_changed_r when a keyword got a new
   letter (the caller writes the keywords file). */
char *
md_name_with_flags(struct storage_box *box, const struct mbox_state *state, const char *base,
		   size_t blen, const char *old, uint8_t flags, uint64_t kw, bool *kw_changed_r)
{
	bool set[128] = { false };
	const char *p = old != NULL ? md_name_flags(old) : "";
	const char *rest = NULL;
	struct buf b = BUF_INIT;

	for (; *p != '\0'; p++) {
		if (*p == ',') {
			rest = p;
			break;
		}
		if ((unsigned char)*p < 128 && *p != 'D' && *p != 'F' && *p != 'R' && *p != 'S' &&
		    *p != 'T' && !(*p >= 'a' && *p <= 'z' && (unsigned)(*p - 'a') < box->kw_count))
			set[(unsigned char)*p] = true;
	}
	set['D'] = (flags & MAIL_DRAFT) != 0;
	set['F'] = (flags & MAIL_FLAGGED) != 0;
	set['R'] = (flags & MAIL_ANSWERED) != 0;
	set['S'] = (flags & MAIL_SEEN) != 0;
	set['T'] = (flags & MAIL_DELETED) != 0;
	for (unsigned i = 0; i < state->keyword_count && i < MBOX_MAX_KEYWORDS; i++) {
		int letter;

		if ((kw & (1ULL << i)) == 0)
			continue;
		letter = md_kw_letter(box, state->keywords[i], true, kw_changed_r);
		if (letter >= 0)
			set['a' + letter] = true;
	}
	buf_append(&b, base, blen);
	buf_append_str(&b, ":2,");
	for (unsigned c = 33; c < 127; c++) {
		if (set[c])
			buf_append_c(&b, (char)c);
	}
	if (rest != NULL)
		buf_append_str(&b, rest);
	return buf_steal(&b);
}
