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
#define ACHUNK 8 /* seconds per PANNs CNN14 batch (its activations are ~26 MB per second) */

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
    field(&e->fields[n++], "logmel", 2, e->mel_T, AVS_LOGMEL_MELS, 0);
    field(&e->fields[n++], "audio_emb", 1, e->E, 0, 0);
    field(&e->fields[n++], "audio_logits", 1, e->A, 0, 0);
    for (int s = 0; s < 4; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, "stage%d", s + 1);
        field(&e->fields[n++], nm, 3, avs_feat_vis_dim(&e->vis, s), avs_feat_vis_side(&e->vis, e->H, s),
              avs_feat_vis_side(&e->vis, e->W, s));
    }
    field(&e->fields[n++], "vlogits", 1, e->V, 0, 0);
    for (int s = 0; s < 8; s++) {
        char nm[16];
        snprintf(nm, sizeof nm, s < 4 ? "gradcam%d" : "gradcam_v%d", s % 4 + 1);
        field(&e->fields[n++], nm, 1, avs_feat_vis_dim(&e->vis, s % 4), 0, 0);
    }
    AVS_ASSERT(n == AVS_FEAT_NFIELDS);
    e->nf = n;
}

/* ---- compute buffers (made at the first video, kept until avs_feat_enc_close) ----
 * Device memory for the encoders' inputs and outputs and the PVTv2 workspace; host copies of
 * what C3IM and the record callback read. */

/* Per-chunk buffers of the visual side. */
struct vis {
    struct avs_feat_vis_ws ws; /* GRADCAM workspace for CHUNK frames */
    struct avs_arena mem;  /* the device buffers below */
    float *img;      /* [CHUNK,3,H,W] device: the chunk's frames */
    float *img2;     /* [CHUNK,3,H,W] device: frames whose CC-V differs from CC */
    float *st[4];    /* [CHUNK,C_s,H_s,W_s] device */
    float *st2[4];   /* device: scratch stage maps of the CC-V pass */
    float *lg, *lg2; /* [CHUNK,V] device */
    float *gc[4], *gv2[4]; /* [CHUNK,C_s] device: CC weights, CC-V weights of the img2 frames */
    float *img_h;    /* [CHUNK,3,H,W] host: frames as get_frame makes them */
    float *st_h[4], *lg_h, *gc_h[4], *gv_h[4], *gv2_h[4]; /* host copies (records, C3IM) */
    float *al;       /* [CHUNK,A] host: audio logits of the chunk's frames */
    int tg[CHUNK], tv[CHUNK], tv2[CHUNK];
};

/* The audio side of one video, grown to the longest video seen. */
struct aud {
    int cap;                       /* seconds the buffers hold */
    struct avs_arena mem;          /* the device buffers below */
    float *ex;                     /* [cap,T,64] host: log-mel examples (T = e->mel_T) */
    float *ex_d, *emb_d, *alg_d;   /* device: examples, embeddings [cap,E], logits [cap,A] */
    float *ws;                     /* device: VGGish scratch for cap examples (CNN14: ACHUNK) */
    float *emb, *alg;              /* host copies */
};

struct avs_feat_bufs {
    struct vis v;
    struct aud a;
};

/* n floats of arena a; or, before a is made (no base yet), only their size added to *need:
 * the same carving code sizes the arena, then carves it */
static float *take(struct avs_arena *a, size_t *need, size_t n)
{
    *need += avs_arena_round(n);
    return a->base ? avs_arena_take(a, n) : NULL;
}

static void vis_carve(struct vis *v, const struct avs_feat_enc *e, size_t *need)
{
    struct avs_arena *a = &v->mem;
    size_t img = (size_t)CHUNK * 3 * e->H * e->W;
    v->img = take(a, need, img), v->img2 = take(a, need, img);
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)CHUNK * avs_feat_vis_dim(&e->vis, s) * avs_feat_vis_side(&e->vis, e->H, s) *
                   avs_feat_vis_side(&e->vis, e->W, s);
        size_t g = (size_t)CHUNK * avs_feat_vis_dim(&e->vis, s);
        v->st[s] = take(a, need, n), v->st2[s] = take(a, need, n);
        v->gc[s] = take(a, need, g), v->gv2[s] = take(a, need, g);
    }
    v->lg = take(a, need, (size_t)CHUNK * e->V), v->lg2 = take(a, need, (size_t)CHUNK * e->V);
}

