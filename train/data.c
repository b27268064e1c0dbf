/* train/data.c: see data.h. */
#include "train/data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "backend/ops.h"
#include "eval/eval.h"
#include "store/store.h"

static int find_fields(struct avs_tset *t, struct avs_err *err)
{
    const struct avs_cache *c = t->cache;
    char nm[32];
    for (int s = 0; s < 4; s++) {
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        t->f_stage[s] = avs_cache_find(c, nm);
        snprintf(nm, sizeof nm, "gradcam%d", s + 1);
        t->f_gc[s] = avs_cache_find(c, nm);
        snprintf(nm, sizeof nm, "gradcam_v%d", s + 1);
        t->f_gcv[s] = avs_cache_find(c, nm);
        if (t->f_stage[s] < 0 || t->f_gc[s] < 0 || t->f_gcv[s] < 0)
            return avs_err_set(err, "%s: feature cache without %s: rebuild the set with avs-features",
                               c->path, nm);
        const struct avs_cache_field *f = &c->field[t->f_stage[s]];
        if (f->ndim != 3)
            return avs_err_set(err, "%s: field stage%d is not [C,H,W]", c->path, s + 1);
        t->C[s] = f->shape[0], t->Hs[s] = f->shape[1], t->Ws[s] = f->shape[2];
    }
    t->f_audio = avs_cache_find(c, "audio_emb");
    if (t->f_audio < 0)
        return avs_err_set(err, "%s: feature cache without audio_emb: rebuild the set", c->path);
    t->A = c->field[t->f_audio].shape[0];
    for (int s = 0; s < 3; s++)
        if (t->Hs[s] != 2 * t->Hs[s + 1] || t->Ws[s] != 2 * t->Ws[s + 1])
            return avs_err_set(err, "%s: stage maps %dx%d then %dx%d: the C3N decoder needs each "
                               "stage twice the next (frame sides a multiple of 32)", c->path,
                               t->Hs[s], t->Ws[s], t->Hs[s + 1], t->Ws[s + 1]);
    t->H = 4 * t->Hs[0], t->W = 4 * t->Ws[0];
    return 0;
}

static char *json_str(const char *json, const char *obj, const char *key)
{
    cJSON *j = cJSON_Parse(json);
    cJSON *o = obj ? cJSON_GetObjectItemCaseSensitive(j, obj) : j;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char *r = cJSON_IsString(v) ? avs_strdup(v->valuestring) : NULL;
    cJSON_Delete(j);
    return r;
}

int avs_tset_open_cache(struct avs_tset *t, sqlite3 *db, const char *root, const char *set,
                        struct avs_err *err)
{
    memset(t, 0, sizeof *t);
    sqlite3_stmt *st;
    int rc = -1;
    char *path = NULL;
    const char *sql = set ? "SELECT id, name, path, config, version, random_init, status FROM "
                            "feature_sets WHERE name = ?1"
                          : "SELECT id, name, path, config, version, random_init, status FROM "
                            "feature_sets WHERE status = 'complete' ORDER BY id";
    if (avs_db_prepare(db, sql, &st, err))
        return -1;
    if (set)
        sqlite3_bind_text(st, 1, set, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW) {
        avs_err_set(err, set ? "no feature set \"%s\" in the index: make it with avs-features "
                               "(list: sqlite3 avs.db 'SELECT name FROM feature_sets')"
                             : "no complete feature set in the index: run avs-features first%s",
                    set ? set : "");
        goto out;
    }
    t->T = AVS_T, t->K = 1;
    t->set_id = sqlite3_column_int64(st, 0);
    t->set_name = avs_strdup((const char *)sqlite3_column_text(st, 1));
    path = avs_strdup((const char *)sqlite3_column_text(st, 2));
    t->set_config = avs_strdup((const char *)sqlite3_column_text(st, 3));
    int version = sqlite3_column_int(st, 4);
    t->random_init = sqlite3_column_int(st, 5);
    t->visual = json_str(t->set_config, "visual", "name");
    if (!t->visual)
        t->visual = avs_strdup("?");
    if (!set && sqlite3_step(st) == SQLITE_ROW) {
        avs_err_set(err, "the index has several complete feature sets: choose one with --features NAME");
        goto out;
    }
    if (version != AVS_CACHE_VERSION) {
        avs_err_set(err, "feature set \"%s\" is cache version %d, this program reads version %d: "
                    "run avs-features --rebuild --set %s with the options that made it "
                    "(avs-features show --set %s prints them)", t->set_name, version,
                    AVS_CACHE_VERSION, t->set_name, t->set_name);
        goto out;
    }
    char *p = avs_fs_join(root, path);
    rc = avs_cache_open(&t->cache, p, err);
    free(p);
    if (rc == 0)
        rc = find_fields(t, err);
out:
    free(path);
    sqlite3_finalize(st);
    return rc;
}

