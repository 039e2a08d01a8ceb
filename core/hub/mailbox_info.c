/* mailbox_info.c: what a mailbox is, for reports (see mailbox.h). */
#include "mailbox.h"
#include "mailbox_private.h"

const char *
mailbox_name(const struct mailbox *mbox)
{
	return mbox->name;
}

const char *
mailbox_user(const struct mailbox *mbox)
{
	return mbox->user;
}
