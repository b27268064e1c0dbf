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

/* An exclusive advisory lock on a file (flock), released on close or process death. */
struct avs_fs_lock;
/* 0 locked; 1 held by another process (err says so); -1 error. */
int avs_fs_lock_try(const char *path, struct avs_fs_lock **lock, struct avs_err *err);
void avs_fs_unlock(struct avs_fs_lock **lock);

#endif