void avs_tset_cfg(const struct avs_tset *t, int width, struct avs_c3n_cfg *cfg)
{
    avs_c3n_cfg_default(cfg, 224);
    for (int s = 0; s < 4; s++)
        cfg->C[s] = t->C[s], cfg->H[s] = t->Hs[s], cfg->W[s] = t->Ws[s];
    cfg->A = t->A;
    cfg->T = t->T;
    cfg->K = t->K;
    if (width > 0 && width != cfg->D) {
        cfg->D = width;
        cfg->Ci = width / 2 > 0 ? width / 2 : 1;
        cfg->O1 = width / 2 > 0 ? width / 2 : 1;
        cfg->O2 = cfg->O1 < 32 ? cfg->O1 : 32;
    }
}

int avs_tset_avss_classes(sqlite3 *db, int *K, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT count(*), coalesce(max(idx), -1) FROM classes WHERE dataset = 'avss'",
                       &st, err))
        return -1;
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *K = sqlite3_column_int(st, 0);
        if (*K && sqlite3_column_int(st, 1) != *K - 1)
            rc = avs_err_set(err, "the classes table (dataset avss) has %d rows but indices up to "
                             "%d: re-ingest the AVSS release", *K, sqlite3_column_int(st, 1));
        if (*K > 255)
            rc = avs_err_set(err, "%d AVSS classes: class-index masks hold at most 255", *K);
        if (!rc && *K < 2)
            rc = avs_err_set(err, "no AVSS class table in the store (classes, dataset 'avss'): "
                             "ingest the AVSBench-semantic release with avs-ingest --avsbench");
    }
    sqlite3_finalize(st);
    return rc;
}

void avs_tset_set_subset(struct avs_tset *t, const char *subset, int K)
{
    t->avss = !strcmp(subset, "avss");
    t->T = t->avss ? AVS_T_AVSS : AVS_T;
    t->K = t->avss ? K : 1;
}

/* Offsets and masks of video v; 1 if it has no complete features (skipped). */
static int fill_video(struct avs_tset *t, sqlite3 *db, const char *root, struct avs_tvideo *v,
                      enum avs_tset_loss loss, struct avs_err *err)
{
    sqlite3_stmt *st;
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < AVS_T_MAX; k++)
            v->off[f][k] = -1;
    if (avs_db_prepare(db, "SELECT k, flipped, offset FROM feature_entries WHERE set_id = ?1 AND "
                           "video_id = ?2 AND k <= ?3", &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, t->set_id);
    sqlite3_bind_int64(st, 2, v->id);
    sqlite3_bind_int(st, 3, t->T);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0), f = sqlite3_column_int(st, 1) != 0;
        if (k >= 1)
            v->off[f][k - 1] = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    /* S4/MS3: all T seconds; AVSS: seconds 1..n contiguous, the rest padded */
    v->n = 0;
    while (v->n < t->T && v->off[0][v->n] >= 0)
        v->n++;
    if (v->n < (t->avss ? 1 : t->T))
        return 1;
    v->has_flip = 1;
    for (int k = 0; k < v->n; k++)
        if (v->off[1][k] < 0)
            v->has_flip = 0;
    if (loss == AVS_TSET_LOSS_NONE)
        return 0;
    char *rel[AVS_T_MAX] = {0};
    struct avs_store_lock lk = AVS_STORE_UNLOCKED; /* one version of its masks (store/store.h) */
    int n = loss == AVS_TSET_LOSS_FIRST ? 1 : v->n, rc = avs_store_lock(&lk, db, root, v->id, err);
    if (rc == 0)
        rc = avs_store_masks(rel, db, v->id, n, err);
    for (int k = 0; k < n; k++) {
        if (rc == 0 && rel[k]) {
            v->mask_path[k] = avs_fs_join(root, rel[k]);
            rc = t->avss ? avs_store_class_mask_read(&v->mask[k], v->mask_path[k], t->H, t->W, t->K, err)
                         : avs_store_mask_read(&v->mask[k], v->mask_path[k], t->H, t->W, err);
        }
        free(rel[k]);
    }
    avs_store_unlock(&lk);
    return rc;
}

