/* fetch_objectid.c: the FETCH items of OBJECTID (RFC 8474 7). */
#include "fetch.h"

void
fetch_write_emailid(const char *data, size_t len, struct buf *out)
{
	char id[STORAGE_OBJECTID_SIZE];

	storage_email_id(data, len, id);
	buf_append_str(out, "EMAILID (");
	buf_append_str(out, id);
	buf_append_c(out, ')');
}

void
fetch_write_threadid(struct buf *out)
{
	buf_append_str(out, "THREADID NIL");
}
