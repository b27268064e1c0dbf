/* features/merge.c: `avs-features merge` (DESIGN §8): one feature set computed in several
 * stores (cluster shards: each node ingests and computes its part into its own --root) copied
 * into the destination store's set of the same name.
 *
 * Per source store (its index ATTACHed to the destination's), per video of the source's set, in
 * uid order:
 *   the destination has no video with that uid, or one with other content
 *     (hash or seconds differ)                     -> failed, named on stderr, not merged;
 *   the destination's set already has its rows     -> unchanged (a merge run again does nothing);
 *   otherwise: its records (source file order) are read and appended to the destination's file,
 *     fsync'd, then its feature_entries rows (new offsets, the destination's video id, the same
 *     k, flipped, targets) commit in one transaction.
 * This is avs-features' own crash safety: a merge killed between the two steps leaves records no
 * row names at the file's end, and the next merge redoes that video; a record cut mid-write is
 * dropped when the file is reopened. Records are copied field by field through the cache API:
 * fp32 bit for bit, fp16 through float and back (exact for every finite half and inf).
 * The sets must agree: same configuration JSON, same cache version, same record layout; the
 * destination set is created from the first source's row when it does not exist.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "features/run.h"

struct src_set {
    int64_t id;
    char *path, *config;
    int version, random_init;
};

static void src_set_free(struct src_set *s)
{
    free(s->path), free(s->config);
    memset(s, 0, sizeof *s);
}

/* The set's row in schema `schema` ("main" or "src"); 1 if absent, -1 on error. */
static int set_row(sqlite3 *db, const char *schema, const char *name, struct src_set *s,
                   struct avs_err *err)
{
    sqlite3_stmt *st;
    char *sql = avs_sprintf("SELECT id, path, config, version, random_init FROM %s.feature_sets "
                            "WHERE name = ?1", schema);
    int rc = avs_db_prepare(db, sql, &st, err);
    free(sql);
    if (rc)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    rc = 1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->id = sqlite3_column_int64(st, 0);
        s->path = avs_strdup((const char *)sqlite3_column_text(st, 1));
        s->config = avs_strdup((const char *)sqlite3_column_text(st, 2));
        s->version = sqlite3_column_int(st, 3);
        s->random_init = sqlite3_column_int(st, 4);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

static int create_set(sqlite3 *db, const char *name, const char *rel, const struct src_set *s,
                      int64_t *id, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "INSERT INTO feature_sets (name, path, config, version, random_init) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, rel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, s->config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, s->version);
    sqlite3_bind_int(st, 5, s->random_init);
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = avs_err_set(err, "registering feature set %s: %s", name, sqlite3_errmsg(db));
    else
        *id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    return rc;
}

struct merge {
    sqlite3 *db;
    const char *set, *src_root;
    int64_t dst_set, src_set;
    struct avs_cache *src;              /* the source's set file, read */
    struct avs_cache_writer *dst;       /* the destination's, appended */
    float *buf[AVS_CACHE_MAXFIELDS];    /* one record, field by field */
    struct avs_features_merge_stats *stats;
};

struct entry { int k, flipped, has_t, has_tv, target, target_v; int64_t off; };

/* The source video's rows in file order. */
static int src_entries(struct merge *m, int64_t vid, struct entry **out, int *n, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(m->db, "SELECT k, flipped, offset, target, target_v FROM src.feature_entries "
                              "WHERE set_id = ?1 AND video_id = ?2 ORDER BY offset", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, m->src_set);
    sqlite3_bind_int64(st, 2, vid);
    int cap = 8;
    *out = avs_malloc((size_t)cap * sizeof **out);
    *n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap)
            *out = avs_realloc(*out, (size_t)(cap *= 2) * sizeof **out);
        struct entry *e = &(*out)[(*n)++];
        e->k = sqlite3_column_int(st, 0);
        e->flipped = sqlite3_column_int(st, 1);
        e->off = sqlite3_column_int64(st, 2);
        e->has_t = sqlite3_column_type(st, 3) != SQLITE_NULL;
        e->has_tv = sqlite3_column_type(st, 4) != SQLITE_NULL;
        e->target = sqlite3_column_int(st, 3);
        e->target_v = sqlite3_column_int(st, 4);
    }
    sqlite3_finalize(st);
    return 0;
}

static int insert_entries(struct merge *m, int64_t vid, const struct entry *e, int n,
                          struct avs_err *err)
{
    sqlite3_stmt *st;
    struct avs_err e2;
    if (avs_db_exec(m->db, "BEGIN IMMEDIATE", err))
        return -1;
    if (avs_db_prepare(m->db, "INSERT INTO main.feature_entries (set_id, video_id, k, flipped, "
                              "offset, target, target_v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, err)) {
        avs_db_exec(m->db, "ROLLBACK", &e2);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, m->dst_set);
        sqlite3_bind_int64(st, 2, vid);
        sqlite3_bind_int(st, 3, e[i].k);
        sqlite3_bind_int(st, 4, e[i].flipped);
        sqlite3_bind_int64(st, 5, e[i].off);
        if (e[i].has_t)
            sqlite3_bind_int(st, 6, e[i].target);
        else
            sqlite3_bind_null(st, 6);
        if (e[i].has_tv)
            sqlite3_bind_int(st, 7, e[i].target_v);
        else
            sqlite3_bind_null(st, 7);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = avs_db_error(m->db, err, "writing feature_entries");
    }
    sqlite3_finalize(st);
    if (rc || avs_db_exec(m->db, "COMMIT", err)) {
        avs_db_exec(m->db, "ROLLBACK", &e2);
        return -1;
    }
    return 0;
}

