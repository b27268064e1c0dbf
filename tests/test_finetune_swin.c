/* tests/test_finetune_swin.c: train/finetune.h with a Swin backbone (through features/vis.h),
 * on a tiny store made here (2 videos x 5 seconds of 64x64 PNG frames, index rows, a feature
 * cache with the audio fields) and a tiny Swin (embed 16, depths 2/2/2/2, heads 1/2/4/8,
 * window 2: stage sides 16/8/4/2, shifted windows in stages 1..3; 10 classes):
 *   - backbone gradients from dstage against central finite differences of the double-summed
 *     loss sum(dstage * stage(x)) for parameters of every stage (patch embedding, relative
 *     position bias tables of plain and shifted blocks, patch merging, MLPs, norms);
 *   - batch: stage maps and Grad-CAM weights (CC and CC-V targets from C3IM on the current
 *     logits) bit-identical to avs_swin_gradcam recomputed here;
 *   - the loss 0.5 |stage|^2 falls over three Adam steps on a fixed batch;
 *   - resume: save, two steps, load, the same two steps: byte-identical checkpoints; save/load/
 *     save byte-identical in another model; format avs-swin-finetune; a weights-only file
 *     refused for a resume; a PVTv2 checkpoint and a missing tensor refused naming a tensor;
 *     an official-style file (recomputed buffers relative_position_index / attn_mask inside)
 *     loads through avs_finetune_load_vis;
 *   - the guard backend gives the cpu's gradients and checkpoint bit for bit;
 *   - a ResNet-50 (no backward yet) is refused at open, naming the set's encoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "features/cache.h"
#include "model/c3im.h"
#include "tests/check.h"
#include "tests/devfloat.h"
#include "tests/fixture.h"
#include "train/finetune.h"

#define SIDE 64
#define NV 2
#define NCLS 10 /* visual classes */
#define NA 6    /* audio classes */
#define NE 4    /* audio embedding width */

static uint64_t rng_state = 777;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f;
}

static void tiny_cfg(struct avs_swin_cfg *c)
{
    c->embed = 16, c->window = 2, c->classes = NCLS;
    for (int s = 0; s < 4; s++)
        c->depths[s] = 2, c->heads[s] = 1 << s;
}

/* A Swin feature-set encoder, random from seed. */
static void tiny_vis(struct avs_feat_vis *v, uint64_t seed)
{
    struct avs_swin_cfg c;
    tiny_cfg(&c);
    memset(v, 0, sizeof *v);
    avs_swin_init_random(&v->swin, &c, seed);
    v->kind = AVS_FEAT_VIS_SWIN, v->classes = NCLS;
}

static void exec(sqlite3 *db, const char *sql)
{
    struct avs_err err;
    int rc = avs_db_exec(db, sql, &err);
    CHECK(rc == 0, "%s: %s", sql, err.msg);
}

static void write_png(const char *root, const char *rel, int ch, int v)
{
    struct avs_err err;
    struct avs_image img = {0};
    avs_image_alloc(&img, SIDE, SIDE, ch);
    for (int i = 0; i < SIDE * SIDE * ch; i++)
        img.data[i] = ch == 3 ? (uint8_t)(frand() * 255.0f)
                              : (i % SIDE) < 20 + 10 * v && (i / SIDE) > 10 ? 255 : 0;
    char *p = avs_fs_join(root, rel);
    CHECK(avs_png_write(p, &img, 1, &err) == 0, "png %s: %s", rel, err.msg);
    free(p);
    avs_image_free(&img);
}

/* The cache's fields: audio, audio logits, stage maps and Grad-CAM weights of the tiny Swin. */
static int cache_fields(struct avs_cache_field *f)
{
    struct avs_swin_cfg c;
    tiny_cfg(&c);
    int nf = 0;
    memset(f, 0, 14 * sizeof *f);
    snprintf(f[nf].name, 40, "audio_emb"), f[nf].ndim = 1, f[nf++].shape[0] = NE;
    snprintf(f[nf].name, 40, "audio_logits"), f[nf].ndim = 1, f[nf++].shape[0] = NA;
    for (int s = 0; s < 4; s++) {
        snprintf(f[nf].name, 40, "stage%d", s + 1), f[nf].ndim = 3;
        f[nf].shape[0] = avs_swin_dim(&c, s);
        f[nf].shape[1] = f[nf].shape[2] = avs_swin_side(SIDE, s);
        nf++;
    }
    for (int s = 0; s < 8; s++) {
        snprintf(f[nf].name, 40, s < 4 ? "gradcam%d" : "gradcam_v%d", s % 4 + 1);
        f[nf].ndim = 1, f[nf++].shape[0] = avs_swin_dim(&c, s % 4);
    }
    return nf;
}

