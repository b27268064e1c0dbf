/* train/finetune.c: the trained backbone of `avs-train --mode finetune` (see finetune.h). */
#include "train/finetune.h"
#include "train/ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/safetensors.h"
#include "features/features.h"
#include "model/c3im.h"
#include "model/params.h"
#include "store/store.h"

struct avs_finetune {
    struct avs_feat_vis vis;       /* the backbone (features/vis.h: every encoder that trains) */
    struct avs_feat_vis_ws ws;     /* TRAIN workspace for cap frames */
    struct avs_tensor_set g, m, v; /* gradients, Adam moments (same table as the parameters) */
    char format[32];               /* checkpoint format "avs-<family>-finetune" */
    long adam_step;
    float *S;                      /* [V,A] host (C3IM) */
    float alpha, beta;             /* C3IM exponents: the set's */
    int V, A;
    int H, W;                      /* frame size */
    sqlite3 *db;                   /* borrowed */
    char *root;
    int cap, B;                    /* frames the buffers hold; frames of the last batch */
    /* host */
    float *img;                    /* [cap,3,H,W] network input of the last batch */
    float *vl, *al;                /* [cap,V] visual logits (downloaded), [cap,A] audio logits */
    int *tg, *tv;                  /* [cap] CC and CC-V classes */
    float *rgb;                    /* [3,H,W] one frame */
    /* device: one arena */
    struct avs_arena mem;
    float *img_d;                  /* [cap,3,H,W] img uploaded */
    float *vl_d;                   /* [cap,V] */
    float *bst[4], *bgc[4];        /* [cap,C_s,H_s,W_s], [cap,C_s] the batch's outputs */
    float *st[4];                  /* [cap,C_s,H_s,W_s] stage maps of the backward's forward */
};

/* ---- randomness: pure functions of (seed, video, k) ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float lo, float hi)
{
    float u = (float)(splitmix(s) >> 40) * (1.0f / 16777216.0f); /* [0,1), 24 bits */
    return lo + (hi - lo) * u;
}

void avs_jitter_params(struct avs_jitter *j, uint64_t seed, int video, int k)
{
    uint64_t s = seed ^ 0xc0101e17ULL;
    s = splitmix(&s) ^ (uint64_t)(uint32_t)video;
    s = splitmix(&s) ^ ((uint64_t)(uint32_t)k << 32);
    splitmix(&s);
    for (int i = 0; i < 4; i++)
        j->order[i] = i;
    for (int i = 3; i > 0; i--) { /* torch.randperm(4): a uniform permutation */
        int r = (int)(splitmix(&s) % (uint64_t)(i + 1)), t = j->order[i];
        j->order[i] = j->order[r], j->order[r] = t;
    }
    /* ColorJitter(0.4, 0.4, 0.4, 0.1): factors in [1-0.4, 1+0.4], hue in [-0.1, 0.1] */
    j->bright = uniform(&s, 0.6f, 1.4f);
    j->contrast = uniform(&s, 0.6f, 1.4f);
    j->sat = uniform(&s, 0.6f, 1.4f);
    j->hue = uniform(&s, -0.1f, 0.1f);
}

/* ---- colour jitter: torchvision.transforms.functional (tensor path, 0.14) ---- */

static float clamp01(float x)
{
    return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
}

/* _blend: (ratio * a + (1 - ratio) * b).clamp(0, 1); the Python scalars become float32. */
static float blend(float a, float b, float r, float r1)
{
    return clamp01(r * a + r1 * b);
}

/* rgb_to_grayscale: 0.2989 r + 0.587 g + 0.114 b */
static float gray(float r, float g, float b)
{
    return 0.2989f * r + 0.587f * g + 0.114f * b;
}

