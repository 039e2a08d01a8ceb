/* net.c: socket helpers (see net.h). */
#include "net.h"
#include "event.h"
#include "buf.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

/* Connections the kernel completes before the loop accepts them: a burst
   of clients (a thousand phones reconnecting after a network outage)
   waits here instead of having its SYNs dropped and retried a second
   later. Linux caps it at net.core.somaxconn (4096 by default). */
#define NET_LISTEN_BACKLOG 4096

int
net_listen(const char *address, unsigned port, char **bound_r, char **error_r)
{
	struct addrinfo hints, *ai;
	char portstr[16], host[NI_MAXHOST], serv[NI_MAXSERV];
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd, one = 1, ret;

	i_zero(&hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(address, portstr, &hints, &ai);
	if (ret != 0) {
		*error_r = xasprintf("address %s: %s", address, gai_strerror(ret));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* An IPv6 socket listens on IPv6 only: with the Linux default (v6only=0)
	 * "::" also takes every IPv4 address, so binding "0.0.0.0" and "::"
	 * together would fail with EADDRINUSE. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, NET_LISTEN_BACKLOG) < 0) {
		*error_r = xasprintf("listen on %s:%u: %s", address, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (!event_fd_ok(fd)) {
		*error_r = xasprintf("listen socket fd %d is beyond FD_SETSIZE", fd);
		close(fd);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		*bound_r = xasprintf(ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
				     host, serv);
	else
		*bound_r = xasprintf("%s:%u", address, port);
	return fd;
}

int
net_address_split(const char *addresses, struct strlist *list, char **error_r)
{
	const char *p = addresses;

	strlist_clear(list);
	while (*p != '\0') {
		size_t len;

		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		char *one = xstrndup(p, len);
		p += len;
		if (strlist_contains(list, one)) {
			*error_r = xasprintf("'%s' is named twice", one);
			free(one);
			strlist_clear(list);
			return -1;
		}
		strlist_add_take(list, one);
	}
	if (list->count == 0) {
		*error_r = xstrdup("an empty address (\"0.0.0.0\" or \"::\" listen everywhere)");
		return -1;
	}
	if (list->count > NET_LISTEN_MAX) {
		*error_r = xasprintf("more than %d addresses", NET_LISTEN_MAX);
		strlist_clear(list);
		return -1;
	}
	return 0;
}

/* The port a listening socket is bound to, or 0. */
static unsigned
net_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int
net_listen_set_open(struct net_listen_set *set, const char *addresses, unsigned port,
		    char **error_r)
{
	struct strlist list = { 0 };
	struct buf bound = BUF_INIT;

	i_zero(set);
	if (net_address_split(addresses, &list, error_r) < 0)
		return -1;
	for (size_t i = 0; i < list.count; i++) {
		char *one;
		int fd = net_listen(list.items[i], port, &one, error_r);

		if (fd < 0) {
			net_listen_set_close(set);
			strlist_clear(&list);
			buf_free(&bound);
			return -1;
		}
		if (port == 0)
			port = net_bound_port(fd);
		set->fds[set->count++] = fd;
		buf_printf(&bound, "%s%s", bound.len > 0 ? ", " : "", one);
		free(one);
	}
	set->bound = buf_steal(&bound);
	strlist_clear(&list);
	return 0;
}

void
net_listen_set_close(struct net_listen_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		close(set->fds[i]);
	set->count = 0;
	free(set->bound);
	set->bound = NULL;
}

int
net_check_addresses(const char *addresses, char **error_r)
{
	struct strlist list = { 0 };
	int ret = 0;

	if (net_address_split(addresses, &list, error_r) < 0)
		return -1;
	for (size_t i = 0; i < list.count && ret == 0; i++)
		ret = net_check_address(list.items[i], error_r);
	strlist_clear(&list);
	return ret;
}

int
net_check_address(const char *address, char **error_r)
{
	struct addrinfo hints, *ai;
	struct in6_addr a6;
	const char *colon = strrchr(address, ':');
	int fd, ret;

	if (address[0] == '\0') {
		*error_r = xstrdup("an empty address (\"0.0.0.0\" or \"::\" listen everywhere)");
		return -1;
	}
	/* "0.0.0.0:143", "[::1]:143", "localhost:143": the port has a key of
	   its own. An IPv6 address alone has colons too. */
	if (colon != NULL && inet_pton(AF_INET6, address, &a6) != 1 &&
	    colon[1 + strspn(colon + 1, "0123456789")] == '\0') {
		*error_r = xasprintf("'%s' holds a port: give the address alone, and the port "
				     "in imap.port or smtp.port", address);
		return -1;
	}
	i_zero(&hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	ret = getaddrinfo(address, "0", &hints, &ai);
	if (ret != 0) {
		*error_r = xasprintf("cannot resolve '%s': %s", address, gai_strerror(ret));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		*error_r = xasprintf("cannot listen on '%s': %s%s", address, strerror(errno),
				     errno == EADDRNOTAVAIL ? " (not an address of this machine)" :
							       "");
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	close(fd);
	freeaddrinfo(ai);
	return 0;
}

bool
net_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcmp(host, "local") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}
