/* core/fs_under.c: confinement of the paths written inside a store (core/fs.h). */
#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Why component `c` (in folder fd, shown as `shown`) could not be opened as a folder. */
static int component_error(int fd, const char *c, const char *shown, int e, struct avs_err *err)
{
    struct stat st;
    if (fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return avs_err_set(err, "%s is a symbolic link inside the store: refused, a write there "
                                "could land outside it; replace the link with a real folder "
                                "(or give the target folder itself as --root)", shown);
    if (e == ENOTDIR || (e == EEXIST))
        return avs_err_set(err, "%s exists but is not a folder: move it away", shown);
    errno = e;
    return avs_err_set(err, "cannot open folder %s: %s (check permissions and free space)", shown,
                       strerror(e));
}

static int open_root(const char *root, struct avs_err *err)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        avs_err_set(err, "cannot open the store folder %s: %s (check --root)", root, strerror(errno));
    return fd;
}

/* Open component c of folder *fd in place of *fd. */
static int step_into(int *fd, const char *c, int create, const char *shown, struct avs_err *err)
{
    if (!strcmp(c, "..") || !strcmp(c, "."))
        return avs_err_set(err, "%s: a '%s' component in a store path: refused (bug or hostile "
                                "name)", shown, c);
    int next = openat(*fd, c, DIR_FLAGS);
    if (next < 0 && errno == ENOENT && create) {
        if (mkdirat(*fd, c, 0777) != 0 && errno != EEXIST)
            return avs_err_set(err, "cannot create folder %s: %s (check permissions and free "
                                    "space)", shown, strerror(errno));
        next = openat(*fd, c, DIR_FLAGS);
    }
    if (next < 0) {
        int e = errno;
        if (e == ENOENT && !create) {
            avs_err_set(err, "no folder %s", shown);
            errno = ENOENT;
            return -1;
        }
        return component_error(*fd, c, shown, e, err);
    }
    close(*fd);
    *fd = next;
    return 0;
}

int avs_fs_open_under(const char *root, const char *rel, int create, int *dirfd,
                      struct avs_err *err)
{
    if (rel[0] == '/')
        return avs_err_set(err, "%s: an absolute path where a path inside the store %s was "
                                "expected: refused", rel, root);
    int fd = open_root(root, err);
    if (fd < 0)
        return -1;
    char *p = avs_strdup(rel), *shown = avs_fs_join(root, rel), *save = NULL;
    size_t rootlen = strlen(shown) - strlen(rel);
    int rc = 0;
    for (char *c = strtok_r(p, "/", &save); c && rc == 0; c = strtok_r(NULL, "/", &save)) {
        char keep = shown[rootlen + (size_t)(c - p) + strlen(c)];
        shown[rootlen + (size_t)(c - p) + strlen(c)] = '\0'; /* shown = root/rel up to c */
        rc = step_into(&fd, c, create, shown, err);
        shown[rootlen + (size_t)(c - p) + strlen(c)] = keep;
    }
    int e = errno;
    free(p), free(shown);
    if (rc) {
        close(fd);
        errno = e;
        return -1;
    }
    *dirfd = fd;
    return 0;
}

void avs_fs_fd_path(int fd, char path[40])
{
    snprintf(path, 40, "/proc/self/fd/%d", fd);
}

int avs_fs_mkdirs_under(const char *root, const char *rel, struct avs_err *err)
{
    int fd;
    if (avs_fs_open_under(root, rel, 1, &fd, err))
        return -1;
    close(fd);
    return 0;
}

/* rel split at its last '/': *dir (malloc'd, "" when none) and the returned base name. */
static const char *split_rel(const char *rel, char **dir)
{
    const char *slash = strrchr(rel, '/');
    *dir = slash ? avs_sprintf("%.*s", (int)(slash - rel), rel) : avs_strdup("");
    return slash ? slash + 1 : rel;
}