int avs_tset_videos(sqlite3 *db, const char *subset, const char *split, sqlite3_stmt **st,
                    struct avs_err *err)
{
    if (avs_db_prepare(db, "SELECT id, uid, category, n_seconds FROM videos WHERE status = 'ok' "
                           "AND subset = ?1 AND split = ?2 ORDER BY uid", st, err))
        return -1;
    sqlite3_bind_text(*st, 1, subset, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(*st, 2, split, -1, SQLITE_TRANSIENT);
    return 0;
}

/* Records committed after the cache was mapped (avs-features appending to the set while the
 * videos were listed) lie past the mapped end: map the file again, as it is now. */
static int cover_records(struct avs_tset *t, struct avs_err *err)
{
    int64_t end = 0;
    if (!t->cache)
        return 0;
    for (int i = 0; i < t->n; i++)
        for (int f = 0; f < 2; f++)
            for (int k = 0; k < AVS_T_MAX; k++)
                if (t->v[i].off[f][k] >= 0 && t->v[i].off[f][k] + (int64_t)t->cache->record_bytes > end)
                    end = t->v[i].off[f][k] + (int64_t)t->cache->record_bytes;
    return avs_cache_cover(&t->cache, end, err);
}

/* Every record the set's videos use, checked once now (checksum, NaN/Inf: features/cache.h),
 * so a damaged cache stops a run before its first step; later reads find them verified. */
static int verify_records(const struct avs_tset *t, struct avs_err *err)
{
    for (int i = 0; i < t->n; i++)
        for (int f = 0; f < 2; f++)
            for (int k = 0; k < t->T; k++)
                if (t->v[i].off[f][k] >= 0 && avs_cache_verify(t->cache, t->v[i].off[f][k], err))
                    return avs_err_wrap(err, "feature set \"%s\", video %s second %d%s",
                                        t->set_name, t->v[i].uid, k + 1, f ? " (flipped copy)" : "");
    return 0;
}

int avs_tset_load(struct avs_tset *t, sqlite3 *db, const char *root, const char *subset,
                  const char *split, enum avs_tset_loss loss, struct avs_err *err)
{
    sqlite3_stmt *st;
    int K = 1;
    if (!strcmp(subset, "avss") && avs_tset_avss_classes(db, &K, err))
        return -1;
    avs_tset_set_subset(t, subset, K);
    if (avs_tset_videos(db, subset, split, &st, err))
        return -1;
    int cap = 0, rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (!t->avss && sqlite3_column_int(st, 3) < AVS_T) {
            t->n_short++;
            continue;
        }
        if (t->n == cap) {
            cap = cap ? 2 * cap : 64;
            t->v = avs_realloc(t->v, (size_t)cap * sizeof *t->v);
        }
        struct avs_tvideo *v = &t->v[t->n++];
        memset(v, 0, sizeof *v);
        v->id = sqlite3_column_int64(st, 0);
        v->uid = avs_strdup((const char *)sqlite3_column_text(st, 1));
        const char *c = (const char *)sqlite3_column_text(st, 2);
        v->category = c ? avs_strdup(c) : NULL;
    }
    /* finalized before the videos are filled: an open statement keeps its read snapshot, and
     * a video's rows must be read after its lock is held, as they are now (store/store.h) */
    sqlite3_finalize(st);
    int kept = 0;
    for (int i = 0; i < t->n; i++) {
        struct avs_tvideo *v = &t->v[i];
        int r = rc ? -1 : fill_video(t, db, root, v, loss, err);
        if (r < 0 && rc == 0)
            rc = avs_err_wrap(err, "video %s", v->uid);
        if (r == 0) {
            t->v[kept++] = *v;
            continue;
        }
        t->n_nofeat += r == 1;
        free(v->uid), free(v->category);
        for (int k = 0; k < AVS_T_MAX; k++)
            free(v->mask[k]), free(v->mask_path[k]);
    }
    t->n = kept;
    if (rc == 0 && cover_records(t, err))
        rc = -1;
    return rc ? rc : verify_records(t, err);
}

void avs_tset_free(struct avs_tset *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->v[i].uid), free(t->v[i].category);
        for (int k = 0; k < AVS_T_MAX; k++)
            free(t->v[i].mask[k]), free(t->v[i].mask_path[k]);
    }
    free(t->v);
    avs_cache_close(&t->cache);
    free(t->set_name), free(t->set_config), free(t->visual);
    memset(t, 0, sizeof *t);
}

static size_t stage_numel(const struct avs_tset *t, int s)
{
    return (size_t)t->C[s] * t->Hs[s] * t->Ws[s];
}

