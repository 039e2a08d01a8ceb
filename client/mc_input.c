/* mc_input.c: the mailclient's terminal input: lines read from stdin
   while the IMAP connection is watched (IDLE, or NOOP now and then); on
   a terminal the keys edited by the client itself (mc_edit.h), so that
   a notice is printed on a line of its own and the prompt and the typed
   text drawn again after it; the password read without echo; the
   terminal restored at exit and on a signal. */
#include "lib.h"
#include "buf.h"
#include "imap_client_lib.h"
#include "mc_screens.h"
#include "mc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define MC_IDLE_RENEW_MS (25 * 60 * 1000)   /* RFC 2177: re-issue IDLE within 29 min */
#define MC_NOOP_INTERVAL_MS (30 * 1000)     /* without IDLE: how often to poll */
#define MC_MAX_INPUT (1024 * 1024)          /* one input line */

/* The terminal as it was, and as the line editor sets it; shared with
   the signal handlers (tcsetattr() is async-signal-safe). */
static struct termios mc_saved_termios, mc_edit_termios;
static volatile sig_atomic_t mc_termios_saved;
/* Set by SIGCONT: the prompt and the typed text are drawn again. The
   handler also writes a byte to the pipe, which the wait polls: a
   SIGCONT that comes between the check of mc_continued and poll() (as
   one at once after ^Z does) still ends the wait. */
static volatile sig_atomic_t mc_continued;
static int mc_wake_fd[2] = { -1, -1 };

static void
mc_restore_termios(void)
{
	if (mc_termios_saved)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &mc_saved_termios);
}

void
mc_on_signal(int sig)
{
	mc_restore_termios();
	_exit(128 + sig);
}

/* ^Z: the terminal as it was while stopped; on SIGCONT the editor's
   settings again, and the prompt drawn again (mc_read_line). */
static void
mc_on_stop(int sig)
{
	int saved_errno = errno;

	mc_restore_termios();
	signal(SIGTSTP, SIG_DFL);
	raise(SIGTSTP);
	errno = saved_errno;
}

static void
mc_on_continue(int sig)
{
	int saved_errno = errno;
	struct sigaction sa;

	(void)tcsetattr(STDIN_FILENO, TCSANOW, &mc_edit_termios);
	i_zero(&sa);
	sa.sa_handler = mc_on_stop;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGCONT);
	sigaction(SIGTSTP, &sa, NULL);
	mc_continued = 1;
	if (mc_wake_fd[1] != -1)
		(void)write(mc_wake_fd[1], "", 1);
	errno = saved_errno;
}

void
mc_term_init(struct mc *mc)
{
	struct sigaction sa;

	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t) < 0)
		return;
	mc_saved_termios = t;
	mc_termios_saved = 1;
	/* Keys one by one, no echo by the terminal; ^C and ^Z still
	   signal (ISIG), Enter still reads as LF (ICRNL). */
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) {
		mc_termios_saved = 0;
		return;
	}
	mc_edit_termios = t;
	atexit(mc_restore_termios);
	if (pipe(mc_wake_fd) < 0 ||
	    fcntl(mc_wake_fd[0], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(mc_wake_fd[1], F_SETFL, O_NONBLOCK) < 0 ||
	    fcntl(mc_wake_fd[0], F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(mc_wake_fd[1], F_SETFD, FD_CLOEXEC) < 0) {
		/* Without it a SIGCONT may wait for the next key to redraw. */
		if (mc_wake_fd[0] != -1) {
			(void)close(mc_wake_fd[0]);
			(void)close(mc_wake_fd[1]);
		}
		mc_wake_fd[0] = mc_wake_fd[1] = -1;
	}
	i_zero(&sa);
	sigemptyset(&sa.sa_mask);
	/* SIGCONT waits until the ^Z handler is done: run inside it, before
	   its raise(), it would set the editor up and hand SIGTSTP back to
	   the handler, whose second run would leave the terminal canonical
	   under the redrawn prompt. */
	sigaddset(&sa.sa_mask, SIGCONT);
	sa.sa_handler = mc_on_stop;
	sigaction(SIGTSTP, &sa, NULL);
	sa.sa_handler = mc_on_continue;
	sigaction(SIGCONT, &sa, NULL);
	mc_edit_init(&mc->edit, mc_saved_termios.c_cc[VERASE], mc_saved_termios.c_cc[VKILL],
		     mc_saved_termios.c_cc[VWERASE], mc_saved_termios.c_cc[VEOF], MC_MAX_INPUT);
	mc->editing = true;
}

/* Edits the keys read so far until a line is complete (it goes to
   mc->in) or the keys run out; echoes them. The keys after a completed
   line wait for the next prompt. */
static void
mc_edit_keys(struct mc *mc)
{
	struct buf echo = BUF_INIT;

	while (mc->keys.len > 0 && mc->in.len == 0 && !mc->in_eof) {
		bool eof;
		size_t used = mc_edit_feed(&mc->edit, mc->keys.data, mc->keys.len, &mc->in, &echo,
					   &eof);
		buf_consume(&mc->keys, used);
		if (eof)
			mc->in_eof = true;
	}
	if (echo.len > 0) {
		fwrite(echo.data, 1, echo.len, stdout);
		fflush(stdout);
	}
	buf_free(&echo);
}

/* Before notices at a prompt: clears the prompt's line when it holds
   the prompt and the typed text whole (the terminal is wide enough),
   else goes to a fresh line. */
static void
mc_prompt_leave(struct mc *mc)
{
	struct winsize ws;
	size_t width = mc_display_width(mc->prompt != NULL ? mc->prompt : "");

	if (mc->editing) {
		width += mc_edit_width(&mc->edit);
		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
		    width < ws.ws_col) {
			fputs("\r\033[K", stdout);
			return;
		}
	}
	putc('\n', stdout);
}

