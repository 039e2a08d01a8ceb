/* mc_edit.c: the mailclient's line editor (see mc_edit.h). */
#include "mc_edit.h"

#define MC_CTRL(c) ((unsigned char)((c) & 0x1f))
#define MC_DEL 0x7f
#define MC_ESC 0x1b

void
mc_edit_init(struct mc_edit *e, unsigned char erase, unsigned char kill, unsigned char werase,
	     unsigned char eof, size_t max)
{
	i_zero(e);
	e->erase = erase != 0 ? erase : MC_DEL;
	e->kill = kill != 0 ? kill : MC_CTRL('U');
	e->werase = werase != 0 ? werase : MC_CTRL('W');
	e->eof = eof != 0 ? eof : MC_CTRL('D');
	e->max = max;
}

void
mc_edit_free(struct mc_edit *e)
{
	buf_free(&e->line);
}

size_t
mc_edit_width(const struct mc_edit *e)
{
	size_t n = 0;

	if (e->secret)
		return 0;
	for (size_t i = 0; i < e->line.len; i++) {
		if (((unsigned char)e->line.data[i] & 0xc0) != 0x80)
			n++;
	}
	return n;
}

void
mc_edit_draw(const struct mc_edit *e, struct buf *echo)
{
	if (!e->secret && e->line.len > 0)
		buf_append(echo, e->line.data, e->line.len);
}

/* Removes the last character (a whole UTF-8 sequence) and rubs it out
   on the screen. Returns false if the line is empty. */
static bool
mc_edit_rubout(struct mc_edit *e, struct buf *echo)
{
	size_t len = e->line.len;

	if (len == 0)
		return false;
	while (len > 1 && ((unsigned char)e->line.data[len - 1] & 0xc0) == 0x80)
		len--;
	len--;
	e->line.len = len;
	e->line.data[len] = '\0';
	if (!e->secret)
		buf_append_str(echo, "\b \b");
	return true;
}

static void
mc_edit_word_rubout(struct mc_edit *e, struct buf *echo)
{
	while (e->line.len > 0 && e->line.data[e->line.len - 1] == ' ')
		(void)mc_edit_rubout(e, echo);
	while (e->line.len > 0 && e->line.data[e->line.len - 1] != ' ')
		(void)mc_edit_rubout(e, echo);
}

/* Inside an escape sequence: ESC [ or ESC O, parameters, then a final
   byte 0x40-0x7e; or ESC and one character. Returns true while the
   sequence goes on after c. */
static bool
mc_edit_escape(struct mc_edit *e, unsigned char c)
{
	if (e->esc == 1) {
		e->esc = c == '[' || c == 'O' ? 2 : 0;
		return e->esc != 0;
	}
	if (c >= 0x40 && c <= 0x7e && !(c == '[' && e->esc == 2))
		e->esc = 0;
	else
		e->esc = 3;
	return e->esc != 0;
}

/* Ends the line: it goes to line_out with its LF. */
static void
mc_edit_finish(struct mc_edit *e, struct buf *line_out, struct buf *echo)
{
	buf_append(line_out, e->line.data != NULL ? e->line.data : "", e->line.len);
	buf_append_c(line_out, '\n');
	buf_append_c(echo, '\n');
	if (e->secret && e->line.data != NULL)
		explicit_bzero(e->line.data, e->line.len);
	e->line.len = 0;
	if (e->line.data != NULL)
		e->line.data[0] = '\0';
}

size_t
mc_edit_feed(struct mc_edit *e, const char *keys, size_t len, struct buf *line_out,
	     struct buf *echo, bool *eof_r)
{
	*eof_r = false;
	buf_append(echo, "", 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)keys[i];

		if (e->esc != 0) {
			(void)mc_edit_escape(e, c);
			continue;
		}
		if (c == '\n' || c == '\r') {
			mc_edit_finish(e, line_out, echo);
			return i + 1;
		}
		if (c == e->erase || c == MC_DEL || c == MC_CTRL('H')) {
			(void)mc_edit_rubout(e, echo);
		} else if (c == e->kill) {
			while (mc_edit_rubout(e, echo))
				;
		} else if (c == e->werase) {
			mc_edit_word_rubout(e, echo);
		} else if (c == e->eof) {
			if (e->line.len == 0) {
				*eof_r = true;
				return i + 1;
			}
		} else if (c == MC_CTRL('L')) {
			buf_append_c(echo, '\n');
			mc_edit_draw(e, echo);
		} else if (c == MC_ESC) {
			e->esc = 1;
		} else if (c == '\t' || c >= 0x20) {
			char ch = c == '\t' ? ' ' : (char)c;
			buf_append_c(&e->line, ch);
			if (!e->secret)
				buf_append_c(echo, ch);
			if (e->max > 0 && e->line.len >= e->max) {
				mc_edit_finish(e, line_out, echo);
				return i + 1;
			}
		}
	}
	return len;
}
