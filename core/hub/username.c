/* username.c: the user name rule (see username.h). */
#include "username.h"

bool
username_is_valid(const char *user)
{
	size_t len;

	if (user == NULL)
		return false;
	len = strlen(user);
	if (len == 0 || len > USERNAME_MAX_LEN || user[0] == '.')
		return false;
	if (strstr(user, "..") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}