static void adjust_hue(float *img, size_t n, float hue)
{
    float *R = img, *G = img + n, *B = img + 2 * n;
    for (size_t i = 0; i < n; i++) {
        float r = R[i], g = G[i], b = B[i];
        /* _rgb2hsv */
        float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
        int eqc = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eqc ? 1.0f : maxc), crd = eqc ? 1.0f : cr;
        float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
        float h = (maxc == r ? bc - gc : 0.0f) + (maxc == g && maxc != r ? 2.0f + rc - bc : 0.0f) +
                  (maxc != g && maxc != r ? 4.0f + gc - rc : 0.0f);
        h = fmodf(h / 6.0f + 1.0f, 1.0f);
        /* h = (h + hue) % 1.0 (Python remainder: the sign of the divisor) */
        h = fmodf(h + hue, 1.0f);
        if (h < 0.0f)
            h += 1.0f;
        /* _hsv2rgb */
        float v = maxc, fi = floorf(h * 6.0f), f = h * 6.0f - fi;
        int k = ((int)fi % 6 + 6) % 6;
        float p = clamp01(v * (1.0f - s)), q = clamp01(v * (1.0f - s * f)),
              t = clamp01(v * (1.0f - s * (1.0f - f)));
        static const int sel[6][3] = {{0, 3, 1}, {2, 0, 1}, {1, 0, 3}, {1, 2, 0}, {3, 1, 0}, {0, 1, 2}};
        float vals[4] = {v, p, q, t}; /* 0 v, 1 p, 2 q, 3 t */
        R[i] = vals[sel[k][0]], G[i] = vals[sel[k][1]], B[i] = vals[sel[k][2]];
    }
}

void avs_jitter_apply(float *img, int H, int W, const struct avs_jitter *j)
{
    size_t n = (size_t)H * W;
    float *R = img, *G = img + n, *B = img + 2 * n;
    for (int o = 0; o < 4; o++) {
        int op = j->order[o];
        if (op < 0)
            continue;
        if (op == 0) {
            float r = j->bright, r1 = (float)(1.0 - (double)j->bright);
            for (size_t i = 0; i < 3 * n; i++)
                img[i] = blend(img[i], 0.0f, r, r1);
        } else if (op == 1) {
            double acc = 0;
            for (size_t i = 0; i < n; i++)
                acc += gray(R[i], G[i], B[i]);
            float mean = (float)(acc / (double)n);
            float r = j->contrast, r1 = (float)(1.0 - (double)j->contrast);
            for (size_t i = 0; i < 3 * n; i++)
                img[i] = blend(img[i], mean, r, r1);
        } else if (op == 2) {
            float r = j->sat, r1 = (float)(1.0 - (double)j->sat);
            for (size_t i = 0; i < n; i++) {
                float l = gray(R[i], G[i], B[i]);
                R[i] = blend(R[i], l, r, r1), G[i] = blend(G[i], l, r, r1);
                B[i] = blend(B[i], l, r, r1);
            }
        } else
            adjust_hue(img, n, j->hue);
    }
}

/* ---- open / close ---- */

static void bufs_free(struct avs_finetune *ft)
{
    avs_feat_vis_ws_free(&ft->ws);
    if (ft->mem.base)
        avs_arena_free(&ft->mem);
    free(ft->img), free(ft->vl), free(ft->al), free(ft->tg), free(ft->tv);
    ft->img = ft->vl = ft->al = NULL, ft->tg = ft->tv = NULL;
    ft->cap = 0;
}

/* Floats of one frame's stage-s map. */
static size_t stage_floats(const struct avs_finetune *ft, int s)
{
    const struct avs_feat_vis *v = &ft->vis;
    return (size_t)avs_feat_vis_dim(v, s) * avs_feat_vis_side(v, ft->H, s) *
           avs_feat_vis_side(v, ft->W, s);
}

/* n floats of ft->mem; before it is made (no base yet), only their size added to *need */
static float *take(struct avs_finetune *ft, size_t *need, size_t n)
{
    *need += avs_arena_round(n);
    return ft->mem.base ? avs_arena_take(&ft->mem, n) : NULL;
}

/* The device buffers of B frames (sized, then carved, by the same code). */
static void carve(struct avs_finetune *ft, int B, size_t *need)
{
    ft->img_d = take(ft, need, (size_t)B * 3 * ft->H * ft->W);
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)B * stage_floats(ft, s);
        ft->bst[s] = take(ft, need, n), ft->st[s] = take(ft, need, n);
        ft->bgc[s] = take(ft, need, (size_t)B * avs_feat_vis_dim(&ft->vis, s));
    }
    ft->vl_d = take(ft, need, (size_t)B * ft->V);
}

