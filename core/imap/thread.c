/* thread.c: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
   sections 3 and 5; the step numbers below are the RFC's). */
#include "sort.h"

#include <stdlib.h>

struct container {
	struct sort_msg *msg;           /* NULL: a dummy */
	struct container *parent, *child, *next;
	const char *id;                 /* the msg-id it stands for, or NULL */
};

struct thread_ctx {
	struct container **all;         /* every container made, to free */
	size_t count, alloc;
	/* msg-id -> container, open addressing, size a power of two */
	struct container **table;
	size_t table_size;
};

static struct container *
container_new(struct thread_ctx *t)
{
	struct container *c = xcalloc(1, sizeof(*c));

	if (t->count == t->alloc) {
		t->alloc = t->alloc == 0 ? 64 : t->alloc * 2;
		t->all = xrealloc(t->all, t->alloc * sizeof(*t->all));
	}
	t->all[t->count++] = c;
	return c;
}

static uint32_t
id_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The container of id, made (a dummy) if there is none. */
static struct container *
container_for(struct thread_ctx *t, const char *id)
{
	size_t i = id_hash(id) & (t->table_size - 1);
	struct container *c;

	while (t->table[i] != NULL) {
		if (strcmp(t->table[i]->id, id) == 0)
			return t->table[i];
		i = (i + 1) & (t->table_size - 1);
	}
	c = container_new(t);
	c->id = id;
	t->table[i] = c;
	return c;
}

/* Is a c or a descendant of c? */
static bool
is_descendant(const struct container *c, const struct container *a)
{
	for (; a != NULL; a = a->parent) {
		if (a == c)
			return true;
	}
	return false;
}

