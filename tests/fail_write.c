/* fail_write.c: a fault injector for the end-to-end tests only, loaded
   with LD_PRELOAD into the server: a write whose data holds the octets
   of $FAILWRITE_MARKER fails with ENOSPC, as on a full disk, and every
   other write goes through. A test puts the marker into one message and
   sees what the server does when exactly that message cannot be stored.
   Never installed; built without the sanitizers (tests/e2e put the ASan
   runtime first in LD_PRELOAD when the server has it). Compiled with
   -D_GNU_SOURCE (memmem, RTLD_NEXT). */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static bool
has_marker(const void *buf, size_t len)
{
	const char *m = getenv("FAILWRITE_MARKER");

	return m != NULL && m[0] != '\0' && buf != NULL && memmem(buf, len, m, strlen(m)) != NULL;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);

	if (has_marker(buf, len)) {
		errno = ENOSPC;
		return -1;
	}
	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	return real(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (has_marker(buf, len)) {
		errno = ENOSPC;
		return -1;
	}
	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	return real(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int count)
{
	static ssize_t (*real)(int, const struct iovec *, int);

	for (int i = 0; i < count; i++) {
		if (has_marker(iov[i].iov_base, iov[i].iov_len)) {
			errno = ENOSPC;
			return -1;
		}
	}
	if (real == NULL)
		real = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
	return real(fd, iov, count);
}
