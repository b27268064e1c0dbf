/* core/db.h: the store's SQLite index (avs.db).
 *
 *   sqlite3 *db;
 *   if (avs_db_open("avsdata/avs.db", &db, &err)) { fail with err.msg }
 *   ... prepared statements only ...
 *   avs_db_close(&db);
 *
 * Opening creates the file if needed, sets WAL mode, foreign keys and a busy timeout, and
 * applies the migrations of sql/schema.sql (compiled in) up to AVS_DB_SCHEMA_VERSION.
 * A database newer than this program is refused with a message saying so.
 */
#ifndef AVS_CORE_DB_H
#define AVS_CORE_DB_H

#include <sqlite3.h>

#include "core/common.h"

/* How long a writer waits for another's write lock (SQLite's busy timeout), in ms. */
#define AVS_DB_BUSY_MS 30000

/* Highest migration number in sql/schema.sql (checked at open). */
int avs_db_schema_version(void);

int avs_db_open(const char *path, sqlite3 **db, struct avs_err *err);
/* Open an existing index read-only (no migrations; refuses an older schema with a hint). */
int avs_db_open_readonly(const char *path, sqlite3 **db, struct avs_err *err);
void avs_db_close(sqlite3 **db);
/* err = "<index>: <what>: <sqlite's message>", plus the fix when the disk is full or failed
 * (SQLITE_FULL, SQLITE_IOERR) or the store stayed locked (SQLITE_BUSY). Returns -1. */
int avs_db_error(sqlite3 *db, struct avs_err *err, const char *what);
/* Execute SQL without results; -1 with err holding sqlite's message (avs_db_error). */
int avs_db_exec(sqlite3 *db, const char *sql, struct avs_err *err);
/* Prepare, with err naming the statement on failure. */
int avs_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct avs_err *err);
/* The index path for a store root: root/avs.db; free with free(). */
char *avs_db_path_for_root(const char *root);
/* The id for a video row about to replace another (inside the writer's transaction, before
 * the old row is deleted): past every id in the table, so a replaced video's id is never
 * given again and a reader holding it learns that its version is gone (store/store.h). */
int64_t avs_db_new_video_id(sqlite3 *db);
/* Run SELECT returning one integer; returns `fallback` when there is no row. */
int64_t avs_db_scalar_int(sqlite3 *db, const char *sql, int64_t fallback);
/* A sessions row (sql/schema.sql): program computed into run_id or set_id (<= 0: none) on
 * backend `device` with `threads` threads, with this build's code version. */
int avs_db_record_session(sqlite3 *db, const char *program, int64_t run_id, int64_t set_id,
                          const char *device, int threads, struct avs_err *err);
/* The ranks of the session just recorded (avs_db_record_session on this connection): world
 * size, ranks per node, communication ("none", "mpi", "nccl"), every rank's device (avs-train,
 * avs-features, avs-predict). */
int avs_db_record_ranks(sqlite3 *db, int world, int per_node, const char *comm,
                        const char *devices, struct avs_err *err);

#endif
