/* features/labelsim_db.c: S in the SQLite index (labelsim.h; table label_similarity of
 * sql/schema.sql: data = float32 little-endian, row-major). */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "features/labelsim.h"
#include "core/hash.h"

int avs_labelsim_store(sqlite3 *db, const char *vectors_path, const float *S, int rows, int cols,
                       int64_t *id, struct avs_err *err)
{
    char hex[33];
    if (avs_hash_file(vectors_path, hex, err))
        return -1;
    const char *base = strrchr(vectors_path, '/');
    base = base ? base + 1 : vectors_path;
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db,
                       "INSERT INTO label_similarity (vectors, vectors_hash, rows, cols, data) "
                       "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (vectors_hash) DO UPDATE SET "
                       "vectors = excluded.vectors, rows = excluded.rows, cols = excluded.cols, "
                       "data = excluded.data RETURNING id",
                       &st, err))
        return -1;
    size_t n = (size_t)rows * cols * sizeof(float); /* the host is little-endian (x86, arm64) */
    sqlite3_bind_text(st, 1, base, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, rows);
    sqlite3_bind_int(st, 4, cols);
    sqlite3_bind_blob64(st, 5, S, n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        avs_err_set(err, "storing the label similarity of %s: %s", vectors_path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    if (id)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

int avs_labelsim_load(sqlite3 *db, const char *hash, float **S, int *rows, int *cols,
                      struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = hash ? "SELECT rows, cols, data, vectors FROM label_similarity WHERE vectors_hash = ?1"
                           : "SELECT rows, cols, data, vectors FROM label_similarity ORDER BY id DESC LIMIT 1";
    if (avs_db_prepare(db, sql, &st, err))
        return -1;
    if (hash)
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    int rc = -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        avs_err_set(err, "no label similarity in the index%s%s: run `avs-model run labelsim "
                    "--vectors V --db DB` first", hash ? " for vector hash " : "", hash ? hash : "");
        goto out;
    }
    int r = sqlite3_column_int(st, 0), c = sqlite3_column_int(st, 1);
    const void *blob = sqlite3_column_blob(st, 2);
    size_t n = (size_t)sqlite3_column_bytes(st, 2);
    if (r < 1 || c < 1 || n != (size_t)r * c * sizeof(float) || !blob) {
        avs_err_set(err, "label similarity of %s in the index is damaged (%d x %d, %zu bytes)",
                    (const char *)sqlite3_column_text(st, 3), r, c, n);
        goto out;
    }
    *S = avs_malloc(n);
    memcpy(*S, blob, n);
    *rows = r, *cols = c;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}
