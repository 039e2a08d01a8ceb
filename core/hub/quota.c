/* quota.c: quota usage and limits (see quota.h). */
#include "quota.h"
#include "mailbox.h"

int
quota_user_usage(struct hub *hub, const struct storage_ctx *storage, const char *sid,
		 const char *user, struct quota_usage *usage_r, enum storage_error *err_r)
{
	struct strlist names = { 0 };
	int ret = 0;

	usage_r->octets = 0;
	usage_r->messages = 0;
	if (storage_list(storage, sid, user, &names, err_r) < 0)
		return -1;
	for (size_t i = 0; i < names.count; i++) {
		struct mailbox *mbox;
		enum storage_error err;

		if (mailbox_open(hub, sid, user, names.items[i], &mbox, &err) < 0) {
			/* Gone since the listing (another session deleted
			   it): it holds nothing any more. */
			if (err == STORAGE_ERR_NOT_FOUND)
				continue;
			*err_r = err;
			ret = -1;
			break;
		}
		/* O(1) while the mailbox's messages are the same */
		usage_r->octets += mailbox_octets(mbox);
		usage_r->messages += mailbox_state(mbox)->count;
		mailbox_unref(&mbox);
	}
	strlist_clear(&names);
	return ret;
}

bool
quota_allows(const struct quota_limits *limits, const struct quota_usage *usage,
	     uint64_t add_octets, uint64_t add_messages)
{
	if (add_messages > 0 && limits->messages != 0 &&
	    usage->messages + add_messages > limits->messages)
		return false;
	if (add_octets > 0 && limits->storage_kib != 0 &&
	    usage->octets + add_octets > limits->storage_kib * 1024)
		return false;
	return true;
}

uint64_t
quota_usage_kib(const struct quota_usage *usage)
{
	return (usage->octets + 1023) / 1024;
}
