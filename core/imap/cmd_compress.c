/* cmd_compress.c: COMPRESS (RFC 4978), the DEFLATE mechanism.

   The tagged OK goes out uncompressed; everything after its CRLF is
   compressed both ways: the deflate layer is pushed once the answer
   (and what was queued before it) is written below the current top,
   so it sits on TLS when TLS is on (compress, then encrypt: RFC 4978
   section 3). What the client pipelined behind the command, already in
   the read buffer, was sent compressed: it is handed to the layer, not
   parsed as clear text. A second COMPRESS is NO [COMPRESSIONACTIVE];
   an unknown mechanism is BAD. */
#include "imap_cmd.h"
#include "imap_client.h"
#include "compress.h"
#include "log.h"

bool
cmd_compress(struct client_command *cmd)
{
	struct client *c = cmd->c;
	const char *mech = cmd->count == 1 ? cmd_arg_str(cmd, 0) : NULL;

	if (mech == NULL)
		return cmd_bad(cmd, "COMPRESS needs one mechanism name.");
	if (ascii_strcasecmp(mech, "DEFLATE") != 0)
		return cmd_bad(cmd, "Unknown compression mechanism.");
	if (connection_has_layer(c->conn, COMPRESS_LAYER_NAME)) {
		cmd_tagged(cmd, "NO [COMPRESSIONACTIVE] DEFLATE is already active.");
		return true;
	}
	cmd_tagged(cmd, "OK DEFLATE active.");
	connection_start_layer_keep_input(c->conn, compress_layer_new());
	log_debug(c->sid, "COMPRESS=DEFLATE on");
	return true;
}
