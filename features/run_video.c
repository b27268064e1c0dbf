/* features/run_video.c: one video's records (features/run.h): inputs from the store
 * (store/store.h), encoders, C3IM, two Grad-CAM targets, cache append, index rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "model/c3im.h"
#include "features/run.h"
#include "store/store.h"

#define CHUNK 8 /* frames per encoder batch: bounds memory for long videos and big variants */

static void field(struct avs_cache_field *f, const char *name, int ndim, int a, int b, int c)
{
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->ndim = ndim;
    f->shape[0] = a, f->shape[1] = b, f->shape[2] = c;
}

void avs_feat_fields(struct avs_feat_enc *e)
{
    int n = 0;
    field(&e->fields[n++], "logmel", 2, AVS_LOGMEL_FRAMES, AVS_LOGMEL_MELS, 0);
    field(&e->fields[n++], "audio_emb", 1, e->E, 0, 0);
    field(&e->fields[n++], "audio_logits", 1, e->A, 0, 0);
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        field(&e->fields[n++], nm, 3, e->pvt.cfg.dims[s], avs_pvt_side(e->H, s), avs_pvt_side(e->W, s));
    }
    field(&e->fields[n++], "vlogits", 1, e->V, 0, 0);
    for (int s = 0; s < 8; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, s < 4 ? "gradcam%d" : "gradcam_v%d", s % 4 + 1);
        field(&e->fields[n++], nm, 1, e->pvt.cfg.dims[s % 4], 0, 0);
    }
    AVS_ASSERT(n == AVS_FEAT_NFIELDS);
    e->nf = n;
}

/* Per-chunk buffers of the visual side. */
struct vis {
    float *img;      /* [CHUNK,3,H,W] */
    float *img2;     /* [CHUNK,3,H,W] frames whose CC-V differs from CC */
    float *st[4];    /* [CHUNK,C_s,H_s,W_s] */
    float *st2[4];   /* scratch stage maps of the CC-V pass */
    float *lg, *lg2; /* [CHUNK,V] */
    float *al;       /* [CHUNK,A] audio logits of the chunk's frames */
    float *gc[4], *gv[4], *gv2[4]; /* [CHUNK,C_s] */
    int tg[CHUNK], tv[CHUNK], tv2[CHUNK];
};

static void vis_alloc(struct vis *v, const struct avs_feat_enc *e)
{
    size_t img = (size_t)CHUNK * 3 * e->H * e->W;
    v->img = avs_malloc(img * sizeof(float));
    v->img2 = avs_malloc(img * sizeof(float));
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)CHUNK * e->pvt.cfg.dims[s] * avs_pvt_side(e->H, s) * avs_pvt_side(e->W, s);
        v->st[s] = avs_malloc(n * sizeof(float));
        v->st2[s] = avs_malloc(n * sizeof(float));
        v->gc[s] = avs_malloc((size_t)CHUNK * e->pvt.cfg.dims[s] * sizeof(float));
        v->gv[s] = avs_malloc((size_t)CHUNK * e->pvt.cfg.dims[s] * sizeof(float));
        v->gv2[s] = avs_malloc((size_t)CHUNK * e->pvt.cfg.dims[s] * sizeof(float));
    }
    v->lg = avs_malloc((size_t)CHUNK * e->V * sizeof(float));
    v->lg2 = avs_malloc((size_t)CHUNK * e->V * sizeof(float));
    v->al = avs_malloc((size_t)CHUNK * e->A * sizeof(float));
}

static void vis_free(struct vis *v)
{
    free(v->img), free(v->img2), free(v->lg), free(v->lg2), free(v->al);
    for (int s = 0; s < 4; s++)
        free(v->st[s]), free(v->st2[s]), free(v->gc[s]), free(v->gv[s]), free(v->gv2[s]);
}