/* The store: frames, masks (frame 1), cache records (zero maps: only the audio is read), index
 * rows. */
static int make_store(const char *root, sqlite3 **dbp, float *audio, float *alog)
{
    struct avs_err err;
    char *dbpath = avs_fs_join(root, "avs.db"), *feat = avs_fs_join(root, "features");
    avs_fs_mkdirs(feat, &err);
    int rc = avs_db_open(dbpath, dbp, &err);
    CHECK(rc == 0, "db: %s", err.msg);
    free(dbpath);
    if (rc)
        return free(feat), -1;
    sqlite3 *db = *dbp;
    struct avs_cache_field f[14];
    int nf = cache_fields(f);
    char *bin = avs_fs_join(feat, "sw.bin");
    struct avs_cache_writer *w = NULL;
    CHECK(avs_cache_open_append(&w, bin, f, nf, AVS_CACHE_F32, &err) == 0, "cache: %s", err.msg);
    free(bin), free(feat);
    float *zero = calloc(16 * 16 * 16, sizeof(float));
    exec(db, "INSERT INTO feature_sets (id, name, path, config, version, random_init, status) "
             "VALUES (1, 'sw', 'features/sw.bin', '{\"visual\": {\"name\": \"swin_tiny\"}}', 2, 1, "
             "'complete')");
    for (int v = 0; v < NV; v++) {
        char sql[512], rel[64], *p;
        snprintf(sql, sizeof sql, "INSERT INTO videos (id, uid, source, subset, split, status, "
                 "n_seconds) VALUES (%d, 'v%d', '/src/v%d.mp4', 's4', 'train', 'ok', 5)", v + 1, v, v);
        exec(db, sql);
        const char *dirs[2] = {"frames", "masks"};
        for (int d = 0; d < 2; d++) {
            snprintf(rel, sizeof rel, "%s/v%d", dirs[d], v);
            p = avs_fs_join(root, rel), avs_fs_mkdirs(p, &err), free(p);
        }
        for (int k = 1; k <= AVS_T; k++) {
            snprintf(rel, sizeof rel, "frames/v%d/%d.png", v, k);
            write_png(root, rel, 3, v);
            snprintf(sql, sizeof sql, "INSERT INTO seconds (video_id, k, frame, audio) VALUES "
                     "(%d, %d, '%s', NULL)", v + 1, k, rel);
            exec(db, sql);
            int j = v * AVS_T + k - 1;
            for (int e = 0; e < NE; e++)
                audio[j * NE + e] = frand() - 0.5f;
            for (int a = 0; a < NA; a++)
                alog[j * NA + a] = 4.0f * frand() - 2.0f;
            const float *rec[14];
            rec[0] = audio + j * NE, rec[1] = alog + j * NA;
            for (int i = 2; i < nf; i++)
                rec[i] = zero;
            int64_t off = 0;
            CHECK(avs_cache_append(w, rec, &off, &err) == 0, "append: %s", err.msg);
            snprintf(sql, sizeof sql, "INSERT INTO feature_entries (set_id, video_id, k, flipped, "
                     "offset, target, target_v) VALUES (1, %d, %d, 0, %lld, 0, 0)", v + 1, k,
                     (long long)off);
            exec(db, sql);
        }
        snprintf(rel, sizeof rel, "masks/v%d/1.png", v);
        write_png(root, rel, 1, v);
        snprintf(sql, sizeof sql, "INSERT INTO masks (video_id, k, path) VALUES (%d, 1, '%s')",
                 v + 1, rel);
        exec(db, sql);
    }
    CHECK(avs_cache_sync(w, &err) == 0, "sync: %s", err.msg);
    avs_cache_close_writer(&w);
    free(zero);
    return 0;
}

static size_t stage_n(const struct avs_tset *t, int B, int s)
{
    return (size_t)B * t->C[s] * t->Hs[s] * t->Ws[s];
}

