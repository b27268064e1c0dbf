/* ingest/merge.c: `avs-ingest merge`: combine stores made by shards (DESIGN §8).
 *
 * For each source store (attached to the destination index with SQLite ATTACH), each video (an
 * ok one read under its lock in the source store, as any reader reads it: store/store.h):
 *   unchanged (same uid, source, hash, options) -> skipped;
 *   same uid from another source               -> recorded as a conflict, not merged;
 *   otherwise: its files copied into the destination under temp names and renamed, then one
 *   transaction replaces the video's rows, then stale files of an older version are removed.
 * Crash safety is the same as ingest: a killed merge, run again, ends in the same store.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/names.h"
#include "ingest/ingest.h"
#include "ingest/index.h"
#include "store/store.h"

struct merge {
    const char *dest, *src;
    sqlite3 *db;
    sqlite3 *src_db; /* the source's index on a connection of its own, for its video locks */
    char *video_cols; /* "uid, source, ..." : every column of videos but id */
    struct avs_ingest_stats *stats;
};

/* Column names come from our own schema (PRAGMA table_info), never from data. */
static char *video_columns(sqlite3 *db, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db, "SELECT name FROM pragma_table_info('videos') WHERE name <> 'id' ORDER BY cid", &st, err))
        return NULL;
    char *cols = avs_strdup("");
    while (sqlite3_step(st) == SQLITE_ROW) {
        char *next = avs_sprintf("%s%s%s", cols, *cols ? ", " : "", (const char *)sqlite3_column_text(st, 0));
        free(cols);
        cols = next;
    }
    sqlite3_finalize(st);
    return cols;
}

/* Hard link src to a temp name in dest's folder of rel (opened confined: rel comes from the
 * source's index, core/fs.h), copy when linking is impossible, then rename. */
static int place_file(const char *src, const char *dest, const char *rel, struct avs_err *err)
{
    struct avs_fs_out o;
    if (avs_fs_out_open(&o, dest, rel, err))
        return -1;
    avs_fs_out_close_file(&o);
    int rc = 0;
    if (unlinkat(o.dir, o.tmp, 0) != 0 || linkat(AT_FDCWD, src, o.dir, o.tmp, 0) != 0) {
        char *data;
        size_t len;
        rc = avs_fs_read_all(src, &data, &len, err) || avs_fs_out_reopen(&o, err) ? -1 : 0;
        if (rc == 0) {
            FILE *f = fopen(o.path, "wb");
            rc = (!f || fwrite(data, 1, len, f) != len) ? -1 : 0;
            if ((f && fclose(f) != 0) || rc)
                rc = avs_err_set(err, "cannot write %s: %s", o.shown, strerror(errno));
            free(data);
        }
    }
    if (rc == 0)
        rc = avs_fs_out_commit(&o, err);
    avs_fs_out_free(&o);
    return rc;
}

/* Every file of source video `vid`: seconds' frame and audio, masks, and (AVSS) the released
 * frames and masks. *placed: how many are in place (renamed), also on failure. */
