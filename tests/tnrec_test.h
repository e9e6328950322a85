/* tests/tnrec_test.h: the few helpers every C test program shares.
 * A failed CHECK prints file:line and the library's last error, and the
 * program exits 1 at the end; exit 77 means skipped (ctest SKIP_RETURN_CODE). */
#ifndef TNREC_TEST_H
#define TNREC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tnrec/tnrec.h"

static int tnrec_test_failures;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n  last error: %s\n", __FILE__,        \
                    __LINE__, #cond, tnrec_error_last());                                   \
            tnrec_test_failures++;                                                          \
        }                                                                                   \
    } while (0)

#define CHECK_OK(expr)                                                                      \
    do {                                                                                    \
        tnrec_err check_err_ = (expr);                                                      \
        if (check_err_ != TNREC_OK) {                                                       \
            fprintf(stderr, "%s:%d: %s returned %s\n  last error: %s\n", __FILE__,          \
                    __LINE__, #expr, tnrec_err_name(check_err_), tnrec_error_last());       \
            tnrec_test_failures++;                                                          \
        }                                                                                   \
    } while (0)

/* A fresh scratch directory for this test program: TNREC_TEST_TMP, the
 * build-tree folder compiled in, or the environment's TNREC_TEST_TMP when
 * set (a test program run outside its build tree, as in the GPU bundle). */
static inline const char *tnrec_test_dir(void)
{
    static char cmd[4096];
    const char *dir = getenv("TNREC_TEST_TMP");
    if (!dir || !*dir)
        dir = TNREC_TEST_TMP;
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(1);
    }
    return dir;
}

static inline int tnrec_test_result(const char *name)
{
    if (tnrec_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tnrec_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