static void
unlink_child(struct container *c)
{
	struct container **p;

	if (c->parent == NULL)
		return;
	for (p = &c->parent->child; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	c->parent = NULL;
	c->next = NULL;
}

/* Appends c to parent's children. */
static void
add_child(struct container *parent, struct container *c)
{
	struct container **p = &parent->child;

	while (*p != NULL)
		p = &(*p)->next;
	*p = c;
	c->parent = parent;
	c->next = NULL;
}

static int64_t
container_date(const struct container *c, uint32_t *seq_r)
{
	while (c->msg == NULL && c->child != NULL)
		c = c->child;
	*seq_r = c->msg != NULL ? c->msg->seq : 0;
	return c->msg != NULL ? c->msg->date : 0;
}

static int
container_cmp(const void *pa, const void *pb)
{
	const struct container *a = *(const struct container *const *)pa;
	const struct container *b = *(const struct container *const *)pb;
	uint32_t sa, sb;
	int64_t da = container_date(a, &sa), db = container_date(b, &sb);

	if (da != db)
		return da < db ? -1 : 1;
	return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/* Sorts the sibling list *head by sent date (a dummy by its first
   child's, its children sorted first). */
static void
sort_siblings(struct container **head, bool deep)
{
	struct container **arr, *c;
	size_t n = 0, i = 0;

	for (c = *head; c != NULL; c = c->next) {
		if (deep)
			sort_siblings(&c->child, true);
		n++;
	}
	if (n < 2)
		return;
	arr = xmalloc(n * sizeof(*arr));
	for (c = *head; c != NULL; c = c->next)
		arr[i++] = c;
	qsort(arr, n, sizeof(*arr), container_cmp);
	for (i = 0; i + 1 < n; i++)
		arr[i]->next = arr[i + 1];
	arr[n - 1]->next = NULL;
	*head = arr[0];
	free(arr);
}

static void
write_members(const struct container *c, bool uid, struct buf *out)
{
	if (c->msg != NULL) {
		buf_printf(out, "%u", uid ? c->msg->uid : c->msg->seq);
		if (c->child == NULL)
			return;
		buf_append_c(out, ' ');
		if (c->child->next == NULL) {
			write_members(c->child, uid, out);
			return;
		}
	}
	for (const struct container *ch = c->child; ch != NULL; ch = ch->next) {
		buf_append_c(out, '(');
		write_members(ch, uid, out);
		buf_append_c(out, ')');
	}
}

static void
write_roots(const struct container *roots, bool uid, struct buf *out)
{
	for (const struct container *r = roots; r != NULL; r = r->next) {
		buf_append_c(out, '(');
		write_members(r, uid, out);
		buf_append_c(out, ')');
	}
}

static int
subject_date_cmp(const void *pa, const void *pb)
{
	const struct sort_msg *a = *(const struct sort_msg *const *)pa;
	const struct sort_msg *b = *(const struct sort_msg *const *)pb;
	int r = strcmp(a->subject, b->subject);

	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}

/* ORDEREDSUBJECT: by base subject, then sent date; the first of each
   subject is the parent of the others; threads in the order of their
   first message's sent date. */
static void
thread_orderedsubject(struct thread_ctx *t, struct sort_msg **msgs, size_t count,
		      struct container *root)
{
	struct container *parent = NULL;

	qsort(msgs, count, sizeof(*msgs), subject_date_cmp);
	for (size_t i = 0; i < count; i++) {
		struct container *c = container_new(t);

		c->msg = msgs[i];
		if (parent != NULL && strcmp(parent->msg->subject, msgs[i]->subject) == 0) {
			add_child(parent, c);
		} else {
			add_child(root, c);
			parent = c;
		}
	}
	sort_siblings(&root->child, false);
}

/* Step 3: dummies without children go; a dummy's children take its
   place, except for a dummy in the root set with more than one child. */
static void
prune(struct container **head, bool at_root)
{
	struct container **p = head;

	while (*p != NULL) {
		struct container *c = *p;

		prune(&c->child, false);
		if (c->msg == NULL && c->child == NULL) {
			*p = c->next;
			continue;
		}
		if (c->msg == NULL && (!at_root || c->child->next == NULL)) {
			struct container *first = c->child, *last = first;

			for (struct container *k = first; k != NULL; k = k->next) {
				k->parent = c->parent;
				last = k;
			}
			last->next = c->next;
			*p = first;
			c->child = NULL;
			continue;       /* the promoted children are looked at again */
		}
		p = &c->next;
	}
}

static const struct container *
root_subject_holder(const struct container *r)
{
	return r->msg != NULL ? r : r->child;
}

/* Step 5: roots with the same base subject gathered. */
static void
gather_subjects(struct thread_ctx *t, struct container *root)
{
	size_t n = 0, size = 16;
	struct container **table, *r, *next;

	for (r = root->child; r != NULL; r = r->next)
		n++;
	while (size < n * 2)
		size *= 2;
	table = xcalloc(size, sizeof(*table));
	/* 5A */
	for (r = root->child; r != NULL; r = r->next) {
		const struct sort_msg *m = root_subject_holder(r)->msg;
		size_t i;

		if (m == NULL || m->subject[0] == '\0')
			continue;
		i = id_hash(m->subject) & (size - 1);
		while (table[i] != NULL &&
		       strcmp(root_subject_holder(table[i])->msg->subject, m->subject) != 0)
			i = (i + 1) & (size - 1);
		if (table[i] == NULL ||
		    (table[i]->msg != NULL && r->msg == NULL) ||
		    (table[i]->msg != NULL && r->msg != NULL && table[i]->msg->is_reply &&
		     !r->msg->is_reply))
			table[i] = r;
	}
	/* 5B */
	for (r = root->child; r != NULL; r = next) {
		const struct sort_msg *m = root_subject_holder(r)->msg;
		struct container *e;
		size_t i;

		next = r->next;
		if (m == NULL || m->subject[0] == '\0')
			continue;
		i = id_hash(m->subject) & (size - 1);
		while (strcmp(root_subject_holder(table[i])->msg->subject, m->subject) != 0)
			i = (i + 1) & (size - 1);
		e = table[i];
		if (e == r)
			continue;
		unlink_child(r);
		if (e->msg == NULL && r->msg == NULL) {
			while (r->child != NULL) {
				struct container *k = r->child;

				unlink_child(k);
				add_child(e, k);
			}
		} else if (e->msg == NULL) {
			add_child(e, r);
		} else if (r->msg == NULL) {
			/* 5A puts a dummy in the table before any message of its
			   subject, so this does not happen; if it did, the
			   message would go under the dummy. */
			add_child(root, r);
			unlink_child(e);
			add_child(r, e);
			table[i] = r;
		} else if (!e->msg->is_reply && r->msg->is_reply) {
			add_child(e, r);
		} else {
			/* Both replies, or neither: siblings under a new dummy in
			   the table entry's place. */
			struct container *d = container_new(t);
			struct container *prev = NULL;

			for (struct container *k = root->child; k != NULL; k = k->next) {
				if (k == e)
					break;
				prev = k;
			}
			d->next = e->next;
			d->parent = root;
			if (prev == NULL)
				root->child = d;
			else
				prev->next = d;
			e->next = NULL;
			e->parent = d;
			d->child = e;
			add_child(d, r);
			table[i] = d;
		}
	}
	free(table);
}

static void
thread_references(struct thread_ctx *t, struct sort_msg **msgs, size_t count,
		  struct container *root)
{
	size_t refs = 0;

	for (size_t i = 0; i < count; i++)
		refs += msgs[i]->refs.count + 1;
	t->table_size = 16;
	while (t->table_size < refs * 2)
		t->table_size *= 2;
	t->table = xcalloc(t->table_size, sizeof(*t->table));
	/* Step 1 */
	for (size_t i = 0; i < count; i++) {
		struct sort_msg *m = msgs[i];
		struct container *c = NULL, *prev = NULL;

		/* 1A: a message without an id, or a second one with the same
		   id, gets a container of its own. */
		if (m->msgid != NULL)
			c = container_for(t, m->msgid);
		if (c == NULL || c->msg != NULL) {
			c = container_new(t);
		}
		c->msg = m;
		/* 1B: the references chained, parent to child, where no link
		   exists yet and none makes a loop. */
		for (size_t r = 0; r < m->refs.count; r++) {
			struct container *rc = container_for(t, m->refs.items[r]);

			if (prev != NULL && rc->parent == NULL && rc != prev &&
			    !is_descendant(rc, prev))
				add_child(prev, rc);
			prev = rc;
		}
		/* 1C: the message's parent is its last reference. */
		if (prev != NULL && (prev == c || is_descendant(c, prev)))
			prev = NULL;
		if (c->parent != prev) {
			unlink_child(c);
			if (prev != NULL)
				add_child(prev, c);
		}
	}
	/* Step 2: the root set. */
	for (size_t i = 0; i < t->count; i++) {
		struct container *c = t->all[i];

		if (c->parent == NULL && c != root)
			add_child(root, c);
	}
	/* Step 3 */
	prune(&root->child, true);
	for (struct container *c = root->child; c != NULL; c = c->next)
		c->parent = root;
	/* Step 4 */
	sort_siblings(&root->child, true);
	/* Step 5 */
	gather_subjects(t, root);
	/* Step 6: siblings in order of sent date, all the way down. */
	for (struct container *c = root->child; c != NULL; c = c->next)
		sort_siblings(&c->child, true);
}

void
thread_write(enum thread_algo algo, struct sort_msg **msgs, size_t count, bool uid,
	     struct buf *out)
{
	struct thread_ctx t = { 0 };
	struct container *root = container_new(&t);

	if (algo == THREAD_ORDEREDSUBJECT)
		thread_orderedsubject(&t, msgs, count, root);
	else
		thread_references(&t, msgs, count, root);
	if (root->child != NULL)
		buf_append_c(out, ' ');
	write_roots(root->child, uid, out);
	for (size_t i = 0; i < t.count; i++)
		free(t.all[i]);
	free(t.all);
	free(t.table);
}