static int place_files(struct merge *m, int64_t vid, int *placed, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(m->db, "SELECT frame FROM src.seconds WHERE video_id = ?1 AND frame IS NOT NULL "
                              "UNION ALL SELECT audio FROM src.seconds WHERE video_id = ?1 AND audio IS NOT NULL "
                              "UNION ALL SELECT path FROM src.masks WHERE video_id = ?1 "
                              "UNION ALL SELECT released FROM src.seconds WHERE video_id = ?1 AND released IS NOT NULL "
                              "UNION ALL SELECT released FROM src.masks WHERE video_id = ?1 AND released IS NOT NULL",
                       &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, vid);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *rel = (const char *)sqlite3_column_text(st, 0);
        char *from = avs_fs_join(m->src, rel);
        rc = place_file(from, m->dest, rel, err);
        *placed += rc == 0;
        free(from);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Prepare sql, bind ?1 = a (int) and ?2 = b (int), step to done. */
static int exec_ids(sqlite3 *db, const char *sql, int64_t a, int64_t b, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db, sql, &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : avs_db_error(db, err, NULL);
    sqlite3_finalize(st);
    return rc;
}

/* One transaction: the destination's old rows of this uid/source out, the source's rows in. */
static int copy_rows(struct merge *m, int64_t vid, struct avs_err *err)
{
    if (avs_db_exec(m->db, "BEGIN IMMEDIATE", err))
        return -1;
    char *ins = avs_sprintf("INSERT INTO main.videos (id, %s) SELECT ?2, %s FROM src.videos "
                            "WHERE id = ?1", m->video_cols, m->video_cols);
    int64_t id = avs_db_new_video_id(m->db); /* before the old row goes: never an old id */
    int rc = exec_ids(m->db, "DELETE FROM main.videos WHERE uid = (SELECT uid FROM src.videos WHERE id = ?1) "
                             "OR source = (SELECT source FROM src.videos WHERE id = ?1)", vid, 0, err);
    if (!rc)
        rc = exec_ids(m->db, ins, vid, id, err);
    int64_t nid = sqlite3_last_insert_rowid(m->db);
    if (!rc)
        rc = exec_ids(m->db, "INSERT INTO main.seconds (video_id, k, frame, audio, flags, released) "
                             "SELECT ?2, k, frame, audio, flags, released FROM src.seconds WHERE video_id = ?1",
                      vid, nid, err);
    if (!rc)
        rc = exec_ids(m->db, "INSERT INTO main.masks (video_id, k, path, kind, unknown_pixels, released) "
                             "SELECT ?2, k, path, kind, unknown_pixels, released FROM src.masks "
                             "WHERE video_id = ?1", vid, nid, err);
    if (!rc)
        rc = avs_db_exec(m->db, "COMMIT", err);
    if (rc)
        sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
    free(ins);
    return rc;
}

/* Stale files of an older version in the destination: k beyond n, masks the source lacks. */
static void drop_stale_merged(struct merge *m, int64_t vid, const char *uid, int n)
{
    int *keep = avs_calloc((size_t)n + 1, sizeof(int));
    sqlite3_stmt *st = NULL;
    struct avs_err ignore;
    if (avs_db_prepare(m->db, "SELECT k FROM src.masks WHERE video_id = ?1", &st, &ignore) == 0) {
        sqlite3_bind_int64(st, 1, vid);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int k = sqlite3_column_int(st, 0);
            if (k >= 1 && k <= n)
                keep[k - 1] = 1;
        }
        sqlite3_finalize(st);
    }
    /* frames, audio, masks, and the AVSS released copies (absent otherwise: no-ops) */
    static const char *const kinds[5] = {"frames/%s", "audio/%s", "masks/%s",
                                         "released/%s/frames", "released/%s/masks"};
    for (int i = 0; i < 5; i++) {
        char *rel = avs_sprintf(kinds[i], uid);
        avs_ingest_drop_stale(m->dest, rel, n, i == 2 || i == 4 ? keep : NULL);
        free(rel);
    }
    free(keep);
}

/* The source's class tables (AVSS): added where the destination has none; a table that
 * differs from the destination's is an error (shards of one tree share theirs). */
static int merge_classes(struct merge *m, struct avs_err *err)
{
    int64_t differ = avs_db_scalar_int(m->db, "SELECT count(*) FROM src.classes s WHERE EXISTS "
        "(SELECT 1 FROM main.classes d WHERE d.dataset = s.dataset) AND NOT EXISTS (SELECT 1 FROM "
        "main.classes d WHERE d.dataset = s.dataset AND d.idx = s.idx AND d.name = s.name)", -1);
    if (differ != 0)
        return avs_err_set(err, "%s: its class table (classes) differs from the one in %s: merge "
                                "only stores made from the same tree", m->src, m->dest);
    return avs_db_exec(m->db, "INSERT OR IGNORE INTO main.classes (dataset, idx, name) "
                              "SELECT dataset, idx, name FROM src.classes", err);
}

/* A source video's row, copied out of its statement so that no statement keeps a snapshot of
 * the source open while the video is merged (columns: ROW_COLS). */
#define ROW_COLS "id, uid, source, hash, frame_rule, status, n_seconds"
enum { C_ID, C_UID, C_SOURCE, C_HASH, C_FRAME_RULE, C_STATUS, C_SECONDS, N_COLS };
struct src_row {
    sqlite3_value *col[N_COLS];
};

