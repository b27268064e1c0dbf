/* core/fs.h: file-system helpers for crash-safe stores.
 *
 * Crash-safe writing: write to avs_fs_tmp_name(final) (same folder, so rename is atomic),
 * then avs_fs_commit(tmp, final). A killed process leaves only "*.tmp.<pid>" files, which
 * avs_fs_sweep_tmp removes.
 */
#ifndef AVS_CORE_FS_H
#define AVS_CORE_FS_H

#include <stdint.h>

#include "core/common.h"

/* mkdir -p; 0 or -1 with err naming the folder. */
int avs_fs_mkdirs(const char *path, struct avs_err *err);
/* mkdir -p of the folder that holds `path`. */
int avs_fs_mkdirs_parent(const char *path, struct avs_err *err);
/* "<dir>/.<base>.tmp.<pid>" for `path`; free with free(). */
char *avs_fs_tmp_name(const char *path);
/* rename(tmp, final), with err naming both on failure. */
int avs_fs_commit(const char *tmp, const char *final, struct avs_err *err);
/* Remove `path` recursively if it exists (rm -rf). 0 or -1. */
int avs_fs_rm_rf(const char *path, struct avs_err *err);
/* Remove every file under `dir` whose name contains ".tmp." (stale temp files). Returns count. */
int avs_fs_sweep_tmp(const char *dir);
/* 1 if a regular file or folder exists at path. */
int avs_fs_exists(const char *path);
int avs_fs_is_dir(const char *path);
/* 1 if path names a regular file (following links): not a folder, FIFO or device. */
int avs_fs_is_file(const char *path);
/* Size and modification time in nanoseconds. 0 or -1 with err. */
int avs_fs_stat(const char *path, int64_t *size, int64_t *mtime_ns, struct avs_err *err);
/* a "/" b, without doubling slashes; free with free(). */
char *avs_fs_join(const char *a, const char *b);
/* Absolute, symlink-resolved path; NULL with err if it does not exist. */
char *avs_fs_realpath(const char *path, struct avs_err *err);
/* File name without folder and extension; free with free(). */
char *avs_fs_stem(const char *path);
/* Whole file into memory (NUL-terminated); 0 or -1 with err. */
int avs_fs_read_all(const char *path, char **data, size_t *len, struct avs_err *err);
/* Whole buffer to `path` through a temp file and rename. */
int avs_fs_write_atomic(const char *path, const void *data, size_t len, struct avs_err *err);
/* Whole buffer to `path` as it is named (created or truncated; callers pass a temp name);
 * on failure the file is removed. */
int avs_fs_write_file(const char *path, const void *data, size_t len, struct avs_err *err);

/* err = "<path>: disk full (No space left on device): free space ..., then run the same command
 * again" and the like (I/O error, read-only file system) for a write that failed with errno e.
 * Returns -1. */
int avs_fs_write_error(struct avs_err *err, const char *path, int e);

/* A file written piece by piece under its temp name (avs_fs_tmp_name) with write(2), renamed
 * into place by avs_fs_tmpfile_commit (after fsync when `durable`). A failed write or commit, or
 * avs_fs_tmpfile_abort, removes the temp file: the final name never shows a partial file.
 *
 *   struct avs_fs_tmpfile o;
 *   if (avs_fs_tmpfile_open(&o, path, &err) || avs_fs_tmpfile_write(&o, a, na, &err) ||
 *       avs_fs_tmpfile_write(&o, b, nb, &err) || avs_fs_tmpfile_commit(&o, 1, &err)) fail;
 */
struct avs_fs_tmpfile {
    int fd;     /* -1 once closed */
    char *tmp, *path;
};
int avs_fs_tmpfile_open(struct avs_fs_tmpfile *o, const char *path, struct avs_err *err);
int avs_fs_tmpfile_write(struct avs_fs_tmpfile *o, const void *data, size_t len,
                         struct avs_err *err);
int avs_fs_tmpfile_commit(struct avs_fs_tmpfile *o, int durable, struct avs_err *err);
void avs_fs_tmpfile_abort(struct avs_fs_tmpfile *o);

