/* core/fs.c: see fs.h. */
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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
            rc = avs_err_set(err, "cannot create folder %s: %s (check permissions and free space)",
                             p, strerror(errno));
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
    if (rename(tmp, final) != 0)
        return avs_err_set(err, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
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

int avs_fs_write_atomic(const char *path, const void *data, size_t len, struct avs_err *err)
{
    char *tmp = avs_fs_tmp_name(path);
    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        avs_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t put = fwrite(data, 1, len, f);
    if (fclose(f) != 0 || put != len) {
        avs_err_set(err, "cannot write %s: %s (disk full?)", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = avs_fs_commit(tmp, path, err);
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

struct avs_fs_lock {
    int fd;
};

int avs_fs_lock_try(const char *path, struct avs_fs_lock **lock, struct avs_err *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return avs_err_set(err, "cannot open lock file %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        if (busy) {
            avs_err_set(err, "%s is held by another process: wait for it to finish", path);
            return 1;
        }
        return avs_err_set(err, "cannot lock %s: %s", path, strerror(errno));
    }
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