/* host == the device buffer dev (n floats) */
static int dev_same(const float *host, const float *dev, size_t n)
{
    float *y = avs_host_from_dev(dev, n);
    int eq = !memcmp(host, y, n * sizeof(float));
    free(y);
    return eq;
}

/* Device buffers of a recomputation here: the input, stage maps, logits, Grad-CAM weights. */
struct recomp {
    struct avs_swin_ws ws;
    float *x, *st[4], *vl, *gc[4];
};

static void recomp_init(struct recomp *r, const struct avs_swin *m, const struct avs_tset *t,
                        const float *x, int B)
{
    struct avs_err err;
    CHECK(avs_swin_ws_init(&r->ws, m, B, SIDE, SIDE, AVS_SWIN_GRADCAM, &err) == 0, "%s", err.msg);
    r->x = avs_dev_from_host(x, (size_t)B * 3 * SIDE * SIDE);
    for (int s = 0; s < 4; s++) {
        r->st[s] = avs_dev_alloc(stage_n(t, B, s), "stage");
        r->gc[s] = avs_dev_alloc((size_t)B * t->C[s], "gradcam");
    }
    r->vl = avs_dev_alloc((size_t)B * NCLS, "logits");
}

static void recomp_free(struct recomp *r)
{
    avs_swin_ws_free(&r->ws);
    avs_dev_free(&r->x), avs_dev_free(&r->vl);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&r->st[s]), avs_dev_free(&r->gc[s]);
}

/* sum over s of w[s] . stage_s(x) in double (w NULL: 0.5 |stage|^2) */
static double stage_loss(const struct avs_swin *m, const struct avs_tset *t, float *const *w,
                         struct recomp *r, int B)
{
    avs_swin_fwd(m, &r->ws, r->st, NULL, r->x, B);
    double acc = 0;
    for (int s = 0; s < 4; s++) {
        float *st = avs_host_from_dev(r->st[s], stage_n(t, B, s));
        for (size_t i = 0; i < stage_n(t, B, s); i++)
            acc += w ? (double)w[s][i] * st[i] : 0.5 * (double)st[i] * st[i];
        free(st);
    }
    return acc;
}

/* Backbone gradients against finite differences; *grads: a host copy of the gradient set (for
 * the backends' comparison). */
static void test_gradients(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                           float **grads, size_t *ngrads)
{
    struct avs_err err;
    int idx[1] = {1}, flip[1] = {1}, B = 0;
    CHECK(avs_finetune_batch(ft, t, idx, flip, 99, 1, 0, b, &err) == 0, "batch: %s", err.msg);
    const float *x = avs_finetune_input(ft, &B);
    CHECK(B == AVS_T, "B %d", B);
    float *dst[4], *ddst[4];
    for (int s = 0; s < 4; s++) {
        size_t n = stage_n(t, B, s);
        dst[s] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            dst[s][i] = frand() - 0.5f;
        ddst[s] = avs_dev_from_host(dst[s], n);
    }
    avs_finetune_grads(ft, ddst);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&ddst[s]);
    const struct avs_swin *m = &avs_finetune_vis(ft)->swin;
    struct avs_tensor_set *g = avs_finetune_grad_set(ft);
    *grads = avs_tensor_set_to_host(g), *ngrads = g->arena.used;
    struct recomp r;
    recomp_init(&r, m, t, x, B);
    static const struct { const char *name; int i; } probe[] = {
        {"patch_embed.proj.weight", 17}, {"patch_embed.proj.bias", 3},
        {"patch_embed.norm.weight", 5},  {"layers.0.blocks.0.attn.relative_position_bias_table", 4},
        {"layers.0.blocks.1.attn.relative_position_bias_table", 7},
        {"layers.0.blocks.1.attn.qkv.weight", 300}, {"layers.0.blocks.1.mlp.fc1.weight", 40},
        {"layers.0.downsample.reduction.weight", 77}, {"layers.1.downsample.norm.bias", 9},
        {"layers.1.blocks.1.attn.proj.weight", 123}, {"layers.1.blocks.1.attn.relative_position_bias_table", 11},
        {"layers.2.blocks.0.norm2.weight", 6},  {"layers.2.blocks.1.mlp.fc2.bias", 13},
        {"layers.2.blocks.1.attn.qkv.bias", 150}, {"layers.3.blocks.1.attn.qkv.weight", 999},
        {"layers.3.blocks.1.mlp.fc2.weight", 555},
    };
    double worst = 0;
    const char *wname = "";
    for (size_t q = 0; q < sizeof probe / sizeof probe[0]; q++) {
        int k = avs_tensor_set_find(&m->params, probe[q].name);
        CHECK(k >= 0, "no parameter %s", probe[q].name);
        if (k < 0)
            continue;
        float *p = m->params.t[k].data + probe[q].i, p0 = get1(p); /* device pointer */
        float h = 3e-2f * (fabsf(p0) > 0.1f ? fabsf(p0) : 0.1f);
        set1(p, p0 + h);
        double lp = stage_loss(m, t, dst, &r, B);
        set1(p, p0 - h);
        double lm = stage_loss(m, t, dst, &r, B);
        set1(p, p0);
        double fd = (lp - lm) / (2.0 * h), an = get1(g->t[k].data + probe[q].i);
        double e = fabs(fd - an) / (1e-2 + fabs(fd));
        if (e > worst)
            worst = e, wname = probe[q].name;
        /* the float32 forward rounds the loss by ~1e-5: that over 2h bounds the noise of fd */
        CHECK(fabs(fd - an) <= 4e-5 / (2.0 * h) + 3e-2 * fabs(fd), "%s[%d]: analytic %.7g finite diff %.7g",
              probe[q].name, probe[q].i, an, fd);
        CHECK(fabs(an) > 1e-6, "%s[%d]: zero gradient (probe a live parameter)", probe[q].name,
              probe[q].i);
    }
    printf("gradients: %zu parameters, worst relative error %.3g (%s)\n",
           sizeof probe / sizeof probe[0], worst, wname);
    recomp_free(&r);
    for (int s = 0; s < 4; s++)
        free(dst[s]);
}