/* One source video (row of the listing in st). 0 merged or unchanged, 1 failed (logged), -1
 * fatal. */
static int merge_video(struct merge *m, sqlite3_stmt *row, struct avs_err *err)
{
    int64_t svid = sqlite3_column_int64(row, 0);
    const char *uid = (const char *)sqlite3_column_text(row, 1);
    int has_dst = sqlite3_column_type(row, 3) != SQLITE_NULL;
    int64_t dvid = sqlite3_column_int64(row, 3);
    int same = sqlite3_column_int(row, 4), have = sqlite3_column_int(row, 5);
    m->stats->videos++;
    if (!has_dst || !same) {
        avs_log_error("%s: video %s %s: merge the stores first (avs-ingest merge --root DEST %s)",
                      m->src_root, uid, !has_dst ? "is not in the destination store"
                                                 : "has other content in the destination store",
                      m->src_root);
        m->stats->failed++;
        return 1;
    }
    if (have > 0) {
        m->stats->unchanged++;
        return 0;
    }
    struct entry *e = NULL;
    int n = 0, rc = -1;
    if (src_entries(m, svid, &e, &n, err))
        return -1;
    for (int i = 0; i < n; i++) {
        for (int f = 0; f < m->src->n_fields; f++)
            if (avs_cache_read(m->src, e[i].off, f, m->buf[f], err)) {
                avs_err_wrap(err, "%s: video %s k %d", m->src_root, uid, e[i].k);
                goto out;
            }
        if (avs_cache_append(m->dst, (const float *const *)m->buf, &e[i].off, err))
            goto out;
    }
    if (avs_cache_sync(m->dst, err) || insert_entries(m, dvid, e, n, err))
        goto out;
    m->stats->merged++;
    m->stats->records += n;
    rc = 0;
out:
    free(e);
    return rc;
}

/* Open (or create) the destination set like the source's; checks they agree. */
static int open_sets(struct merge *m, const char *root, const struct src_set *s,
                     struct avs_err *err)
{
    struct src_set d = {0};
    int r = set_row(m->db, "main", m->set, &d, err);
    if (r < 0)
        return -1;
    int rc = -1;
    char *rel = avs_sprintf("features/%s.bin", m->set), *bin = NULL, *sbin = NULL;
    if (r == 0) {
        if (strcmp(d.config, s->config)) {
            avs_err_set(err, "feature set \"%s\" of %s has another configuration (%s) than the "
                        "destination's (%s): only a set computed with the same encoders and "
                        "options can be merged", m->set, m->src_root, s->config, d.config);
            goto out;
        }
        if (d.version != AVS_CACHE_VERSION) {
            avs_err_set(err, "feature set \"%s\" of the destination is cache version %d, need %d: "
                        "run avs-features --rebuild --set %s there first", m->set, d.version,
                        AVS_CACHE_VERSION, m->set);
            goto out;
        }
        m->dst_set = d.id;
        free(rel);
        rel = avs_strdup(d.path);
    } else if (create_set(m->db, m->set, rel, s, &m->dst_set, err))
        goto out;
    bin = avs_fs_join(root, rel);
    sbin = avs_fs_join(m->src_root, s->path);
    if (avs_cache_open(&m->src, sbin, err) || avs_fs_check_under(root, rel, err))
        goto out;
    if (avs_cache_open_append(&m->dst, bin, m->src->field, m->src->n_fields, m->src->dtype, err)) {
        avs_err_wrap(err, "the sets of %s and %s do not have the same record layout", sbin, bin);
        goto out;
    }
    for (int f = 0; f < m->src->n_fields; f++)
        m->buf[f] = avs_malloc(avs_cache_field_numel(&m->src->field[f]) * sizeof(float));
    rc = 0;
out:
    src_set_free(&d);
    free(rel), free(bin), free(sbin);
    return rc;
}

static void close_sets(struct merge *m)
{
    avs_cache_close(&m->src);
    avs_cache_close_writer(&m->dst);
    for (int f = 0; f < AVS_CACHE_MAXFIELDS; f++) {
        free(m->buf[f]);
        m->buf[f] = NULL;
    }
}

