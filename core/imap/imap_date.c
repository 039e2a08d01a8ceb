/* imap_date.c: the IMAP date and date-time syntaxes of RFC 3501 that
   only the server uses (INTERNALDATE written, the SEARCH date read); the
   calendar arithmetic is core/mail's date.h. */
#include "imap_date.h"
#include "date.h"

void
imap_date_write(int64_t t, int32_t tz_minutes, struct buf *out)
{
	/* Keep the arithmetic far from overflow on absurd inputs. */
	int64_t limit = (int64_t)1 << 50;
	int64_t local, days, secs, y;
	unsigned m, d;
	int32_t tz_abs;

	if (tz_minutes > 24 * 60 || tz_minutes < -24 * 60)
		tz_minutes = 0;
	if (t > limit)
		t = limit;
	if (t < -limit)
		t = -limit;
	local = t + (int64_t)tz_minutes * 60;
	days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	secs = local - days * 86400;
	date_civil_from_days(days, &y, &m, &d);
	tz_abs = tz_minutes < 0 ? -tz_minutes : tz_minutes;
	/* RFC 3501 date-day-fixed: a space-padded day. */
	buf_printf(out, "%2u-%s-%04lld %02d:%02d:%02d %c%02d%02d", d, date_month_abbr(m),
		   (long long)y, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
		   tz_minutes < 0 ? '-' : '+', (int)(tz_abs / 60), (int)(tz_abs % 60));
}

int
imap_date_parse(const char *str, int64_t *days_r)
{
	size_t pos = 0;
	int64_t days;

	if (date_parse_imap_day(str, &pos, &days) < 0 || str[pos] != '\0')
		return -1;
	*days_r = days;
	return 0;
}