/* Buffers and the workspace for B frames (made again when a batch is larger: between batches,
 * so that the passes allocate nothing). */
static void grow(struct avs_finetune *ft, int B)
{
    if (B <= ft->cap)
        return;
    bufs_free(ft);
    size_t need = 0;
    avs_feat_vis_ws_init_train(&ft->ws, &ft->vis, B, ft->H, ft->W);
    carve(ft, B, &need);
    avs_arena_init_lazy(&ft->mem, need); /* every buffer is written before it is read */
    carve(ft, B, &need);
    ft->img = avs_malloc((size_t)B * 3 * ft->H * ft->W * sizeof(float));
    ft->vl = avs_malloc((size_t)B * ft->V * sizeof(float));
    ft->al = avs_malloc((size_t)B * ft->A * sizeof(float));
    ft->tg = avs_malloc((size_t)B * sizeof(int));
    ft->tv = avs_malloc((size_t)B * sizeof(int));
    ft->cap = B;
}

/* The encoder's stage shapes on t's frames equal the set's: 0, else -1 with err. */
static int check_stages(const struct avs_feat_vis *vis, const struct avs_tset *t, const char *set,
                        struct avs_err *err)
{
    for (int s = 0; s < 4; s++) {
        int C = avs_feat_vis_dim(vis, s), Hs = avs_feat_vis_side(vis, t->H, s),
            Ws = avs_feat_vis_side(vis, t->W, s);
        if (C != t->C[s] || Hs != t->Hs[s] || Ws != t->Ws[s])
            return avs_err_set(err, "feature set \"%s\": stage %d of the encoder is %dx%dx%d on "
                               "%dx%d frames, the cache has %dx%dx%d: the set's config and cache "
                               "disagree (rebuild the set)", set, s + 1, C, Hs, Ws, t->W, t->H,
                               t->C[s], t->Hs[s], t->Ws[s]);
    }
    return 0;
}

int avs_finetune_open_vis(struct avs_finetune **out, sqlite3 *db, const char *root,
                          const struct avs_tset *t, struct avs_feat_vis *vis, const float *S,
                          struct avs_err *err)
{
    const char *set = t->set_name ? t->set_name : "?";
    int fa = avs_cache_find(t->cache, "audio_logits");
    if (fa < 0)
        return avs_err_set(err, "feature set \"%s\": its cache has no audio_logits (needed for the "
                           "C3IM target every step): rebuild it with avs-features", set);
    if (avs_feat_vis_trainable(vis, t->visual, err))
        return avs_err_wrap(err, "feature set \"%s\"", set);
    if (vis->classes <= 0)
        return avs_err_set(err, "feature set \"%s\": the visual encoder has no ImageNet head (C3IM "
                           "needs its logits)", set);
    if (check_stages(vis, t, set, err))
        return -1;
    struct avs_finetune *ft = avs_calloc(1, sizeof *ft);
    ft->vis = *vis;
    memset(vis, 0, sizeof *vis);
    snprintf(ft->format, sizeof ft->format, "avs-%s-finetune", avs_feat_vis_family(&ft->vis));
    ft->V = ft->vis.classes;
    ft->A = t->cache->field[fa].shape[0];
    ft->S = avs_malloc((size_t)ft->V * ft->A * sizeof(float));
    memcpy(ft->S, S, (size_t)ft->V * ft->A * sizeof(float));
    ft->alpha = (float)AVS_C3IM_ALPHA, ft->beta = (float)AVS_C3IM_BETA; /* avs_finetune_open: the set's */
    ft->H = t->H, ft->W = t->W;
    ft->db = db;
    ft->root = avs_strdup(root);
    int np;
    const struct avs_tensor_spec *spec = avs_feat_vis_spec(&ft->vis, &np);
    avs_tensor_set_init(&ft->g, spec, np);
    avs_tensor_set_init(&ft->m, spec, np);
    avs_tensor_set_init(&ft->v, spec, np);
    ft->rgb = avs_malloc((size_t)3 * ft->H * ft->W * sizeof(float));
    *out = ft;
    return 0;
}