static void src_row_free(struct src_row *v)
{
    for (int i = 0; i < N_COLS; i++)
        sqlite3_value_free(v->col[i]), v->col[i] = NULL;
}

/* The source's row with this id (key NULL) or uid (key). 0; 1 when there is none; -1 with err. */
static int read_row(struct merge *m, int64_t id, const char *key, struct src_row *v,
                    struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    src_row_free(v);
    if (avs_db_prepare(m->db, key ? "SELECT " ROW_COLS " FROM src.videos WHERE uid = ?1"
                                  : "SELECT " ROW_COLS " FROM src.videos WHERE id = ?1", &st, err))
        return -1;
    if (key)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st), rc = step == SQLITE_DONE ? 1 : 0;
    for (int i = 0; step == SQLITE_ROW && i < N_COLS; i++)
        v->col[i] = sqlite3_value_dup(sqlite3_column_value(st, i));
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = avs_db_error(m->db, err, "reading the source's videos");
    sqlite3_finalize(st);
    return rc;
}

static const char *row_uid(const struct src_row *v)
{
    const char *u = (const char *)sqlite3_value_text(v->col[C_UID]);
    return u ? u : "";
}

/* Why a uid value may not name a video here (not text, a NUL inside, or avs_name_problem), or
 * NULL. */
static const char *uid_problem(sqlite3_value *uid)
{
    const char *u = (const char *)sqlite3_value_text(uid);
    if (sqlite3_value_type(uid) != SQLITE_TEXT || !u)
        return "not text";
    if ((size_t)sqlite3_value_bytes(uid) != strlen(u))
        return "a NUL byte inside";
    return avs_name_problem(u);
}

static int row_ok(const struct src_row *v)
{
    const char *st = (const char *)sqlite3_value_text(v->col[C_STATUS]);
    return st && !strcmp(st, "ok");
}

enum { MERGED, SAME, CONFLICT };

/* Is source video (uid, source, hash, options) already in the destination, or in the way? */
static int compare_dest(struct merge *m, const struct src_row *v)
{
    sqlite3_stmt *st = NULL;
    struct avs_err ignore;
    int state = MERGED;
    if (avs_db_prepare(m->db, "SELECT source IS ?2, hash IS ?3 AND frame_rule IS ?4 AND status IS ?5 "
                              "FROM main.videos WHERE uid = ?1", &st, &ignore))
        return MERGED;
    for (int i = C_UID; i <= C_STATUS; i++)
        sqlite3_bind_value(st, i, v->col[i]);
    if (sqlite3_step(st) == SQLITE_ROW)
        state = !sqlite3_column_int(st, 0) ? CONFLICT : sqlite3_column_int(st, 1) ? SAME : MERGED;
    sqlite3_finalize(st);
    return state;
}

/* A video not merged, with the reason: counted as failed, the merge goes on. */
static int refuse(struct merge *m)
{
    m->stats->failed++;
    return 0;
}

/* Merges the source video of row v; l: its source lock (taken, torn, or none for a video that
 * has no ok row or no proper uid). */
