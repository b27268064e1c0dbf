/* core/common.h: what every module shares: exit codes, error messages, checked allocation,
 * overflow-checked sizes, logging and assertions.
 *
 *   struct avs_err err = {0};
 *   if (avs_png_read_rgb(path, &img, &err)) { avs_log_error("%s", err.msg); ... }
 *
 * Library functions that can fail for outside reasons return 0 on success and -1 on failure,
 * leaving a message that names the file and the fix in `err`. Bugs go to AVS_ASSERT.
 */
#ifndef AVS_CORE_COMMON_H
#define AVS_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define AVS_VERSION "0.1.0"
/* The source revision of this build (git describe at build time, "-dirty" with uncommitted
 * changes, "unknown" outside git); recorded with every training run. */
const char *avs_code_rev(void);

/* Process exit statuses shared by every program (DESIGN §1). */
enum avs_exit {
    AVS_EXIT_OK = 0,      /* everything done */
    AVS_EXIT_USAGE = 1,   /* bad command line */
    AVS_EXIT_PARTIAL = 2, /* some inputs failed, each recorded with its reason; the rest done */
    AVS_EXIT_FATAL = 3    /* nothing (more) could be done */
};

struct avs_err {
    char msg[1024];
};

/* printf-style: set the message; returns -1 so callers can `return avs_err_set(...)`. */
int avs_err_set(struct avs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the existing message with more context: "ctx: old message". Returns -1. */
int avs_err_wrap(struct avs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Every occurrence of `from` in the message not followed by a digit replaced by `to` (cut to
 * fit): e.g. a confined writer's "/proc/self/fd/7" (not "/proc/self/fd/71") by the folder it
 * stands for. */
void avs_err_replace(struct avs_err *err, const char *from, const char *to);

void avs_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define AVS_ASSERT(c) ((c) ? (void)0 : avs_assert_fail(#c, __FILE__, __LINE__))

/* Checked allocation: out of memory is not recoverable here, it aborts with file:line. */
void *avs_malloc_at(size_t n, const char *file, int line);
void *avs_calloc_at(size_t n, size_t size, const char *file, int line);
void *avs_realloc_at(void *p, size_t n, const char *file, int line);
char *avs_strdup_at(const char *s, const char *file, int line);
#define avs_malloc(n) avs_malloc_at((n), __FILE__, __LINE__)
#define avs_calloc(n, s) avs_calloc_at((n), (s), __FILE__, __LINE__)
#define avs_realloc(p, n) avs_realloc_at((p), (n), __FILE__, __LINE__)
#define avs_strdup(s) avs_strdup_at((s), __FILE__, __LINE__)
/* Free *p and set it to NULL; accepts NULL and a NULL *p. */
void avs_freep(void *pp);
char *avs_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overflow-checked size arithmetic for sizes read from files: 0 on success, -1 on overflow. */
int avs_size_mul(size_t a, size_t b, size_t *out);
int avs_size_add(size_t a, size_t b, size_t *out);

/* Logging to stderr. Level 0 = errors only, 1 = warnings (default), 2 = info, 3 = debug. */
void avs_log_set_level(int level);
int avs_log_level(void);
void avs_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void avs_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void avs_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void avs_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic seconds, for timing and progress. */
double avs_now(void);
/* Number of online cores (at least 1). */
int avs_num_cores(void);

#endif