int avs_fs_check_under(const char *root, const char *rel_file, struct avs_err *err)
{
    char *dir;
    const char *base = split_rel(rel_file, &dir);
    int fd, rc = avs_fs_open_under(root, dir, 1, &fd, err);
    free(dir);
    if (rc)
        return -1;
    struct stat st;
    if (!strcmp(base, "..") || !strcmp(base, ".") || !*base)
        rc = avs_err_set(err, "%s/%s: not a file name: refused", root, rel_file);
    else if (fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        rc = avs_err_set(err, "%s/%s is a symbolic link inside the store: refused, a write "
                              "through it could land outside the store; remove the link",
                         root, rel_file);
    close(fd);
    return rc;
}

/* rm -rf of `name` in folder dir, by fds only: a link is unlinked, never followed. */
static int rm_at(int dir, const char *name)
{
    if (unlinkat(dir, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(dir, name, DIR_FLAGS);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc |= rm_at(fd, e->d_name);
    closedir(d);
    return rc | unlinkat(dir, name, AT_REMOVEDIR);
}

int avs_fs_rm_rf_under(const char *root, const char *rel, struct avs_err *err)
{
    char *dir;
    const char *base = split_rel(rel, &dir);
    struct avs_err e2 = {0};
    int fd, rc = 0;
    if (avs_fs_open_under(root, dir, 0, &fd, &e2))
        rc = errno == ENOENT ? 0 : avs_err_set(err, "%s", e2.msg);
    else {
        if (rm_at(fd, base) != 0)
            rc = avs_err_set(err, "cannot remove %s/%s: %s", root, rel, strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

/* ---- one file through a temp file ---- */

static int create_tmp(struct avs_fs_out *o, struct avs_err *err)
{
    unlinkat(o->dir, o->tmp, 0); /* a stale one from a killed process with our pid */
    o->fd = openat(o->dir, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (o->fd < 0)
        return avs_err_set(err, "cannot write %s: %s (check permissions and free space)", o->shown,
                           strerror(errno));
    avs_fs_fd_path(o->fd, o->path);
    return 0;
}

int avs_fs_out_open_at(struct avs_fs_out *o, int dir, const char *shown_dir, const char *name,
                       struct avs_err *err)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->fd = -1;
    o->name = avs_strdup(name);
    o->tmp = avs_sprintf(".%s.tmp.%ld", name, (long)getpid());
    o->shown = avs_fs_join(shown_dir, name);
    int bad = !*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".");
    if (bad)
        avs_err_set(err, "%s: not a file name: refused", o->shown);
    if (bad || create_tmp(o, err)) {
        free(o->name), free(o->tmp), free(o->shown);
        memset(o, 0, sizeof *o);
        o->fd = -1;
        return -1;
    }
    return 0;
}

int avs_fs_out_open(struct avs_fs_out *o, const char *root, const char *rel, struct avs_err *err)
{
    char *dir, *shown_dir;
    const char *base = split_rel(rel, &dir);
    int fd, rc = avs_fs_open_under(root, dir, 1, &fd, err);
    if (rc == 0) {
        shown_dir = avs_fs_join(root, dir);
        rc = avs_fs_out_open_at(o, fd, shown_dir, base, err);
        free(shown_dir);
        if (rc)
            close(fd);
        else
            o->own_dir = 1;
    }
    free(dir);
    return rc;
}

void avs_fs_out_close_file(struct avs_fs_out *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    o->path[0] = '\0';
}

int avs_fs_out_reopen(struct avs_fs_out *o, struct avs_err *err)
{
    avs_fs_out_close_file(o);
    o->fd = openat(o->dir, o->tmp, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (o->fd < 0 && errno == ENOENT)
        return create_tmp(o, err);
    if (o->fd < 0)
        return avs_err_set(err, "cannot write %s again: %s", o->shown, strerror(errno));
    avs_fs_fd_path(o->fd, o->path);
    return 0;
}

int avs_fs_out_commit(struct avs_fs_out *o, struct avs_err *err)
{
    avs_fs_out_close_file(o);
    if (renameat(o->dir, o->tmp, o->dir, o->name) != 0)
        return avs_err_set(err, "cannot rename the temp file of %s into place: %s", o->shown,
                           strerror(errno));
    unlinkat(o->dir, o->tmp, 0); /* left when tmp and the file were links to one inode */
    free(o->tmp);
    o->tmp = NULL; /* committed: nothing to remove */
    return 0;
}

void avs_fs_out_free(struct avs_fs_out *o)
{
    if (!o || !o->name)
        return;
    avs_fs_out_close_file(o);
    if (o->tmp)
        unlinkat(o->dir, o->tmp, 0);
    if (o->own_dir)
        close(o->dir);
    free(o->name), free(o->tmp), free(o->shown);
    memset(o, 0, sizeof *o);
    o->fd = -1;
}
