/* tmp_tree.h: the temporary folders of the unit tests. */
#ifndef TESTS_TMP_TREE_H
#define TESTS_TMP_TREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int
tmp_tree_remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes path and everything below it (symbolic links are not
   followed). Returns 0, or -1 if something could not be removed. */
static inline int
tmp_tree_remove(const char *path)
{
	return nftw(path, tmp_tree_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
