/* ingest/index.c: see index.h. All SQL through prepared statements. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/names.h"
#include "ingest/index.h"

static int text_eq(sqlite3_stmt *st, int col, const char *s)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    return v && s && !strcmp(v, s);
}

int avs_ingest_check(sqlite3 *db, const char *source, const char *hash_path, struct avs_signature *sig,
                    int retry_failed, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = AVS_INGEST_CHANGED;
    if (avs_db_prepare(db, "SELECT size, mtime_ns, hash, frame_rule, status FROM videos "
                           "WHERE source = ?1", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int same_opts = text_eq(st, 3, sig->options);
        int retry = retry_failed && text_eq(st, 4, "failed");
        int same_stat = sqlite3_column_int64(st, 0) == sig->size &&
                        sqlite3_column_int64(st, 1) == sig->mtime_ns;
        int failed = text_eq(st, 4, "failed");
        if (same_opts && !retry && same_stat) {
            rc = failed ? AVS_INGEST_STILL_FAILED : AVS_INGEST_UNCHANGED;
        } else if (same_opts && !retry && sqlite3_column_int64(st, 0) == sig->size) {
            if (!sig->hash[0] && hash_path && avs_hash_file(hash_path, sig->hash, err))
                rc = -1;
            else if (text_eq(st, 2, sig->hash))
                rc = failed ? AVS_INGEST_STILL_FAILED : AVS_INGEST_TOUCHED;
        }
    }
    sqlite3_finalize(st);
    if (rc == AVS_INGEST_TOUCHED) {
        if (avs_db_prepare(db, "UPDATE videos SET mtime_ns = ?1 WHERE source = ?2", &st, err))
            return -1;
        sqlite3_bind_int64(st, 1, sig->mtime_ns);
        sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = avs_db_error(db, err, source);
        sqlite3_finalize(st);
    }
    return rc;
}

/* ---- uids -------------------------------------------------------------------------------- */

struct strset {
    char **slots;
    size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int strset_has(const struct strset *s, const char *v)
{
    if (!s->cap)
        return 0;
    for (size_t i = str_hash(v) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->slots[i], v))
            return 1;
    return 0;
}

static void strset_add(struct strset *s, const char *v)
{
    if (2 * (s->n + 1) > s->cap) {
        struct strset bigger = {avs_calloc(s->cap ? 2 * s->cap : 256, sizeof(char *)),
                                s->cap ? 2 * s->cap : 256, 0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i])
                strset_add(&bigger, s->slots[i]);
        free(s->slots);
        *s = bigger;
    }
    size_t i = str_hash(v) & (s->cap - 1);
    while (s->slots[i])
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = (char *)v;
    s->n++;
}

/* uid stored for `source`, or NULL. */
static char *uid_of_source(sqlite3_stmt *by_source, const char *source)
{
    sqlite3_reset(by_source);
    sqlite3_bind_text(by_source, 1, source, -1, SQLITE_STATIC);
    if (sqlite3_step(by_source) == SQLITE_ROW)
        return avs_strdup((const char *)sqlite3_column_text(by_source, 0));
    return NULL;
}

static int uid_taken(sqlite3_stmt *by_uid, const struct strset *used, const char *uid, const char *source)
{
    if (strset_has(used, uid))
        return 1;
    sqlite3_reset(by_uid);
    sqlite3_bind_text(by_uid, 1, uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(by_uid, 2, source, -1, SQLITE_STATIC);
    return sqlite3_step(by_uid) == SQLITE_ROW;
}

/* The uid an older version gave a named item's source, to keep, or NULL. Before names were
 * mapped (core/names.h), a dataset's name itself was the uid, with no videos.name: such a row
 * keeps its uid while that is a valid name no other planned item maps to (a name holding '%'
 * would otherwise move to its %25 form, and its files with it, when re-decoded). */
static char *legacy_uid(sqlite3_stmt *st, const struct avs_ingest_item *it, const struct strset *named)
{
    const char *name = it->name ? it->name : it->uid;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, it->source, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 1) != SQLITE_NULL)
        return NULL;
    const char *old = (const char *)sqlite3_column_text(st, 0);
    if (!old || !strcmp(old, it->uid) || strcmp(old, name) || avs_name_problem(old) ||
        strset_has(named, old))
        return NULL;
    return avs_strdup(old);
}