/* Stage maps and Grad-CAM weights of a batch against a recomputation here; audio. */
static void test_batch(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                       const float *audio, const float *alog, const float *S)
{
    struct avs_err err;
    int idx[2] = {1, 0}, flip[2] = {1, 0}, B = 0;
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, 0, b, &err) == 0, "batch: %s", err.msg);
    const float *x = avs_finetune_input(ft, &B);
    CHECK(B == 2 * AVS_T, "B %d", B);
    const struct avs_swin *m = &avs_finetune_vis(ft)->swin;
    float *vl = malloc((size_t)B * NCLS * sizeof(float)), al[2 * AVS_T * NA];
    int tg[2 * AVS_T], tv[2 * AVS_T], same = 1, samev = 1, ndiff = 0;
    for (int i = 0; i < 2; i++)
        memcpy(al + i * AVS_T * NA, alog + idx[i] * AVS_T * NA, AVS_T * NA * sizeof(float));
    struct recomp r;
    recomp_init(&r, m, t, x, B);
    avs_swin_fwd(m, &r.ws, r.st, r.vl, r.x, B);
    avs_dev_download(vl, r.vl, (size_t)B * NCLS);
    avs_c3im(tg, tv, NULL, vl, al, S, B, NCLS, NA, (float)AVS_C3IM_ALPHA, (float)AVS_C3IM_BETA);
    avs_swin_gradcam(m, &r.ws, r.gc, r.st, r.vl, r.x, tg, B);
    for (int s = 0; s < 4; s++) {
        float *h = avs_host_from_dev(r.st[s], stage_n(t, B, s));
        same &= dev_same(h, b->stage[s], stage_n(t, B, s));
        free(h);
        h = avs_host_from_dev(r.gc[s], (size_t)B * t->C[s]);
        same &= dev_same(h, b->gc[s], (size_t)B * t->C[s]);
        free(h);
    }
    for (int j = 0; j < B; j++)
        ndiff += tg[j] != tv[j];
    CHECK(same, "stage maps / CC Grad-CAM weights differ from Swin forward + C3IM + Grad-CAM here");
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, 1, b, &err) == 0, "batch: %s", err.msg);
    avs_swin_gradcam(m, &r.ws, r.gc, r.st, r.vl, r.x, tv, B);
    for (int s = 0; s < 4; s++) {
        float *h = avs_host_from_dev(r.gc[s], (size_t)B * t->C[s]);
        samev &= dev_same(h, b->gc[s], (size_t)B * t->C[s]);
        free(h);
    }
    CHECK(samev, "CC-V Grad-CAM weights differ");
    printf("batch: %d of %d frames have CC != CC-V\n", ndiff, B);
    for (int i = 0; i < 2; i++)
        CHECK(dev_same(audio + idx[i] * AVS_T * NE, b->audio + i * AVS_T * NE, AVS_T * NE),
              "audio of slot %d", i);
    recomp_free(&r);
    free(vl);
}

