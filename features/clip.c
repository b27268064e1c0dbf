/* features/clip.c: a feature set's encoders (features/enc.c) run on one clip decoded in memory
 * (avs_feat_clip: features/features.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/run.h"
#include "ingest/decode.h"
#include "store/store.h"

/* ---- one clip ---------------------------------------------------------------------------- */

struct clip_ctx {
    int H, W, got, cap;
    uint8_t *rgb;              /* [cap,H,W,3] */
    struct avs_clip_feat *f;   /* outputs (compute phase) */
};

static int on_frame(void *ctx, int k, const struct avs_image *img)
{
    struct clip_ctx *c = ctx;
    /* k restarts at 1 when the decoder falls back to counting frames (ingest/decode.c) */
    AVS_ASSERT(img->w == c->W && img->h == c->H && img->c == 3 && k >= 1 && k <= c->got + 1);
    size_t fs = (size_t)c->H * c->W * 3;
    if (k > c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->rgb = avs_realloc(c->rgb, (size_t)c->cap * fs);
    }
    memcpy(c->rgb + (size_t)(k - 1) * fs, img->data, fs);
    c->got = k;
    return 0;
}

static int clip_frame(void *ctx, int k, int flip, float *dst, struct avs_err *err)
{
    (void)err;
    struct clip_ctx *c = ctx;
    AVS_ASSERT(k >= 1 && k <= c->got);
    avs_store_norm_u8(dst, c->rgb + (size_t)(k - 1) * c->H * c->W * 3, 3, c->H, c->W, flip);
    return 0;
}

static int clip_record(void *ctx, int i, const float *const *rec, int target, int target_v,
                       struct avs_err *err)
{
    (void)err;
    struct avs_clip_feat *f = ((struct clip_ctx *)ctx)->f;
    AVS_ASSERT(i >= 0 && i < f->n);
    /* record fields (features/run.h): logmel, audio_emb, audio_logits, stage1..4, vlogits,
     * gradcam1..4, gradcam_v1..4 */
    memcpy(f->audio_emb + (size_t)i * f->E, rec[1], (size_t)f->E * sizeof(float));
    for (int s = 0; s < 4; s++) {
        size_t m = (size_t)f->C[s] * f->Hs[s] * f->Ws[s];
        memcpy(f->stage[s] + i * m, rec[3 + s], m * sizeof(float));
        memcpy(f->gradcam[s] + (size_t)i * f->C[s], rec[8 + s], (size_t)f->C[s] * sizeof(float));
        memcpy(f->gradcam_v[s] + (size_t)i * f->C[s], rec[12 + s], (size_t)f->C[s] * sizeof(float));
    }
    f->target[i] = target, f->target_v[i] = target_v;
    return 0;
}

static void feat_alloc(struct avs_clip_feat *f, const struct avs_feat_enc *e, int n)
{
    f->n = n, f->H = e->H, f->W = e->W, f->E = e->E;
    f->audio_emb = avs_malloc((size_t)n * f->E * sizeof(float));
    for (int s = 0; s < 4; s++) {
        f->C[s] = avs_feat_vis_dim(&e->vis, s);
        f->Hs[s] = avs_feat_vis_side(&e->vis, e->H, s), f->Ws[s] = avs_feat_vis_side(&e->vis, e->W, s);
        f->stage[s] = avs_malloc((size_t)n * f->C[s] * f->Hs[s] * f->Ws[s] * sizeof(float));
        f->gradcam[s] = avs_malloc((size_t)n * f->C[s] * sizeof(float));
        f->gradcam_v[s] = avs_malloc((size_t)n * f->C[s] * sizeof(float));
    }
    f->target = avs_malloc((size_t)n * sizeof(int));
    f->target_v = avs_malloc((size_t)n * sizeof(int));
}

int avs_feat_clip(struct avs_feat_enc *e, const char *path, struct avs_clip_feat *out,
                  struct avs_err *err)
{
    AVS_ASSERT(e->have_vis && (e->have_vg || (e->have_pn && e->have_pmel)) && e->have_mel && e->S);
    struct avs_decode_opts o = {.out_w = e->W, .out_h = e->H, .frame_rule = AVS_FRAME_AVSBENCH};
    struct avs_decode_result res;
    memset(&res, 0, sizeof res);
    struct clip_ctx c = {.H = e->H, .W = e->W};
    struct avs_clip_feat f;
    memset(&f, 0, sizeof f);
    float *wave = NULL;
    int rc = -1;
    if (avs_decode_clip(path, &o, on_frame, &c, &res, err))
        goto out;
    int n = res.n_seconds;
    if (n < 1) {
        avs_err_set(err, "%s: %.3f s long: a clip needs at least 1 second (one frame and one "
                    "second of audio per second)", path, res.duration);
        goto out;
    }
    if (c.got != n) {
        avs_err_set(err, "%s: %d of its %d seconds have a frame (the decoder gave %d frames)", path,
                    c.got, n, res.frames_decoded);
        goto out;
    }
    wave = avs_malloc((size_t)n * AVS_LOGMEL_RATE * sizeof(float));
    /* exactly libsndfile's s16 -> float on the store's WAVs (scale 1/0x8000) */
    for (size_t i = 0; i < (size_t)n * AVS_LOGMEL_RATE; i++)
        wave[i] = (float)res.audio[i] * (1.0f / 32768.0f);
    feat_alloc(&f, e, n);
    c.f = &f;
    if (avs_feat_compute(e, e->policy, wave, n, 0, clip_frame, clip_record, &c, err)) {
        avs_err_wrap(err, "%s", path);
        goto out;
    }
    f.rgb = c.rgb, c.rgb = NULL;
    f.duration = res.duration, f.fps = res.fps, f.has_audio = res.has_audio;
    *out = f;
    memset(&f, 0, sizeof f);
    rc = 0;
out:
    avs_clip_feat_free(&f);
    avs_decode_result_free(&res);
    free(c.rgb);
    free(wave);
    return rc;
}

void avs_clip_feat_free(struct avs_clip_feat *f)
{
    if (!f)
        return;
    free(f->rgb), free(f->audio_emb), free(f->target), free(f->target_v);
    for (int s = 0; s < 4; s++)
        free(f->stage[s]), free(f->gradcam[s]), free(f->gradcam_v[s]);
    memset(f, 0, sizeof *f);
}
