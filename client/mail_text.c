/* mail_text.c: what the mail client shows of a parsed message (see
   mail_text.h): the readable text, HTML made plain text, and the list of
   attachments with the IMAP section numbers that fetch them. Built on
   core/mail's MIME part tree (mime.h); walks it through the parent links,
   without recursion. */
#include "mail_text.h"
#include "base64.h"
#include "text.h"

#include <stdlib.h>

static char
to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* --- part numbers ---------------------------------------------------- */

void
mail_text_part_section(const struct mime_part *part, struct buf *out)
{
	uint32_t nums[MIME_MAX_DEPTH * 2 + 2];
	size_t count = 0;
	const struct mime_part *cur = part;

	buf_append(out, "", 0);
	/* Walks up: bounded by the depth of the tree. */
	while (cur != NULL && count < N_ELEMENTS(nums)) {
		const struct mime_part *q = cur->parent;

		if (q == NULL) {
			if (!cur->multipart)
				nums[count++] = 1;
		} else if (q->multipart) {
			uint32_t idx = 1;
			for (const struct mime_part *c = q->children; c != NULL && c != cur;
			     c = c->next)
				idx++;
			nums[count++] = idx;
		} else if (!cur->multipart) {
			nums[count++] = 1;      /* the body of an enclosed message */
		}
		cur = q;
	}
	for (size_t i = count; i > 0; i--) {
		if (i != count)
			buf_append_c(out, '.');
		buf_append_u64(out, nums[i - 1]);
	}
}

static bool
part_is_attachment(const struct mime_part *part)
{
	if (part->disposition != NULL && ascii_strcasecmp(part->disposition, "attachment") == 0)
		return true;
	return mime_param_get(part->disp_params, part->disp_param_count, "filename") != NULL ||
	       mime_param_get(part->params, part->param_count, "name") != NULL;
}

/* The part after p in document order, descending into multiparts only
   (an attached message is one leaf here). Uses the parent links, so no
   stack and no recursion. */
static const struct mime_part *
walk_next(const struct mime_part *p)
{
	if (p->multipart && p->children != NULL)
		return p->children;
	while (p != NULL && p->parent != NULL) {
		if (p->next != NULL)
			return p->next;
		p = p->parent;
	}
	return NULL;
}

/* The first leaf text part of subtype sub that is not an attachment. */
static const struct mime_part *
find_text_part(const struct mime_part *root, const char *sub)
{
	for (const struct mime_part *p = root; p != NULL; p = walk_next(p)) {
		if (!p->multipart && !p->message && mime_part_is(p, "text", sub) &&
		    !part_is_attachment(p))
			return p;
	}
	return NULL;
}

bool
mail_text_readable(const struct mime_message *m, const char *msg, size_t len, struct buf *out)
{
	const struct mime_part *part = find_text_part(m->root, "plain");
	struct buf html = BUF_INIT;

	if (part != NULL) {
		mime_part_decoded(part, msg, len, out);
		return true;
	}
	part = find_text_part(m->root, "html");
	if (part == NULL)
		return false;
	mime_part_decoded(part, msg, len, &html);
	mail_text_from_html(html.data == NULL ? "" : html.data, html.len, out);
	buf_free(&html);
	return true;
}

static bool
tag_is(const char *tag, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n && ascii_strncasecmp(tag, name, n) == 0 &&
	       (len == n || text_is_ws(tag[n]) || tag[n] == '/' || tag[n] == '>');
}

/* Appends the UTF-8 encoding of the numeric character reference
   name[0..nlen) ("#233", "#xE9"). Returns false (nothing appended) if it
   is not a valid one. */
