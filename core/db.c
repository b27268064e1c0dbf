/* core/db.c: opening the index and applying the migrations of sql/schema.sql. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/db.h"
#include "core/fs.h"

extern const char avs_schema_sql[]; /* sql/schema.sql, embedded by the build */

static const char *MARK = "-- migration ";

/* Find the block of migration `n`: sets start and len; 0 if found. */
static int find_migration(int n, const char **start, size_t *len)
{
    const char *p = avs_schema_sql;
    while ((p = strstr(p, MARK))) {
        if ((p == avs_schema_sql || p[-1] == '\n') && atoi(p + strlen(MARK)) == n) {
            const char *end = p + 1;
            while ((end = strstr(end, MARK)) && end[-1] != '\n')
                end++;
            *start = p;
            *len = end ? (size_t)(end - p) : strlen(p);
            return 0;
        }
        p++;
    }
    return -1;
}

int avs_db_schema_version(void)
{
    int v = 0;
    const char *s;
    size_t l;
    while (find_migration(v + 1, &s, &l) == 0)
        v++;
    return v;
}

/* The fix for an SQLite error: by its code, and by the system error under an I/O error
 * (SQLite reports a full disk met while making the WAL's shared-memory file, avs.db-shm, as
 * an I/O error: errno says ENOSPC). */
static const char *db_hint(int code, int sys_errno)
{
    if ((code & 0xff) == SQLITE_IOERR && (sys_errno == ENOSPC || sys_errno == EDQUOT))
        code = SQLITE_FULL;
    switch (code & 0xff) {
    case SQLITE_FULL:
        return ": disk full: free space on that file system, then run again: what was committed "
               "is kept";
    case SQLITE_IOERR:
        return ": I/O error writing the index: check the disk (dmesg, fsck), then run again: "
               "what was committed is kept";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ": the index stayed locked by another process for the whole busy timeout (30 s): "
               "run again when it is done";
    default:
        return "";
    }
}

int avs_db_error(sqlite3 *db, struct avs_err *err, const char *what)
{
    const char *file = sqlite3_db_filename(db, "main");
    return avs_err_set(err, "%s: %s%s%s%s", file && *file ? file : "index", what ? what : "",
                       what ? ": " : "", sqlite3_errmsg(db),
                       db_hint(sqlite3_extended_errcode(db), sqlite3_system_errno(db)));
}

int avs_db_exec(sqlite3 *db, const char *sql, struct avs_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        char what[64]; /* the first statement, for the message */
        size_t n = strcspn(sql, ";\n");
        snprintf(what, sizeof what, "%.*s%s", (int)(n > 40 ? 40 : n), sql, sql[n] ? " ..." : "");
        return avs_db_error(db, err, what);
    }
    return 0;
}

int avs_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct avs_err *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        char what[112];
        snprintf(what, sizeof what, "cannot prepare \"%.80s\"", sql);
        return avs_db_error(db, err, what);
    }
    return 0;
}

