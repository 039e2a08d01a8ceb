/* aliases.c: smtp.aliases (see aliases.h). */
#include "aliases.h"
#include "username.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* An aliases file is written by hand: a few hundred lines at most. */
#define ALIASES_MAX_LINE 4096
#define ALIASES_MAX_COUNT 10000

struct alias {
	char *name;
	struct strlist users;
};

struct aliases {
	struct alias *items;
	size_t count, alloc;
};

void
aliases_free(struct aliases **_aliases)
{
	struct aliases *aliases = *_aliases;

	if (aliases == NULL)
		return;
	for (size_t i = 0; i < aliases->count; i++) {
		free(aliases->items[i].name);
		strlist_clear(&aliases->items[i].users);
	}
	free(aliases->items);
	free(aliases);
	*_aliases = NULL;
}

static struct alias *
aliases_find(const struct aliases *aliases, const char *name)
{
	if (aliases == NULL)
		return NULL;
	for (size_t i = 0; i < aliases->count; i++) {
		if (strcasecmp(aliases->items[i].name, name) == 0)
			return &aliases->items[i];
	}
	return NULL;
}

const struct strlist *
aliases_lookup(const struct aliases *aliases, const char *name)
{
	const struct alias *alias = aliases_find(aliases, name);

	return alias != NULL ? &alias->users : NULL;
}

size_t
aliases_count(const struct aliases *aliases)
{
	return aliases != NULL ? aliases->count : 0;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Adds the comma-separated user names of text to alias. */
static int
aliases_add_users(struct alias *alias, char *text, const char *where, char **error_r)
{
	char *save = NULL;

	for (char *tok = strtok_r(text, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *user = trim(tok);

		if (*user == '\0')
			continue;
		if (strpbrk(user, "@|/\"") != NULL || user[0] == ':' || !username_is_valid(user)) {
			*error_r = xasprintf("%s: '%s' is not a local user name (addresses, files "
					     "and commands are not supported)",
					     where, user);
			return -1;
		}
		if (!strlist_contains(&alias->users, user))
			strlist_add(&alias->users, user);
	}
	return 0;
}

/* One logical line (continuations joined): "name: users". */
static int
aliases_add_line(struct aliases *aliases, char *line, const char *where, char **error_r)
{
	char *colon = strchr(line, ':');
	char *name;
	struct alias *alias;

	if (colon == NULL) {
		*error_r = xasprintf("%s: expected 'name: user, user'", where);
		return -1;
	}
	*colon = '\0';
	name = trim(line);
	if (*name == '\0' || !username_is_valid(name) || strpbrk(name, " \t@") != NULL) {
		*error_r = xasprintf("%s: '%s' is not a valid alias name", where, name);
		return -1;
	}
	if (aliases_find(aliases, name) != NULL) {
		*error_r = xasprintf("%s: '%s' is defined twice", where, name);
		return -1;
	}
	if (aliases->count >= ALIASES_MAX_COUNT) {
		*error_r = xasprintf("%s: more than %d aliases", where, ALIASES_MAX_COUNT);
		return -1;
	}
	if (aliases->count == aliases->alloc) {
		aliases->alloc = aliases->alloc == 0 ? 16 : aliases->alloc * 2;
		aliases->items = xrealloc(aliases->items, aliases->alloc * sizeof(*aliases->items));
	}
	alias = &aliases->items[aliases->count++];
	i_zero(alias);
	alias->name = xstrdup(name);
	if (aliases_add_users(alias, colon + 1, where, error_r) < 0)
		return -1;
	if (alias->users.count == 0) {
		*error_r = xasprintf("%s: '%s' names no user", where, name);
		return -1;
	}
	return 0;
}

/* No alias may name another one: each stands for users only. */
static int
aliases_check_flat(const struct aliases *aliases, const char *path, char **error_r)
{
	for (size_t i = 0; i < aliases->count; i++) {
		const struct strlist *users = &aliases->items[i].users;

		for (size_t j = 0; j < users->count; j++) {
			if (aliases_find(aliases, users->items[j]) != NULL) {
				*error_r = xasprintf("%s: '%s' names the alias '%s': aliases of "
						     "aliases are not supported",
						     path, aliases->items[i].name, users->items[j]);
				return -1;
			}
		}
	}
	return 0;
}

struct aliases *
aliases_load(const char *path, char **error_r)
{
	struct aliases *aliases = xcalloc(1, sizeof(*aliases));
	char raw[ALIASES_MAX_LINE], *pending = NULL, *where = NULL;
	unsigned lineno = 0, start_line = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (f == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		free(aliases);
		return NULL;
	}
	while (ret == 0 && fgets(raw, sizeof(raw), f) != NULL) {
		size_t len = strlen(raw);

		lineno++;
		if (len == sizeof(raw) - 1 && raw[len - 1] != '\n') {
			*error_r = xasprintf("%s:%u: line too long", path, lineno);
			ret = -1;
			break;
		}
		raw[strcspn(raw, "\r\n")] = '\0';
		if (*trim(raw) == '\0' || *trim(raw) == '#')
			continue;
		if (isspace((unsigned char)raw[0]) && pending != NULL) {
			char *joined = xasprintf("%s %s", pending, trim(raw));

			free(pending);
			pending = joined;
			continue;
		}
		if (isspace((unsigned char)raw[0])) {
			*error_r = xasprintf("%s:%u: a continuation line with nothing before it",
					     path, lineno);
			ret = -1;
			break;
		}
		if (pending != NULL) {
			where = xasprintf("%s:%u", path, start_line);
			ret = aliases_add_line(aliases, pending, where, error_r);
			free(where);
			free(pending);
			pending = NULL;
		}
		pending = xstrdup(raw);
		start_line = lineno;
	}
	if (ret == 0 && ferror(f)) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		ret = -1;
	}
	if (ret == 0 && pending != NULL) {
		where = xasprintf("%s:%u", path, start_line);
		ret = aliases_add_line(aliases, pending, where, error_r);
		free(where);
	}
	free(pending);
	fclose(f);
	if (ret == 0)
		ret = aliases_check_flat(aliases, path, error_r);
	if (ret < 0) {
		aliases_free(&aliases);
		return NULL;
	}
	return aliases;
}
