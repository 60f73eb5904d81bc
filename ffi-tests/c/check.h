/* Minimal test harness for the C tests: each CHECK counts as one assertion; main() ends with
 * CHECK_SUMMARY(), which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef CELLAR_CHECK_H
#define CELLAR_CHECK_H

#include <stdio.h>
#include <string.h>
#include "cellar.h"

static int check_passed = 0;
static int check_failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed++;                                                          \
        } else {                                                                     \
            check_failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Checks that `call` returns `expected`; on mismatch prints both names and the last error. */
#define CHECK_STATUS(call, expected)                                                        \
    do {                                                                                    \
        cellar_status check_st_ = (call);                                                   \
        if (check_st_ == (expected)) {                                                      \
            check_passed++;                                                                 \
        } else {                                                                            \
            char check_buf_[256];                                                           \
            cellar_last_error(check_buf_, sizeof check_buf_);                               \
            check_failed++;                                                                 \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, \
                    #call, cellar_status_name(check_st_), cellar_status_name(expected),     \
                    check_buf_);                                                            \
        }                                                                                   \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, CELLAR_OK)

/* The calling thread's last operation was approved by the module's service indicator. */
#define CHECK_APPROVED() CHECK(cellar_last_operation_approved() == 1)

/* The last error text is non-empty (a failure always explains itself). */
#define CHECK_HAS_ERROR_TEXT() CHECK(cellar_last_error(NULL, 0) > 0)

#define CHECK_SUMMARY()                                                       \
    do {                                                                      \
        printf("%s\n%d passed, %d failed\n", __FILE__, check_passed, check_failed); \
        return check_failed == 0 ? 0 : 1;                                     \
    } while (0)

#endif
