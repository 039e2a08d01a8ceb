/* libFuzzer target: the IMAP command parser fed arbitrary bytes in
   arbitrary pieces, and every parsed command's arguments walked. */
#include "imap_parser.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
walk(const struct imap_arg *args, size_t count, unsigned depth)
{
	size_t n = 0;

	for (size_t i = 0; i < count && depth < 64; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			n += walk(args[i].list, args[i].list_count, depth + 1);
		else if (args[i].str != NULL)
			n += args[i].len + (args[i].str[args[i].len] == '\0');
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p = imap_parser_new(1024, 4096);
	size_t pos = 0;
	/* The first byte chooses the piece size, so splits are fuzzed too. */
	size_t piece = size > 0 ? (size_t)(data[0] % 17) + 1 : 1;

	for (unsigned rounds = 0; pos < size && rounds < 100000; rounds++) {
		size_t len = size - pos < piece ? size - pos : piece, consumed = 0;
		enum imap_parse_result res =
			imap_parser_feed(p, (const char *)data + pos, len, &consumed);
		if (consumed > len)
			abort();
		pos += consumed;
		if (res == IMAP_PARSE_COMMAND) {
			const struct imap_command *cmd = imap_parser_command(p);
			if (cmd->tag == NULL || cmd->name == NULL)
				abort();
			(void)walk(cmd->args, cmd->arg_count, 0);
			imap_parser_reset(p);
		} else if (res == IMAP_PARSE_ERROR) {
			if (imap_parser_error(p) == NULL)
				abort();
			imap_parser_reset(p);
		} else if (res == IMAP_PARSE_FATAL) {
			break;
		} else if (res == IMAP_PARSE_NEED_MORE && consumed == 0 && len > 0) {
			abort(); /* must take what it is given */
		}
	}
	imap_parser_free(&p);
	return 0;
}
