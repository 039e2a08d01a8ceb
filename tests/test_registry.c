/* test_registry.c: the backend tables and their lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "registry.h"

static void
test_storage_flat_is_found_and_compiled_in(void **state)
{
	const struct storage_backend *backend = registry_storage_find("flat");

	(void)state;
	assert_non_null(backend);
	assert_string_equal(backend->name, "flat");
	assert_true(backend->compiled_in);
}

static void
test_auth_backends_are_found(void **state)
{
	const struct auth_backend *backend;

	(void)state;
	backend = registry_auth_find("passwd-file");
	assert_non_null(backend);
	assert_string_equal(backend->name, "passwd-file");
	assert_true(backend->compiled_in);
	assert_non_null(backend->init);
	assert_non_null(backend->deinit);
	assert_non_null(backend->verify);

	backend = registry_auth_find("pam");
	assert_non_null(backend);
	assert_string_equal(backend->name, "pam");
}

/* pam is compiled in exactly when the build found PAM's headers
   (HAVE_PAM); either way it stays registered by name. */
static void
test_pam_is_registered_and_compiled_in_with_pam_headers(void **state)
{
	const struct auth_backend *backend = registry_auth_find("pam");

	(void)state;
	assert_non_null(backend);
#ifdef HAVE_PAM
	assert_true(backend->compiled_in);
	assert_non_null(backend->init);
	assert_non_null(backend->deinit);
	assert_non_null(backend->verify_start);
	assert_non_null(backend->verify_cancel);
#else
	assert_false(backend->compiled_in);
	assert_null(backend->init);
#endif
}

static void
test_lookup_is_exact(void **state)
{
	(void)state;
	assert_null(registry_storage_find("mbox"));
	assert_null(registry_storage_find(""));
	assert_null(registry_storage_find("Flat"));
	assert_null(registry_storage_find("fla"));
	assert_null(registry_storage_find("flat "));
	assert_null(registry_storage_find(NULL));
	assert_null(registry_auth_find("ldap"));
	assert_null(registry_auth_find("PAM"));
	assert_null(registry_auth_find("passwd"));
	assert_null(registry_auth_find("passwd-file2"));
	assert_null(registry_auth_find(NULL));
}

static void
test_auth_names_list(void **state)
{
	char *names = registry_auth_names();

	(void)state;
	assert_string_equal(names, "passwd-file, pam");
	free(names);
}

/* Every name of the list is found, and it starts with the default. The
   exact list grows as backends are added. */
static void
test_storage_names_list_matches_lookups(void **state)
{
	char *names = registry_storage_names();
	char *save = NULL, *tok;
	unsigned count = 0;

	(void)state;
	assert_true(strncmp(names, "flat", 4) == 0);
	assert_true(names[4] == '\0' || strncmp(names + 4, ", ", 2) == 0);
	for (tok = strtok_r(names, ",", &save); tok != NULL && count < 100;
	     tok = strtok_r(NULL, ",", &save)) {
		if (count > 0) {
			assert_true(tok[0] == ' ');
			tok++;
		}
		assert_non_null(registry_storage_find(tok));
		count++;
	}
	assert_true(count >= 1);
	free(names);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_flat_is_found_and_compiled_in),
		cmocka_unit_test(test_auth_backends_are_found),
		cmocka_unit_test(test_pam_is_registered_and_compiled_in_with_pam_headers),
		cmocka_unit_test(test_lookup_is_exact),
		cmocka_unit_test(test_auth_names_list),
		cmocka_unit_test(test_storage_names_list_matches_lookups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
