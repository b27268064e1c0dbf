/* core/fs.c: see fs.h. */
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int avs_fs_mkdirs(const char *path, struct avs_err *err)
{
    char *p = avs_strdup(path);
    int rc = 0;
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = errno == ENOSPC || errno == EDQUOT || errno == EIO
                     ? avs_fs_write_error(err, p, errno)
                     : avs_err_set(err, "cannot create folder %s: %s (check permissions)", p,
                                   strerror(errno));
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    if (rc == 0 && !avs_fs_is_dir(path))
        rc = avs_err_set(err, "%s exists but is not a folder: move it away", path);
    free(p);
    return rc;
}

int avs_fs_mkdirs_parent(const char *path, struct avs_err *err)
{
    char *p = avs_strdup(path);
    char *slash = strrchr(p, '/');
    int rc = 0;
    if (slash && slash != p) {
        *slash = '\0';
        rc = avs_fs_mkdirs(p, err);
    }
    free(p);
    return rc;
}

char *avs_fs_tmp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    return avs_sprintf("%.*s.%s.tmp.%ld", dirlen, path, base, (long)getpid());
}

int avs_fs_commit(const char *tmp, const char *final, struct avs_err *err)
{
    if (rename(tmp, final) != 0) {
        int e = errno;
        char *what = avs_sprintf("%s (renaming %s to it)", final, tmp);
        avs_fs_write_error(err, what, e);
        free(what);
        return -1;
    }
    return 0;
}

static int rm_rf_at(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *child = avs_fs_join(path, e->d_name);
        rc |= rm_rf_at(child);
        free(child);
    }
    closedir(d);
    return rc | rmdir(path);
}

int avs_fs_rm_rf(const char *path, struct avs_err *err)
{
    if (rm_rf_at(path) != 0)
        return avs_err_set(err, "cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int avs_fs_sweep_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *child = avs_fs_join(dir, e->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            n += avs_fs_sweep_tmp(child);
        else if (strstr(e->d_name, ".tmp.") && unlink(child) == 0)
            n++;
        free(child);
    }
    closedir(d);
    return n;
}

int avs_fs_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int avs_fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int avs_fs_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int avs_fs_stat(const char *path, int64_t *size, int64_t *mtime_ns, struct avs_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return avs_err_set(err, "cannot read %s: %s", path, strerror(errno));
    *size = (int64_t)st.st_size;
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

char *avs_fs_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la == 0)
        return avs_strdup(b);
    return avs_sprintf("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

char *avs_fs_realpath(const char *path, struct avs_err *err)
{
    char *r = realpath(path, NULL);
    if (!r)
        avs_err_set(err, "%s: %s", path, strerror(errno));
    return r;
}

char *avs_fs_stem(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = (dot && dot != base) ? (size_t)(dot - base) : strlen(base);
    char *s = avs_malloc(n + 1);
    memcpy(s, base, n);
    s[n] = '\0';
    return s;
}

int avs_fs_read_all(const char *path, char **data, size_t *len, struct avs_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return avs_err_set(err, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = avs_realloc(buf, cap + 1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = avs_err_set(err, "error reading %s: %s", path, strerror(errno));
        free(buf);
    } else {
        buf[n] = '\0';
        *data = buf;
        *len = n;
    }
    fclose(f);
    return rc;
}

int avs_fs_write_error(struct avs_err *err, const char *path, int e)
{
    if (e == ENOSPC || e == EDQUOT)
        avs_err_set(err, "%s: disk full (%s): free space on that file system (or raise the quota), "
                    "then run again: what was finished is kept", path, strerror(e));
    else if (e == EIO)
        avs_err_set(err, "%s: I/O error (%s): the disk or file system failed; check it (dmesg, "
                    "fsck), then run again: what was finished is kept", path, strerror(e));
    else if (e == EROFS)
        avs_err_set(err, "%s: read-only file system: remount it read-write or use another --root",
                    path);
    else
        avs_err_set(err, "cannot write %s: %s (check permissions and free space)", path, strerror(e));
    return -1;
}

/* write(2) until all of it is out (EINTR and short writes retried); errno on failure. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r, len -= (size_t)r;
    }
    return 0;
}

int avs_fs_write_file(const char *path, const void *data, size_t len, struct avs_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return avs_fs_write_error(err, path, errno);
    int rc = write_all(fd, data, len);
    int e = errno;
    if (close(fd) != 0 && rc == 0)
        rc = -1, e = errno;
    if (rc) {
        unlink(path);
        return avs_fs_write_error(err, path, e);
    }
    return 0;
}

int avs_fs_tmpfile_open(struct avs_fs_tmpfile *o, const char *path, struct avs_err *err)
{
    o->tmp = avs_fs_tmp_name(path);
    o->path = avs_strdup(path);
    /* A new file, never through a link planted at the temp name (a stale one of a killed
     * process with our pid, or a link, is removed first: unlink never follows). */
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    o->fd = open(o->tmp, flags, 0666);
    if (o->fd < 0 && errno == EEXIST && unlink(o->tmp) == 0)
        o->fd = open(o->tmp, flags, 0666);
    if (o->fd < 0) {
        avs_fs_write_error(err, o->tmp, errno);
        avs_fs_tmpfile_abort(o);
        return -1;
    }
    return 0;
}

/* Report errno e for o's final path (the temp name in parentheses), then drop the temp file. */
static int out_fail(struct avs_fs_tmpfile *o, int e, struct avs_err *err)
{
    char *what = avs_sprintf("%s (temp file %s, removed)", o->path, o->tmp);
    avs_fs_write_error(err, what, e);
    free(what);
    avs_fs_tmpfile_abort(o);
    return -1;
}

int avs_fs_tmpfile_write(struct avs_fs_tmpfile *o, const void *data, size_t len,
                         struct avs_err *err)
{
    AVS_ASSERT(o->fd >= 0);
    return write_all(o->fd, data, len) ? out_fail(o, errno, err) : 0;
}

int avs_fs_tmpfile_commit(struct avs_fs_tmpfile *o, int durable, struct avs_err *err)
{
    AVS_ASSERT(o->fd >= 0);
    if (durable && fsync(o->fd) != 0)
        return out_fail(o, errno, err);
    int rc = close(o->fd);
    o->fd = -1;
    if (rc != 0)
        return out_fail(o, errno, err);
    if (rename(o->tmp, o->path) != 0)
        return out_fail(o, errno, err);
    avs_fs_tmpfile_abort(o); /* frees the names; the temp name is gone */
    return 0;
}

void avs_fs_tmpfile_abort(struct avs_fs_tmpfile *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp), free(o->path);
    o->tmp = o->path = NULL;
}

