/* test_mime.c: the MIME part tree (core/mail/mime.c) on the corpus in
   tests/data/: structure, decoding, RFC 2231 and
   RFC 2047 parameter values, text and attachment helpers, the parse
   cache, and robustness (every prefix of every corpus file, nesting and
   part-count bombs). Run from the top of the clone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"

#include "mime.h"
#include "message.h"
#include "charset.h"
#include "imap_section.h"

/* The client's text and attachment helpers (not in libimapcore.a) are
   part of the robustness test below. */
#include "../client/mail_text.c"

static const char *const corpus[] = {
	"base64.eml", "broken.eml", "encoded.eml", "group.eml", "lab.eml", "missing.eml",
	"multipart.eml", "nobody.eml", "noheader.eml", "plain.eml", "qp.eml", "quoted.eml",
	"truncated.eml", "mime-nested.eml", "mime-rfc822.eml", "mime-rfc822-single.eml",
	"mime-rfc2231.eml", "mime-noclose.eml", "mime-noboundary.eml",
	"mime-badheaders.eml", "mime-multiext.eml",
};

static const struct mime_part *
nth_child(const struct mime_part *part, size_t n)
{
	const struct mime_part *c = part->children;

	for (; n > 1 && c != NULL; n--)
		c = c->next;
	assert_non_null(c);
	return c;
}

/* --- structure ------------------------------------------------------- */