/* Three Adam steps on one fixed batch (no augmentation) with dstage = stage: 0.5 |stage|^2
 * falls at every step. */
static void test_descent(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b)
{
    struct avs_err err;
    int idx[1] = {0}, B = 0;
    double L[4];
    for (int step = 0; step < 4; step++) {
        CHECK(avs_finetune_batch(ft, t, idx, NULL, 0, 0, -1, b, &err) == 0, "batch: %s", err.msg);
        avs_finetune_input(ft, &B);
        L[step] = 0;
        for (int s = 0; s < 4; s++) {
            float *h = avs_host_from_dev(b->stage[s], stage_n(t, B, s));
            for (size_t i = 0; i < stage_n(t, B, s); i++)
                L[step] += 0.5 * (double)h[i] * h[i];
            free(h);
        }
        if (step < 3)
            avs_finetune_step(ft, b->stage, 1e-3);
    }
    printf("descent: 0.5|stage|^2 %.6g -> %.6g -> %.6g -> %.6g\n", L[0], L[1], L[2], L[3]);
    CHECK(L[1] < L[0] && L[2] < L[1] && L[3] < L[2], "the loss does not fall: %g %g %g %g", L[0],
          L[1], L[2], L[3]);
}

static int file_eq(const char *a, const char *b)
{
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    struct avs_err err;
    int eq = !avs_fs_read_all(a, &x, &nx, &err) && !avs_fs_read_all(b, &y, &ny, &err) && nx == ny &&
             !memcmp(x, y, nx);
    free(x), free(y);
    return eq;
}

/* Two steps of a fixed function of the batch (dstage = 1e-3 stage, augmented frames). */
static void two_steps(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b)
{
    struct avs_err err;
    int idx[2] = {0, 1}, flip[2] = {0, 1}, B = 0;
    for (int step = 0; step < 2; step++) {
        CHECK(avs_finetune_batch(ft, t, idx, flip, 11 + step, 1, 0, b, &err) == 0, "%s", err.msg);
        avs_finetune_input(ft, &B);
        float *dst[4];
        for (int s = 0; s < 4; s++) {
            size_t n = stage_n(t, B, s);
            float *h = avs_host_from_dev(b->stage[s], n);
            for (size_t i = 0; i < n; i++)
                h[i] *= 1e-3f;
            dst[s] = avs_dev_from_host(h, n);
            free(h);
        }
        avs_finetune_step(ft, dst, 1e-3);
        for (int s = 0; s < 4; s++)
            avs_dev_free(&dst[s]);
    }
}

/* The tensors of p into path (a plain weights file), leaving out `drop` (NULL: none), adding a
 * one-float tensor named `buffer` (NULL: none; an official file's recomputed buffer). */
static void write_weights(const struct avs_tensor_set *p, const struct avs_tensor_spec *spec,
                          int np, const char *path, const char *drop, const char *buffer)
{
    struct avs_err err;
    struct avs_st_writer *w = avs_st_writer_new();
    float *hp = avs_tensor_set_to_host(p), one = 1.0f;
    for (int i = 0; i < np; i++)
        if (!drop || strcmp(spec[i].name, drop))
            avs_st_writer_add_f32(w, spec[i].name, p->t[i].ndim, p->t[i].shape,
                                  hp + (p->t[i].data - p->arena.base));
    int shape[1] = {1};
    if (buffer)
        avs_st_writer_add_f32(w, buffer, 1, shape, &one);
    CHECK(avs_st_writer_save(w, path, &err) == 0, "%s", err.msg);
    avs_st_writer_free(&w);
    free(hp);
}