/* Named items whose source an older version indexed under the name itself keep that uid
 * (st: uid, name of the row of a source). */
static void keep_legacy_uids(sqlite3_stmt *st, struct avs_ingest_plan *plan)
{
    struct strset named = {0};
    for (size_t i = 0; i < plan->n; i++)
        if (plan->items[i].uid && !plan->items[i].problem)
            strset_add(&named, plan->items[i].uid);
    char **keep = avs_calloc(plan->n + 1, sizeof *keep);
    for (size_t i = 0; i < plan->n; i++)
        if (plan->items[i].uid && !plan->items[i].problem)
            keep[i] = legacy_uid(st, &plan->items[i], &named);
    free(named.slots); /* it points into the items' uids: replace them only now */
    for (size_t i = 0; i < plan->n; i++) {
        if (!keep[i])
            continue;
        struct avs_ingest_item *it = &plan->items[i];
        free(it->uid), free(it->name);
        it->uid = keep[i];
        it->name = NULL; /* the uid is the name */
    }
    free(keep);
}

int avs_ingest_assign_uids(sqlite3 *db, struct avs_ingest_plan *plan, struct avs_err *err)
{
    sqlite3_stmt *by_source = NULL, *by_uid = NULL;
    struct strset used = {0};
    int rc = -1;
    if (avs_db_prepare(db, "SELECT uid, name FROM videos WHERE source = ?1", &by_source, err) ||
        avs_db_prepare(db, "SELECT 1 FROM videos WHERE uid = ?1 AND source <> ?2", &by_uid, err))
        goto out;
    keep_legacy_uids(by_source, plan);
    /* Named items first (AVSBench names are fixed), then sources known to the index. */
    for (size_t i = 0; i < plan->n; i++)
        if (plan->items[i].uid)
            strset_add(&used, plan->items[i].uid);
    for (size_t i = 0; i < plan->n; i++) {
        struct avs_ingest_item *it = &plan->items[i];
        if (!it->uid && (it->uid = uid_of_source(by_source, it->source)) &&
            avs_name_problem(it->uid)) /* an older version's uid that is no valid name */
            avs_freep(&it->uid);
        if (it->uid)
            strset_add(&used, it->uid);
    }
    for (size_t i = 0; i < plan->n; i++) {
        struct avs_ingest_item *it = &plan->items[i];
        if (it->uid)
            continue;
        char *stem = avs_fs_stem(it->source);
        int refused = avs_ingest_item_name(it, stem, it->source); /* the stem's safe form */
        char *base = it->uid, *cand = avs_strdup(base);
        for (int k = 2; !refused && uid_taken(by_uid, &used, cand, it->source); k++) {
            free(cand);
            cand = avs_sprintf("%s_%d", base, k);
        }
        free(base), free(stem);
        it->uid = cand;
        strset_add(&used, it->uid);
    }
    rc = 0;
out:
    sqlite3_finalize(by_source);
    sqlite3_finalize(by_uid);
    free(used.slots);
    return rc;
}

/* ---- commits ----------------------------------------------------------------------------- */

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct avs_err *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return avs_db_error(db, err, what);
    return 0;
}

static int delete_old(sqlite3 *db, const struct avs_ingest_item *it, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_prepare(db, "DELETE FROM videos WHERE source = ?1 OR uid = ?2", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, it->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, it->uid, -1, SQLITE_STATIC);
    int rc = step_done(db, st, "deleting the old rows", err);
    sqlite3_finalize(st);
    return rc;
}

static const char *INSERT_VIDEO =
    "INSERT INTO videos (uid, source, size, mtime_ns, hash, category, subset, split, duration, "
    "fps, src_width, src_height, width, height, video_codec, audio_codec, audio_rate, "
    "audio_channels, has_audio, n_seconds, decode_errors, status, error, frame_rule, avss_set, "
    "name, id) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
    "?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";

static void bind_item(sqlite3_stmt *st, const struct avs_ingest_item *it, const struct avs_signature *sig)
{
    sqlite3_bind_text(st, 1, it->uid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, it->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sig->size);
    sqlite3_bind_int64(st, 4, sig->mtime_ns);
    bind_opt_text(st, 5, sig->hash);
    bind_opt_text(st, 6, it->category);
    sqlite3_bind_text(st, 7, it->subset, -1, SQLITE_STATIC);
    bind_opt_text(st, 8, it->split);
    bind_opt_text(st, 24, sig->options);
    bind_opt_text(st, 25, it->avss_set);
    bind_opt_text(st, 26, it->name);
}

