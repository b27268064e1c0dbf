/* store/video.c: a video's seconds from the index and its joined wave (store/store.h). */
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/wav.h"
#include "store/store.h"

static void paths_free(char **p, int n)
{
    for (int i = 0; p && i < n; i++)
        free(p[i]);
    free(p);
}

void avs_store_seconds_free(struct avs_store_seconds *s)
{
    if (!s)
        return;
    paths_free(s->frame, s->n);
    paths_free(s->audio, s->n);
    paths_free(s->mask, s->n);
    memset(s, 0, sizeof *s);
}

int avs_store_masks(char **rel, sqlite3 *db, int64_t video_id, int n, struct avs_err *err)
{
    for (int k = 0; k < n; k++)
        rel[k] = NULL;
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT k, path FROM masks WHERE video_id = ?1 AND k <= ?2 ORDER BY k",
                       &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, video_id);
    sqlite3_bind_int(st, 2, n);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        const char *p = (const char *)sqlite3_column_text(st, 1);
        if (k >= 1 && p && !rel[k - 1])
            rel[k - 1] = avs_strdup(p);
    }
    sqlite3_finalize(st);
    return 0;
}

int avs_store_seconds(struct avs_store_seconds *s, sqlite3 *db, int64_t video_id, int n,
                      struct avs_err *err)
{
    sqlite3_stmt *st;
    if (avs_db_prepare(db, "SELECT k, frame, audio FROM seconds WHERE video_id = ?1 ORDER BY k",
                       &st, err))
        return -1;
    sqlite3_bind_int64(st, 1, video_id);
    struct avs_store_seconds r = {n, avs_calloc((size_t)n, sizeof(char *)),
                                  avs_calloc((size_t)n, sizeof(char *)),
                                  avs_calloc((size_t)n, sizeof(char *))};
    int got = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k < 1 || k > n)
            continue;
        const char *fr = (const char *)sqlite3_column_text(st, 1);
        const char *au = (const char *)sqlite3_column_text(st, 2);
        r.frame[k - 1] = fr ? avs_strdup(fr) : NULL;
        r.audio[k - 1] = au ? avs_strdup(au) : NULL;
        got++;
    }
    sqlite3_finalize(st);
    if (got != n) {
        avs_store_seconds_free(&r);
        return avs_err_set(err, "the index has %d of its %d seconds: re-ingest the video", got, n);
    }
    if (avs_store_masks(r.mask, db, video_id, n, err)) {
        avs_store_seconds_free(&r);
        return -1;
    }
    *s = r;
    return 0;
}

int avs_store_wave(float *wave, const char *root, char *const *rel, int n, struct avs_err *err)
{
    memset(wave, 0, (size_t)n * AVS_STORE_RATE * sizeof(float));
    for (int k = 0; k < n; k++) {
        if (!rel[k])
            continue;
        char *p = avs_fs_join(root, rel[k]);
        float *s = NULL;
        int64_t ns = 0;
        int rate = 0;
        int rc = avs_wav_read_float(p, &s, &ns, &rate, err);
        if (rc == 0 && rate != AVS_STORE_RATE)
            rc = avs_err_set(err, "%s: %d Hz, the store's seconds are %d Hz: re-ingest the video",
                             p, rate, AVS_STORE_RATE);
        if (rc == 0)
            memcpy(wave + (size_t)k * AVS_STORE_RATE, s,
                   (size_t)(ns < AVS_STORE_RATE ? ns : AVS_STORE_RATE) * sizeof(float));
        free(s);
        free(p);
        if (rc)
            return -1;
    }
    return 0;
}
