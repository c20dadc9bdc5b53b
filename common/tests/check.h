/*
 * check.h: the assertion macro of ringgate's unit tests. A failed CHECK
 * prints where and what, and exits 1, so CTest reports the case failed.
 */
#ifndef RG_TEST_CHECK_H
#define RG_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* The exit code of a case that cannot run here (a kernel feature or an
 * engine is missing): CTest's SKIP_RETURN_CODE, as in autotools. */
#define TEST_SKIP 77

/* One named case of a test program's list. */
struct test_case {
	const char *name;
	void (*fn)(void);
};

/*
 * Run the case named argv[1] (CTest registers one test per case, so each
 * runs in its own process under CTest's timeout), or list the names when
 * called without arguments. Returns the process exit code.
 */
static inline int test_main(const struct test_case *cases, int argc, char **argv)
{
	if (argc < 2) {
		for (const struct test_case *t = cases; t->name; t++)
			printf("%s\n", t->name);
		return 0;
	}
	for (const struct test_case *t = cases; t->name; t++) {
		if (strcmp(t->name, argv[1]) == 0) {
			t->fn();
			return 0;
		}
	}
	fprintf(stderr, "no test case named %s\n", argv[1]);
	return 2;
}

/* The main() of a test program whose case list is `cases`. */
#define TEST_MAIN(cases)                                                     \
	int main(int argc, char **argv)                                      \
	{                                                                    \
		return test_main((cases), argc, argv);                       \
	}

#endif /* RG_TEST_CHECK_H */
