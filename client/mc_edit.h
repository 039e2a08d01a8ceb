/* mc_edit.h: the mailclient's line editor for a terminal.

   On a terminal the client reads the keys itself (no canonical mode,
   no echo by the terminal) so that it always knows what the user has
   typed of the current line: a notice that arrives meanwhile is then
   printed on a line of its own and the prompt and the typed text are
   drawn again after it, instead of splitting the line on the screen.

   The editor is a pure function of the keys: it turns them into lines
   and into what to echo, so the unit tests can drive it without a
   terminal. Keys: printable characters (UTF-8 too) are inserted at the
   end; the terminal's erase (Backspace), kill (^U) and word-erase (^W)
   characters; Enter ends the line; the end-of-file character (^D) on
   an empty line ends the input; ^L draws the line again; escape
   sequences (the arrow keys ...) and other control characters are
   ignored, a tab is a space. */
#ifndef MC_EDIT_H
#define MC_EDIT_H

#include "lib.h"
#include "buf.h"

struct mc_edit {
	struct buf line;                /* typed so far, without the line end */
	unsigned char erase, kill, werase, eof; /* the terminal's characters */
	bool secret;                    /* echo nothing but the line end */
	int esc;                        /* 0, or where in an escape sequence */
	size_t max;                     /* a line this long ends by itself */
};

/* Sets up e with the terminal's special characters (0: that key's
   default, DEL and ^H erase, ^U, ^W, ^D). */
void mc_edit_init(struct mc_edit *e, unsigned char erase, unsigned char kill,
		  unsigned char werase, unsigned char eof, size_t max);
void mc_edit_free(struct mc_edit *e);

/* Feeds keys (len bytes) until one line is complete. Appends to echo
   what the terminal should show; a completed line goes to line_out
   with an LF. Returns how many bytes were used (the rest is for the
   next line: feed it after the next prompt); sets *eof_r when the
   end-of-file key came on an empty line. */
size_t mc_edit_feed(struct mc_edit *e, const char *keys, size_t len, struct buf *line_out,
		    struct buf *echo, bool *eof_r);

/* The number of terminal columns the typed text takes (0 if secret). */
size_t mc_edit_width(const struct mc_edit *e);

/* Appends the typed text as it is shown (nothing if secret). */
void mc_edit_draw(const struct mc_edit *e, struct buf *echo);

#endif
