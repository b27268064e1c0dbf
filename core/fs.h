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
 * into place by avs_fs_out_commit (after fsync when `durable`). A failed write or commit, or
 * avs_fs_out_abort, removes the temp file: the final name never shows a partial file.
 *
 *   struct avs_fs_out o;
 *   if (avs_fs_out_open(&o, path, &err) || avs_fs_out_write(&o, a, na, &err) ||
 *       avs_fs_out_write(&o, b, nb, &err) || avs_fs_out_commit(&o, 1, &err)) fail;
 */
struct avs_fs_out {
    int fd;     /* -1 once closed */
    char *tmp, *path;
};
int avs_fs_out_open(struct avs_fs_out *o, const char *path, struct avs_err *err);
int avs_fs_out_write(struct avs_fs_out *o, const void *data, size_t len, struct avs_err *err);
int avs_fs_out_commit(struct avs_fs_out *o, int durable, struct avs_err *err);
void avs_fs_out_abort(struct avs_fs_out *o);

/* An exclusive advisory lock on a file (flock), released on close or process death. The
 * holder writes "<pid> <program>" into the file, so a refused process can say who holds it. */
struct avs_fs_lock;
/* 0 locked; 1 held by another process (err names it); -1 error. */
int avs_fs_lock_try(const char *path, struct avs_fs_lock **lock, struct avs_err *err);
/* "avs-ingest (pid 123)" from a lock file, or "another process" when it names none; free(). */
char *avs_fs_lock_holder(const char *path);
void avs_fs_unlock(struct avs_fs_lock **lock);

#endif