int64_t avs_db_scalar_int(sqlite3 *db, const char *sql, int64_t fallback)
{
    sqlite3_stmt *st = NULL;
    int64_t v = fallback;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

#define FK_BROKEN "SELECT count(*) FROM pragma_foreign_key_check"

/* The first table with a row that breaks a foreign key (static text; "?" when none). */
static const char *fk_first_table(sqlite3 *db)
{
    static char name[64];
    sqlite3_stmt *st = NULL;
    snprintf(name, sizeof name, "?");
    if (sqlite3_prepare_v2(db, "SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", -1, &st,
                           NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return name;
}

/* One block in one transaction. Foreign keys are off while it runs (SQLite's procedure for
 * rebuilding a table that others reference: with them on, dropping the old table would
 * cascade) and checked before the commit. */
static int apply_migration(sqlite3 *db, int n, int *warned, struct avs_err *err)
{
    const char *start;
    size_t len;
    AVS_ASSERT(find_migration(n, &start, &len) == 0);
    char *sql = avs_sprintf("%.*s", (int)len, start);
    char *end = avs_sprintf("PRAGMA user_version = %d; COMMIT;", n);
    int rc = avs_db_exec(db, "PRAGMA foreign_keys = OFF", err) || avs_db_exec(db, "BEGIN IMMEDIATE", err);
    /* rows that already broke a key (e.g. deleted with the sqlite3 shell, which does not
     * enforce them) are not the migration's doing: only new ones stop it */
    int64_t before = rc ? 0 : avs_db_scalar_int(db, FK_BROKEN, 0);
    rc = rc || avs_db_exec(db, sql, err);
    int64_t after = rc ? 0 : avs_db_scalar_int(db, FK_BROKEN, 0);
    if (!rc && after > before)
        rc = avs_err_set(err, "%lld rows of table %s and others break a foreign key after the "
                         "migration (%lld before it)", (long long)(after - before),
                         fk_first_table(db), (long long)before);
    else if (!rc && before > 0 && !(*warned)++)
        avs_log_warn("the index has %lld row(s) that break a foreign key (table %s; e.g. rows "
                     "deleted with the sqlite3 shell): kept as they were; list them with "
                     "sqlite3 INDEX 'PRAGMA foreign_key_check'", (long long)before,
                     fk_first_table(db));
    rc = rc || avs_db_exec(db, end, err);
    if (rc) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        avs_err_wrap(err, "applying schema migration %d", n);
    }
    if (avs_db_exec(db, "PRAGMA foreign_keys = ON", rc ? NULL : err))
        rc = -1;
    free(sql), free(end);
    return rc;
}

/* *v = the index's schema version; -1 with err when it cannot be read (a full disk: the WAL
 * index file cannot be made; I/O errors), which is not the same as version 0. */
static int schema_version(sqlite3 *db, int *v, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = (int)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : avs_db_error(db, err, "reading its schema version");
}

static int migrate(sqlite3 *db, const char *path, struct avs_err *err)
{
    int have = 0;
    if (schema_version(db, &have, err))
        return -1;
    int want = avs_db_schema_version();
    if (have > want)
        return avs_err_set(err, "%s has schema version %d but this program knows only %d: "
                                "use a newer avs build", path, have, want);
    int warned = 0;
    for (int n = have + 1; n <= want; n++) {
        /* Another process may have migrated meanwhile: re-read inside the loop. */
        if ((int)avs_db_scalar_int(db, "PRAGMA user_version", 0) >= n)
            continue;
        if (apply_migration(db, n, &warned, err))
            return -1;
    }
    return 0;
}

/* Whether the index's file (or its WAL or shared-memory file) is a symbolic link. */
static int index_is_link(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char *p = avs_sprintf("%s%s", path, suffix[i]);
        struct stat st;
        int link = lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
        free(p);
        if (link)
            return 1;
    }
    return 0;
}

static int open_common(const char *path, int flags, sqlite3 **out, struct avs_err *err)
{
    sqlite3 *db = NULL;
    if (index_is_link(path)) {
        char *real = realpath(path, NULL);
        avs_err_set(err, "index %s is a symbolic link (to %s): the index is never opened through "
                         "one, so that a link planted in a store cannot send its writes elsewhere; "
                         "give the real file with --db %s",
                    path, real ? real : "a missing file", real ? real : "PATH");
        free(real);
        return -1;
    }
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        avs_err_set(err, "cannot open index %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, AVS_DB_BUSY_MS);
    sqlite3_extended_result_codes(db, 1);
    if (avs_db_exec(db, "PRAGMA foreign_keys = ON", err)) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int avs_db_open(const char *path, sqlite3 **out, struct avs_err *err)
{
    sqlite3 *db = NULL;
    if (avs_fs_mkdirs_parent(path, err))
        return -1;
    if (open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err))
        return -1;
    if (avs_db_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", err) ||
        migrate(db, path, err)) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int avs_db_open_readonly(const char *path, sqlite3 **out, struct avs_err *err)
{
    sqlite3 *db = NULL;
    if (!avs_fs_exists(path))
        return avs_err_set(err, "no index at %s: run avs-ingest first, or give --root/--db", path);
    if (open_common(path, SQLITE_OPEN_READONLY, &db, err))
        return -1;
    int have = 0;
    if (schema_version(db, &have, err)) {
        sqlite3_close(db);
        return -1;
    }
    if (have != avs_db_schema_version()) {
        sqlite3_close(db);
        return avs_err_set(err, "%s has schema version %d, this program needs %d: open it once "
                                "read-write (e.g. avs-ingest --root DIR with no inputs) to migrate",
                           path, have, avs_db_schema_version());
    }
    *out = db;
    return 0;
}

void avs_db_close(sqlite3 **db)
{
    if (db && *db) {
        sqlite3_close(*db);
        *db = NULL;
    }
}

char *avs_db_path_for_root(const char *root) { return avs_fs_join(root, "avs.db"); }

int avs_db_record_session(sqlite3 *db, const char *program, int64_t run_id, int64_t set_id,
                          const char *device, int threads, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "INSERT INTO sessions (program, run_id, set_id, device, threads, "
                           "code_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st, err))
        return -1;
    char *ver = avs_sprintf("avs %s (%s)", AVS_VERSION, avs_code_rev());
    sqlite3_bind_text(st, 1, program, -1, SQLITE_TRANSIENT);
    if (run_id > 0)
        sqlite3_bind_int64(st, 2, run_id);
    if (set_id > 0)
        sqlite3_bind_int64(st, 3, set_id);
    sqlite3_bind_text(st, 4, device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, threads);
    sqlite3_bind_text(st, 6, ver, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, "recording the session");
    sqlite3_finalize(st);
    free(ver);
    return rc;
}

int avs_db_record_ranks(sqlite3 *db, int world, int per_node, const char *comm,
                         const char *devices, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "UPDATE sessions SET world_size = ?1, ranks_per_node = ?2, comm = ?3, "
                           "devices = ?4 WHERE id = last_insert_rowid()", &st, err))
        return -1;
    sqlite3_bind_int(st, 1, world);
    sqlite3_bind_int(st, 2, per_node);
    sqlite3_bind_text(st, 3, comm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, devices, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, "recording the ranks");
    sqlite3_finalize(st);
    return rc;
}

int64_t avs_db_new_video_id(sqlite3 *db)
{
    return avs_db_scalar_int(db, "SELECT coalesce(max(id), 0) + 1 FROM main.videos", 1);
}
