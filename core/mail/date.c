/* date.c: proleptic Gregorian calendar arithmetic and the small readers
   that the date syntaxes of RFC 5322 (message.c) and IMAP (message.c,
   core/imap/imap_date.c) share. Inputs are NUL-terminated strings; no
   reader goes past the NUL. */
#include "date.h"

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char *
date_month_abbr(unsigned month)
{
	return month >= 1 && month <= 12 ? month_names[month - 1] : "???";
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
   days_from_civil), valid for any year an int64 holds comfortably. */
int64_t
date_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

void
date_civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r, unsigned *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;

	*y_r = y + (m <= 2);
	*m_r = m;
	*d_r = d;
}

unsigned
date_days_in_month(int64_t y, unsigned m)
{
	static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/* Month 1..12 of the name at s (its first three letters), or 0. */
unsigned
date_month_from_name(const char *s, size_t len)
{
	if (len < 3)
		return 0;
	for (unsigned i = 0; i < 12; i++) {
		if (ascii_strncasecmp(s, month_names[i], 3) == 0)
			return i + 1;
	}
	return 0;
}

/* Reads 1..max_digits digits. Returns the count read (0 if none). */
size_t
date_read_number(const char *s, size_t *pos, size_t max_digits, unsigned *num_r)
{
	size_t n = 0;
	unsigned num = 0;

	while (is_digit(s[*pos]) && n < max_digits) {
		num = num * 10 + (unsigned)(s[*pos] - '0');
		(*pos)++;
		n++;
	}
	*num_r = num;
	return n;
}

/* Parses "d-Mon-yyyy" (day of one or two digits, or space-padded) at
   str[*pos]. */
int
date_parse_imap_day(const char *str, size_t *pos, int64_t *days_r)
{
	unsigned day, year, month;

	if (str[*pos] == ' ')
		(*pos)++;
	if (date_read_number(str, pos, 2, &day) == 0 || str[*pos] != '-')
		return -1;
	(*pos)++;
	if (!is_alpha(str[*pos]) || !is_alpha(str[*pos + 1]) || !is_alpha(str[*pos + 2]))
		return -1;
	month = date_month_from_name(str + *pos, 3);
	*pos += 3;
	if (month == 0 || str[*pos] != '-')
		return -1;
	(*pos)++;
	if (date_read_number(str, pos, 4, &year) != 4 || is_digit(str[*pos]))
		return -1;
	if (day < 1 || day > date_days_in_month(year, month))
		return -1;
	*days_r = date_days_from_civil(year, month, day);
	return 0;
}
