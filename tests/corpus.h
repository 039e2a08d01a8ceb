/* corpus.h: reading the message corpus of tests/data, for the unit tests
   of the mail and IMAP layers. Include after <cmocka.h> (failures are
   cmocka assertions); not every test uses both. */
#ifndef TESTS_CORPUS_H
#define TESTS_CORPUS_H

#include "buf.h"

#include <stdio.h>
#include <stdlib.h>

/* tests/data/name, whole, NUL-terminated (*len_r excludes the NUL). */
static ATTR_UNUSED char *
read_data(const char *name, size_t *len_r)
{
	char path[256];
	FILE *f;
	char *data;
	long size;

	snprintf(path, sizeof(path), "tests/data/%s", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	data = malloc((size_t)size + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	data[size] = '\0';
	*len_r = (size_t)size;
	return data;
}

/* The file with every line end made CR LF (as the storage hands it). */
static ATTR_UNUSED char *
read_crlf(const char *name, size_t *len_r)
{
	size_t len;
	char *data = read_data(name, &len);
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			buf_append_c(&b, '\r');
		buf_append_c(&b, data[i]);
	}
	free(data);
	*len_r = b.len;
	return buf_steal(&b);
}

#endif