static int merge_video(struct merge *m, const struct src_row *v, const struct avs_store_lock *l,
                       struct avs_err *err)
{
    int64_t vid = sqlite3_value_int64(v->col[C_ID]);
    const char *uid = row_uid(v), *bad = uid_problem(v->col[C_UID]);
    if (bad) {
        char *p = avs_name_printable(uid);
        avs_log_warn("merge: uid '%s' in %s refused: %s: re-ingest that store with this "
                     "version", p, m->src, bad);
        free(p);
        return refuse(m);
    }
    /* under the lock the mark was checked by taking it; without, a mark now refuses it too */
    if (l->torn || (l->fd < 0 && avs_store_marked(m->src, uid))) {
        avs_log_warn("merge: %s in %s: avs-ingest stopped while it replaced this video there: "
                     "run avs-ingest on that store again; not merged", uid, m->src);
        return refuse(m);
    }
    int state = compare_dest(m, v);
    if (state == SAME && avs_store_marked(m->dest, uid))
        state = MERGED; /* an earlier merge was killed while placing it: redo */
    if (state == SAME) {
        m->stats->unchanged++;
        return 0;
    }
    if (state == CONFLICT) {
        avs_log_warn("merge: %s from %s: uid already used for another source in %s: not merged",
                     uid, m->src, m->dest);
        return refuse(m);
    }
    struct avs_store_lock lk; /* readers of the destination see one version (store/store.h) */
    int placed = 0;
    if (avs_store_lock_writer(&lk, m->dest, uid, err) || avs_store_mark(&lk, err) ||
        place_files(m, vid, &placed, err) || copy_rows(m, vid, err)) {
        if (placed == 0) /* nothing renamed yet: rows and files still agree */
            avs_store_unmark(&lk);
        avs_store_unlock(&lk);
        return avs_err_wrap(err, "merging %s from %s", uid, m->src);
    }
    drop_stale_merged(m, vid, uid, sqlite3_value_int(v->col[C_SECONDS]));
    avs_store_unmark(&lk);
    avs_store_unlock(&lk);
    m->stats->ingested++;
    const char *status = (const char *)sqlite3_value_text(v->col[C_STATUS]);
    m->stats->failed += status && !strcmp(status, "failed");
    return 0;
}

/* Row id of the source's ok video uid, or -1 (failed there, or no longer there). */
static int64_t source_ok_id(struct merge *m, const char *uid)
{
    sqlite3_stmt *st = NULL;
    struct avs_err ignore;
    int64_t id = -1;
    if (avs_db_prepare(m->src_db, "SELECT id FROM videos WHERE uid = ?1 AND status = 'ok'", &st,
                       &ignore))
        return -1;
    sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}

/* The source's video uid locked as its readers lock it (store/store.h): an avs-ingest about to
 * replace it there waits until it is merged, one replacing it now is waited for. It stays
 * unlocked when the uid has no ok row (no files to read) or carries the mark of a stopped
 * avs-ingest (l->torn; merge_video refuses it). 0, or -1 with err. */
static int lock_source(struct merge *m, const char *uid, struct avs_store_lock *l,
                       struct avs_err *err)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        int64_t id = source_ok_id(m, uid);
        if (id < 0 || avs_store_lock(l, m->src_db, m->src, id, err) == 0 || l->torn)
            return 0;
        if (source_ok_id(m, uid) == id) /* not replaced meanwhile: the lock's own error */
            return -1;
    }
    return avs_err_set(err, "replaced there again and again while merge waited: run merge again "
                       "once avs-ingest on %s has finished", m->src);
}

/* One listed source video (id, and uid when it is a proper name, else NULL), merged from its
 * row as read under its source lock: an ok row is read only while that lock is held (the row
 * and the files it names are one version). A proper uid is followed by name, so a video
 * replaced since the listing (under a new id) is merged in its new version. */
static int merge_listed(struct merge *m, int64_t id, const char *uid, struct avs_err *err)
{
    struct src_row v = {0};
    struct avs_store_lock l = AVS_STORE_UNLOCKED;
    int rc = uid ? 0 : read_row(m, id, NULL, &v, err), attempt = 0;
    for (; uid && rc == 0 && attempt < 8; attempt++) {
        rc = lock_source(m, uid, &l, err);
        if (rc == 0)
            rc = read_row(m, 0, uid, &v, err);
        if (rc || l.fd >= 0 || l.torn || !row_ok(&v))
            break; /* else it became ok since lock_source looked: lock it */
    }
    if (rc == 0 && attempt == 8)
        rc = avs_err_set(err, "replaced there again and again while merge waited: run merge "
                         "again once avs-ingest on %s has finished", m->src);
    if (rc < 0 && uid)
        avs_err_wrap(err, "merging %s from %s", uid, m->src);
    if (rc == 0) {
        m->stats->total++;
        rc = merge_video(m, &v, &l, err);
    }
    avs_store_unlock(&l);
    src_row_free(&v);
    return rc < 0 ? -1 : 0; /* 1: removed there since the listing */
}

/* The source's videos in uid order, listed before any is merged: *n ids, and their uids where
 * they are proper names (else NULL: merge_video refuses them by their row). */