/* Load errors and the official-style file, on a second model f2. */
static void test_load_errors(struct avs_finetune *f2, const char *p3)
{
    struct avs_err err;
    CHECK(avs_finetune_save(f2, p3, 0, &err) == 0, "save: %s", err.msg);
    CHECK(avs_finetune_load(f2, p3, 0, &err) == 0, "load weights: %s", err.msg);
    CHECK(avs_finetune_load(f2, p3, 1, &err) != 0 && strstr(err.msg, p3) &&
          strstr(err.msg, "avs-swin-finetune"), "resume from a weights-only file: %s", err.msg);
    struct avs_feat_vis *v = avs_finetune_vis(f2);
    int np;
    const struct avs_tensor_spec *spec = avs_feat_vis_spec(v, &np);
    const char *drop = "layers.1.blocks.0.attn.qkv.weight";
    write_weights(avs_feat_vis_params(v), spec, np, p3, drop, NULL);
    CHECK(avs_finetune_load(f2, p3, 0, &err) != 0 && strstr(err.msg, p3) && strstr(err.msg, drop),
          "missing tensor message: %s", err.msg);
    /* an official file carries buffers we recompute: skipped */
    write_weights(avs_feat_vis_params(v), spec, np, p3, NULL,
                  "layers.0.blocks.1.attn.relative_position_index");
    CHECK(avs_finetune_load_vis(v, p3, &err) == 0, "official-style file: %s", err.msg);
    /* a PVTv2 checkpoint: names that do not fit */
    struct avs_pvt_cfg pc;
    CHECK(avs_pvt_cfg_variant(&pc, "pvt_v2_b0") == 0, "pvt_v2_b0");
    pc.classes = NCLS;
    struct avs_pvt pvt;
    avs_pvt_init_random(&pvt, &pc, 3);
    write_weights(&pvt.params, pvt.spec, pvt.np, p3, NULL, NULL);
    avs_pvt_free(&pvt);
    CHECK(avs_finetune_load_vis(v, p3, &err) != 0 && strstr(err.msg, p3) && strstr(err.msg, "Swin"),
          "a PVTv2 file: %s", err.msg);
}

/* Steps, save and load; *after = the checkpoint after two steps (tag: the backend's name). */
static void test_resume(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                        sqlite3 *db, const float *S, const char *tag, char **after)
{
    struct avs_err err;
    const char *tmp = check_tmpdir();
    char *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = avs_sprintf("%s/sw%d-%s.safetensors", tmp, i, tag);
    CHECK(avs_finetune_save(ft, p[0], 1, &err) == 0, "save: %s", err.msg);
    long a0 = avs_finetune_adam_step(ft);
    two_steps(ft, t, b);
    CHECK(avs_finetune_save(ft, p[1], 1, &err) == 0, "save: %s", err.msg);
    CHECK(avs_finetune_load(ft, p[0], 1, &err) == 0, "load: %s", err.msg);
    CHECK(avs_finetune_adam_step(ft) == a0, "adam step after load %ld", avs_finetune_adam_step(ft));
    two_steps(ft, t, b);
    CHECK(avs_finetune_save(ft, p[2], 1, &err) == 0, "save: %s", err.msg);
    CHECK(!file_eq(p[0], p[1]), "the steps changed nothing");
    CHECK(file_eq(p[1], p[2]), "two steps from the same checkpoint differ (resume is not exact)");
    struct avs_st_file *f = NULL;
    CHECK(avs_st_open(p[1], &f, &err) == 0, "%s", err.msg);
    const char *fmt = f ? avs_st_meta(f, "format") : NULL;
    CHECK(fmt && !strcmp(fmt, "avs-swin-finetune"), "format %s", fmt ? fmt : "(none)");
    avs_st_close(&f);
    struct avs_feat_vis v2;
    tiny_vis(&v2, 77);
    struct avs_finetune *f2 = NULL;
    CHECK(avs_finetune_open_vis(&f2, db, tmp, t, &v2, S, &err) == 0, "open: %s", err.msg);
    if (f2) {
        CHECK(avs_finetune_load(f2, p[1], 1, &err) == 0, "load: %s", err.msg);
        CHECK(avs_finetune_save(f2, p[3], 1, &err) == 0, "save: %s", err.msg);
        CHECK(file_eq(p[1], p[3]), "save/load/save is not byte-identical");
        test_load_errors(f2, p[3]);
        avs_finetune_close(&f2);
    }
    *after = p[1];
    free(p[0]), free(p[2]), free(p[3]);
}

