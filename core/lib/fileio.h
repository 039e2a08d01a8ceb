/* fileio.h: whole-buffer reads and writes, fsync of folders, and the
   short sleeps of lock retries: what every storage backend needs. All
   retry on EINTR. The functions that take a base resolve their paths
   beneath it with safepath.h (never following a link; ELOOP for one):
   base is the user's own folder, "<root>/<user>". */
#ifndef FILEIO_H
#define FILEIO_H

#include "lib.h"

#include <sys/stat.h>

/* Write all len bytes. Return 0, or -1 with errno set (EIO for a write
   that made no progress). */
int fd_write_full(int fd, const void *data, size_t len);
int fd_pwrite_full(int fd, const void *data, size_t len, uint64_t off);
/* For tests: from now on (err ENOSPC or EDQUOT; 0 ends it) the disk is
   full for fd_write_full() and fd_pwrite_full(): a write past the blocks
   a file has fails with err, one within them goes through (as on a real
   full disk, where overwriting and the room fallocate() kept still
   work). Every write of the backends goes through these two. */
void fileio_test_full_disk(int err);
/* For tests: the nth call of fd_write_full() or fd_pwrite_full() from now
   (1: the next) fails with err, once; 0 clears. */
void fileio_test_fail_nth(unsigned long nth, int err);
/* True if that write has not come yet. */
bool fileio_test_nth_pending(void);
/* Reads up to len bytes at off; returns the count (less than len only at
   the end of the file), or -1 with errno set. */
ssize_t fd_pread_full(int fd, void *data, size_t len, uint64_t off);
/* fsync(2) of a folder, so that a rename or create in it is durable. */
void fsync_dir(const char *dir);
/* The same for the folder holding path. */
void fsync_dir_of(const char *path);
/* fsync(2) of the folder dir found beneath base (as fs_open_beneath());
   returns 0, or -1 with errno set. Safe in a worker thread. */
int fsync_dir_beneath(const char *base, const char *dir);
/* Tests only: how many folder fsyncs succeeded so far. */
unsigned long fsync_dir_count(void);
/* mkdir of every missing folder of the file path beneath base (base
   included). Returns 0 or -1 with errno set. */
int mkdir_parents(const char *base, const char *path);
void sleep_ms(unsigned ms);
/* Reads a whole small file (at most max bytes) into a NUL-terminated
   buffer the caller frees. Returns 1, 0 if missing, -1 on error (errno
   set; EFBIG when larger than max). st_r may be NULL. */
int file_read_small(const char *base, const char *path, size_t max, char **data_r,
		    size_t *len_r, struct stat *st_r);
/* Writes data to tmp, fsyncs it, renames it over path and fsyncs the
   folder of path (once, for every caller: a rename that is not in the
   folder on disk can come back as the old file after a power cut).
   Returns 0, or -1 with errno set (tmp removed). */
int file_replace(const char *base, const char *tmp, const char *path, const char *data,
		 size_t len);
/* The two halves of a replacement whose file stays open afterwards (or
   is written through its descriptor). file_tmp_create() creates tmp with
   mode, writes data (len may be 0) and fsyncs it; it returns the file
   open read-write, or -1 with errno set (tmp removed). More may be
   written through the descriptor before file_tmp_commit(), which fsyncs
   fd, renames tmp over path and fsyncs the folder of path, so that the
   new name survives a crash with its whole content. It returns 0, or -1
   with errno set (tmp removed). fd stays open either way: the caller
   closes it. */
int file_tmp_create(const char *base, const char *tmp, const void *data, size_t len,
		    mode_t mode);
int file_tmp_commit(const char *base, int fd, const char *tmp, const char *path);

#endif
