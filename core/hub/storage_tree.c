/* storage_tree.c: the rules of the mailbox hierarchy that every backend
   shares (storage.h, "Hierarchy"): which mailboxes a RENAME moves and
   where, decided once here so that flat and Maildir cannot differ. */
#include "storage.h"

#include <stdlib.h>

bool
storage_name_is_inferior(const char *name, const char *parent)
{
	size_t len = strlen(parent);

	return strncmp(name, parent, len) == 0 && name[len] == '/';
}

static int
tree_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* names sorted (pointers into names, not copies). */
struct tree_index {
	const char **v;
	size_t count;
};

static void
tree_index_init(struct tree_index *ix, const struct strlist *names)
{
	ix->count = names->count;
	ix->v = xcalloc(ix->count + 1, sizeof(*ix->v));
	for (size_t i = 0; i < ix->count; i++)
		ix->v[i] = names->items[i];
	qsort(ix->v, ix->count, sizeof(*ix->v), tree_name_cmp);
}

static bool
tree_index_contains(const struct tree_index *ix, const char *name)
{
	return bsearch(&name, ix->v, ix->count, sizeof(*ix->v), tree_name_cmp) != NULL;
}

static int
plan_refuse(enum storage_error err, char *reason, enum storage_error *err_r, char **error_r)
{
	*err_r = err;
	*error_r = reason;
	return -1;
}

int
storage_rename_plan(const struct strlist *names, const char *oldname, const char *newname,
		    struct strlist *from_r, struct strlist *to_r, enum storage_error *err_r,
		    char **error_r)
{
	struct tree_index ix;
	struct strlist from = { 0 }, to = { 0 };
	size_t oldlen = strlen(oldname);
	bool inbox = strcmp(oldname, "INBOX") == 0;
	int ret = -1;

	*err_r = STORAGE_ERR_NONE;
	if (strcmp(newname, "INBOX") == 0)
		return plan_refuse(STORAGE_ERR_EXISTS, xstrdup("INBOX always exists"), err_r,
				   error_r);
	if (!inbox && storage_name_is_inferior(newname, oldname))
		return plan_refuse(STORAGE_ERR_BAD_NAME,
				   xasprintf("cannot rename %s into itself", oldname), err_r,
				   error_r);
	tree_index_init(&ix, names);
	if (tree_index_contains(&ix, newname)) {
		plan_refuse(STORAGE_ERR_EXISTS, xasprintf("%s exists", newname), err_r, error_r);
		goto out;
	}
	/* The inferiors (INBOX's stay where they are). */
	for (size_t i = 0; i < names->count && !inbox; i++) {
		const char *name = names->items[i];

		if (storage_name_is_inferior(name, oldname)) {
			strlist_add(&from, name);
			strlist_add_take(&to, xasprintf("%s%s", newname, name + oldlen));
		}
	}
	if (inbox || tree_index_contains(&ix, oldname)) {
		strlist_add(&from, oldname);
		strlist_add(&to, newname);
	}
	if (from.count == 0) {
		plan_refuse(STORAGE_ERR_NOT_FOUND, xasprintf("%s does not exist", oldname), err_r,
			    error_r);
		goto out;
	}
	for (size_t i = 0; i < to.count; i++) {
		if (!storage_name_is_valid(to.items[i])) {
			plan_refuse(STORAGE_ERR_BAD_NAME,
				    xasprintf("%s would be renamed to an invalid name", from.items[i]),
				    err_r, error_r);
			goto out;
		}
		if (tree_index_contains(&ix, to.items[i])) {
			plan_refuse(STORAGE_ERR_EXISTS, xasprintf("%s exists", to.items[i]), err_r,
				    error_r);
			goto out;
		}
	}
	for (size_t i = 0; i < from.count; i++) {
		strlist_add(from_r, from.items[i]);
		strlist_add(to_r, to.items[i]);
	}
	ret = 0;
out:
	strlist_clear(&from);
	strlist_clear(&to);
	free(ix.v);
	return ret;
}