/* Every part on the active backend. */
static void run_backend(sqlite3 *db, const struct avs_tset *t, const float *audio, const float *alog,
                        const float *S, float **grads, size_t *ng, char **after)
{
    struct avs_err err;
    struct avs_feat_vis v;
    tiny_vis(&v, 5);
    struct avs_finetune *ft = NULL;
    CHECK(avs_finetune_open_vis(&ft, db, check_tmpdir(), t, &v, S, &err) == 0, "open: %s", err.msg);
    CHECK(v.kind == AVS_FEAT_VIS_NONE, "the encoder was not moved in");
    struct avs_tbatch b1, b2;
    avs_tbatch_init(&b1, t, 1);
    avs_tbatch_init(&b2, t, 2);
    if (ft) {
        test_gradients(ft, t, &b1, grads, ng);
        test_batch(ft, t, &b2, audio, alog, S);
        test_resume(ft, t, &b2, db, S, avs_ops()->name, after);
        test_descent(ft, t, &b1);
    }
    avs_tbatch_free(&b1);
    avs_tbatch_free(&b2);
    avs_finetune_close(&ft);
}

/* Refused, and the caller keeps the encoder: one without a backward (every real encoder has
 * one now, so the empty kind), and one whose stage maps do not fit the set (a ResNet-50 on
 * this Swin set). */
static void test_refused(sqlite3 *db, const struct avs_tset *t, const float *S)
{
    struct avs_err err;
    struct avs_feat_vis none = {0};
    struct avs_finetune *ft = NULL;
    CHECK(avs_finetune_open_vis(&ft, db, check_tmpdir(), t, &none, S, &err) != 0 && !ft &&
          strstr(err.msg, "swin_tiny") && strstr(err.msg, "--mode frozen") &&
          strstr(err.msg, "PVTv2, Swin and ResNet-50"), "no backward refused: %s", err.msg);
    struct avs_feat_vis v = {0};
    avs_resnet_init_random(&v.rn, 8, NCLS, 1);
    v.kind = AVS_FEAT_VIS_RESNET, v.classes = NCLS;
    CHECK(avs_finetune_open_vis(&ft, db, check_tmpdir(), t, &v, S, &err) != 0 && !ft &&
          strstr(err.msg, "the set's config and cache disagree"), "resnet on a swin set refused: %s",
          err.msg);
    CHECK(v.kind == AVS_FEAT_VIS_RESNET, "a refused encoder stays the caller's");
    avs_feat_vis_free(&v);
}

int main(void)
{
    avs_ops_set_threads(2);
    const char *root = check_tmpdir();
    struct avs_err err;
    sqlite3 *db = NULL;
    float audio[NV * AVS_T * NE], alog[NV * AVS_T * NA], S[NCLS * NA];
    for (int i = 0; i < NCLS * NA; i++)
        S[i] = frand();
    if (make_store(root, &db, audio, alog))
        return check_summary("test_finetune_swin");
    struct avs_tset t;
    int rc = avs_tset_open_cache(&t, db, root, "sw", &err);
    CHECK(rc == 0, "open cache: %s", err.msg);
    if (rc == 0)
        CHECK((rc = avs_tset_load(&t, db, root, "s4", "train", AVS_TSET_LOSS_FIRST, &err)) == 0,
              "load: %s", err.msg);
    CHECK(rc || t.n == NV, "videos %d", t.n);
    if (rc == 0 && t.n == NV) {
        uint64_t rng0 = rng_state;
        float *grads[2] = {0};
        size_t ng[2] = {0};
        char *after[2] = {0};
        for (int k = 0; k < 2 && avs_backend_at(k); k++) { /* cpu, then guard: the same bits */
            avs_backend_set(avs_backend_at(k));
            printf("backend %s:\n", avs_ops()->name);
            rng_state = rng0;
            run_backend(db, &t, audio, alog, S, &grads[k], &ng[k], &after[k]);
        }
        avs_backend_set(avs_backend_cpu());
        if (avs_backend_at(1)) {
            CHECK(grads[0] && grads[1] && ng[0] == ng[1] &&
                  !memcmp(grads[0], grads[1], ng[0] * sizeof(float)),
                  "guard gives the cpu's backbone gradients");
            CHECK(after[0] && after[1] && file_eq(after[0], after[1]),
                  "guard gives the cpu's checkpoint after two Adam steps (byte for byte)");
        }
        test_refused(db, &t, S);
        for (int k = 0; k < 2; k++)
            free(grads[k]), free(after[k]);
    }
    if (rc == 0)
        avs_tset_free(&t);
    avs_db_close(&db);
    return check_summary("test_finetune_swin");
}
