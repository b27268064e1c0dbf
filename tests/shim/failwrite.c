/* tests/shim/failwrite.c: an LD_PRELOAD library that makes writes to files fail, for the fault
 * tests (tests/test_faults_*.sh). Built by the Makefile as $(B)/tests/shim/failwrite.so.
 *
 *   AVS_FAIL_AT=N        the Nth counted call fails (1-based), and every later one too (a full
 *                        or dead disk stays so); unset or 0: nothing fails, calls are counted
 *   AVS_FAIL_ONCE=1      only the Nth call fails
 *   AVS_FAIL_ERRNO=E     EIO (default), ENOSPC or EDQUOT
 *   AVS_FAIL_PATH=S      count only calls on files whose path contains S (default: every
 *                        regular file; pipes, terminals and sockets are never counted)
 *   AVS_FAIL_COUNT=FILE  at exit, the number of counted calls is written to FILE
 *   AVS_KILL_AT_RENAME=N the process kills itself (SIGKILL) just after its Nth rename or
 *                        renameat whose target path contains AVS_FAIL_PATH (any, unset): a
 *                        kill -9 at an exact point of a commit (tests/test_store_lock.c)
 *   AVS_RENAME_DELAY_MS=M every rename or renameat whose target path contains AVS_FAIL_PATH
 *                        sleeps M ms after it: a commit window held open long enough for
 *                        another process to run inside it (tests/test_store_lock.c)
 *
 * Counted calls: write, pwrite, pwrite64, writev, pwritev, fsync, fdatasync. stdio's own
 * writes go through glibc's internal write and are not seen: the suite writes files with
 * write(2) (core/fs.h), SQLite and libsndfile do too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_long n_calls;

/* The libc function after this library in the lookup order (none: a broken set-up). */
static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort();
    return f;
}

static int counted_fd(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    const char *want = getenv("AVS_FAIL_PATH");
    if (!want || !*want)
        return 1;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, want) != NULL;
}

static int fail_errno(void)
{
    const char *e = getenv("AVS_FAIL_ERRNO");
    if (e && !strcmp(e, "ENOSPC"))
        return ENOSPC;
    if (e && !strcmp(e, "EDQUOT"))
        return EDQUOT;
    return EIO;
}

/* 1 when this call on fd must fail (errno is then set). */
static int should_fail(int fd)
{
    if (!counted_fd(fd))
        return 0;
    long i = atomic_fetch_add(&n_calls, 1) + 1;
    const char *at = getenv("AVS_FAIL_AT"), *once = getenv("AVS_FAIL_ONCE");
    long n = at ? atol(at) : 0;
    if (n <= 0 || i < n || (once && *once == '1' && i != n))
        return 0;
    errno = fail_errno();
    return 1;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);

ssize_t write(int fd, const void *buf, size_t n)
{
    static write_fn f;
    if (!f)
        f = (write_fn)real("write");
    return should_fail(fd) ? -1 : f(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn f;
    if (!f)
        f = (pwrite_fn)real("pwrite");
    return should_fail(fd) ? -1 : f(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    static pwrite_fn f;
    if (!f)
        f = (pwrite_fn)real("pwrite64");
    return should_fail(fd) ? -1 : f(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    static writev_fn f;
    if (!f)
        f = (writev_fn)real("writev");
    return should_fail(fd) ? -1 : f(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    static pwritev_fn f;
    if (!f)
        f = (pwritev_fn)real("pwritev");
    return should_fail(fd) ? -1 : f(fd, iov, cnt, off);
}

int fsync(int fd)
{
    static sync_fn f;
    if (!f)
        f = (sync_fn)real("fsync");
    return should_fail(fd) ? -1 : f(fd);
}

int fdatasync(int fd)
{
    static sync_fn f;
    if (!f)
        f = (sync_fn)real("fdatasync");
    return should_fail(fd) ? -1 : f(fd);
}

static atomic_long n_renames;

/* After a rename to path: a pause of AVS_RENAME_DELAY_MS, then kill -9 here when it is the
 * AVS_KILL_AT_RENAME-th counted one. */
static void after_rename(const char *path)
{
    const char *at = getenv("AVS_KILL_AT_RENAME"), *want = getenv("AVS_FAIL_PATH");
    const char *delay = getenv("AVS_RENAME_DELAY_MS");
    if (want && *want && !strstr(path, want))
        return;
    if (delay && atol(delay) > 0) {
        struct timespec t = {atol(delay) / 1000, atol(delay) % 1000 * 1000000L};
        nanosleep(&t, NULL);
    }
    if (at && atol(at) > 0 && atomic_fetch_add(&n_renames, 1) + 1 == atol(at))
        kill(getpid(), SIGKILL);
}

typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);

int rename(const char *from, const char *to)
{
    static rename_fn f;
    if (!f)
        f = (rename_fn)real("rename");
    int rc = f(from, to);
    if (rc == 0)
        after_rename(to);
    return rc;
}

int renameat(int fromdir, const char *from, int todir, const char *to)
{
    static renameat_fn f;
    if (!f)
        f = (renameat_fn)real("renameat");
    int rc = f(fromdir, from, todir, to);
    if (rc == 0) {
        char link[64], path[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%d", todir);
        ssize_t n = todir == AT_FDCWD ? 0 : readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
        size_t len = strlen(path);
        snprintf(path + len, sizeof path - len, "/%s", to);
        after_rename(path);
    }
    return rc;
}

/* AVS_FAIL_COUNT: the count, for a test that picks N as a fraction of a whole run's calls. */
__attribute__((destructor)) static void report_count(void)
{
    const char *path = getenv("AVS_FAIL_COUNT");
    if (!path || !*path)
        return;
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", atomic_load(&n_calls));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return;
    static write_fn f;
    if (!f)
        f = (write_fn)real("write");
    (void)!f(fd, line, (size_t)len);
    close(fd);
}