static void bind_rows(sqlite3_stmt *st, const struct avs_video_rows *r)
{
    sqlite3_bind_double(st, 9, r->duration);
    if (r->fps > 0)
        sqlite3_bind_double(st, 10, r->fps);
    sqlite3_bind_int(st, 11, r->src_w);
    sqlite3_bind_int(st, 12, r->src_h);
    sqlite3_bind_int(st, 13, r->width);
    sqlite3_bind_int(st, 14, r->height);
    bind_opt_text(st, 15, r->video_codec);
    bind_opt_text(st, 16, r->audio_codec);
    if (r->has_audio) {
        sqlite3_bind_int(st, 17, r->audio_rate);
        sqlite3_bind_int(st, 18, r->audio_channels);
    }
    sqlite3_bind_int(st, 19, r->has_audio);
    sqlite3_bind_int(st, 20, r->n_seconds);
    sqlite3_bind_int(st, 21, r->decode_errors);
    sqlite3_bind_text(st, 22, "ok", -1, SQLITE_STATIC);
}

/* Store paths of second k: frame, audio, mask, and (AVSS) the released frame and mask. */
static void second_paths(const char *uid, int k, int avss, char *p[5])
{
    p[0] = avs_sprintf("frames/%s/%d.png", uid, k);
    p[1] = avs_sprintf("audio/%s/%d.wav", uid, k);
    p[2] = avs_sprintf("masks/%s/%d.png", uid, k);
    p[3] = avss ? avs_sprintf("released/%s/frames/%d.jpg", uid, k) : NULL;
    p[4] = avss ? avs_sprintf("released/%s/masks/%d.png", uid, k) : NULL;
}

static int insert_second(sqlite3 *db, sqlite3_stmt *s, sqlite3_stmt *m, int64_t vid, int k,
                         const struct avs_video_rows *r, char *const p[5], struct avs_err *err)
{
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, vid);
    sqlite3_bind_int(s, 2, k);
    sqlite3_bind_text(s, 3, p[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, p[1], -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, r->flags[k - 1]);
    bind_opt_text(s, 6, p[3]);
    if (step_done(db, s, "inserting a second", err))
        return -1;
    if (!r->has_mask || !r->has_mask[k - 1])
        return 0;
    sqlite3_reset(m);
    sqlite3_bind_int64(m, 1, vid);
    sqlite3_bind_int(m, 2, k);
    sqlite3_bind_text(m, 3, p[2], -1, SQLITE_STATIC);
    sqlite3_bind_text(m, 4, r->avss ? "class" : "binary", -1, SQLITE_STATIC);
    sqlite3_bind_int64(m, 5, r->unknown ? r->unknown[k - 1] : 0);
    bind_opt_text(m, 6, p[4]);
    return step_done(db, m, "inserting a mask", err);
}