static void vis_alloc(struct vis *v, const struct avs_feat_enc *e)
{
    size_t img = (size_t)CHUNK * 3 * e->H * e->W, need = 0;
    avs_feat_vis_ws_init(&v->ws, &e->vis, CHUNK, e->H, e->W);
    memset(&v->mem, 0, sizeof v->mem);
    vis_carve(v, e, &need);
    avs_arena_init_lazy(&v->mem, need); /* every buffer is written before it is read */
    vis_carve(v, e, &need);
    v->img_h = avs_malloc(img * sizeof(float));
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)CHUNK * avs_feat_vis_dim(&e->vis, s) * avs_feat_vis_side(&e->vis, e->H, s) *
                   avs_feat_vis_side(&e->vis, e->W, s);
        size_t g = (size_t)CHUNK * avs_feat_vis_dim(&e->vis, s) * sizeof(float);
        v->st_h[s] = avs_malloc(n * sizeof(float));
        v->gc_h[s] = avs_malloc(g), v->gv_h[s] = avs_malloc(g), v->gv2_h[s] = avs_malloc(g);
    }
    v->lg_h = avs_malloc((size_t)CHUNK * e->V * sizeof(float));
    v->al = avs_malloc((size_t)CHUNK * e->A * sizeof(float));
}

static void vis_free(struct vis *v)
{
    avs_feat_vis_ws_free(&v->ws);
    if (v->mem.base)
        avs_arena_free(&v->mem);
    free(v->img_h), free(v->lg_h), free(v->al);
    for (int s = 0; s < 4; s++)
        free(v->st_h[s]), free(v->gc_h[s]), free(v->gv_h[s]), free(v->gv2_h[s]);
}

static void aud_free(struct aud *a)
{
    if (a->mem.base)
        avs_arena_free(&a->mem);
    free(a->ex), free(a->emb), free(a->alg);
    memset(a, 0, sizeof *a);
}

static size_t example_floats(const struct avs_feat_enc *e)
{
    return (size_t)e->mel_T * AVS_LOGMEL_MELS;
}

static void aud_carve(struct aud *a, const struct avs_feat_enc *e, int n, size_t *need)
{
    struct avs_arena *m = &a->mem;
    a->ex_d = take(m, need, (size_t)n * example_floats(e));
    a->emb_d = take(m, need, (size_t)n * e->E);
    a->alg_d = take(m, need, (size_t)n * e->A);
    a->ws = take(m, need, e->panns ? avs_panns_ws(&e->pn, n < ACHUNK ? n : ACHUNK, e->mel_T)
                                   : avs_vggish_ws(&e->vg, n));
}

/* Room for n seconds (between videos: the passes themselves allocate nothing). */
static void aud_grow(struct aud *a, const struct avs_feat_enc *e, int n)
{
    if (n <= a->cap)
        return;
    aud_free(a);
    a->cap = n;
    a->ex = avs_malloc((size_t)n * example_floats(e) * sizeof(float));
    a->emb = avs_malloc((size_t)n * e->E * sizeof(float));
    a->alg = avs_malloc((size_t)n * e->A * sizeof(float));
    size_t need = 0;
    aud_carve(a, e, n, &need);
    avs_arena_init_lazy(&a->mem, need); /* every buffer is written before it is read */
    aud_carve(a, e, n, &need);
}

static struct avs_feat_bufs *bufs_of(struct avs_feat_enc *e)
{
    if (!e->bufs) {
        e->bufs = avs_calloc(1, sizeof *e->bufs);
        vis_alloc(&e->bufs->v, e);
    }
    return e->bufs;
}

void avs_feat_bufs_free(struct avs_feat_bufs **b)
{
    if (!*b)
        return;
    vis_free(&(*b)->v);
    aud_free(&(*b)->a);
    free(*b);
    *b = NULL;
}

