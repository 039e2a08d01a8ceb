/* imap_util.c: flag lists and atoms (RFC 3501 section 9). */
#include "imap_util.h"

static const struct {
	const char *name;
	uint8_t flag;
} system_flags[] = {
	{ "\\Seen", MAIL_SEEN },
	{ "\\Answered", MAIL_ANSWERED },
	{ "\\Flagged", MAIL_FLAGGED },
	{ "\\Deleted", MAIL_DELETED },
	{ "\\Draft", MAIL_DRAFT },
};

void
imap_write_flags(struct buf *out, uint8_t flags, uint64_t keywords, bool recent,
		 const struct mbox_state *state)
{
	bool first = true;

	buf_append_c(out, '(');
	for (size_t i = 0; i < N_ELEMENTS(system_flags); i++) {
		if ((flags & system_flags[i].flag) == 0)
			continue;
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, system_flags[i].name);
		first = false;
	}
	if (recent) {
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, "\\Recent");
		first = false;
	}
	for (unsigned i = 0; state != NULL && i < state->keyword_count && i < MBOX_MAX_KEYWORDS;
	     i++) {
		if ((keywords & ((uint64_t)1 << i)) == 0 || state->keywords[i] == NULL)
			continue;
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, state->keywords[i]);
		first = false;
	}
	buf_append_c(out, ')');
}

bool
imap_is_atom(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		/* ATOM-CHAR: any 7-bit CHAR except atom-specials. */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

/* Adds one flag (an ATOM) to *flags / *keywords. */
static int
parse_one_flag(const struct imap_arg *arg, struct mbox_state *state, bool add_keywords,
	       uint8_t *flags, uint64_t *keywords, const char **error_r)
{
	const char *name = arg->str;
	int idx;

	if (!imap_arg_is_atom(arg) || name == NULL || strlen(name) != arg->len) {
		*error_r = "Invalid flag";
		return -1;
	}
	if (name[0] == '\\') {
		for (size_t i = 0; i < N_ELEMENTS(system_flags); i++) {
			if (ascii_strcasecmp(name, system_flags[i].name) == 0) {
				*flags |= system_flags[i].flag;
				return 0;
			}
		}
		*error_r = ascii_strcasecmp(name, "\\Recent") == 0 ? "\\Recent cannot be set"
								  : "Unknown system flag";
		return -1;
	}
	if (!imap_is_atom(name)) {
		*error_r = "Invalid keyword";
		return -1;
	}
	if (state == NULL)
		return 0;
	idx = mbox_state_keyword(state, name, add_keywords);
	if (idx < 0) {
		if (add_keywords) {
			*error_r = "No room for another keyword in this mailbox";
			return IMAP_FLAGS_NO_ROOM;
		}
		return 0;              /* not known, so no message has it */
	}
	*keywords |= (uint64_t)1 << idx;
	return 0;
}

int
imap_parse_flags(const struct imap_arg *arg, struct mbox_state *state, bool add_keywords,
		 uint8_t *flags_r, uint64_t *keywords_r, const char **error_r)
{
	uint8_t flags = 0;
	uint64_t keywords = 0;
	int ret;

	if (arg->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < arg->list_count; i++) {
			ret = parse_one_flag(&arg->list[i], state, add_keywords, &flags, &keywords,
					     error_r);
			if (ret < 0)
				return ret;
		}
	} else if ((ret = parse_one_flag(arg, state, add_keywords, &flags, &keywords,
					 error_r)) < 0) {
		return ret;
	}
	*flags_r = flags;
	*keywords_r = keywords;
	return 0;
}