/* After notices: the prompt and the text typed so far, again. */
static void
mc_prompt_draw(struct mc *mc)
{
	fputs(mc->prompt != NULL ? mc->prompt : "", stdout);
	if (mc->editing) {
		struct buf b = BUF_INIT;
		mc_edit_draw(&mc->edit, &b);
		if (b.len > 0)
			fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	}
	fflush(stdout);
}

/* Takes one line (without its line end) out of the input buffer if a
   whole one is there, or the rest at end of input. */
static bool
mc_take_line(struct mc *mc, char **line_r)
{
	const char *lf = mc->in.len > 0 ? memchr(mc->in.data, '\n', mc->in.len) : NULL;
	size_t len;

	if (lf != NULL) {
		len = (size_t)(lf - mc->in.data);
	} else if (mc->in.len >= MC_MAX_INPUT || (mc->in_eof && mc->in.len > 0)) {
		len = mc->in.len;
	} else {
		return false;
	}
	size_t consumed = lf != NULL ? len + 1 : len;
	if (len > 0 && mc->in.data[len - 1] == '\r')
		len--;
	*line_r = xstrndup(mc->in.data, len);
	buf_consume(&mc->in, consumed);
	return true;
}

/* The IMAP connection (mc->conn, loaded) spoke (readable) or stayed
   quiet for the whole wait (timed_out): reads what came, or renews IDLE
   or polls with NOOP. Returns 0, or -1 if the connection failed (a
   reconnection is planned). */
static int
mc_conn_event(struct mc *mc, bool readable, bool timed_out)
{
	char *err = NULL;

	if (readable) {
		if (imapc_is_idling(mc->conn)) {
			if (imapc_idle_input(mc->conn, &err) < 0) {
				mc_conn_failed(mc, err);
				return -1;
			}
		} else {
			/* Not idling, yet the server speaks: most likely
			   a BYE or a close; NOOP finds out. */
			char *reply = NULL;
			(void)mc_imap(mc, "NOOP", &reply);
			free(reply);
		}
	} else if (timed_out) {
		char *reply = NULL;
		if (imapc_is_idling(mc->conn)) {
			if (imapc_idle_stop(mc->conn, &err) < 0) {
				mc_conn_failed(mc, err);
				return -1;
			}
		} else {
			(void)mc_imap(mc, "NOOP", &reply);
		}
		free(reply);
	}
	return 0;
}

/* Appends what stdin has to mc->in (mc->keys on a terminal); end of
   input or an error sets mc->in_eof. */
static void
mc_read_stdin(struct mc *mc)
{
	struct buf *to = mc->editing ? &mc->keys : &mc->in;

	buf_reserve(to, 4096);
	ssize_t n = read(STDIN_FILENO, to->data + to->len, 4096);
	if (n > 0) {
		to->len += (size_t)n;
		to->data[to->len] = '\0';
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		mc->in_eof = true;
	}
}