/* Frames [c] already in v->img: targets, Grad-CAM for CC on all, for CC-V where it differs;
 * the host copies (st_h, lg_h, gc_h, gv_h) filled for the records. */
static void vis_chunk(struct vis *v, const struct avs_feat_enc *e, int c)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_feat_vis *m = &e->vis;
    avs_feat_vis_fwd_kept(m, &v->ws, v->st, v->lg, v->img, c);
    avs_dev_download(v->lg_h, v->lg, (size_t)c * e->V);
    avs_c3im(v->tg, v->tv, NULL, v->lg_h, v->al, e->S, c, e->V, e->A, e->alpha, e->beta);
    avs_feat_vis_gradcam_kept(m, &v->ws, v->gc, v->tg);
    size_t img = (size_t)3 * e->H * e->W;
    int d = 0, at[CHUNK];
    for (int i = 0; i < c; i++)
        if (v->tv[i] != v->tg[i]) {
            op->copy(v->img2 + d * img, v->img + i * img, img * sizeof(float));
            v->tv2[d] = v->tv[i];
            at[d++] = i;
        }
    if (d)
        avs_feat_vis_gradcam(m, &v->ws, v->gv2, v->st2, v->lg2, v->img2, v->tv2, d);
    for (int s = 0; s < 4; s++) {
        size_t C = (size_t)avs_feat_vis_dim(m, s);
        size_t n = C * avs_feat_vis_side(m, e->H, s) * avs_feat_vis_side(m, e->W, s);
        avs_dev_download(v->st_h[s], v->st[s], (size_t)c * n);
        avs_dev_download(v->gc_h[s], v->gc[s], (size_t)c * C);
        memcpy(v->gv_h[s], v->gc_h[s], (size_t)c * C * sizeof(float));
        if (!d)
            continue;
        avs_dev_download(v->gv2_h[s], v->gv2[s], (size_t)d * C);
        for (int j = 0; j < d; j++)
            memcpy(v->gv_h[s] + at[j] * C, v->gv2_h[s] + j * C, C * sizeof(float));
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
    avs_db_error(db, err, "writing feature_entries");
fail:
    sqlite3_finalize(st);
    struct avs_err e2;
    avs_db_exec(db, "ROLLBACK", &e2);
    return -1;
}

/* PANNs: each second's log-mel (host), CNN14 over batches of ACHUNK seconds. */
static void audio_panns(struct avs_feat_enc *e, struct aud *a, const float *wave, int n)
{
    size_t ex = example_floats(e);
    avs_panns_mel_seconds(&e->pmel, a->ex, wave, n);
    avs_dev_upload(a->ex_d, a->ex, (size_t)n * ex);
    for (int k = 0; k < n; k += ACHUNK) {
        int c = n - k < ACHUNK ? n - k : ACHUNK;
        avs_panns_fwd(&e->pn, a->emb_d + (size_t)k * e->E, a->alg_d + (size_t)k * e->A,
                      a->ex_d + (size_t)k * ex, c, e->mel_T, a->ws);
    }
}

/* The video's audio: log-mel examples (host), VGGish (or CNN14) on the backend; a->emb, a->alg
 * filled. */
static int audio_side(struct avs_feat_enc *e, struct aud *a, enum avs_logmel_policy policy,
                      const float *wave, int n, struct avs_err *err)
{
    aud_grow(a, e, n);
    if (e->panns)
        audio_panns(e, a, wave, n);
    else {
        if (avs_logmel_examples(&e->mel, a->ex, n, wave, (int64_t)n * AVS_LOGMEL_RATE, policy, err))
            return -1;
        avs_dev_upload(a->ex_d, a->ex, (size_t)n * AVS_LOGMEL_EXAMPLE);
        avs_vggish_fwd(&e->vg, a->emb_d, a->alg_d, a->ex_d, n, a->ws);
    }
    avs_dev_download(a->emb, a->emb_d, (size_t)n * e->E);
    avs_dev_download(a->alg, a->alg_d, (size_t)n * e->A);
    return 0;
}