int avs_finetune_open_pvt(struct avs_finetune **ft, sqlite3 *db, const char *root,
                          const struct avs_tset *t, struct avs_pvt *pvt, const float *S,
                          struct avs_err *err)
{
    struct avs_feat_vis vis = {.kind = AVS_FEAT_VIS_PVT, .pvt = *pvt, .classes = pvt->cfg.classes};
    if (avs_finetune_open_vis(ft, db, root, t, &vis, S, err))
        return -1; /* *pvt untouched: the caller still owns it */
    memset(pvt, 0, sizeof *pvt);
    return 0;
}

int avs_finetune_open(struct avs_finetune **ft, sqlite3 *db, const char *root,
                      const struct avs_tset *t, const struct avs_enc_files *files,
                      struct avs_err *err)
{
    struct avs_feat_enc e;
    if (avs_feat_enc_open(&e, db, t->set_name, files, err))
        return -1;
    int rc = -1;
    if (e.H != t->H || e.W != t->W) {
        avs_err_set(err, "feature set \"%s\": frames are %dx%d but the model's output is %dx%d: "
                    "fine-tuning needs frame sides that are multiples of 32", t->set_name, e.W, e.H,
                    t->W, t->H);
        goto out;
    }
    int fa = avs_cache_find(t->cache, "audio_logits");
    if (fa >= 0 && e.A != t->cache->field[fa].shape[0]) {
        avs_err_set(err, "feature set \"%s\": S is %dx%d but the cache's audio logits are %d wide: "
                    "rebuild the set", t->set_name, e.V, e.A, t->cache->field[fa].shape[0]);
        goto out;
    }
    rc = avs_finetune_open_vis(ft, db, root, t, &e.vis, e.S, err); /* e.vis moved on success */
    if (rc == 0)
        (*ft)->alpha = e.alpha, (*ft)->beta = e.beta;
out:
    avs_feat_enc_close(&e);
    return rc;
}

void avs_finetune_close(struct avs_finetune **p)
{
    struct avs_finetune *ft = *p;
    if (!ft)
        return;
    avs_feat_vis_free(&ft->vis);
    if (ft->g.t)
        avs_tensor_set_free(&ft->g), avs_tensor_set_free(&ft->m), avs_tensor_set_free(&ft->v);
    bufs_free(ft);
    free(ft->S), free(ft->root), free(ft->rgb);
    free(ft);
    *p = NULL;
}

struct avs_pvt *avs_finetune_model(struct avs_finetune *ft)
{
    AVS_ASSERT(ft->vis.kind == AVS_FEAT_VIS_PVT);
    return &ft->vis.pvt;
}

struct avs_feat_vis *avs_finetune_vis(struct avs_finetune *ft)
{
    return &ft->vis;
}

struct avs_tensor_set *avs_finetune_grad_set(struct avs_finetune *ft)
{
    return &ft->g;
}

long avs_finetune_adam_step(const struct avs_finetune *ft)
{
    return ft->adam_step;
}

const float *avs_finetune_input(const struct avs_finetune *ft, int *B)
{
    *B = ft->B;
    return ft->img;
}

/* ---- batch ---- */

/* dst [3,H,W] network input of frame rel: train: v/255, jitter, ImageNet normalisation, flip;
 * else avs-features' input (store/store.h). */
static int load_frame(struct avs_finetune *ft, float *dst, const char *rel, int train, int flip,
                      const struct avs_jitter *j, struct avs_err *err)
{
    if (!train)
        return avs_store_frame(dst, ft->root, rel, ft->H, ft->W, 0, err);
    if (avs_store_frame_rgb(ft->rgb, ft->root, rel, ft->H, ft->W, err))
        return -1;
    avs_jitter_apply(ft->rgb, ft->H, ft->W, j);
    avs_store_norm(dst, ft->rgb, ft->H, ft->W, flip);
    return 0;
}

