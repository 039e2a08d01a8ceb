/* mc_util.h: the pieces of mailclient that are pure functions of their
   input (address checks, the lab's input format, building the message,
   time formatting, terminal-safe output), kept apart so the unit tests
   can reach them. */
#ifndef MC_UTIL_H
#define MC_UTIL_H

#include "lib.h"
#include "buf.h"

#include <stdio.h>

/* True if addr has the form X@Y: a local part of RFC 5322 atom
   characters and dots (no leading, trailing or double dot), and a domain
   of letters, digits and hyphens in dot-separated labels, or an address
   literal [..]. No spaces, no angle brackets. */
bool mc_address_valid(const char *addr);

/* True if addr belongs to the logged-in user: when user holds an '@',
   the whole address equals user; otherwise the local part does
   (ASCII case-insensitive either way). addr must be valid. */
bool mc_address_is_users(const char *addr, const char *user);

/* ASCII case-insensitive address equality. */
bool mc_address_equal(const char *a, const char *b);

/* Removes leading and trailing whitespace in place; returns s. */
char *mc_trim(char *s);

/* If line is "Name: value" with Name equal to name (case-insensitive),
   returns the trimmed value (malloc'ed) and 1; else 0. */
int mc_header_line(const char *line, const char *name, char **value_r);

/* Splits a To value at commas into trimmed addresses; an address may be
   given as <x@y>. Returns 0, or -1 with *bad_r (malloc'ed) naming the
   first invalid one (or "" if the list is empty). */
int mc_split_addresses(const char *value, struct strlist *out, char **bad_r);

/* The longest line of a message, without its CRLF (RFC 5322 2.1.1). */
#define MC_MAX_LINE 998

/* True if body (LF line ends) cannot go as 7bit text: a byte that is
   not ASCII, a CR, or a line longer than MC_MAX_LINE. */
bool mc_body_needs_encoding(const char *body);

/* Appends s (len bytes, LF line ends) quoted-printable (RFC 2045 6.7):
   lines of at most 76 characters with soft breaks, '=', non-ASCII and
   control bytes, and space or tab at a line end escaped; a '.' that
   would begin a line is escaped too. LF line ends. */
void mc_qp_encode(const char *s, size_t len, struct buf *out);

/* Builds the message to send: From, To (folded at commas when long),
   Subject (RFC 2047 encoded when it is not ASCII or too long for one
   line), Date (now, local zone), Message-ID, MIME headers for UTF-8
   text, a blank line, the body: as it is (7bit) when it can, else
   quoted-printable (mc_body_needs_encoding), so no line of the mail
   passes 998 octets. LF line ends. */
void mc_build_message(const char *from, const char *to, const char *subject,
		      const char *body, const char *hostname, int64_t now, struct buf *out);

/* Formats t (seconds since the epoch) in the local zone into out:
   MC_TIME_LIST "2022-03-10 : 14 : 30" (the lab's date: hour: minute),
   MC_TIME_LONG "Thu, 10 Mar 2022 14:30 IST". "?" if it cannot. */
enum mc_time_style {
	MC_TIME_LIST,
	MC_TIME_LONG,
};
void mc_format_time(int64_t t, enum mc_time_style style, char *out, size_t out_size);

/* The number of terminal columns s (UTF-8) takes: two for an East Asian
   wide character (CJK, Hangul, fullwidth forms, emoji), none for a
   combining mark, one for the others and for each octet of broken
   UTF-8. */
size_t mc_display_width(const char *s);

/* Writes s (len bytes) with control characters other than tab and LF
   replaced by '?', so no mail can drive the terminal. Invalid UTF-8 is
   written as it is. */
void mc_write_safe(FILE *out, const char *s, size_t len);

#endif