int avs_feat_compute(struct avs_feat_enc *e, enum avs_logmel_policy policy, const float *wave,
                     int n, int flip, avs_feat_frame_fn get_frame, avs_feat_record_fn put,
                     void *ctx, struct avs_err *err)
{
    int B = n * (flip ? 2 : 1);
    struct avs_feat_bufs *bf = bufs_of(e);
    struct vis *v = &bf->v;
    struct aud *a = &bf->a;
    if (audio_side(e, a, policy, wave, n, err))
        return 1;
    size_t img = (size_t)3 * e->H * e->W;
    for (int i0 = 0; i0 < B; i0 += CHUNK) {
        int c = B - i0 < CHUNK ? B - i0 : CHUNK;
        for (int j = 0; j < c; j++) {
            int i = i0 + j, k = i % n;
            if (get_frame(ctx, k + 1, i >= n, v->img_h + j * img, err))
                return 1;
            memcpy(v->al + (size_t)j * e->A, a->alg + (size_t)k * e->A, (size_t)e->A * sizeof(float));
        }
        avs_dev_upload(v->img, v->img_h, (size_t)c * img);
        vis_chunk(v, e, c);
        for (int j = 0; j < c; j++) {
            int i = i0 + j, k = i % n;
            const float *rec[AVS_FEAT_NFIELDS];
            int f = 0;
            rec[f++] = a->ex + (size_t)k * example_floats(e);
            rec[f++] = a->emb + (size_t)k * e->E;
            rec[f++] = a->alg + (size_t)k * e->A;
            for (int s = 0; s < 4; s++)
                rec[f++] = v->st_h[s] + j * avs_cache_field_numel(&e->fields[3 + s]);
            rec[f++] = v->lg_h + (size_t)j * e->V;
            for (int s = 0; s < 4; s++)
                rec[f++] = v->gc_h[s] + (size_t)j * avs_feat_vis_dim(&e->vis, s);
            for (int s = 0; s < 4; s++)
                rec[f++] = v->gv_h[s] + (size_t)j * avs_feat_vis_dim(&e->vis, s);
            if (put(ctx, i, rec, v->tg[j], v->tv[j], err))
                return -1;
        }
    }
    return 0;
}

/* ---- one video of the store: made into a message (on any rank), taken into the set (rank 0)
 * A message: struct msg, then for status 0 int tg[B], tv[B] and B records of the fields' floats
 * back to back (the values avs_cache_append is given; fp16 rounding happens there, on rank
 * 0), or for status 1 the failure's text. */
struct msg {
    int32_t status; /* 0 computed, 1 this video failed */
    int32_t B;      /* records */
};

static size_t record_floats(const struct avs_feat_enc *e)
{
    size_t n = 0;
    for (int f = 0; f < e->nf; f++)
        n += avs_cache_field_numel(&e->fields[f]);
    return n;
}

/* avs_feat_video_make's inputs (the video's frames, read under its lock) and output (the
 * message's arrays). */
struct store_io {
    float *rgb; /* [n, 3, H, W] the frames as float RGB in [0, 1] */
    int H, W;
    int *tg, *tv;
    float *recs; /* [B, record_floats] */
    const struct avs_feat_enc *e;
};

/* Frame k's network input (mirrored when flip): avs_store_frame's to the bit (store/store.h). */
static int store_frame(void *ctx, int k, int flip, float *dst, struct avs_err *err)
{
    (void)err;
    struct store_io *io = ctx;
    avs_store_norm(dst, io->rgb + (size_t)(k - 1) * 3 * io->H * io->W, io->H, io->W, flip);
    return 0;
}

/* The video's frames (float RGB) and joined wave, read under its lock (store/store.h). */
static int read_video(struct store_io *io, float *wave, const char *root, sqlite3 *db,
                      int64_t video_id, int n, struct avs_err *err)
{
    struct avs_store_lock lk = AVS_STORE_UNLOCKED;
    struct avs_store_seconds sec = {0};
    size_t in = (size_t)3 * io->H * io->W;
    int rc = avs_store_lock(&lk, db, root, video_id, err);
    if (rc == 0)
        rc = avs_store_seconds(&sec, db, video_id, n, err);
    for (int k = 0; k < n && rc == 0; k++)
        rc = avs_store_frame_rgb(io->rgb + k * in, root, sec.frame[k], io->H, io->W, err);
    if (rc == 0)
        rc = avs_store_wave(wave, root, sec.audio, n, err);
    avs_store_seconds_free(&sec);
    avs_store_unlock(&lk);
    return rc;
}