/* Frames, audio, audio logits and masks of video idx (batch slot i). */
static int load_video(struct avs_finetune *ft, const struct avs_tset *t, int fa, int vi, int i,
                      int flip, uint64_t aug_seed, int train, struct avs_tbatch *b,
                      struct avs_err *err)
{
    const struct avs_tvideo *v = &t->v[vi];
    struct avs_store_seconds sec;
    struct avs_store_lock lk = AVS_STORE_UNLOCKED; /* one version of its files (store/store.h) */
    size_t fr = (size_t)3 * ft->H * ft->W;
    if (avs_store_lock(&lk, ft->db, ft->root, v->id, err) ||
        avs_store_seconds(&sec, ft->db, v->id, AVS_T, err)) {
        avs_store_unlock(&lk);
        return avs_err_wrap(err, "video %s", v->uid);
    }
    int rc = 0;
    for (int k = 0; k < AVS_T && rc == 0; k++) {
        size_t j = (size_t)i * AVS_T + k;
        struct avs_jitter jt;
        if (train)
            avs_jitter_params(&jt, aug_seed, vi, k + 1);
        rc = load_frame(ft, ft->img + j * fr, sec.frame[k], train, flip, &jt, err);
        if (rc == 0)
            rc = avs_cache_read(t->cache, v->off[0][k], t->f_audio, b->staging, err) ||
                 avs_cache_read(t->cache, v->off[0][k], fa, ft->al + j * ft->A, err);
        if (rc) {
            rc = avs_err_wrap(err, "video %s second %d", v->uid, k + 1);
            break;
        }
        avs_tbatch_put(b, t, (int)j, NULL, NULL, b->staging);
        avs_tbatch_put_mask(b, t, (int)j, v->mask[k], flip);
    }
    avs_store_seconds_free(&sec);
    avs_store_unlock(&lk);
    return rc ? -1 : 0;
}

/* The batch's stage maps and Grad-CAM weights into b (device to device). */
static void put_batch(const struct avs_finetune *ft, struct avs_tbatch *b, int B)
{
    const struct avs_ops *op = avs_ops();
    for (int s = 0; s < 4; s++) {
        op->copy(b->stage[s], ft->bst[s], (size_t)B * stage_floats(ft, s) * sizeof(float));
        op->copy(b->gc[s], ft->bgc[s], (size_t)B * avs_feat_vis_dim(&ft->vis, s) * sizeof(float));
    }
}

int avs_finetune_batch(struct avs_finetune *ft, const struct avs_tset *t, const int *idx,
                       const int *flip, uint64_t aug_seed, int train, int use_ccv,
                       struct avs_tbatch *b, struct avs_err *err)
{
    AVS_ASSERT(t->H == ft->H && t->W == ft->W);
    int fa = avs_cache_find(t->cache, "audio_logits"), B = b->nb * AVS_T;
    AVS_ASSERT(fa >= 0 && t->cache->field[fa].shape[0] == ft->A);
    grow(ft, B);
    ft->B = 0;
    for (int i = 0; i < b->nb; i++)
        if (load_video(ft, t, fa, idx[i], i, train && flip && flip[i], aug_seed, train, b, err))
            return -1;
    const struct avs_feat_vis *m = &ft->vis;
    avs_dev_upload(ft->img_d, ft->img, (size_t)B * 3 * ft->H * ft->W);
    if (use_ccv < 0) { /* no CCAM in this run: no Grad-CAM pass */
        avs_feat_vis_fwd(m, &ft->ws, ft->bst, ft->vl_d, ft->img_d, B);
        for (int s = 0; s < 4; s++)
            avs_ops()->zero(ft->bgc[s], (size_t)B * avs_feat_vis_dim(m, s));
    } else {
        /* one forward serves the targets (C3IM on its logits) and the Grad-CAM backward */
        avs_feat_vis_fwd_kept(m, &ft->ws, ft->bst, ft->vl_d, ft->img_d, B);
        avs_dev_download(ft->vl, ft->vl_d, (size_t)B * ft->V);
        avs_c3im(ft->tg, ft->tv, NULL, ft->vl, ft->al, ft->S, B, ft->V, ft->A, ft->alpha,
                 ft->beta);
        avs_feat_vis_gradcam_kept(m, &ft->ws, ft->bgc, use_ccv ? ft->tv : ft->tg);
    }
    put_batch(ft, b, B);
    ft->B = B;
    return 0;
}

/* ---- step ---- */

void avs_finetune_grads(struct avs_finetune *ft, float *const dstage[4])
{
    AVS_ASSERT(ft->B > 0);
    avs_arena_zero(&ft->g.arena);
    avs_feat_vis_bwd(&ft->vis, &ft->ws, &ft->g, ft->st, NULL, ft->img_d,
                     (const float *const *)dstage, NULL, ft->B);
}