static int source_list(struct merge *m, int64_t **ids, char ***uids, int *n, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    int cap = 0, step;
    *ids = NULL, *uids = NULL, *n = 0;
    if (avs_db_prepare(m->db, "SELECT id, uid FROM src.videos ORDER BY uid, id", &st, err))
        return -1;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *ids = avs_realloc(*ids, (size_t)cap * sizeof **ids);
            *uids = avs_realloc(*uids, (size_t)cap * sizeof **uids);
        }
        sqlite3_value *u = sqlite3_column_value(st, 1);
        (*ids)[*n] = sqlite3_column_int64(st, 0);
        (*uids)[(*n)++] = uid_problem(u) ? NULL : avs_strdup((const char *)sqlite3_value_text(u));
    }
    int rc = step == SQLITE_DONE ? 0 : avs_db_error(m->db, err, "listing the source's videos");
    sqlite3_finalize(st);
    return rc;
}

static int merge_one(struct merge *m, const char *src_root, struct avs_err *err)
{
    char *src_db = avs_db_path_for_root(src_root);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    m->src = src_root;
    struct stat a, b;
    if (stat(src_root, &a) == 0 && stat(m->dest, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        avs_err_set(err, "%s is the destination store itself: give the stores to merge into it",
                    src_root);
        goto out;
    }
    if (!avs_fs_exists(src_db)) {
        avs_err_set(err, "%s: no index (avs.db) here: is it a store made by avs-ingest --root?", src_root);
        goto out;
    }
    if (avs_db_prepare(m->db, "ATTACH DATABASE ?1 AS src", &st, err))
        goto out;
    sqlite3_bind_text(st, 1, src_db, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        avs_err_set(err, "cannot attach %s: %s", src_db, sqlite3_errmsg(m->db));
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    int v = (int)avs_db_scalar_int(m->db, "PRAGMA src.user_version", -1);
    if (v != avs_db_schema_version()) {
        avs_err_set(err, "%s has schema version %d, need %d: open it once with this avs-ingest "
                         "(avs-ingest --root %s) to migrate it", src_db, v, avs_db_schema_version(), src_root);
        goto detach;
    }
    if (merge_classes(m, err) || avs_db_open_readonly(src_db, &m->src_db, err))
        goto detach;
    int n = 0;
    int64_t *ids;
    char **uids;
    rc = source_list(m, &ids, &uids, &n, err);
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = merge_listed(m, ids[i], uids[i], err);
        free(uids[i]);
    }
    free(ids), free(uids);
detach:
    avs_db_close(&m->src_db);
    sqlite3_exec(m->db, "DETACH DATABASE src", NULL, NULL, NULL);
out:
    sqlite3_finalize(st);
    free(src_db);
    return rc;
}

int avs_ingest_merge(const char *root, const char *db_path, char *const *sources, int n,
                     struct avs_ingest_stats *stats, struct avs_err *err)
{
    struct merge m = {.dest = root, .stats = stats};
    struct avs_fs_lock *lock = NULL;
    memset(stats, 0, sizeof *stats);
    double t0 = avs_now();
    if (avs_fs_mkdirs(root, err))
        return -1;
    char *lockp = avs_fs_join(root, ".avs-ingest.lock");
    int rc = avs_fs_check_under(root, ".avs-ingest.lock", err) ? -1 : avs_fs_lock_try(lockp, &lock, err);
    free(lockp);
    if (rc == 1)
        avs_err_wrap(err, "store %s is busy (one avs-ingest at a time writes a store)", root);
    if (rc)
        return -1;
    avs_ingest_sweep(root);
    char *dbp = db_path ? avs_strdup(db_path) : avs_db_path_for_root(root);
    rc = avs_db_open(dbp, &m.db, err);
    free(dbp);
    if (rc == 0 && !(m.video_cols = video_columns(m.db, err)))
        rc = -1;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = merge_one(&m, sources[i], err);
    stats->seconds = avs_now() - t0;
    free(m.video_cols);
    avs_db_close(&m.db);
    avs_fs_unlock(&lock);
    return rc ? -1 : stats->failed ? 2 : 0;
}
