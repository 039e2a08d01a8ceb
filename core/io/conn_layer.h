/* conn_layer.h: the layers a connection's bytes go through.

   The bytes go through a stack of layers; the bottom one is the
   plain socket, built in. TLS and COMPRESS=DEFLATE are pushed on top
   later (connection_push_layer), without the protocol code knowing.
   A layer is a struct conn_layer with a const vtable:

   - read(layer, data, size): returns 1..size decoded octets, 0 at the end
     of the stream, or -1 with errno: EAGAIN when nothing can be had now,
     anything else for a failure. A layer reads from the one below with
     conn_layer_read(layer->below, ...).
   - write(layer, data, size): takes 1..size octets (it may keep them and
     write them below later), or -1 with errno EAGAIN (nothing taken,
     try when the socket lets it) or a failure. It writes below with
     conn_layer_write(layer->below, ...).
   - flush(layer): pushes what the layer holds to the layer below;
     0 when all is pushed, -1 with errno EAGAIN when some is left, other
     errno for a failure. Optional.
   - out_pending(layer): octets (or a non-zero estimate) the layer still
     holds for output; the connection keeps its output event watched
     while any layer holds some. Optional (0).
   - in_pending(layer): true if the layer holds decoded input it can
     return without the socket (OpenSSL's SSL_pending, inflate output
     that did not fit): the connection then reads again after the pass
     instead of waiting for the socket. Optional (false).
   - error(layer): why the last read or write failed with EPROTO (a
     protocol error of the layer, e.g. a TLS alert), or NULL. Optional.
   - take_input(layer, data, size): octets that were read from below
     before the layer was pushed (commands a client pipelined behind
     COMPRESS, which RFC 4978 says are compressed): the layer keeps a
     copy and decodes them before anything it reads below. Only for a
     layer started with connection_start_layer_keep_input(). Optional.
   - free(layer): frees the layer (the connection frees layers top down,
     before closing the fd).

   Which socket event a blocked operation waits for is found out at the
   bottom: if, during a read of the stack, the socket layer's send()
   would block (TLS writing a handshake record when asked to read), the
   connection waits for writability to read again; if, during a write,
   the socket's recv() would block (TLS wanting the peer's record before
   it can write), it waits for readability to write again. A layer never
   touches the fd or the event loop itself. */
#ifndef CONN_LAYER_H
#define CONN_LAYER_H

#include "lib.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

struct connection;
struct conn_layer;

struct conn_layer_vfuncs {
	const char *name;
	ssize_t (*read)(struct conn_layer *layer, void *data, size_t size);
	ssize_t (*write)(struct conn_layer *layer, const void *data, size_t size);
	int (*flush)(struct conn_layer *layer);
	size_t (*out_pending)(const struct conn_layer *layer);
	bool (*in_pending)(const struct conn_layer *layer);
	const char *(*error)(const struct conn_layer *layer);
	void (*take_input)(struct conn_layer *layer, const void *data, size_t size);
	void (*free)(struct conn_layer *layer);
};

/* Embedded first in a layer's own struct. */
struct conn_layer {
	const struct conn_layer_vfuncs *v;
	struct conn_layer *below; /* NULL for the socket layer */
	struct connection *conn;
};

static inline ssize_t
conn_layer_read(struct conn_layer *layer, void *data, size_t size)
{
	return layer->v->read(layer, data, size);
}

static inline ssize_t
conn_layer_write(struct conn_layer *layer, const void *data, size_t size)
{
	return layer->v->write(layer, data, size);
}

/* recv() and send() for a socket layer (the bottom of a stack):
   restarted after a signal; when the socket would block, *blocked is set
   and -1 is returned with errno EAGAIN, which tells the owner which
   socket event a blocked stack waits for. */
static inline ssize_t
conn_sock_recv(int fd, void *data, size_t size, bool *blocked)
{
	ssize_t ret;

	do {
		ret = recv(fd, data, size, 0);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		*blocked = true;
		errno = EAGAIN;
	}
	return ret;
}

static inline ssize_t
conn_sock_send(int fd, const void *data, size_t size, bool *blocked)
{
	ssize_t ret;

	do {
		ret = send(fd, data, size, MSG_NOSIGNAL);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		*blocked = true;
		errno = EAGAIN;
	}
	return ret;
}

#endif
