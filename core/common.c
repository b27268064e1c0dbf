/* core/common.c: see common.h. */
#include "core/common.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int avs_err_set(struct avs_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void avs_err_replace(struct avs_err *err, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    if (!err || !fl || !strstr(err->msg, from))
        return;
    char out[sizeof err->msg];
    for (const char *p = err->msg; *p && n + 1 < sizeof out;) {
        if (!strncmp(p, from, fl) && !isdigit((unsigned char)p[fl])) {
            size_t c = tl < sizeof out - 1 - n ? tl : sizeof out - 1 - n;
            memcpy(out + n, to, c), n += c, p += fl;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    memcpy(err->msg, out, n + 1);
}

int avs_err_wrap(struct avs_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[512], old[sizeof err->msg];
    /* prefix (< 512) + ": " + old, truncated to fit */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strlen(prefix);
    memcpy(err->msg, prefix, pl);
    size_t room = sizeof err->msg - pl - 1, ol = strlen(old);
    if (room >= 2) {
        err->msg[pl] = ':', err->msg[pl + 1] = ' ';
        if (ol > room - 2)
            ol = room - 2;
        memcpy(err->msg + pl + 2, old, ol);
        err->msg[pl + 2 + ol] = '\0';
    }
    return -1;
}

void avs_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s (this is a bug; please report it)\n", file, line, expr);
    abort();
}

static void *checked(void *p, size_t n, const char *file, int line)
{
    if (!p && n) {
        fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, n);
        abort();
    }
    return p;
}

void *avs_malloc_at(size_t n, const char *file, int line) { return checked(malloc(n ? n : 1), n, file, line); }

void *avs_calloc_at(size_t n, size_t size, const char *file, int line)
{
    return checked(calloc(n ? n : 1, size ? size : 1), n * size, file, line);
}

void *avs_realloc_at(void *p, size_t n, const char *file, int line)
{
    return checked(realloc(p, n ? n : 1), n, file, line);
}

char *avs_strdup_at(const char *s, const char *file, int line)
{
    return checked(strdup(s), strlen(s) + 1, file, line);
}

void avs_freep(void *pp)
{
    void **p = pp;
    if (p) {
        free(*p);
        *p = NULL;
    }
}

char *avs_sprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    AVS_ASSERT(n >= 0);
    char *s = avs_malloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

int avs_size_mul(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int avs_size_add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

static int log_level = 1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void avs_log_set_level(int level) { log_level = level; }
int avs_log_level(void) { return log_level; }

static void vlog(int level, const char *tag, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s", tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
}

#define DEFINE_LOG(name, level, tag)        \
    void name(const char *fmt, ...)         \
    {                                       \
        va_list ap;                         \
        va_start(ap, fmt);                  \
        vlog(level, tag, fmt, ap);          \
        va_end(ap);                         \
    }
DEFINE_LOG(avs_log_error, 0, "error: ")
DEFINE_LOG(avs_log_warn, 1, "warning: ")
DEFINE_LOG(avs_log_info, 2, "")
DEFINE_LOG(avs_log_debug, 3, "debug: ")

double avs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int avs_num_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
