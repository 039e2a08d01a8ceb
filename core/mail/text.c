/* text.c: lexical helpers for headers and MIME (see text.h). */
#include "text.h"

bool
text_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
text_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
text_mem_equals_ci(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && ascii_strncasecmp(s, word, len) == 0;
}

size_t
text_line_next(const char *p, size_t len, size_t pos, size_t *content_end_r)
{
	const char *lf = memchr(p + pos, '\n', len - pos);
	size_t end = lf == NULL ? len : (size_t)(lf - p);
	size_t next = lf == NULL ? len : end + 1;

	if (lf != NULL && end > pos && p[end - 1] == '\r')
		end--;
	*content_end_r = end;
	return next;
}

void
text_skip_cfws(const char *s, size_t len, size_t *pos)
{
	while (*pos < len) {
		if (text_is_ws(s[*pos])) {
			(*pos)++;
		} else if (s[*pos] == '(') {
			size_t depth = 0;

			for (; *pos < len; (*pos)++) {
				if (s[*pos] == '\\' && *pos + 1 < len) {
					(*pos)++;
				} else if (s[*pos] == '(') {
					depth++;
				} else if (s[*pos] == ')' && --depth == 0) {
					(*pos)++;
					break;
				}
			}
		} else {
			break;
		}
	}
}