/* Waits for input on stdin while watching the IMAP connection (IDLE,
   or NOOP now and then without it). Notices are printed as they come,
   followed by the prompt again. */
static void
mc_wait_input(struct mc *mc)
{
	struct pollfd pfd[3];
	bool conn_watched = false;
	int timeout = -1;
	char *err = NULL;
	bool idle_capable = false;

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	pfd[1].fd = -1;         /* poll() skips a negative descriptor */
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	pfd[2].fd = mc_wake_fd[0];
	pfd[2].events = POLLIN;
	pfd[2].revents = 0;
	if (mc->reconnect_at != 0) {
		int64_t now = mono_ms();
		if (now >= mc->reconnect_at || mc->conn != NULL) {
			mc_reconnect_due(mc);
			return;
		}
		timeout = (int)(mc->reconnect_at - now);
	}
	if (mc->conn != NULL && mc->loaded) {
		idle_capable = imapc_has_capability(mc->conn, "IDLE");
		if (idle_capable && !imapc_is_idling(mc->conn) &&
		    imapc_idle_start(mc->conn, &err) < 0) {
			mc_conn_failed(mc, err);
			return;
		}
	}
	if (mc->conn != NULL && mc->loaded && imapc_input_pending(mc->conn)) {
		/* TLS holds decoded input the socket will not announce. */
		(void)mc_conn_event(mc, true, false);
		return;
	}
	if (mc->conn != NULL && mc->loaded) {
		pfd[1].fd = imapc_fd(mc->conn);
		conn_watched = true;
		timeout = imapc_is_idling(mc->conn) ? MC_IDLE_RENEW_MS : MC_NOOP_INTERVAL_MS;
	}
	/* Changes that came with earlier answers. */
	if (mc->loaded)
		mc_announce_new(mc);
	if (mc->notices.count > 0 && !mc->hold_notices) {
		mc_prompt_leave(mc);
		mc_notices_flush(mc);
		mc_prompt_draw(mc);
		return;         /* the IDLE state may have changed: start over */
	}
	fflush(stdout);
	if (mc_continued)
		return;         /* mc_read_line() draws the prompt again */

	int ret = poll(pfd, N_ELEMENTS(pfd), timeout);
	if (ret == 0 && mc->reconnect_at != 0)
		return;         /* time to reconnect: the next round does it */
	if (ret < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "mailclient: poll(): %s\n", strerror(errno));
			exit(1);
		}
		return;
	}
	if ((pfd[2].revents & POLLIN) != 0) {
		char drain[64];

		while (read(mc_wake_fd[0], drain, sizeof(drain)) > 0)
			;
	}
	if (conn_watched && mc->conn != NULL &&
	    mc_conn_event(mc, pfd[1].revents != 0, ret == 0) < 0)
		return;
	if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
		mc_read_stdin(mc);
}

/* Prints prompt and reads one line. Returns 1 with *line_r (malloc'ed),
   or 0 at the end of input. */
int
mc_read_line(struct mc *mc, const char *prompt, char **line_r)
{
	if (mc->notices.count > 0 && !mc->hold_notices)
		mc_notices_flush(mc);
	mc->prompt = prompt;
	fputs(prompt, stdout);
	fflush(stdout);
	/* Each round either takes a line, or waits for an event (input,
	   the server, a timer). */
	int ret = -1;
	mc->waiting = true;
	while (ret < 0) {
		if (mc_continued) {
			mc_continued = 0;
			putc('\n', stdout);
			mc_prompt_draw(mc);
		}
		if (mc->editing)
			mc_edit_keys(mc);
		if (mc_take_line(mc, line_r))
			ret = 1;
		else if (mc->in_eof)
			ret = 0;
		else
			mc_wait_input(mc);
	}
	mc->waiting = false;
	return ret;
}

/* Reads the password without echo when stdin is a terminal (the line
   editor echoes nothing of it but the line end). */
int
mc_read_password(struct mc *mc, const char *prompt, char **line_r)
{
	mc->edit.secret = true;
	int ret = mc_read_line(mc, prompt, line_r);
	mc->edit.secret = false;
	return ret;
}

void ATTR_NORETURN
mc_end_of_input(void)
{
	fprintf(stderr, "mailclient: end of input before Quit\n");
	exit(1);
}
