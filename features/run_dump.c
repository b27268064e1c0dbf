/* features/run_dump.c: looking at a feature set from outside (features/features.h): `avs-features
 * show` (the set's row) and `avs-features dump` (one record with its network inputs). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "features/run.h"
#include "store/store.h"

static int open_ro(const char *root, const char *db_path, sqlite3 **db, struct avs_err *err)
{
    char *p = db_path ? avs_strdup(db_path) : avs_db_path_for_root(root);
    int rc = avs_fs_exists(p) ? avs_db_open_readonly(p, db, err)
                              : avs_err_set(err, "%s: no store index here (give --root or --db)", p);
    free(p);
    return rc;
}

int avs_features_show(const char *root, const char *db_path, const char *set, struct avs_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (open_ro(root, db_path, &db, err) ||
        avs_db_prepare(db, "SELECT s.name, s.path, s.status, s.random_init, s.version, "
                           "(SELECT count(*) FROM feature_entries e WHERE e.set_id = s.id), "
                           "(SELECT count(DISTINCT video_id) FROM feature_entries e WHERE e.set_id = s.id), "
                           "s.config FROM feature_sets s WHERE ?1 IS NULL OR s.name = ?1 ORDER BY s.id",
                       &st, err))
        goto out;
    if (set)
        sqlite3_bind_text(st, 1, set, -1, SQLITE_TRANSIENT);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        printf("set=%s path=%s status=%s random_init=%d version=%d records=%lld videos=%lld\n"
               "config=%s\n",
               sqlite3_column_text(st, 0), sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
               sqlite3_column_int(st, 3), sqlite3_column_int(st, 4),
               (long long)sqlite3_column_int64(st, 5), (long long)sqlite3_column_int64(st, 6),
               sqlite3_column_text(st, 7));
        rows++;
    }
    if (!rows && set) {
        avs_err_set(err, "no feature set \"%s\" in the index (avs-features show lists them)", set);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    avs_db_close(&db);
    return rc;
}

struct entry { int64_t set_id, video_id, offset, target, target_v; int n; char *path, *config; };

static int find_entry(sqlite3 *db, const char *set, const char *uid, int k, int flipped,
                      struct entry *en, struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT s.id, v.id, e.offset, e.target, e.target_v, v.n_seconds, s.path, "
                           "s.config FROM feature_sets s JOIN feature_entries e ON e.set_id = s.id "
                           "JOIN videos v ON v.id = e.video_id WHERE s.name = ?1 AND v.uid = ?2 "
                           "AND e.k = ?3 AND e.flipped = ?4", &st, err))
        return -1;
    sqlite3_bind_text(st, 1, set, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, uid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, k);
    sqlite3_bind_int(st, 4, flipped);
    int rc = -1;
    if (sqlite3_step(st) != SQLITE_ROW)
        avs_err_set(err, "no record for set \"%s\", video \"%s\", second %d%s (avs-features show "
                    "lists the sets)", set, uid, k, flipped ? ", flipped" : "");
    else {
        en->set_id = sqlite3_column_int64(st, 0), en->video_id = sqlite3_column_int64(st, 1);
        en->offset = sqlite3_column_int64(st, 2), en->target = sqlite3_column_int64(st, 3);
        en->target_v = sqlite3_column_int64(st, 4), en->n = sqlite3_column_int(st, 5);
        en->path = avs_strdup((const char *)sqlite3_column_text(st, 6));
        en->config = avs_strdup((const char *)sqlite3_column_text(st, 7));
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int avs_features_dump(const char *root, const char *db_path, const char *set, const char *uid,
                      int k, int flipped, const char *out, struct avs_err *err)
{
    sqlite3 *db = NULL;
    struct entry en = {0};
    struct avs_cache *c = NULL;
    struct avs_st_writer *w = NULL;
    float *data[AVS_CACHE_MAXFIELDS] = {0}, *img = NULL, *wave = NULL;
    struct avs_store_seconds sec = {0};
    struct avs_store_lock lk = AVS_STORE_UNLOCKED;
    char *bin = NULL;
    cJSON *cfg = NULL;
    int rc = -1;
    if (open_ro(root, db_path, &db, err) || find_entry(db, set, uid, k, flipped, &en, err))
        goto out;
    bin = avs_fs_join(root, en.path);
    if (avs_cache_open(&c, bin, err))
        goto out;
    w = avs_st_writer_new();
    for (int f = 0; f < c->n_fields; f++) {
        data[f] = avs_malloc(avs_cache_field_numel(&c->field[f]) * sizeof(float));
        if (avs_cache_read(c, en.offset, f, data[f], err))
            goto out;
        avs_st_writer_add_f32(w, c->field[f].name, c->field[f].ndim, c->field[f].shape, data[f]);
    }
    cfg = cJSON_Parse(en.config);
    cJSON *sz = cfg ? cJSON_GetObjectItem(cfg, "image_size") : NULL;
    if (!cJSON_IsArray(sz) || cJSON_GetArraySize(sz) != 2) {
        avs_err_set(err, "feature set %s: config without image_size", set);
        goto out;
    }
    int H = cJSON_GetArrayItem(sz, 0)->valueint, W = cJSON_GetArrayItem(sz, 1)->valueint;
    if (avs_store_lock(&lk, db, root, en.video_id, err) ||
        avs_store_seconds(&sec, db, en.video_id, en.n, err))
        goto out;
    img = avs_malloc((size_t)3 * H * W * sizeof(float));
    wave = avs_malloc((size_t)en.n * AVS_STORE_RATE * sizeof(float));
    if (avs_store_frame(img, root, sec.frame[k - 1], H, W, flipped, err) ||
        avs_store_wave(wave, root, sec.audio, en.n, err))
        goto out;
    avs_store_unlock(&lk);
    int is[4] = {1, 3, H, W}, wsh[1] = {en.n * AVS_STORE_RATE};
    int64_t ts[1] = {1};
    avs_st_writer_add_f32(w, "image", 4, is, img);
    avs_st_writer_add_f32(w, "wave", 1, wsh, wave);
    avs_st_writer_add(w, "target", AVS_ST_I64, 1, ts, &en.target);
    avs_st_writer_add(w, "target_v", AVS_ST_I64, 1, ts, &en.target_v);
    rc = avs_st_writer_save(w, out, err);
out:
    avs_st_writer_free(&w);
    for (int f = 0; f < AVS_CACHE_MAXFIELDS; f++)
        free(data[f]);
    avs_store_seconds_free(&sec);
    avs_store_unlock(&lk);
    free(img), free(wave), free(bin), free(en.path), free(en.config);
    cJSON_Delete(cfg);
    avs_cache_close(&c);
    avs_db_close(&db);
    return rc;
}