static bool
html_char_ref(const char *name, size_t nlen, struct buf *out)
{
	unsigned long cp = 0;
	bool hex;
	size_t k;
	char u[4];
	size_t ulen;

	if (nlen <= 1 || name[0] != '#')
		return false;
	hex = name[1] == 'x' || name[1] == 'X';
	k = hex ? 2 : 1;
	for (; k < nlen && cp <= 0x10ffff; k++) {
		int v = hex ? text_hex_value(name[k]) :
			(name[k] >= '0' && name[k] <= '9' ? name[k] - '0' : -1);
		if (v < 0)
			break;
		cp = cp * (hex ? 16 : 10) + (unsigned long)v;
	}
	if (k != nlen || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	if (cp < 0x80) {
		u[0] = (char)cp;
		ulen = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		ulen = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		ulen = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		ulen = 4;
	}
	buf_append(out, u, ulen);
	return true;
}

/* The entity or character reference at h[i] == '&': appends what it
   stands for, or the '&' itself when it is none we know. Returns the
   offset just past what was read. */
static size_t
html_entity(const char *h, size_t len, size_t i, struct buf *out)
{
	static const struct {
		const char *name, *text;
	} entities[] = {
		{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
		{ "apos", "'" }, { "nbsp", " " },
	};
	const char *semi = memchr(h + i, ';', len - i < 10 ? len - i : 10);
	bool done = false;

	if (semi != NULL) {
		const char *name = h + i + 1;
		size_t nlen = (size_t)(semi - name);

		done = html_char_ref(name, nlen, out);
		for (size_t e = 0; e < N_ELEMENTS(entities) && !done; e++) {
			if (text_mem_equals_ci(name, nlen, entities[e].name)) {
				buf_append_str(out, entities[e].text);
				done = true;
			}
		}
	}
	if (done)
		return (size_t)(semi - h) + 1;
	buf_append_c(out, '&');
	return i + 1;
}

/* The tag at h[i] == '<': appends a line end for the tags that break a
   line; skips a script or style element whole. Returns the offset just
   past what was read. */
static size_t
html_tag(const char *h, size_t len, size_t i, struct buf *out)
{
	const char *gt = memchr(h + i, '>', len - i);
	size_t tag_end = gt == NULL ? len : (size_t)(gt - h);
	const char *tag = h + i + 1;
	size_t tlen = tag_end - i - 1;
	bool closing = tlen > 0 && tag[0] == '/';

	if (closing) {
		tag++;
		tlen--;
	}
	if (!closing && (tag_is(tag, tlen, "script") || tag_is(tag, tlen, "style"))) {
		const char *endtag = tag_is(tag, tlen, "script") ? "</script" : "</style";
		size_t j = tag_end;

		while (j < len && !(h[j] == '<' && len - j >= strlen(endtag) &&
				    ascii_strncasecmp(h + j, endtag, strlen(endtag)) == 0))
			j++;
		gt = j < len ? memchr(h + j, '>', len - j) : NULL;
		return gt == NULL ? len : (size_t)(gt - h) + 1;
	}
	if (tag_is(tag, tlen, "br") || tag_is(tag, tlen, "p") ||
	    tag_is(tag, tlen, "div") || tag_is(tag, tlen, "li") ||
	    tag_is(tag, tlen, "tr") || tag_is(tag, tlen, "h1") ||
	    tag_is(tag, tlen, "h2") || tag_is(tag, tlen, "h3"))
		buf_append_c(out, '\n');
	return tag_end < len ? tag_end + 1 : len;
}

void
mail_text_from_html(const char *h, size_t len, struct buf *out)
{
	size_t i = 0;

	buf_append(out, "", 0);
	while (i < len) {
		if (h[i] == '<') {
			i = html_tag(h, len, i, out);
		} else if (h[i] == '&') {
			i = html_entity(h, len, i, out);
		} else {
			buf_append_c(out, h[i]);
			i++;
		}
	}
}

/* Decoded size estimate of a body. */
static size_t
decoded_size(const struct mime_part *part, const char *msg, size_t len)
{
	size_t blen = part->body_len;

	if (part->encoding == MIME_ENC_BASE64) {
		size_t chars = 0;

		if (part->body_off <= len && blen <= len - part->body_off) {
			for (size_t i = 0; i < blen; i++) {
				if (base64_value(msg[part->body_off + i]) >= 0)
					chars++;
			}
		} else {
			chars = blen;
		}
		return chars / 4 * 3 + (chars % 4 == 3 ? 2 : chars % 4 == 2 ? 1 : 0);
	}
	if (part->encoding == MIME_ENC_QP && part->body_off <= len &&
	    blen <= len - part->body_off) {
		struct buf b = BUF_INIT;
		size_t n;

		mime_decode(MIME_ENC_QP, msg + part->body_off, blen, &b);
		n = b.len;
		buf_free(&b);
		return n;
	}
	return blen;
}

static void
attachment_add(const struct mime_part *part, const char *msg, size_t len,
	       struct mail_text_attachment **list, size_t *count, size_t *alloc)
{
	struct mail_text_attachment *a;
	const char *name = mime_param_get(part->disp_params, part->disp_param_count, "filename");
	struct buf sec = BUF_INIT;

	if (name == NULL || name[0] == '\0')
		name = mime_param_get(part->params, part->param_count, "name");
	xgrow(list, alloc, *count + 1, sizeof(**list));
	a = &(*list)[(*count)++];
	a->part = part;
	mail_text_part_section(part, &sec);
	a->section = buf_steal(&sec);
	if (name != NULL && name[0] != '\0')
		a->name = xstrdup(name);
	else
		a->name = xasprintf("part-%s", a->section);
	a->content_type = xasprintf("%s/%s", part->type, part->subtype);
	for (char *c = a->content_type; *c != '\0'; c++)
		*c = to_lower(*c);
	a->size = decoded_size(part, msg, len);
}

size_t
mail_text_attachments(const struct mime_message *m, const char *msg, size_t len,
		      struct mail_text_attachment **list_r)
{
	const struct mime_part *text = find_text_part(m->root, "plain");
	const struct mime_part *html = find_text_part(m->root, "html");
	struct mail_text_attachment *list = NULL;
	size_t count = 0, alloc = 0;

	for (const struct mime_part *p = m->root; p != NULL; p = walk_next(p)) {
		if (p->multipart || p == text || p == html)
			continue;
		if (p->message || p->opaque || part_is_attachment(p) ||
		    !mime_part_is(p, "text", NULL))
			attachment_add(p, msg, len, &list, &count, &alloc);
	}
	*list_r = list;
	return count;
}

void
mail_text_attachments_free(struct mail_text_attachment **listp, size_t count)
{
	struct mail_text_attachment *list = *listp;

	if (list == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(list[i].name);
		free(list[i].content_type);
		free(list[i].section);
	}
	free(list);
	*listp = NULL;
}
