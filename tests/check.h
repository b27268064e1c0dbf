/* tests/check.h: the tiny assertion kit of the C tests.
 *
 *   CHECK(cond, "what %d", x);         counts a failure and prints file:line when false
 *   CHECK_NEAR(a, b, atol, rtol, name) |a-b| <= atol + rtol*|b|
 *   return check_summary("test_name"); prints "N checks, M failed", exit status 0/1
 *   SKIP("why")                        prints "SKIP: why" and exits 77
 * Each CHECK is a real assertion; a test with zero checks fails.
 */
#ifndef AVS_TESTS_CHECK_H
#define AVS_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_count, check_failed;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        check_count++;                                                    \
        if (!(cond)) {                                                    \
            check_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

#define CHECK_NEAR(a, b, atol, rtol, name)                                          \
    do {                                                                            \
        double ca_ = (double)(a), cb_ = (double)(b);                                \
        CHECK(fabs(ca_ - cb_) <= (atol) + (rtol) * fabs(cb_), "%s: got %.9g want %.9g", \
              (name), ca_, cb_);                                                    \
    } while (0)

#define SKIP(...)                       \
    do {                                \
        printf("SKIP: " __VA_ARGS__);   \
        printf("\n");                   \
        exit(77);                       \
    } while (0)

static inline int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failed);
    if (check_count == 0) {
        printf("%s: no checks ran: that is a failure\n", name);
        return 1;
    }
    return check_failed ? 1 : 0;
}

/* Scratch folder for this test (set by tests/run.sh; /tmp otherwise). */
static inline const char *check_tmpdir(void)
{
    const char *t = getenv("AVS_TMP");
    return t ? t : "/tmp";
}

#endif
