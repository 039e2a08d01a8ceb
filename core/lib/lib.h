/* lib.h: the few things every file of the project includes. */
#ifndef LIB_H
#define LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define ATTR_FORMAT(fmt, args) __attribute__((format(printf, fmt, args)))
#define ATTR_NORETURN __attribute__((noreturn))
#define ATTR_UNUSED __attribute__((unused))
#define N_ELEMENTS(arr) (sizeof(arr) / sizeof((arr)[0]))
#define i_zero(p) memset((p), 0, sizeof(*(p)))

/* Allocation that cannot fail: on out-of-memory the process logs and aborts.
   A server that cannot allocate a few bytes cannot answer anyone anyway. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows *arr (of *alloc elements of elem_size) so that it holds at least
   need elements; doubles, so appends are amortised O(1). */
void xgrow(void *arrp, size_t *alloc, size_t need, size_t elem_size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) ATTR_FORMAT(1, 2);

/* Case-insensitive ASCII compare, independent of the locale. */
int ascii_strcasecmp(const char *a, const char *b);
int ascii_strncasecmp(const char *a, const char *b, size_t n);

/* Monotonic clock in milliseconds; never goes back. */
int64_t mono_ms(void);

/* Parses a decimal unsigned number of the whole string into *num_r.
   Returns 0, or -1 for empty input, a non-digit or overflow past max. */
int str_to_u64(const char *str, uint64_t max, uint64_t *num_r);

/* Sets O_NONBLOCK and FD_CLOEXEC. Returns 0 or -1 with errno set. */
int fd_set_nonblock_cloexec(int fd);

/* Sorted uint32_t arrays (UID lists): qsort comparator, and a binary
   search that returns true if v is in sorted[0..count). */
int u32_cmp(const void *a, const void *b);
bool u32_sorted_contains(const uint32_t *sorted, size_t count, uint32_t v);

/* A NULL-terminated array of owned strings. */
struct strlist {
	char **items;
	size_t count, alloc;
};
void strlist_add(struct strlist *list, const char *s);
void strlist_add_take(struct strlist *list, char *s);
void strlist_clear(struct strlist *list);
bool strlist_contains(const struct strlist *list, const char *s);
void strlist_sort(struct strlist *list);

#endif