void avs_tbatch_init(struct avs_tbatch *b, const struct avs_tset *t, int nb)
{
    memset(b, 0, sizeof *b);
    size_t B = (size_t)nb * t->T, HW = (size_t)t->H * t->W, total = 0, frame = HW;
    for (int s = 0; s < 4; s++) {
        total += avs_arena_round(B * stage_numel(t, s)) + avs_arena_round(B * t->C[s]);
        frame = stage_numel(t, s) > frame ? stage_numel(t, s) : frame;
    }
    total += avs_arena_round(B * t->A) + avs_arena_round(B * HW);
    frame = (size_t)t->A > frame ? (size_t)t->A : frame;
    avs_arena_init(&b->mem, total);
    for (int s = 0; s < 4; s++) {
        b->stage[s] = avs_arena_take(&b->mem, B * stage_numel(t, s));
        b->gc[s] = avs_arena_take(&b->mem, B * t->C[s]);
    }
    b->audio = avs_arena_take(&b->mem, B * t->A);
    b->mask = avs_arena_take(&b->mem, B * HW);
    b->frame_mask = avs_calloc(B, sizeof(int));
    b->staging = avs_malloc(frame * sizeof(float));
    b->nb = nb;
}

void avs_tbatch_free(struct avs_tbatch *b)
{
    avs_arena_free(&b->mem);
    free(b->frame_mask), free(b->staging);
    memset(b, 0, sizeof *b);
}

void avs_tbatch_put(struct avs_tbatch *b, const struct avs_tset *t, int j,
                    const float *const stage[4], const float *const gc[4], const float *audio)
{
    for (int s = 0; s < 4; s++) {
        if (stage && stage[s])
            avs_dev_upload(b->stage[s] + (size_t)j * stage_numel(t, s), stage[s], stage_numel(t, s));
        if (gc && gc[s])
            avs_dev_upload(b->gc[s] + (size_t)j * t->C[s], gc[s], (size_t)t->C[s]);
    }
    if (audio)
        avs_dev_upload(b->audio + (size_t)j * t->A, audio, (size_t)t->A);
}

void avs_tbatch_put_mask(struct avs_tbatch *b, const struct avs_tset *t, int j,
                         const uint8_t *mask, int flip)
{
    size_t HW = (size_t)t->H * t->W;
    b->frame_mask[j] = mask != NULL;
    avs_store_mask_place(b->staging, mask, t->H, t->W, flip);
    avs_dev_upload(b->mask + (size_t)j * HW, b->staging, HW);
}

/* One field of the record at off into the staging buffer, then into the batch. */
static int put_field(struct avs_tbatch *b, const struct avs_tset *t, int64_t off, int field,
                     float *dst, size_t n, struct avs_err *err)
{
    if (avs_cache_read(t->cache, off, field, b->staging, err))
        return -1;
    avs_dev_upload(dst, b->staging, n);
    return 0;
}

void avs_tbatch_put_zeros(struct avs_tbatch *b, const struct avs_tset *t, int j)
{
    const struct avs_ops *op = avs_ops();
    for (int s = 0; s < 4; s++) {
        op->zero(b->stage[s] + (size_t)j * stage_numel(t, s), stage_numel(t, s));
        op->zero(b->gc[s] + (size_t)j * t->C[s], (size_t)t->C[s]);
    }
    op->zero(b->audio + (size_t)j * t->A, (size_t)t->A);
    avs_tbatch_put_mask(b, t, j, NULL, 0);
}

int avs_tset_batch(const struct avs_tset *t, const int *idx, const int *flip,
                   struct avs_tbatch *b, int use_ccv, struct avs_err *err)
{
    for (int i = 0; i < b->nb; i++) {
        const struct avs_tvideo *v = &t->v[idx[i]];
        int f = flip && flip[i] && v->has_flip;
        for (int k = 0; k < t->T; k++) {
            size_t j = (size_t)i * t->T + k;
            int64_t off = v->off[f][k];
            int rc = 0;
            if (k >= v->n) { /* AVSS padding */
                avs_tbatch_put_zeros(b, t, (int)j);
                continue;
            }
            for (int s = 0; s < 4 && rc == 0; s++) {
                size_t ns = stage_numel(t, s);
                rc = put_field(b, t, off, t->f_stage[s], b->stage[s] + j * ns, ns, err) ||
                     put_field(b, t, off, use_ccv ? t->f_gcv[s] : t->f_gc[s],
                               b->gc[s] + j * t->C[s], (size_t)t->C[s], err);
            }
            if (rc || put_field(b, t, off, t->f_audio, b->audio + j * t->A, (size_t)t->A, err))
                return avs_err_wrap(err, "video %s second %d", v->uid, k + 1);
            avs_tbatch_put_mask(b, t, (int)j, v->mask[k], f);
        }
    }
    return 0;
}