static void
test_nested_mixed_alternative_and_attachment_fields(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-nested.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	const struct mime_part *root = m->root, *alt, *pdf;

	(void)state;
	assert_true(root->multipart);
	assert_true(root->boundary_found);
	assert_string_equal(root->subtype, "mixed");
	assert_int_equal(root->child_count, 2);
	assert_string_equal(mime_param_get(root->params, root->param_count, "boundary"),
			    "----=_outer_01");
	alt = nth_child(root, 1);
	assert_true(alt->multipart);
	assert_true(mime_part_is(alt, "MULTIPART", "Alternative"));
	assert_int_equal(alt->child_count, 2);
	assert_true(mime_part_is(nth_child(alt, 1), "text", "plain"));
	assert_int_equal(nth_child(alt, 1)->encoding, MIME_ENC_QP);
	assert_int_equal(nth_child(alt, 1)->body_len, 102);
	assert_int_equal(nth_child(alt, 1)->lines, 3);
	assert_true(mime_part_is(nth_child(alt, 2), "text", "html"));
	pdf = nth_child(root, 2);
	assert_true(mime_part_is(pdf, "application", "pdf"));
	assert_int_equal(pdf->encoding, MIME_ENC_BASE64);
	assert_string_equal(pdf->encoding_str, "base64");
	assert_string_equal(pdf->id, "<part2.report@example.com>");
	assert_string_equal(pdf->description, "Quarterly report");
	assert_string_equal(pdf->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
	assert_string_equal(pdf->location, "http://example.com/report.pdf");
	assert_int_equal(pdf->language_count, 2);
	assert_string_equal(pdf->languages[0], "en");
	assert_string_equal(pdf->languages[1], "de");
	assert_string_equal(pdf->disposition, "attachment");
	assert_string_equal(mime_param_get(pdf->disp_params, pdf->disp_param_count, "filename"),
			    "report.pdf");
	assert_string_equal(mime_param_get(pdf->disp_params, pdf->disp_param_count, "size"), "42");
	assert_null(mime_param_get(pdf->params, pdf->param_count, "charset"));
	assert_int_equal(pdf->body_len, 114);
	assert_int_equal(m->part_count, 5);
	mime_message_free(&m);
	assert_null(m);
	free(msg);
}

static void
test_message_rfc822_holds_the_enclosed_tree(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-rfc822.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	const struct mime_part *att = nth_child(m->root, 2), *inner;

	(void)state;
	assert_true(att->message);
	assert_int_equal(att->child_count, 1);
	/* As Dovecot: the close delimiter's line end is the part's. */
	assert_int_equal(att->body_len, 483);
	assert_int_equal(att->lines, 18);
	assert_string_equal(att->disposition, "inline");
	inner = att->children;
	assert_true(inner->multipart);
	assert_true(mime_part_is(inner, "multipart", "alternative"));
	assert_int_equal(inner->child_count, 2);
	assert_int_equal(nth_child(inner, 1)->encoding, MIME_ENC_8BIT);
	assert_int_equal(nth_child(inner, 1)->body_len, 19);
	mime_message_free(&m);
	free(msg);
}

static void
test_malformed_multiparts_get_a_best_effort_tree(void **state)
{
	size_t len;
	char *msg;
	struct mime_message *m;

	(void)state;
	/* No boundary parameter: one empty text/plain part (as Dovecot). */
	msg = read_data("mime-noboundary.eml", &len);
	m = mime_parse(msg, len);
	assert_true(m->root->multipart);
	assert_false(m->root->boundary_found);
	assert_int_equal(m->root->child_count, 1);
	assert_true(mime_part_is(m->root->children, "text", "plain"));
	assert_int_equal(m->root->children->body_len, 0);
	mime_message_free(&m);
	free(msg);
	/* The boundary never occurs: the same. */
	msg = read_data("broken.eml", &len);
	m = mime_parse(msg, len);
	assert_int_equal(m->root->child_count, 1);
	assert_int_equal(m->root->children->body_len, 0);
	mime_message_free(&m);
	free(msg);
	/* No closing boundary: the last part runs to the end. */
	msg = read_data("mime-noclose.eml", &len);
	m = mime_parse(msg, len);
	assert_int_equal(m->root->child_count, 2);
	assert_int_equal(nth_child(m->root, 1)->body_len, 10);
	assert_int_equal(nth_child(m->root, 2)->body_off + nth_child(m->root, 2)->body_len, len);
	assert_int_equal(nth_child(m->root, 2)->encoding, MIME_ENC_BASE64);
	mime_message_free(&m);
	free(msg);
	/* Bad headers, a type without subtype, 8-bit bytes: the default
	   type, the first Content-Type counts, junk disposition kept. */
	msg = read_data("mime-badheaders.eml", &len);
	m = mime_parse(msg, len);
	assert_false(m->root->multipart);
	assert_true(mime_part_is(m->root, "text", "plain"));
	assert_int_equal(m->root->encoding, MIME_ENC_8BIT);
	assert_string_equal(m->root->disposition, "");
	assert_true(m->root->has_language);
	assert_int_equal(m->root->language_count, 0);
	assert_int_equal(m->root->body_len, 27);
	mime_message_free(&m);
	free(msg);
}

static void
test_content_type_comments_quotes_and_digest_default(void **state)
{
	const char *msg = "Content-Type: (c) Text/Plain (d); (e) CharSet = (f) \"utf\\-8\" (g);"
			  " x=\"\"; y=\r\n\r\nbody";
	const char *digest = "Content-Type: multipart/digest; boundary=d\r\n\r\n"
			     "--d\r\n\r\nSubject: one\r\n\r\n1\r\n"
			     "--d\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--d--\r\n";
	struct mime_message *m = mime_parse(msg, strlen(msg));

	(void)state;
	assert_string_equal(m->root->type, "Text");
	assert_string_equal(m->root->subtype, "Plain");
	assert_int_equal(m->root->param_count, 3);
	assert_string_equal(m->root->params[0].name, "CharSet");
	assert_string_equal(m->root->params[0].value, "utf-8");
	assert_string_equal(mime_param_get(m->root->params, m->root->param_count, "charset"),
			    "utf-8");
	assert_string_equal(m->root->params[1].value, "");
	assert_string_equal(m->root->params[2].value, "");
	mime_message_free(&m);
	/* In a multipart/digest a part without Content-Type is a message. */
	m = mime_parse(digest, strlen(digest));
	assert_int_equal(m->root->child_count, 2);
	assert_true(nth_child(m->root, 1)->message);
	assert_true(mime_part_is(nth_child(m->root, 2), "text", "plain"));
	mime_message_free(&m);
}

static void
test_rfc2231_continuations_and_charsets(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-rfc2231.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	const struct mime_part *bin = nth_child(m->root, 2), *txt = nth_child(m->root, 3);
	const char *raw = "Content-Type: text/plain; a*=us-ascii''x%20y; b*0=p; b*1=q;"
			  " c*1=z; c*0=w; d*0*=x%41; d*2=n\r\n\r\nz\r\n";
	struct mime_message *r;

	(void)state;
	assert_int_equal(bin->param_count, 1);
	/* IMAP shows the merged value as written, with the '*'. */
	assert_string_equal(bin->params[0].name, "name*");
	assert_string_equal(bin->params[0].value, "utf-8''%E2%82%AC%20rates%202022.txt");
	assert_string_equal(mime_param_get(bin->params, bin->param_count, "name"),
			    "\xe2\x82\xac rates 2022.txt");
	assert_string_equal(bin->disp_params[0].name, "filename*");
	assert_string_equal(bin->disp_params[0].value, "utf-8'en'%E2%82%AC%20rates%202022.txt");
	assert_string_equal(mime_param_get(bin->disp_params, bin->disp_param_count, "filename"),
			    "\xe2\x82\xac rates 2022.txt");
	/* A (non-standard) RFC 2047 word in a parameter is decoded too. */
	assert_string_equal(mime_param_get(txt->params, txt->param_count, "name"),
			    "r\xc3\xa9sum\xc3\xa9.txt");
	assert_string_equal(txt->params[0].value, "=?iso-8859-1?Q?r=E9sum=E9=2Etxt?=");
	mime_message_free(&m);
	free(msg);

	r = mime_parse(raw, strlen(raw));
	assert_int_equal(r->root->param_count, 5);
	assert_string_equal(r->root->params[0].name, "a*");
	assert_string_equal(r->root->params[0].decoded, "x y");
	assert_string_equal(r->root->params[1].name, "b");
	assert_string_equal(r->root->params[1].value, "pq");
	/* Out of order sections are put in order. */
	assert_string_equal(r->root->params[2].name, "c");
	assert_string_equal(r->root->params[2].value, "wz");
	/* A gap: kept as written. */
	assert_string_equal(r->root->params[3].name, "d*0*");
	assert_string_equal(r->root->params[4].name, "d*2");
	mime_message_free(&r);
}

/* --- decoding -------------------------------------------------------- */

static void
test_decode_transfer_encodings(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	mime_decode(MIME_ENC_QP, "a=3Db=\r\nc= \r\nd=ZZ=4", 19, &b);
	assert_string_equal(b.data, "a=bcd=ZZ=4");
	buf_reset(&b);
	mime_decode(MIME_ENC_BASE64, "aGVs\r\nbG8=\r\n!!", 14, &b);
	assert_string_equal(b.data, "hello");
	buf_reset(&b);
	mime_decode(MIME_ENC_BASE64, "aGV", 3, &b);          /* truncated */
	assert_string_equal(b.data, "he");
	buf_reset(&b);
	mime_decode(MIME_ENC_7BIT, "x=41", 4, &b);
	assert_string_equal(b.data, "x=41");
	buf_reset(&b);
	assert_int_equal(mime_encoding_parse("Quoted-Printable", 16), MIME_ENC_QP);
	assert_int_equal(mime_encoding_parse("x-uuencode", 10), MIME_ENC_OTHER);
	assert_int_equal(charset_to_utf8("iso-8859-1", 10, "caf\xe9", 4, &b), 0);
	assert_string_equal(b.data, "caf\xc3\xa9");
	buf_reset(&b);
	assert_int_equal(charset_to_utf8("windows-1252", 12, "\x80", 1, &b), 0);
	assert_string_equal(b.data, "\xe2\x82\xac");
	buf_reset(&b);
	assert_int_equal(charset_to_utf8("no-such-charset", 15, "x", 1, &b), -1);
	assert_int_equal(charset_to_utf8("../etc", 6, "x", 1, &b), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* --- cache ----------------------------------------------------------- */

static void
test_cache_reuses_trees_and_evicts_the_oldest(void **state)
{
	const char *a = "Subject: a\r\n\r\na\r\n", *b = "Subject: bb\r\n\r\nbb\r\n";
	struct mime_cache *cache = mime_cache_new(2);
	int owner1, owner2;
	const struct mime_message *m1, *m2;

	(void)state;
	m1 = mime_cache_parse(cache, &owner1, 1, a, strlen(a));
	assert_int_equal(mime_cache_parse_count(cache), 1);
	assert_ptr_equal(mime_cache_parse(cache, &owner1, 1, a, strlen(a)), m1);
	assert_int_equal(mime_cache_parse_count(cache), 1);
	/* Another owner, same UID: its own entry. */
	m2 = mime_cache_parse(cache, &owner2, 1, b, strlen(b));
	assert_ptr_not_equal(m2, m1);
	assert_int_equal(mime_cache_parse_count(cache), 2);
	/* A length that does not match is a miss. */
	assert_null(mime_cache_get(cache, &owner1, 1, 3));
	assert_non_null(mime_cache_get(cache, &owner1, 1, strlen(a)));
	/* Full: the least recently used (owner2) goes. */
	(void)mime_cache_parse(cache, &owner1, 2, b, strlen(b));
	assert_null(mime_cache_get(cache, &owner2, 1, strlen(b)));
	assert_non_null(mime_cache_get(cache, &owner1, 1, strlen(a)));
	mime_cache_forget(cache, &owner1);
	assert_null(mime_cache_get(cache, &owner1, 1, strlen(a)));
	assert_null(mime_cache_get(cache, &owner1, 2, strlen(b)));
	mime_cache_free(&cache);
	assert_null(cache);
	mime_cache_free(&cache);
}

/* --- robustness ------------------------------------------------------ */

static void
exercise(const char *p, size_t n)
{
	static const char *const sections[] = {
		"", "1", "2", "1.1", "1.2", "2.1", "2.2", "1.MIME", "2.MIME", "2.HEADER",
		"2.TEXT", "1.1.1", "3", "HEADER", "TEXT", "2.1.MIME",
	};
	struct mime_message *m = mime_parse(p, n);
	struct mail_text_attachment *list;
	struct buf out = BUF_INIT;
	size_t count, off, len;

	assert_true(m->part_count >= 1 && m->part_count <= MIME_MAX_PARTS + 1);
	for (size_t i = 0; i < N_ELEMENTS(sections); i++) {
		if (imap_section_lookup(m, sections[i], &off, &len) > 0)
			assert_true(off <= n && len <= n - off);
	}
	(void)mail_text_readable(m, p, n, &out);
	count = mail_text_attachments(m, p, n, &list);
	for (size_t i = 0; i < count; i++)
		mime_part_decoded(list[i].part, p, n, &out);
	mail_text_attachments_free(&list, count);
	mime_body_text(p, n, &out);
	buf_free(&out);
	mime_message_free(&m);
}

/* Every prefix of every corpus file, LF and CR LF forms, each in a
   buffer of exactly that size (AddressSanitizer sees any overread). */
static void
test_every_prefix_of_every_corpus_file_parses_safely(void **state)
{
	(void)state;
	for (size_t f = 0; f < N_ELEMENTS(corpus); f++) {
		for (int form = 0; form < 2; form++) {
			size_t len;
			char *data = form == 0 ? read_data(corpus[f], &len) :
						 read_crlf(corpus[f], &len);

			for (size_t n = 0; n <= len; n++) {
				char *p = malloc(n == 0 ? 1 : n);

				assert_non_null(p);
				memcpy(p, data, n);
				exercise(p, n);
				free(p);
			}
			free(data);
		}
	}
}

static unsigned
tree_depth(const struct mime_part *part)
{
	unsigned max = part->depth;

	/* Iterative over siblings, recursive over depth (bounded). */
	for (const struct mime_part *c = part->children; c != NULL; c = c->next) {
		unsigned d = tree_depth(c);
		if (d > max)
			max = d;
	}
	return max;
}

static void
test_nesting_and_part_bombs_are_bounded(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_message *m;

	(void)state;
	/* 10,000 nested multiparts. */
	for (int i = 0; i < 10000; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
	buf_append_str(&msg, "Content-Type: text/plain\r\n\r\ndeep text\r\n");
	m = mime_parse(msg.data, msg.len);
	assert_true(tree_depth(m->root) <= MIME_MAX_DEPTH);
	assert_true(m->part_count <= MIME_MAX_PARTS);
	exercise(msg.data, msg.len);
	mime_message_free(&m);
	/* 10,000 nested message/rfc822. */
	buf_reset(&msg);
	for (int i = 0; i < 10000; i++)
		buf_append_str(&msg, "Content-Type: message/rfc822\r\n\r\n");
	m = mime_parse(msg.data, msg.len);
	assert_true(tree_depth(m->root) <= MIME_MAX_DEPTH);
	exercise(msg.data, msg.len);
	mime_message_free(&m);
	/* 5,000 sibling parts: at most MIME_MAX_PARTS. */
	buf_reset(&msg);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=s\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		buf_printf(&msg, "--s\r\n\r\npart %d\r\n", i);
	buf_append_str(&msg, "--s--\r\n");
	m = mime_parse(msg.data, msg.len);
	assert_true(m->part_count <= MIME_MAX_PARTS);
	assert_true(m->root->child_count >= MIME_MAX_PARTS - 1);
	exercise(msg.data, msg.len);
	mime_message_free(&m);
	buf_free(&msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nested_mixed_alternative_and_attachment_fields),
		cmocka_unit_test(test_message_rfc822_holds_the_enclosed_tree),
		cmocka_unit_test(test_malformed_multiparts_get_a_best_effort_tree),
		cmocka_unit_test(test_content_type_comments_quotes_and_digest_default),
		cmocka_unit_test(test_rfc2231_continuations_and_charsets),
		cmocka_unit_test(test_decode_transfer_encodings),
		cmocka_unit_test(test_cache_reuses_trees_and_evicts_the_oldest),
		cmocka_unit_test(test_every_prefix_of_every_corpus_file_parses_safely),
		cmocka_unit_test(test_nesting_and_part_bombs_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
