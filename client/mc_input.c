/* mc_input.c: the mailclient's terminal input: lines read from stdin
   while the IMAP connection is watched (IDLE, or NOOP now and then), the
   password read without echo, the terminal restored on a signal. */
#include "lib.h"
#include "buf.h"
#include "imap_client_lib.h"
#include "mc_screens.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#define MC_IDLE_RENEW_MS (25 * 60 * 1000)   /* RFC 2177: re-issue IDLE within 29 min */
#define MC_NOOP_INTERVAL_MS (30 * 1000)     /* without IDLE: how often to poll */
#define MC_MAX_INPUT (1024 * 1024)          /* one input line */

static struct termios mc_saved_termios;
static volatile sig_atomic_t mc_termios_saved;

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

/* Appends what stdin has to mc->in; end of input or an error sets
   mc->in_eof. */
static void
mc_read_stdin(struct mc *mc)
{
	buf_reserve(&mc->in, 4096);
	ssize_t n = read(STDIN_FILENO, mc->in.data + mc->in.len, 4096);
	if (n > 0) {
		mc->in.len += (size_t)n;
		mc->in.data[mc->in.len] = '\0';
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
	struct pollfd pfd[2];
	nfds_t nfds = 1;
	int timeout = -1;
	char *err = NULL;
	bool idle_capable = false;

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
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
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		nfds = 2;
		timeout = imapc_is_idling(mc->conn) ? MC_IDLE_RENEW_MS : MC_NOOP_INTERVAL_MS;
	}
	/* Changes that came with earlier answers. */
	if (mc->loaded)
		mc_announce_new(mc);
	if (mc->notices.count > 0) {
		putc('\n', stdout);
		mc_notices_flush(mc);
		fputs(mc->prompt != NULL ? mc->prompt : "", stdout);
		fflush(stdout);
		return;         /* the IDLE state may have changed: start over */
	}
	fflush(stdout);

	int ret = poll(pfd, nfds, timeout);
	if (ret == 0 && mc->reconnect_at != 0)
		return;         /* time to reconnect: the next round does it */
	if (ret < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "mailclient: poll(): %s\n", strerror(errno));
			exit(1);
		}
		return;
	}
	if (nfds == 2 && mc->conn != NULL &&
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
	if (mc->notices.count > 0)
		mc_notices_flush(mc);
	mc->prompt = prompt;
	fputs(prompt, stdout);
	fflush(stdout);
	/* Each round either takes a line, or waits for an event (input,
	   the server, a timer). */
	int ret = -1;
	mc->waiting = true;
	while (ret < 0) {
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

/* Reads the password without echo when stdin is a terminal. */
int
mc_read_password(struct mc *mc, const char *prompt, char **line_r)
{
	struct termios t;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t) == 0;

	if (tty) {
		mc_saved_termios = t;
		mc_termios_saved = 1;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ECHONL;
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &t);
	}
	int ret = mc_read_line(mc, prompt, line_r);
	if (tty) {
		mc_restore_termios();
		mc_termios_saved = 0;
	}
	return ret;
}

void ATTR_NORETURN
mc_end_of_input(void)
{
	fprintf(stderr, "mailclient: end of input before Quit\n");
	exit(1);
}
