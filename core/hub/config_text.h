/* config_text.h: the config file's text, read and checked before
   libconfig parses it (config.c). */
#ifndef CONFIG_TEXT_H
#define CONFIG_TEXT_H

#include "lib.h"

/* Reads the whole file (at most 1 MB) into *text_r; a NUL octet is an
   error with its line. */
int config_read_text(const char *path, char **text_r, char **error_r);
/* Refuses an integer that libconfig would silently truncate to 32 bits,
   as "path:line: ...". */
int config_check_integers(const char *path, const char *text, size_t len, char **error_r);

#endif