static int insert_seconds(sqlite3 *db, int64_t vid, const struct avs_ingest_item *it,
                          const struct avs_video_rows *r, struct avs_err *err)
{
    sqlite3_stmt *s = NULL, *m = NULL;
    int rc = -1;
    if (avs_db_prepare(db, "INSERT INTO seconds (video_id, k, frame, audio, flags, released) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s, err) ||
        avs_db_prepare(db, "INSERT INTO masks (video_id, k, path, kind, unknown_pixels, released) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &m, err))
        goto out;
    rc = 0;
    for (int k = 1; rc == 0 && k <= r->n_seconds; k++) {
        char *p[5];
        second_paths(it->uid, k, r->avss, p);
        rc = insert_second(db, s, m, vid, k, r, p, err);
        for (int i = 0; i < 5; i++)
            free(p[i]);
    }
out:
    sqlite3_finalize(s);
    sqlite3_finalize(m);
    return rc;
}

static int commit_video(sqlite3 *db, const struct avs_ingest_item *it, const struct avs_signature *sig,
                        const struct avs_video_rows *rows, const char *why, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_exec(db, "BEGIN IMMEDIATE", err))
        return -1;
    int64_t id = avs_db_new_video_id(db);
    int rc = delete_old(db, it, err);
    if (!rc)
        rc = avs_db_prepare(db, INSERT_VIDEO, &st, err);
    if (!rc) {
        bind_item(st, it, sig);
        sqlite3_bind_int64(st, 27, id);
        if (rows) {
            bind_rows(st, rows);
        } else {
            sqlite3_bind_int(st, 19, 0);
            sqlite3_bind_int(st, 20, 0);
            sqlite3_bind_int(st, 21, 0);
            sqlite3_bind_text(st, 22, "failed", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 23, why, -1, SQLITE_TRANSIENT);
        }
        rc = step_done(db, st, "inserting the video", err);
        sqlite3_finalize(st);
    }
    if (!rc && rows)
        rc = insert_seconds(db, sqlite3_last_insert_rowid(db), it, rows, err);
    if (!rc)
        rc = avs_db_exec(db, "COMMIT", err);
    if (rc)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int avs_ingest_commit_ok(sqlite3 *db, const struct avs_ingest_item *it, const struct avs_signature *sig,
                        const struct avs_video_rows *rows, struct avs_err *err)
{
    return commit_video(db, it, sig, rows, NULL, err);
}

int avs_ingest_commit_failed(sqlite3 *db, const struct avs_ingest_item *it,
                            const struct avs_signature *sig, const char *why, struct avs_err *err)
{
    return commit_video(db, it, sig, NULL, why, err);
}

/* 1 when the stored table of `dataset` is exactly names[0..n-1]. */
static int classes_same(sqlite3 *db, const char *dataset, char *const *names, int n)
{
    sqlite3_stmt *st = NULL;
    struct avs_err ignore;
    if (avs_db_prepare(db, "SELECT idx, name FROM classes WHERE dataset = ?1 ORDER BY idx", &st, &ignore))
        return 0;
    sqlite3_bind_text(st, 1, dataset, -1, SQLITE_STATIC);
    int i = 0, same = 1;
    for (; same && sqlite3_step(st) == SQLITE_ROW; i++)
        same = i < n && sqlite3_column_int(st, 0) == i && text_eq(st, 1, names[i]);
    sqlite3_finalize(st);
    return same && i == n;
}

int avs_ingest_commit_classes(sqlite3 *db, const char *dataset, char *const *names, int n,
                              struct avs_err *err)
{
    if (classes_same(db, dataset, names, n))
        return 0;
    sqlite3_stmt *del = NULL, *ins = NULL;
    int rc = avs_db_exec(db, "BEGIN IMMEDIATE", err);
    if (rc)
        return -1;
    rc = avs_db_prepare(db, "DELETE FROM classes WHERE dataset = ?1", &del, err);
    if (!rc) {
        sqlite3_bind_text(del, 1, dataset, -1, SQLITE_STATIC);
        rc = step_done(db, del, "replacing the class table", err);
    }
    if (!rc)
        rc = avs_db_prepare(db, "INSERT INTO classes (dataset, idx, name) VALUES (?1, ?2, ?3)", &ins, err);
    for (int i = 0; !rc && i < n; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, dataset, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 2, i);
        sqlite3_bind_text(ins, 3, names[i], -1, SQLITE_STATIC);
        rc = step_done(db, ins, "inserting a class", err);
    }
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    if (!rc)
        rc = avs_db_exec(db, "COMMIT", err);
    if (rc)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

void avs_ingest_drop_stale(const char *root, const char *rel, int n, const int *keep)
{
    int fd;
    if (avs_fs_open_under(root, rel, 0, &fd, NULL)) /* missing, or not confined: nothing to do */
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        int k = atoi(e->d_name);
        if (e->d_name[0] == '.' || (k >= 1 && k <= n && (!keep || keep[k - 1])))
            continue;
        unlinkat(fd, e->d_name, 0);
    }
    closedir(d);
}

void avs_ingest_sweep(const char *root)
{
    static const char *const kinds[4] = {"frames", "audio", "masks", "released"};
    for (int i = 0; i < 4; i++) {
        int fd; /* swept through the folder opened confined: a link out of the store is skipped */
        if (avs_fs_open_under(root, kinds[i], 0, &fd, NULL))
            continue;
        char pinned[40];
        avs_fs_fd_path(fd, pinned);
        int swept = avs_fs_sweep_tmp(pinned);
        close(fd);
        if (swept)
            avs_log_info("removed %d temp files left by an interrupted run in %s/%s", swept, root,
                         kinds[i]);
    }
}
