/* safepath.h: file operations confined beneath a trusted base folder.

   The store is a trust boundary: a user who can write into their own
   folder (a shell account with its own Maildir, say) must not make the
   server read, write or delete anything outside it through a symbolic
   link. Every operation here takes the trusted base (the user's own
   folder, "<root>/<user>") and a path, either a full path that begins
   with base ("<root>/<user>/Maildir/cur/123:2,S") or one relative to it
   ("Maildir/cur/123:2,S"), and resolves that path beneath base without
   ever following a link:

   - with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the
     kernel has it (probed once; ENOSYS, or EPERM from a seccomp filter,
     selects the fallback);
   - otherwise component by component from base with
     openat(O_DIRECTORY | O_NOFOLLOW), the last one with O_NOFOLLOW.

   The base itself is opened with O_DIRECTORY | O_NOFOLLOW: a base that is
   a link is refused too. The folders above the base (the storage root)
   belong to the operator and are trusted as they are.

   Errors: -1 (NULL) with errno set. A link met anywhere beneath base gives
   ELOOP; a path that leaves base (absolute and not under base, or holding
   a ".." component) gives EXDEV. Otherwise the errno of the underlying
   call (ENOENT, EEXIST, ...). They retry nothing beyond EINTR. A link
   refused (ELOOP) is logged as a warning naming the user (base's last
   component) and the path, once per path per process
   (fs_link_refused_log()), so that callers only turn the error into
   theirs.

   Unlink, rmdir, rename and remove_tree act on the last component itself:
   a link there is removed or renamed, never its target.

   What this does not stop: a hard link to a file elsewhere on the same
   file system (the kernel's fs.protected_hardlinks refuses those to
   files the user does not own). */
#ifndef SAFEPATH_H
#define SAFEPATH_H

#include "lib.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

/* open(2) of path beneath base. flags and mode as for open(2); O_CLOEXEC
   and O_NOFOLLOW are always added. Returns the fd or -1. */
int fs_open_beneath(const char *base, const char *path, int flags, mode_t mode);
/* fopen(3) of path beneath base. mode is "r", "w", "a", each optionally
   with "+" (an "e" is accepted and implied: the fd is close-on-exec).
   "w" and "a" create the file with mode 0600. */
FILE *fs_fopen_beneath(const char *base, const char *path, const char *mode);
/* opendir(3) of path beneath base (path may be base itself). */
DIR *fs_opendir_beneath(const char *base, const char *path);
/* mkdir(2) of path beneath base. path may be base itself: it is then
   created by a plain mkdir(2), its parents being the operator's. */
int fs_mkdir_beneath(const char *base, const char *path, mode_t mode);
/* Creates every missing folder of path beneath base, path included (and
   base itself when missing). An existing link is refused (ELOOP). */
int fs_mkdirs_beneath(const char *base, const char *path, mode_t mode);
/* unlink(2) and rmdir(2) of path beneath base; path may not be base
   itself (EINVAL). */
int fs_unlink_beneath(const char *base, const char *path);
int fs_rmdir_beneath(const char *base, const char *path);
/* rename(2) from oldpath to newpath, both beneath the same base (neither
   may be base itself: EINVAL). */
int fs_rename_beneath(const char *base, const char *oldpath, const char *newpath);
/* link(2) of oldpath to newpath, both beneath the same base (neither may
   be base itself: EINVAL); a link oldpath is linked itself, never its
   target. */
int fs_link_beneath(const char *base, const char *oldpath, const char *newpath);
/* lstat(2) of path beneath base: a link as the last component is
   reported as a link (S_ISLNK), never followed; a link above it is
   refused (ELOOP). path may be base itself. */
int fs_stat_beneath(const char *base, const char *path, struct stat *st_r);
/* Removes path beneath base and everything in it, never following a link:
   a link met in the tree (or as path itself) is removed, its target left
   alone. path may not be base itself (EINVAL). A missing path is ENOENT.
   Trees deeper than 64 levels are refused (ELOOP) with what could be
   removed removed. An entry that vanishes meanwhile is no error. Returns 0
   or -1 with errno set (the first error; the rest of the tree is still
   tried). */
int fs_remove_tree_beneath(const char *base, const char *path);

/* lstat(2) of a full path, NOT confined: for change detection only (has
   a mail file or folder changed since it was read?), where the answer
   decides whether to look again and never what is read, which still
   goes through the functions above. One system call instead of the
   three or more of fs_stat_beneath(), on the path every command takes.
   Returns 0 or -1 with errno set. */
int fs_stat_hint(const char *path, struct stat *st_r);

/* Logs the warning above for path (full, or relative to base), once per
   path per process: for a link a caller found itself, e.g. a readdir()
   entry it skips. */
void fs_link_refused_log(const char *base, const char *path);

/* Tests only: true forces the component-by-component fallback even where
   openat2(2) works, so that both are tested on one kernel. */
void fs_beneath_force_fallback(bool force);
/* Whether openat2(2) is used at present (probed on first use). */
bool fs_beneath_have_openat2(void);

#endif
