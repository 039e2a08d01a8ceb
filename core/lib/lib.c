/* lib.c: allocation, strings, clock and fd helpers. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void ATTR_NORETURN
out_of_memory(size_t size)
{
	/* No allocation here: write(2) only. */
	static const char msg[] = "fatal: out of memory\n";
	ssize_t ret ATTR_UNUSED = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)size;
	abort();
}

void *
xmalloc(size_t size)
{
	void *p = malloc(size == 0 ? 1 : size);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *
xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void
xgrow(void *arrp, size_t *alloc, size_t need, size_t elem_size)
{
	void **arr = arrp;
	size_t n = *alloc;

	if (need <= n)
		return;
	if (n < 8)
		n = 8;
	while (n < need) {
		if (n > SIZE_MAX / 2 / elem_size)
			out_of_memory(need * elem_size);
		n *= 2;
	}
	*arr = xrealloc(*arr, n * elem_size);
	*alloc = n;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list args;
	char *p;

	va_start(args, fmt);
	if (vasprintf(&p, fmt, args) < 0)
		out_of_memory(0);
	va_end(args);
	return p;
}

static inline int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int
ascii_strcasecmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;

	while (*p != '\0' && ascii_lower(*p) == ascii_lower(*q)) {
		p++;
		q++;
	}
	return ascii_lower(*p) - ascii_lower(*q);
}

int
ascii_strncasecmp(const char *a, const char *b, size_t n)
{
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;

	for (; n > 0; n--, p++, q++) {
		if (ascii_lower(*p) != ascii_lower(*q))
			return ascii_lower(*p) - ascii_lower(*q);
		if (*p == '\0')
			break;
	}
	return 0;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
str_to_u64(const char *str, uint64_t max, uint64_t *num_r)
{
	uint64_t n = 0;

	if (*str == '\0')
		return -1;
	for (; *str != '\0'; str++) {
		if (*str < '0' || *str > '9')
			return -1;
		if (n > (max - (uint64_t)(*str - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*str - '0');
	}
	*num_r = n;
	return 0;
}

int
fd_set_nonblock_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

bool
u32_sorted_contains(const uint32_t *sorted, size_t count, uint32_t v)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sorted[mid] == v)
			return true;
		if (sorted[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void
strlist_add(struct strlist *list, const char *s)
{
	strlist_add_take(list, xstrdup(s));
}

void
strlist_add_take(struct strlist *list, char *s)
{
	xgrow(&list->items, &list->alloc, list->count + 2, sizeof(*list->items));
	list->items[list->count++] = s;
	list->items[list->count] = NULL;
}

void
strlist_clear(struct strlist *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = list->alloc = 0;
}

bool
strlist_contains(const struct strlist *list, const char *s)
{
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->items[i], s) == 0)
			return true;
	}
	return false;
}

static int
strlist_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
strlist_sort(struct strlist *list)
{
	if (list->count > 1)
		qsort(list->items, list->count, sizeof(*list->items), strlist_cmp);
}
