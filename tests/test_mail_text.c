/* test_mail_text.c: the mail client's text and attachment helpers
   (client/mail_text.c) on the corpus in tests/data/ (run from the top of
   the clone). The client's sources are not in libimapcore.a, so the file
   is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "corpus.h"

#include "../client/mail_text.c"

static const struct mime_part *
nth_child(const struct mime_part *part, size_t n)
{
	const struct mime_part *c = part->children;

	for (; n > 1 && c != NULL; n--)
		c = c->next;
	assert_non_null(c);
	return c;
}

static void
test_part_section_numbers(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-rfc822.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	struct buf b = BUF_INIT;

	(void)state;
	mail_text_part_section(m->root, &b);
	assert_string_equal(b.data, "");
	buf_reset(&b);
	mail_text_part_section(nth_child(nth_child(m->root, 2)->children, 2), &b);
	assert_string_equal(b.data, "2.2");
	mime_message_free(&m);
	free(msg);
	msg = read_crlf("mime-rfc822-single.eml", &len);
	m = mime_parse(msg, len);
	buf_reset(&b);
	mail_text_part_section(m->root->children, &b);
	assert_string_equal(b.data, "1.1");
	buf_reset(&b);
	mail_text_part_section(m->root, &b);
	assert_string_equal(b.data, "1");
	mime_message_free(&m);
	free(msg);
	buf_free(&b);
}

static void
test_message_text_prefers_plain_then_stripped_html(void **state)
{
	size_t len;
	char *msg = read_crlf("mime-nested.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	struct buf b = BUF_INIT;
	const char *html = "Content-Type: text/html; charset=iso-8859-1\r\n"
			   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			   "<html><head><style>p {x}</style></head><body><p>Caf=E9 &amp; "
			   "<b>cr&#232;me</b> &lt;3<br>bye&nbsp;&bogus;</p></body></html>";

	(void)state;
	assert_true(mail_text_readable(m, msg, len, &b));
	assert_string_equal(b.data, "Hello Bob,\r\n\r\nthe r\xc3\xa9sum\xc3\xa9 of the meeting is "
				    "attached. Long line that is soft-wrapped here.");
	mime_message_free(&m);
	free(msg);
	buf_reset(&b);
	m = mime_parse(html, strlen(html));
	assert_true(mail_text_readable(m, html, strlen(html), &b));
	assert_string_equal(b.data, "\nCaf\xc3\xa9 & cr\xc3\xa8me <3\nbye &bogus;\n");
	mime_message_free(&m);
	buf_reset(&b);
	/* Only an attachment: no text. */
	const char *att = "Content-Type: application/pdf\r\n\r\nxx";
	m = mime_parse(att, strlen(att));
	assert_false(mail_text_readable(m, att, strlen(att), &b));
	assert_int_equal(b.len, 0);
	mime_message_free(&m);
	buf_free(&b);
}

static void
test_attachment_list_names_sections_and_sizes(void **state)
{
	size_t len, n;
	char *msg = read_crlf("mime-rfc2231.eml", &len);
	struct mime_message *m = mime_parse(msg, len);
	struct mail_text_attachment *list;

	(void)state;
	n = mail_text_attachments(m, msg, len, &list);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "\xe2\x82\xac rates 2022.txt");
	assert_string_equal(list[0].section, "2");
	assert_string_equal(list[0].content_type, "application/octet-stream");
	assert_int_equal(list[0].size, 12);                  /* "Rates: 1.05\n" */
	assert_string_equal(list[1].name, "r\xc3\xa9sum\xc3\xa9.txt");
	assert_string_equal(list[1].section, "3");
	assert_int_equal(list[1].size, 16);
	mail_text_attachments_free(&list, n);
	assert_null(list);
	mime_message_free(&m);
	free(msg);

	msg = read_crlf("mime-nested.eml", &len);
	m = mime_parse(msg, len);
	n = mail_text_attachments(m, msg, len, &list);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "report.pdf");
	assert_string_equal(list[0].section, "2");
	assert_int_equal(list[0].size, 84);
	mail_text_attachments_free(&list, n);
	mime_message_free(&m);
	free(msg);

	msg = read_crlf("mime-rfc822.eml", &len);
	m = mime_parse(msg, len);
	n = mail_text_attachments(m, msg, len, &list);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].content_type, "message/rfc822");
	assert_string_equal(list[0].name, "part-2");
	mail_text_attachments_free(&list, n);
	mime_message_free(&m);
	free(msg);

	msg = read_crlf("plain.eml", &len);
	m = mime_parse(msg, len);
	assert_int_equal(mail_text_attachments(m, msg, len, &list), 0);
	assert_null(list);
	mime_message_free(&m);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_part_section_numbers),
		cmocka_unit_test(test_message_text_prefers_plain_then_stripped_html),
		cmocka_unit_test(test_attachment_list_names_sections_and_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