static int store_record(void *ctx, int i, const float *const *rec, int target, int target_v,
                        struct avs_err *err)
{
    (void)err;
    struct store_io *io = ctx;
    io->tg[i] = target, io->tv[i] = target_v;
    float *dst = io->recs + (size_t)i * record_floats(io->e);
    for (int f = 0; f < io->e->nf; f++) {
        size_t k = avs_cache_field_numel(&io->e->fields[f]);
        memcpy(dst, rec[f], k * sizeof *dst);
        dst += k;
    }
    return 0;
}

static void *failed_msg(const char *why, size_t *bytes)
{
    size_t len = strlen(why) + 1;
    struct msg *m = avs_malloc(sizeof *m + len);
    m->status = 1, m->B = 0;
    memcpy(m + 1, why, len);
    *bytes = sizeof *m + len;
    return m;
}

void *avs_feat_video_make(struct avs_feat_enc *e, const struct avs_features_opts *o, sqlite3 *db,
                          int64_t video_id, int n, size_t *bytes)
{
    int B = n * (o->flip ? 2 : 1);
    size_t rf = record_floats(e);
    *bytes = sizeof(struct msg) + (size_t)B * (2 * sizeof(int32_t) + rf * sizeof(float));
    struct msg *m = avs_malloc(*bytes);
    m->status = 0, m->B = B;
    struct avs_err err = {0};
    struct store_io io = {.H = e->H, .W = e->W, .e = e};
    io.tg = (int *)(m + 1), io.tv = io.tg + B, io.recs = (float *)(io.tv + B);
    io.rgb = avs_malloc((size_t)n * 3 * e->H * e->W * sizeof(float));
    float *wave = avs_malloc((size_t)n * AVS_LOGMEL_RATE * sizeof(float));
    int rc = read_video(&io, wave, o->root, db, video_id, n, &err);
    if (rc == 0)
        rc = avs_feat_compute(e, o->policy, wave, n, o->flip, store_frame, store_record, &io, &err);
    free(io.rgb);
    free(wave);
    if (rc == 0)
        return m;
    free(m);
    return failed_msg(err.msg, bytes);
}

int avs_feat_video_take(const struct avs_feat_enc *e, sqlite3 *db, struct avs_cache_writer *cw,
                        int64_t set_id, int64_t video_id, int n, const void *buf, size_t bytes,
                        struct avs_err *err)
{
    const struct msg *m = buf;
    if (bytes < sizeof *m)
        return avs_err_set(err, "a message of %zu bytes: not a video's result", bytes);
    if (m->status) {
        avs_err_set(err, "%.*s", (int)(bytes - sizeof *m), (const char *)(m + 1));
        return 1;
    }
    int B = m->B, rc = 0;
    size_t rf = record_floats(e);
    if (B < n || bytes != sizeof *m + (size_t)B * (2 * sizeof(int32_t) + rf * sizeof(float)))
        return avs_err_set(err, "a message of %zu bytes for %d records: not this set's layout",
                           bytes, B);
    const int *tg = (const int *)(m + 1), *tv = tg + B;
    const float *recs = (const float *)(tv + B);
    int64_t *off = avs_malloc((size_t)B * sizeof *off);
    for (int i = 0; i < B && rc == 0; i++) {
        const float *rec[AVS_FEAT_NFIELDS], *p = recs + (size_t)i * rf;
        for (int f = 0; f < e->nf; f++) {
            rec[f] = p;
            p += avs_cache_field_numel(&e->fields[f]);
        }
        rc = avs_cache_append(cw, rec, &off[i], err);
    }
    if (rc == 0)
        rc = avs_cache_sync(cw, err) || commit_rows(db, set_id, video_id, B, n, off, tg, tv, err);
    free(off);
    return rc ? -1 : 0;
}
