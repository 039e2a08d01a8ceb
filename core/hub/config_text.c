/* config_text.c: reading the config file's text before libconfig parses
   it (see config_text.h). */
#include "config_text.h"
#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The largest config file read; a real one is a few KB. */
#define CONFIG_FILE_MAX (1024 * 1024)

static bool
config_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '*';
}

static bool
config_is_hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* libconfig 1.5 silently truncates an integer that does not fit in 32 bits
   unless it carries an 'L' suffix (5000000000 becomes 705032704), which
   would turn a range check into a lie. This scan follows libconfig's
   lexical rules (comments, strings, names, numbers) just far enough to
   find such integers and refuse them with their line. */
int
config_check_integers(const char *path, const char *text, size_t len, char **error_r)
{
	unsigned line = 1;
	size_t i = 0;

	while (i < len) {
		char c = text[i];

		if (c == '\n') {
			line++;
			i++;
		} else if (c == '#' || (c == '/' && i + 1 < len && text[i + 1] == '/')) {
			while (i < len && text[i] != '\n')
				i++;
		} else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
			for (i += 2; i < len; i++) {
				if (text[i] == '\n') {
					line++;
				} else if (text[i] == '*' && i + 1 < len && text[i + 1] == '/') {
					i += 2;
					break;
				}
			}
		} else if (c == '"') {
			for (i++; i < len && text[i] != '"'; i++) {
				if (text[i] == '\\' && i + 1 < len)
					i++;
				if (text[i] == '\n')
					line++;
			}
			i++;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*' ||
			   c == '@') {
			for (i++; i < len && config_is_name_char(text[i]); i++)
				;
		} else if (c >= '0' && c <= '9') {
			bool negative = i > 0 && text[i - 1] == '-';
			bool hex = c == '0' && i + 1 < len && (text[i + 1] == 'x' || text[i + 1] == 'X');
			size_t start = i, digits = 0;
			uint64_t value = 0;
			bool overflow = false;

			if (hex)
				i += 2;
			for (; i < len && (hex ? config_is_hex_digit(text[i]) :
						 (text[i] >= '0' && text[i] <= '9'));
			     i++) {
				unsigned d = text[i] <= '9' ? (unsigned)(text[i] - '0') :
					     (unsigned)((text[i] | 0x20) - 'a' + 10);
				if (value > (UINT64_MAX - d) / (hex ? 16 : 10))
					overflow = true;
				else
					value = value * (hex ? 16 : 10) + d;
				digits++;
			}
			if (i < len && (text[i] == 'L' || (!hex && (text[i] == '.' ||
							     text[i] == 'e' || text[i] == 'E')))) {
				/* 64-bit integer or float: libconfig keeps it whole. */
				while (i < len && (config_is_name_char(text[i]) || text[i] == '.' ||
						   text[i] == '+'))
					i++;
				continue;
			}
			if (digits > 0 && (overflow || value > (negative ? 2147483648ULL : 2147483647ULL))) {
				int n = (int)(i - start);
				*error_r = xasprintf("%s:%u: integer %s%.*s does not fit in 32 bits "
						     "(write %s%.*sL for a 64-bit integer)",
						     path, line, negative ? "-" : "", n, text + start,
						     negative ? "-" : "", n, text + start);
				return -1;
			}
		} else {
			i++;
		}
	}
	return 0;
}

/* Reads the whole file (at most CONFIG_FILE_MAX octets) into *text_r. */
int
config_read_text(const char *path, char **text_r, char **error_r)
{
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t n;
	FILE *fp;

	fp = fopen(path, "re");
	if (fp == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (text.len + n > CONFIG_FILE_MAX) {
			*error_r = xasprintf("%s: file is larger than %d octets", path,
					     CONFIG_FILE_MAX);
			buf_free(&text);
			fclose(fp);
			return -1;
		}
		buf_append(&text, chunk, n);
	}
	if (ferror(fp)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		buf_free(&text);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	if (memchr(text.data != NULL ? text.data : "", '\0', text.len) != NULL) {
		unsigned line = 1;
		for (size_t i = 0; i < text.len && text.data[i] != '\0'; i++)
			line += text.data[i] == '\n';
		*error_r = xasprintf("%s:%u: NUL byte in the file", path, line);
		buf_free(&text);
		return -1;
	}
	*text_r = buf_steal(&text);
	return 0;
}