/* Every video of one source's set. */
static int merge_source(struct merge *m, const char *root, struct avs_err *err)
{
    struct src_set s = {0};
    sqlite3_stmt *st = NULL;
    int r = set_row(m->db, "src", m->set, &s, err), rc = -1;
    if (r)
        return r < 0 ? -1 : avs_err_set(err, "%s has no feature set \"%s\" (avs-features show "
                                         "--root %s lists its sets)", m->src_root, m->set, m->src_root);
    if (s.version != AVS_CACHE_VERSION) {
        avs_err_set(err, "feature set \"%s\" of %s is cache version %d, need %d: run avs-features "
                    "--rebuild --set %s --root %s first", m->set, m->src_root, s.version,
                    AVS_CACHE_VERSION, m->set, m->src_root);
        goto out;
    }
    m->src_set = s.id;
    if (open_sets(m, root, &s, err))
        goto out;
    /* per source video of the set: its uid, the destination video of that uid (if any), whether
     * it has the same content, and how many rows the destination set has for it */
    if (avs_db_prepare(m->db, "SELECT v.id, v.uid, v.n_seconds, d.id, d.hash IS v.hash AND "
                              "d.n_seconds = v.n_seconds AND d.status = 'ok', (SELECT count(*) FROM "
                              "main.feature_entries e WHERE e.set_id = ?2 AND e.video_id = d.id) "
                              "FROM src.videos v LEFT JOIN main.videos d ON d.uid = v.uid WHERE "
                              "EXISTS (SELECT 1 FROM src.feature_entries e WHERE e.set_id = ?1 AND "
                              "e.video_id = v.id) ORDER BY v.uid", &st, err))
        goto out;
    sqlite3_bind_int64(st, 1, m->src_set);
    sqlite3_bind_int64(st, 2, m->dst_set);
    rc = 0;
    while (rc >= 0 && sqlite3_step(st) == SQLITE_ROW)
        rc = merge_video(m, st, err);
    rc = rc < 0 ? -1 : 0;
out:
    sqlite3_finalize(st);
    close_sets(m);
    src_set_free(&s);
    return rc;
}

static int attach(sqlite3 *db, const char *path, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "ATTACH DATABASE ?1 AS src", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = avs_err_set(err, "cannot attach %s: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (rc == 0 && avs_db_scalar_int(db, "PRAGMA src.user_version", -1) != avs_db_schema_version()) {
        rc = avs_err_set(err, "%s has schema version %lld, need %d: open it once with this "
                         "version's avs-ingest to migrate it", path,
                         (long long)avs_db_scalar_int(db, "PRAGMA src.user_version", -1),
                         avs_db_schema_version());
        sqlite3_exec(db, "DETACH DATABASE src", NULL, NULL, NULL);
    }
    return rc;
}

int avs_features_merge(const char *root, const char *db_path, const char *set, char *const *srcs,
                       int nsrc, struct avs_features_merge_stats *stats, struct avs_err *err)
{
    double t0 = avs_now();
    memset(stats, 0, sizeof *stats);
    struct merge m = {.set = set, .stats = stats};
    struct avs_fs_lock *lock = NULL;
    char *dbp = db_path ? avs_strdup(db_path) : avs_db_path_for_root(root);
    char *lockp = avs_sprintf("%s/features/.%s.lock", root, set), *rp = NULL;
    int rc = -1;
    if (!avs_feat_set_name_ok(set)) {
        avs_err_set(err, "--set %s: use letters, digits, '-', '_' and '.' (at most 99)", set);
        goto out;
    }
    if (!avs_fs_exists(dbp)) {
        avs_err_set(err, "%s: no store index here: merge the shard stores first (avs-ingest merge "
                    "--root %s SHARD...)", dbp, root);
        goto out;
    }
    char *lockrel = avs_sprintf("features/.%s.lock", set);
    int bad = avs_db_open(dbp, &m.db, err) || avs_fs_check_under(root, lockrel, err);
    free(lockrel);
    if (bad)
        goto out;
    int lr = avs_fs_lock_try(lockp, &lock, err);
    if (lr) {
        if (lr > 0)
            avs_err_wrap(err, "feature set %s is being written by another avs-features", set);
        goto out;
    }
    rp = realpath(dbp, NULL);
    for (int i = 0; i < nsrc; i++) {
        char *sdb = avs_db_path_for_root(srcs[i]), *sp = realpath(sdb, NULL);
        int r = -1;
        m.src_root = srcs[i];
        if (!sp)
            avs_err_set(err, "%s: no index (avs.db) here: is it a store made by avs-ingest --root?",
                        srcs[i]);
        else if (rp && !strcmp(sp, rp))
            avs_err_set(err, "%s is the destination store itself", srcs[i]);
        else if (attach(m.db, sdb, err) == 0) {
            r = merge_source(&m, root, err);
            sqlite3_exec(m.db, "DETACH DATABASE src", NULL, NULL, NULL);
        }
        free(sdb), free(sp);
        if (r)
            goto out;
    }
    avs_feat_set_status(m.db, m.dst_set);
    rc = stats->failed ? 2 : 0;
out:
    stats->seconds = avs_now() - t0;
    avs_fs_unlock(&lock);
    avs_db_close(&m.db);
    free(dbp), free(lockp), free(rp);
    return rc;
}