/* Frames [c] already in v->img: targets, Grad-CAM for CC on all, for CC-V where it differs. */
static void vis_chunk(struct vis *v, const struct avs_feat_enc *e, int c)
{
    const struct avs_pvt *m = &e->pvt;
    struct avs_pvt_kept *k = avs_pvt_fwd_kept(m, v->st, v->lg, v->img, c, e->H, e->W);
    avs_c3im(v->tg, v->tv, NULL, v->lg, v->al, e->S, c, e->V, e->A);
    avs_pvt_gradcam_kept(m, k, v->gc, v->tg);
    size_t img = (size_t)3 * e->H * e->W;
    int d = 0, at[CHUNK];
    for (int i = 0; i < c; i++)
        if (v->tv[i] != v->tg[i]) {
            memcpy(v->img2 + d * img, v->img + i * img, img * sizeof(float));
            v->tv2[d] = v->tv[i];
            at[d++] = i;
        }
    if (d)
        avs_pvt_gradcam(m, v->gv2, v->st2, v->lg2, v->img2, v->tv2, d, e->H, e->W);
    for (int s = 0; s < 4; s++) {
        size_t C = (size_t)m->cfg.dims[s];
        memcpy(v->gv[s], v->gc[s], (size_t)c * C * sizeof(float));
        for (int j = 0; j < d; j++)
            memcpy(v->gv[s] + at[j] * C, v->gv2[s] + j * C, C * sizeof(float));
    }
}