/* ---- Confinement: every path written inside a store (README "Names and confinement") ----
 * rel is a path relative to root ("frames/<uid>"), with no "." or ".." component and no leading
 * '/'. Its folders are opened one at a time with openat(O_DIRECTORY | O_NOFOLLOW) from the
 * root's fd (mkdirat when missing and create is set): a symbolic link anywhere below root is
 * refused with an error naming it and the fix, so no write can land outside root whatever
 * was planted in the store. The root itself may be a link (the user named it). Writers then
 * work inside the folder's fd: its temp file is created with O_EXCL | O_NOFOLLOW there and
 * renamed with renameat in it, so the folder cannot be swapped for a link between the check
 * and the write (no TOCTOU window). */

/* The folder root/rel opened (created when create): *dirfd (close it), 0; or -1 with err
 * (a missing folder without create is -1 with errno ENOENT). */
int avs_fs_open_under(const char *root, const char *rel, int create, int *dirfd,
                      struct avs_err *err);
/* "/proc/self/fd/<fd>": a path naming the folder open at fd, whatever happens to its name
 * later. Writers that take a path and make their own temp file (avs_fs_write_atomic, PNG
 * writers) write inside a confined folder through it: join it with the file name. */
void avs_fs_fd_path(int fd, char path[40]);
/* mkdir -p root/rel, confined as above. */
int avs_fs_mkdirs_under(const char *root, const char *rel, struct avs_err *err);
/* For writers that take a path: the folders of root/rel_file created and checked as above,
 * and rel_file itself, if present, not a link. 0 or -1 with err. The write that follows opens
 * by path, so a link planted in between is not caught: use avs_fs_out where the writer can
 * take a path to an open file. */
int avs_fs_check_under(const char *root, const char *rel_file, struct avs_err *err);
/* rm -rf root/rel without following any link (a link is removed, never its target); a missing
 * rel or folder on the way is not an error. */
int avs_fs_rm_rf_under(const char *root, const char *rel, struct avs_err *err);

/* One file written into a confined folder through a temp file:
 *
 *   struct avs_fs_out o;
 *   if (avs_fs_out_open(&o, root, "runs/r1/x.png", &err)) ...;
 *   avs_png_write(o.path, img, 0, &err);   o.path: "/proc/self/fd/<fd>", the temp file itself
 *   avs_fs_out_commit(&o, &err);           renameat into place
 *   avs_fs_out_free(&o);                   the temp file removed unless committed
 */
struct avs_fs_out {
    int dir, own_dir; /* the confined folder's fd (closed by free when own_dir) */
    int fd;           /* the temp file, -1 once closed */
    char *name, *tmp; /* final and temp names inside dir */
    char *shown;      /* root/rel, for messages */
    char path[40];    /* "/proc/self/fd/<fd>" while fd is open */
};
int avs_fs_out_open(struct avs_fs_out *o, const char *root, const char *rel, struct avs_err *err);
/* The same in an already confined folder dir (borrowed), shown_dir naming it in messages. */
int avs_fs_out_open_at(struct avs_fs_out *o, int dir, const char *shown_dir, const char *name,
                       struct avs_err *err);
/* Close the temp file (kept for a later commit) / open it again, truncated (created again
 * when it was removed), to rewrite it. */
void avs_fs_out_close_file(struct avs_fs_out *o);
int avs_fs_out_reopen(struct avs_fs_out *o, struct avs_err *err);
/* Close the temp file and rename it into place. 0 or -1 with err naming the file. */
int avs_fs_out_commit(struct avs_fs_out *o, struct avs_err *err);
/* Remove the temp file if not committed, close, free; NULL-safe and twice-safe. */
void avs_fs_out_free(struct avs_fs_out *o);

/* An exclusive advisory lock on a file (flock), released on close or process death. The
 * holder writes "<pid> <program>" into the file, so a refused process can say who holds it. */
struct avs_fs_lock;
/* 0 locked; 1 held by another process (err names it); -1 error. */
int avs_fs_lock_try(const char *path, struct avs_fs_lock **lock, struct avs_err *err);
/* "avs-ingest (pid 123)" from a lock file, or "another process" when it names none; free(). */
char *avs_fs_lock_holder(const char *path);
void avs_fs_unlock(struct avs_fs_lock **lock);

/* A shared (readers) or exclusive (a writer) flock on the open file or folder fd, waited for
 * up to timeout_ms (polled every 1 ms): 0 held, or the file system takes no locks there
 * (ENOLCK, EOPNOTSUPP, EBADF on some NFS mounts: nothing can be done there but go on); 1 still
 * held by another process at the timeout (a warning, once, says when locks are missing).
 * Released by closing fd. */
int avs_fs_flock_wait(int fd, int exclusive, int timeout_ms);

#endif