int avs_fs_write_atomic(const char *path, const void *data, size_t len, struct avs_err *err)
{
    struct avs_fs_tmpfile o;
    if (avs_fs_tmpfile_open(&o, path, err) || avs_fs_tmpfile_write(&o, data, len, err))
        return -1;
    return avs_fs_tmpfile_commit(&o, 0, err);
}

struct avs_fs_lock {
    int fd;
};

/* "<pid> <program>" into the held lock file (best effort: a full disk must not stop a run
 * that only needs the lock). */
static void lock_note_holder(int fd)
{
    char line[300];
    int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), program_invocation_short_name);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n)
        (void)ftruncate(fd, 0);
}

char *avs_fs_lock_holder(const char *path)
{
    char buf[300] = "", name[260];
    long pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (sscanf(buf, "%ld %259s", &pid, name) == 2 && pid > 0)
        return avs_sprintf("%s (pid %ld)", name, pid);
    return avs_strdup("another process");
}

int avs_fs_lock_try(const char *path, struct avs_fs_lock **lock, struct avs_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0)
        return avs_err_set(err, "cannot open lock file %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        if (busy) {
            char *who = avs_fs_lock_holder(path);
            avs_err_set(err, "%s is held by %s: wait for it to finish", path, who);
            free(who);
            return 1;
        }
        return avs_err_set(err, "cannot lock %s: %s", path, strerror(errno));
    }
    lock_note_holder(fd);
    *lock = avs_malloc(sizeof **lock);
    (*lock)->fd = fd;
    return 0;
}

void avs_fs_unlock(struct avs_fs_lock **lock)
{
    if (lock && *lock) {
        close((*lock)->fd);
        free(*lock);
        *lock = NULL;
    }
}

/* Once per process: the file system of fd takes no flock (ENOLCK, EOPNOTSUPP; EBADF for an
 * exclusive lock on some NFS mounts), so the programs go on without. */
static void no_locks_warning(int fd)
{
    static atomic_int told;
    if (atomic_exchange(&told, 1))
        return;
    int e = errno;
    char link[40], path[4096];
    avs_fs_fd_path(fd, link);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    avs_log_warn("%s: its file system takes no locks (%s): readers and avs-ingest are not kept "
                 "apart there; do not re-ingest a store while it is read", path, strerror(e));
}

int avs_fs_flock_wait(int fd, int exclusive, int timeout_ms)
{
    const struct timespec tick = {0, 1000 * 1000}; /* short: a reader's gaps are short */
    for (int waited = 0;; waited += 1) {
        if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            no_locks_warning(fd);
            return 0;
        }
        if (waited >= timeout_ms)
            return 1;
        nanosleep(&tick, NULL);
    }
}
