/* date.h: calendar arithmetic (proleptic Gregorian, any year an int64
   holds comfortably) and the readers shared by the RFC 5322 and IMAP
   date syntaxes. */
#ifndef DATE_H
#define DATE_H

#include "lib.h"

/* "Jan".."Dec" for month 1..12. */
const char *date_month_abbr(unsigned month);
/* Days since 1970-01-01 of year y, month m (1..12), day d. */
int64_t date_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The year, month (1..12) and day of days since 1970-01-01. */
void date_civil_from_days(int64_t days, int64_t *y_r, unsigned *m_r, unsigned *d_r);
/* Days in month m (1..12) of year y. */
unsigned date_days_in_month(int64_t y, unsigned m);
/* Month 1..12 of the name s[0..len) (its first three letters, any case),
   or 0. */
unsigned date_month_from_name(const char *s, size_t len);
/* Reads 1..max_digits digits at s[*pos] (NUL-terminated). Returns the
   count read (0 if none). */
size_t date_read_number(const char *s, size_t *pos, size_t max_digits, unsigned *num_r);
/* Reads the IMAP date "d-Mon-yyyy" (day of one or two digits, or
   space-padded) at str[*pos] (NUL-terminated) into days since the epoch.
   Returns 0 with *pos past it, or -1. */
int date_parse_imap_day(const char *str, size_t *pos, int64_t *days_r);

#endif