static int commit_rows(sqlite3 *db, int64_t set_id, int64_t video_id, int B, int n,
                       const int64_t *off, const int *tg, const int *tv, struct avs_err *err)
{
    sqlite3_stmt *st = NULL;
    if (avs_db_exec(db, "BEGIN IMMEDIATE", err))
        return -1;
    if (avs_db_prepare(db, "DELETE FROM feature_entries WHERE set_id = ?1 AND video_id = ?2", &st, err))
        goto fail;
    sqlite3_bind_int64(st, 1, set_id);
    sqlite3_bind_int64(st, 2, video_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto sqlfail;
    sqlite3_finalize(st);
    if (avs_db_prepare(db, "INSERT INTO feature_entries (set_id, video_id, k, flipped, offset, "
                           "target, target_v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &st, err))
        goto fail;
    for (int i = 0; i < B; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, set_id);
        sqlite3_bind_int64(st, 2, video_id);
        sqlite3_bind_int(st, 3, i % n + 1);
        sqlite3_bind_int(st, 4, i / n);
        sqlite3_bind_int64(st, 5, off[i]);
        sqlite3_bind_int(st, 6, tg[i]);
        sqlite3_bind_int(st, 7, tv[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sqlfail;
    }
    sqlite3_finalize(st);
    if (avs_db_exec(db, "COMMIT", err)) {
        struct avs_err e3;
        avs_db_exec(db, "ROLLBACK", &e3);
        return -1;
    }
    return 0;
sqlfail:
    avs_err_set(err, "writing feature_entries: %s", sqlite3_errmsg(db));
fail:
    sqlite3_finalize(st);
    struct avs_err e2;
    avs_db_exec(db, "ROLLBACK", &e2);
    return -1;
}

int avs_feat_compute(struct avs_feat_enc *e, enum avs_logmel_policy policy, const float *wave,
                     int n, int flip, avs_feat_frame_fn get_frame, avs_feat_record_fn put,
                     void *ctx, struct avs_err *err)
{
    int rc = 1, B = n * (flip ? 2 : 1);
    float *ex = avs_malloc((size_t)n * AVS_LOGMEL_EXAMPLE * sizeof(float));
    float *emb = avs_malloc((size_t)n * e->E * sizeof(float));
    float *alg = avs_malloc((size_t)n * e->A * sizeof(float));
    float *ws = NULL;
    struct vis v;
    memset(&v, 0, sizeof v);
    if (avs_logmel_examples(&e->mel, ex, n, wave, (int64_t)n * AVS_LOGMEL_RATE, policy, err))
        goto out;
    ws = avs_malloc(avs_vggish_ws(&e->vg, n) * sizeof(float));
    avs_vggish_fwd(&e->vg, emb, alg, ex, n, ws);
    vis_alloc(&v, e);
    size_t img = (size_t)3 * e->H * e->W;
    for (int i0 = 0; i0 < B; i0 += CHUNK) {
        int c = B - i0 < CHUNK ? B - i0 : CHUNK;
        for (int j = 0; j < c; j++) {
            int i = i0 + j, k = i % n;
            if (get_frame(ctx, k + 1, i >= n, v.img + j * img, err))
                goto out;
            memcpy(v.al + (size_t)j * e->A, alg + (size_t)k * e->A, (size_t)e->A * sizeof(float));
        }
        vis_chunk(&v, e, c);
        for (int j = 0; j < c; j++) {
            int i = i0 + j, k = i % n;
            const float *rec[AVS_FEAT_NFIELDS];
            int f = 0;
            rec[f++] = ex + (size_t)k * AVS_LOGMEL_EXAMPLE;
            rec[f++] = emb + (size_t)k * e->E;
            rec[f++] = alg + (size_t)k * e->A;
            for (int s = 0; s < 4; s++)
                rec[f++] = v.st[s] + j * avs_cache_field_numel(&e->fields[3 + s]);
            rec[f++] = v.lg + (size_t)j * e->V;
            for (int s = 0; s < 4; s++)
                rec[f++] = v.gc[s] + (size_t)j * e->pvt.cfg.dims[s];
            for (int s = 0; s < 4; s++)
                rec[f++] = v.gv[s] + (size_t)j * e->pvt.cfg.dims[s];
            if (put(ctx, i, rec, v.tg[j], v.tv[j], err)) {
                rc = -1;
                goto out;
            }
        }
    }
    rc = 0;
out:
    vis_free(&v);
    free(ex), free(emb), free(alg), free(ws);
    return rc;
}

/* avs_feat_video's inputs (store files) and output (cache records). */
struct store_io {
    const char *root;
    char **fr;
    struct avs_cache_writer *cw;
    int H, W;
    int64_t *off;
    int *tg, *tv;
};

static int store_frame(void *ctx, int k, int flip, float *dst, struct avs_err *err)
{
    struct store_io *io = ctx;
    return avs_store_frame(dst, io->root, io->fr[k - 1], io->H, io->W, flip, err) ? -1 : 0;
}

static int store_record(void *ctx, int i, const float *const *rec, int target, int target_v,
                        struct avs_err *err)
{
    struct store_io *io = ctx;
    io->tg[i] = target, io->tv[i] = target_v;
    return avs_cache_append(io->cw, rec, &io->off[i], err);
}

int avs_feat_video(struct avs_feat_enc *e, const struct avs_features_opts *o, sqlite3 *db,
                   struct avs_cache_writer *cw, int64_t set_id, int64_t video_id, int n,
                   struct avs_err *err)
{
    int rc = 1, B = n * (o->flip ? 2 : 1);
    struct avs_store_seconds sec = {0};
    float *wave = NULL;
    struct store_io io = {.root = o->root, .cw = cw, .H = e->H, .W = e->W};
    io.off = avs_malloc((size_t)B * sizeof *io.off);
    io.tg = avs_malloc((size_t)B * sizeof *io.tg), io.tv = avs_malloc((size_t)B * sizeof *io.tv);
    if (avs_store_seconds(&sec, db, video_id, n, err))
        goto out;
    io.fr = sec.frame;
    wave = avs_malloc((size_t)n * AVS_LOGMEL_RATE * sizeof(float));
    if (avs_store_wave(wave, o->root, sec.audio, n, err))
        goto out;
    rc = avs_feat_compute(e, o->policy, wave, n, o->flip, store_frame, store_record, &io, err);
    if (rc)
        goto out;
    if (avs_cache_sync(cw, err) || commit_rows(db, set_id, video_id, B, n, io.off, io.tg, io.tv, err)) {
        rc = -1;
        goto out;
    }
    rc = 0;
out:
    avs_store_seconds_free(&sec);
    free(wave), free(io.off), free(io.tg), free(io.tv);
    return rc;
}
