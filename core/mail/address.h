/* address.h: reading RFC 5322 address lists (From, To, Cc ...): mailboxes
   with their display names, obsolete source routes, and groups. */
#ifndef ADDRESS_H
#define ADDRESS_H

#include "lib.h"
#include "buf.h"

enum message_address_kind {
	MESSAGE_ADDRESS_MAILBOX,        /* name <route:mailbox@host>, or mailbox@host */
	MESSAGE_ADDRESS_GROUP_START,    /* "name:": name is the group's name */
	MESSAGE_ADDRESS_GROUP_END,      /* ";" (or the end of the list in a group) */
};

/* One item of an address list. The buffers are empty (len 0, data
   possibly NULL) when the part is absent: no display name, no route, a
   bare local part without a host. Valid during the callback only. */
struct message_address {
	enum message_address_kind kind;
	const struct buf *name;         /* display name, quotes removed; words joined
					   by one space; for a bare addr-spec
					   ("user@host (Real Name)") its last comment */
	const struct buf *route;        /* "@a,@b" */
	const struct buf *mailbox;      /* local part */
	const struct buf *host;         /* domain, or "[literal]" */
};

typedef void message_address_cb(const struct message_address *addr, void *context);

/* Reads the address list s[0..len) (an unfolded header value), calling
   cb for each mailbox and group marker in order. Junk is skipped;
   an unterminated group is closed at the end. Returns the number of
   calls. */
size_t message_address_list_parse(const char *s, size_t len, message_address_cb *cb,
				  void *context);

/* Appends the address list s[0..len) in the one-line form that SEARCH
   FROM, TO, CC and BCC look into (RFC 3501 6.4.4 matches the envelope's
   field, not the raw header; Dovecot writes the same form): "local@host",
   or "name <@route:local@host>" when there is a name or a route, a group
   as "name: a@b, c@d;", items joined by ", ". Comments and quoting are
   gone; encoded words are left as they are. Returns the number of items
   (as message_address_list_parse()). */
size_t message_address_list_write(const char *s, size_t len, struct buf *out);

#endif