void avs_finetune_step(struct avs_finetune *ft, float *const dstage[4], double lr)
{
    avs_finetune_grads(ft, dstage);
    avs_finetune_adam(ft, lr);
}

void avs_finetune_adam(struct avs_finetune *ft, double lr)
{
    ft->adam_step++;
    const struct avs_tensor_set *p = avs_feat_vis_params(&ft->vis);
    avs_ops()->adam(p->arena.base, ft->g.arena.base, ft->m.arena.base, ft->v.arena.base,
                    p->arena.used, lr, 0.9, 0.999, 1e-8, 0.0, ft->adam_step);
}

/* ---- save / load ---- */

int avs_finetune_save(const struct avs_finetune *ft, const char *path, int with_optim,
                      struct avs_err *err)
{
    struct avs_st_writer *w = avs_st_writer_new();
    struct avs_params_stage st = {0};
    char step[32];
    avs_params_stage_add(&st, w, avs_feat_vis_params(&ft->vis), NULL);
    if (with_optim) {
        avs_params_stage_add(&st, w, &ft->m, "adam.m.");
        avs_params_stage_add(&st, w, &ft->v, "adam.v.");
        snprintf(step, sizeof step, "%ld", ft->adam_step);
        avs_st_writer_meta(w, "adam_step", step);
    }
    avs_st_writer_meta(w, "format", ft->format);
    int rc = avs_ckpt_seal(w, path, err) ? -1 : avs_st_writer_save(w, path, err);
    avs_st_writer_free(&w);
    avs_params_stage_free(&st);
    return rc;
}

/* Open a backbone file; ours (format "avs-<family>-finetune") are verified (train/ckpt.h),
 * others are weights from elsewhere, checked as any weights are. */
static int open_backbone(const char *path, const char *format, struct avs_st_file **f,
                         struct avs_err *err)
{
    if (avs_st_open(path, f, err))
        return -1;
    const char *fmt = avs_st_meta(*f, "format");
    if (fmt && !strcmp(fmt, format) && avs_ckpt_verify(*f, err)) {
        avs_st_close(f);
        return -1;
    }
    return 0;
}

int avs_finetune_load_vis(struct avs_feat_vis *vis, const char *path, struct avs_err *err)
{
    char format[32];
    snprintf(format, sizeof format, "avs-%s-finetune", avs_feat_vis_family(vis));
    struct avs_st_file *f = NULL;
    if (open_backbone(path, format, &f, err))
        return -1;
    int rc = avs_feat_vis_load_st(vis, f, "adam.", err);
    avs_st_close(&f);
    return rc ? -1 : 0;
}

/* The Adam moments (adam.m.<name>, adam.v.<name>) and step of f. */
static int load_optim(struct avs_finetune *ft, const struct avs_st_file *f, struct avs_err *err)
{
    const char *fmt = avs_st_meta(f, "format"), *step = avs_st_meta(f, "adam_step");
    if (!fmt || strcmp(fmt, ft->format) || !step)
        return avs_err_set(err, "%s: not an avs-train backbone checkpoint with optimiser state "
                           "(format \"%s\", adam_step): resume needs runs/<run>/backbone_last."
                           "safetensors", f->path, ft->format);
    struct avs_params_io m = {.sets = {&ft->m}, .nsets = 1, .prefix = "adam.m.",
                              .what = "the backbone's Adam state"};
    struct avs_params_io v = m;
    v.sets[0] = &ft->v, v.prefix = "adam.v.";
    if (avs_params_load(f, &m, err) || avs_params_load(f, &v, err))
        return -1;
    ft->adam_step = strtol(step, NULL, 10);
    return 0;
}

int avs_finetune_load(struct avs_finetune *ft, const char *path, int with_optim,
                      struct avs_err *err)
{
    struct avs_st_file *f = NULL;
    if (open_backbone(path, ft->format, &f, err))
        return -1;
    int rc = avs_feat_vis_load_st(&ft->vis, f, "adam.", err);
    if (rc == 0 && with_optim)
        rc = load_optim(ft, f, err);
    avs_st_close(&f);
    return rc ? -1 : 0;
}
