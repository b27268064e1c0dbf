/* tests/test_finetune.c: train/finetune.h on a tiny store made here (2 videos x 5 seconds of
 * 64x64 PNG frames, an index with videos/seconds/masks/feature_sets/feature_entries rows, a
 * feature cache with the audio fields) and a tiny PVTv2 (dims 8/16/24/32, depth 1, 10 classes):
 *   - backbone gradients from dstage against central finite differences of the double-summed
 *     loss sum(dstage * stage(x)) for parameters of every stage;
 *   - batch: Grad-CAM weights for the C3IM target of the current logits + cached audio logits
 *     + S (recomputed here), audio from the cache, masks (mirrored with the flip);
 *     train == 0 input = avs-features' normalisation; the same batch twice is bit-identical;
 *     another aug seed changes it;
 *   - colour jitter against torchvision (tests/gen/train_jitter.py) to 1e-5;
 *   - Adam step determinism and save/load round trip (bytes), load errors name file + tensor;
 *   - all of it on every backend: guard gives the cpu's gradients and checkpoints, bit for bit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"
#include "core/fs.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "model/c3im.h"
#include "features/cache.h"
#include "backend/backend.h"
#include "store/store.h"
#include "backend/ops.h"
#include "tests/check.h"
#include "tests/devfloat.h"
#include "tests/fixture.h"
#include "train/finetune.h"

#define SIDE 64
#define NV 2
#define NCLS 10 /* visual classes */
#define NA 6    /* audio classes */
#define NE 4    /* audio embedding width */

static uint64_t rng_state = 12345;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f;
}

static void tiny_cfg(struct avs_pvt_cfg *c)
{
    for (int s = 0; s < 4; s++) {
        c->dims[s] = 8 * (s + 1);
        c->heads[s] = s + 1;
        c->mlp[s] = 2;
        c->depths[s] = 1;
        c->sr[s] = (int[]){8, 4, 2, 1}[s];
    }
    c->classes = NCLS;
}

static void exec(sqlite3 *db, const char *sql)
{
    struct avs_err err;
    int rc = avs_db_exec(db, sql, &err);
    CHECK(rc == 0, "%s: %s", sql, err.msg);
}

/* The store: frames, masks (frame 1), cache records, index rows. */
static int make_store(const char *root, sqlite3 **dbp, float *audio, float *alog)
{
    struct avs_err err;
    char *dbpath = avs_fs_join(root, "avs.db"), *feat = avs_fs_join(root, "features");
    avs_fs_mkdirs(feat, &err);
    int rc = avs_db_open(dbpath, dbp, &err);
    CHECK(rc == 0, "db: %s", err.msg);
    free(dbpath);
    if (rc)
        return -1;
    sqlite3 *db = *dbp;
    struct avs_pvt_cfg c;
    tiny_cfg(&c);
    struct avs_cache_field f[15];
    int nf = 0;
    memset(f, 0, sizeof f);
    snprintf(f[nf].name, 40, "audio_emb"), f[nf].ndim = 1, f[nf++].shape[0] = NE;
    snprintf(f[nf].name, 40, "audio_logits"), f[nf].ndim = 1, f[nf++].shape[0] = NA;
    for (int s = 0; s < 4; s++) {
        snprintf(f[nf].name, 40, "stage%d", s + 1), f[nf].ndim = 3;
        f[nf].shape[0] = c.dims[s], f[nf].shape[1] = f[nf].shape[2] = avs_pvt_side(SIDE, s);
        nf++;
    }
    for (int s = 0; s < 8; s++) {
        snprintf(f[nf].name, 40, s < 4 ? "gradcam%d" : "gradcam_v%d", s % 4 + 1);
        f[nf].ndim = 1, f[nf++].shape[0] = c.dims[s % 4];
    }
    char *bin = avs_fs_join(feat, "tiny.bin");
    struct avs_cache_writer *w = NULL;
    CHECK(avs_cache_open_append(&w, bin, f, nf, AVS_CACHE_F32, &err) == 0, "cache: %s", err.msg);
    free(bin), free(feat);
    float *zero = calloc(4096, sizeof(float));
    exec(db, "INSERT INTO feature_sets (id, name, path, config, version, random_init, status) "
             "VALUES (1, 'tiny', 'features/tiny.bin', '{\"visual\": {\"name\": \"tiny\"}}', 2, 1, "
             "'complete')");
    for (int v = 0; v < NV; v++) {
        char sql[512], rel[64], *p;
        snprintf(sql, sizeof sql, "INSERT INTO videos (id, uid, source, subset, split, status, "
                 "n_seconds) VALUES (%d, 'v%d', '/src/v%d.mp4', 's4', 'train', 'ok', 5)", v + 1, v, v);
        exec(db, sql);
        snprintf(rel, sizeof rel, "frames/v%d", v);
        p = avs_fs_join(root, rel), avs_fs_mkdirs(p, &err), free(p);
        snprintf(rel, sizeof rel, "masks/v%d", v);
        p = avs_fs_join(root, rel), avs_fs_mkdirs(p, &err), free(p);
        for (int k = 1; k <= AVS_T; k++) {
            struct avs_image img = {0};
            avs_image_alloc(&img, SIDE, SIDE, 3);
            for (int i = 0; i < SIDE * SIDE * 3; i++)
                img.data[i] = (uint8_t)(frand() * 255.0f);
            snprintf(rel, sizeof rel, "frames/v%d/%d.png", v, k);
            p = avs_fs_join(root, rel);
            CHECK(avs_png_write(p, &img, 1, &err) == 0, "png: %s", err.msg);
            free(p);
            avs_image_free(&img);
            snprintf(sql, sizeof sql, "INSERT INTO seconds (video_id, k, frame, audio) VALUES "
                     "(%d, %d, 'frames/v%d/%d.png', NULL)", v + 1, k, v, k);
            exec(db, sql);
            int j = v * AVS_T + k - 1;
            for (int e = 0; e < NE; e++)
                audio[j * NE + e] = frand() - 0.5f;
            for (int a = 0; a < NA; a++)
                alog[j * NA + a] = 4.0f * frand() - 2.0f;
            const float *rec[15];
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
        struct avs_image m = {0};
        avs_image_alloc(&m, SIDE, SIDE, 1);
        for (int i = 0; i < SIDE * SIDE; i++)
            m.data[i] = (i % SIDE) < 20 + 10 * v && (i / SIDE) > 10 ? 255 : 0; /* asymmetric */
        snprintf(rel, sizeof rel, "masks/v%d/1.png", v);
        p = avs_fs_join(root, rel);
        CHECK(avs_png_write(p, &m, 1, &err) == 0, "mask: %s", err.msg);
        free(p);
        avs_image_free(&m);
        snprintf(sql, sizeof sql, "INSERT INTO masks (video_id, k, path) VALUES (%d, 1, "
                 "'masks/v%d/1.png')", v + 1, v);
        exec(db, sql);
    }
    CHECK(avs_cache_sync(w, &err) == 0, "sync: %s", err.msg);
    avs_cache_close_writer(&w);
    free(zero);
    return 0;
}

static float *copy_of(const float *x, size_t n)
{
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

/* host == the device buffer dev (n floats) */
static int dev_same(const float *host, const float *dev, size_t n)
{
    float *y = avs_host_from_dev(dev, n);
    int eq = !memcmp(host, y, n * sizeof(float));
    free(y);
    return eq;
}

static size_t stage_n(const struct avs_tset *t, int B, int s)
{
    return (size_t)B * t->C[s] * t->Hs[s] * t->Ws[s];
}

/* Device buffers of a recomputation here: the input, stage maps, logits, Grad-CAM weights. */
struct recomp {
    struct avs_pvt_ws ws;
    float *x, *st[4], *vl, *gc[4];
};

static void recomp_init(struct recomp *r, const struct avs_pvt *m, const struct avs_tset *t,
                        const float *x, int B)
{
    avs_pvt_ws_init(&r->ws, m, B, SIDE, SIDE, AVS_PVT_GRADCAM);
    r->x = avs_dev_from_host(x, (size_t)B * 3 * SIDE * SIDE);
    for (int s = 0; s < 4; s++) {
        r->st[s] = avs_dev_alloc(stage_n(t, B, s), "stage");
        r->gc[s] = avs_dev_alloc((size_t)B * t->C[s], "gradcam");
    }
    r->vl = avs_dev_alloc((size_t)B * NCLS, "logits");
}

static void recomp_free(struct recomp *r)
{
    avs_pvt_ws_free(&r->ws);
    avs_dev_free(&r->x), avs_dev_free(&r->vl);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&r->st[s]), avs_dev_free(&r->gc[s]);
}

/* sum over s of dstage[s] . stage_s(x), in double */
static double fd_loss(const struct avs_pvt *m, const struct avs_tset *t, float *const *dst,
                      struct recomp *r, int B)
{
    avs_pvt_fwd(m, &r->ws, r->st, NULL, r->x, B);
    double acc = 0;
    for (int s = 0; s < 4; s++) {
        float *st = avs_host_from_dev(r->st[s], stage_n(t, B, s));
        for (size_t i = 0; i < stage_n(t, B, s); i++)
            acc += (double)dst[s][i] * st[i];
        free(st);
    }
    return acc;
}

/* Backbone gradients against finite differences; gsum: a checksum of the gradient set (for
 * the backends' comparison). */
static void test_gradients(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                           float **grads, size_t *ngrads)
{
    struct avs_err err;
    int idx[1] = {1}, flip[1] = {1}, B = 0;
    CHECK(avs_finetune_batch(ft, t, idx, flip, 99, 1, 0, b, &err) == 0, "batch: %s", err.msg);
    const float *x = avs_finetune_input(ft, &B);
    CHECK(B == AVS_T, "B %d", B);
    float *dst[4];
    for (int s = 0; s < 4; s++) {
        size_t n = stage_n(t, B, s);
        dst[s] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            dst[s][i] = frand() - 0.5f;
    }
    float *ddst[4];
    for (int s = 0; s < 4; s++)
        ddst[s] = avs_dev_from_host(dst[s], stage_n(t, B, s));
    avs_finetune_grads(ft, ddst);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&ddst[s]);
    struct avs_pvt *m = avs_finetune_model(ft);
    struct avs_tensor_set *g = avs_finetune_grad_set(ft);
    *grads = avs_tensor_set_to_host(g), *ngrads = g->arena.used;
    struct recomp r;
    recomp_init(&r, m, t, x, B);
    static const struct { const char *name; int i; } probe[] = {
        {"patch_embed1.proj.weight", 17}, {"patch_embed1.norm.bias", 3},
        {"block1.0.attn.sr.weight", 40},  {"block1.0.mlp.dwconv.dwconv.weight", 7},
        {"block1.0.mlp.dwconv.dwconv.weight", 4}, {"block1.0.mlp.dwconv.dwconv.weight", 100},
        {"block2.0.mlp.dwconv.dwconv.weight", 4}, {"block3.0.mlp.dwconv.dwconv.weight", 13},
        {"block1.0.mlp.dwconv.dwconv.bias", 3}, {"block1.0.mlp.fc1.weight", 3},
        {"patch_embed2.proj.bias", 5},    {"block2.0.attn.q.weight", 33},
        {"block2.0.attn.kv.weight", 300}, {"block3.0.attn.norm.weight", 2},
        {"block3.0.mlp.fc2.weight", 99},  {"block4.0.attn.kv.bias", 40},
        {"block4.0.norm1.weight", 6},     {"norm4.bias", 9},
        {"norm3.weight", 11},             {"block4.0.mlp.fc1.weight", 123},
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
        double lp = fd_loss(m, t, dst, &r, B);
        set1(p, p0 - h);
        double lm = fd_loss(m, t, dst, &r, B);
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
    /* the ImageNet head gets no gradient from the stage maps */
    int kh = avs_tensor_set_find(g, "head.weight");
    size_t nh = avs_tensor_numel(&g->t[kh]);
    float *hg = malloc(nh * sizeof(float));
    avs_tensor_set_download(g, kh, hg);
    double hs = 0;
    for (size_t i = 0; i < nh; i++)
        hs += fabs(hg[i]);
    CHECK(hs == 0, "head gradient %g", hs);
    free(hg);
    recomp_free(&r);
    for (int s = 0; s < 4; s++)
        free(dst[s]);
}

/* Grad-CAM, audio, masks of a batch against a recomputation here. */
static void test_batch(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                       const float *audio, const float *alog, const float *S)
{
    struct avs_err err;
    int idx[2] = {1, 0}, flip[2] = {1, 0}, B = 0;
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, 0, b, &err) == 0, "batch: %s", err.msg);
    const float *x = avs_finetune_input(ft, &B);
    CHECK(B == 2 * AVS_T, "B %d", B);
    const struct avs_pvt *m = avs_finetune_model(ft);
    float *st[4], *gc[4], *gv[4], *vl = malloc((size_t)B * NCLS * sizeof(float)), al[2 * AVS_T * NA];
    int tg[2 * AVS_T], tv[2 * AVS_T];
    for (int i = 0; i < 2; i++)
        memcpy(al + i * AVS_T * NA, alog + idx[i] * AVS_T * NA, AVS_T * NA * sizeof(float));
    struct recomp r;
    recomp_init(&r, m, t, x, B);
    avs_pvt_fwd(m, &r.ws, r.st, r.vl, r.x, B);
    avs_dev_download(vl, r.vl, (size_t)B * NCLS);
    avs_c3im(tg, tv, NULL, vl, al, S, B, NCLS, NA, AVS_C3IM_ALPHA, AVS_C3IM_BETA);
    avs_pvt_gradcam(m, &r.ws, r.gc, r.st, r.vl, r.x, tg, B);
    for (int s = 0; s < 4; s++)
        st[s] = avs_host_from_dev(r.st[s], stage_n(t, B, s)),
        gc[s] = avs_host_from_dev(r.gc[s], (size_t)B * t->C[s]);
    avs_pvt_gradcam(m, &r.ws, r.gc, r.st, r.vl, r.x, tv, B);
    for (int s = 0; s < 4; s++)
        gv[s] = avs_host_from_dev(r.gc[s], (size_t)B * t->C[s]);
    recomp_free(&r);
    int same = 1, ndiff = 0;
    for (int s = 0; s < 4; s++) {
        same &= dev_same(st[s], b->stage[s], stage_n(t, B, s));
        same &= dev_same(gc[s], b->gc[s], (size_t)B * t->C[s]);
    }
    for (int j = 0; j < B; j++)
        ndiff += tg[j] != tv[j];
    CHECK(same, "stage maps / CC Grad-CAM weights differ from PVT forward + C3IM + Grad-CAM here");
    printf("batch: %d of %d frames have CC != CC-V\n", ndiff, B);
    for (int i = 0; i < 2; i++)
        CHECK(dev_same(audio + idx[i] * AVS_T * NE, b->audio + i * AVS_T * NE, AVS_T * NE),
              "audio of slot %d", i);
    /* masks: frame 1 only (S4 loss), mirrored in the flipped slot */
    int bad = 0;
    float *hm = avs_host_from_dev(b->mask, (size_t)B * SIDE * SIDE);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < AVS_T; k++) {
            int j = i * AVS_T + k;
            CHECK(b->frame_mask[j] == (k == 0), "frame_mask[%d] %d", j, b->frame_mask[j]);
            const uint8_t *gt = t->v[idx[i]].mask[k];
            for (int y = 0; gt && y < SIDE; y++)
                for (int xx = 0; xx < SIDE; xx++)
                    bad += hm[(size_t)j * SIDE * SIDE + y * SIDE + xx] !=
                           gt[y * SIDE + (flip[i] ? SIDE - 1 - xx : xx)];
        }
    free(hm);
    CHECK(bad == 0, "%d mask pixels wrong", bad);
    /* CC-V */
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, 1, b, &err) == 0, "batch: %s", err.msg);
    same = 1;
    for (int s = 0; s < 4; s++)
        same &= dev_same(gv[s], b->gc[s], (size_t)B * t->C[s]);
    CHECK(same, "CC-V Grad-CAM weights differ");
    /* the same batch twice: identical bits; another seed: other frames */
    float *s0 = avs_host_from_dev(b->stage[0], stage_n(t, B, 0));
    float *g3 = avs_host_from_dev(b->gc[3], (size_t)B * t->C[3]);
    float *x0 = copy_of(x, (size_t)B * 3 * SIDE * SIDE);
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, 1, b, &err) == 0, "batch: %s", err.msg);
    CHECK(dev_same(s0, b->stage[0], stage_n(t, B, 0)) && dev_same(g3, b->gc[3], (size_t)B * t->C[3]) &&
          !memcmp(x0, avs_finetune_input(ft, &B), (size_t)B * 3 * SIDE * SIDE * sizeof(float)),
          "the same batch twice differs");
    CHECK(avs_finetune_batch(ft, t, idx, flip, 6, 1, 1, b, &err) == 0, "batch: %s", err.msg);
    CHECK(memcmp(x0, avs_finetune_input(ft, &B), (size_t)B * 3 * SIDE * SIDE * sizeof(float)),
          "another aug seed gave the same frames");
    /* no CCAM: same stage maps, no weights */
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 1, -1, b, &err) == 0, "batch: %s", err.msg);
    double gsum = 0;
    for (int s = 0; s < 4; s++) {
        float *hg = avs_host_from_dev(b->gc[s], (size_t)B * t->C[s]);
        for (size_t i = 0; i < (size_t)B * t->C[s]; i++)
            gsum += fabs(hg[i]);
        free(hg);
    }
    int st3 = dev_same(st[3], b->stage[3], stage_n(t, B, 3));
    CHECK(gsum == 0 && st3, "use_ccv -1: gc sum %g, stage maps %s", gsum, st3 ? "equal" : "differ");
    /* validation: no flip, no jitter: avs-features' input */
    CHECK(avs_finetune_batch(ft, t, idx, flip, 5, 0, 0, b, &err) == 0, "batch: %s", err.msg);
    x = avs_finetune_input(ft, &B);
    int ok = 1;
    for (int i = 0; i < 2 && ok; i++)
        for (int k = 0; k < AVS_T && ok; k++) {
            char rel[64];
            snprintf(rel, sizeof rel, "frames/v%d/%d.png", idx[i], k + 1);
            CHECK(avs_store_frame(x0, check_tmpdir(), rel, SIDE, SIDE, 0, &err) == 0, "%s",
                  err.msg);
            ok = !memcmp(x0, x + (size_t)(i * AVS_T + k) * 3 * SIDE * SIDE,
                         (size_t)3 * SIDE * SIDE * sizeof(float));
        }
    CHECK(ok, "train == 0 input differs from avs_store_frame");
    for (int s = 0; s < 4; s++)
        free(st[s]), free(gc[s]), free(gv[s]);
    free(vl), free(s0), free(g3), free(x0);
}

static void test_jitter(void)
{
    struct avs_st_file *f = NULL;
    struct avs_err err;
    const char *path = "tests/fixtures/train/jitter.safetensors";
    CHECK(avs_st_open(path, &f, &err) == 0, "%s", err.msg);
    if (!f)
        return;
    size_t n = 0, np, no, nr;
    float *in = fixture_f32(f, "input", &n);
    int cases = atoi(avs_st_meta(f, "cases") ? avs_st_meta(f, "cases") : "0"), H = 6, W = 8;
    CHECK(cases >= 10 && n == (size_t)3 * H * W, "fixture: %d cases, %zu values", cases, n);
    double worst = 0;
    float *x = malloc(n * sizeof(float));
    for (int c = 0; c < cases && in; c++) {
        char nm[32];
        snprintf(nm, sizeof nm, "params%d", c);
        float *p = fixture_f32(f, nm, &np);
        snprintf(nm, sizeof nm, "order%d", c);
        float *o = fixture_f32(f, nm, &no);
        snprintf(nm, sizeof nm, "output%d", c);
        float *r = fixture_f32(f, nm, &nr);
        if (!p || !o || !r)
            break;
        struct avs_jitter j = {.bright = p[0], .contrast = p[1], .sat = p[2], .hue = p[3]};
        for (int i = 0; i < 4; i++)
            j.order[i] = (int)o[i];
        memcpy(x, in, n * sizeof(float));
        avs_jitter_apply(x, H, W, &j);
        double e = 0;
        for (size_t i = 0; i < n; i++)
            e = fmax(e, fabs((double)x[i] - r[i]));
        CHECK(e <= 1e-5, "jitter case %d: max |diff| %.3g", c, e);
        worst = fmax(worst, e);
        free(p), free(o), free(r);
    }
    printf("jitter: %d cases vs torchvision, worst |diff| %.3g\n", cases, worst);
    free(in), free(x);
    avs_st_close(&f);
    /* parameters: ranges, permutation, pure function of (seed, video, k) */
    struct avs_jitter a, b2;
    int distinct = 0, inrange = 1, perm = 1;
    for (int k = 1; k <= 50; k++) {
        avs_jitter_params(&a, 3, 7, k);
        avs_jitter_params(&b2, 3, 7, k);
        CHECK(!memcmp(&a, &b2, sizeof a), "params not a pure function");
        inrange &= a.bright >= 0.6f && a.bright <= 1.4f && a.contrast >= 0.6f && a.contrast <= 1.4f &&
                   a.sat >= 0.6f && a.sat <= 1.4f && a.hue >= -0.1f && a.hue <= 0.1f;
        int seen = 0;
        for (int i = 0; i < 4; i++)
            seen |= 1 << a.order[i];
        perm &= seen == 15;
        avs_jitter_params(&b2, 3, 8, k);
        distinct += b2.bright != a.bright;
    }
    CHECK(inrange && perm && distinct == 50, "params: range %d perm %d distinct %d", inrange, perm,
          distinct);
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

/* Steps, save and load; *after = the checkpoint after two steps (tag: the backend's name, in
 * the file names). */
static void test_step_and_io(struct avs_finetune *ft, const struct avs_tset *t, struct avs_tbatch *b,
                             sqlite3 *db, const float *S, const char *tag, char **after)
{
    struct avs_err err;
    const char *tmp = check_tmpdir();
    char *p0 = avs_sprintf("%s/ft0-%s.safetensors", tmp, tag);
    char *p1 = avs_sprintf("%s/ft1-%s.safetensors", tmp, tag);
    char *p2 = avs_sprintf("%s/ft2-%s.safetensors", tmp, tag);
    char *p3 = avs_sprintf("%s/ft3-%s.safetensors", tmp, tag);
    int idx[2] = {0, 1}, flip[2] = {0, 1}, B = 0;
    float *dst[4];
    CHECK(avs_finetune_save(ft, p0, 1, &err) == 0, "save: %s", err.msg);
    for (int r = 0; r < 2; r++) {
        if (r == 1)
            CHECK(avs_finetune_load(ft, p0, 1, &err) == 0, "load: %s", err.msg);
        for (int step = 0; step < 2; step++) {
            CHECK(avs_finetune_batch(ft, t, idx, flip, 11 + step, 1, 0, b, &err) == 0, "%s", err.msg);
            avs_finetune_input(ft, &B);
            for (int s = 0; s < 4; s++) { /* a fixed function of the batch */
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
        CHECK(avs_finetune_save(ft, r ? p2 : p1, 1, &err) == 0, "save: %s", err.msg);
    }
    CHECK(avs_finetune_adam_step(ft) == 2, "adam step %ld", avs_finetune_adam_step(ft));
    CHECK(!file_eq(p0, p1), "the steps changed nothing");
    CHECK(file_eq(p1, p2), "two steps from the same checkpoint differ");
    /* round trip into another model */
    struct avs_pvt_cfg c;
    tiny_cfg(&c);
    struct avs_pvt pv;
    avs_pvt_init_random(&pv, &c, 77);
    struct avs_finetune *f2 = NULL;
    CHECK(avs_finetune_open_pvt(&f2, db, tmp, t, &pv, S, &err) == 0, "open: %s", err.msg);
    if (f2) {
        CHECK(avs_finetune_load(f2, p1, 1, &err) == 0, "load: %s", err.msg);
        CHECK(avs_finetune_adam_step(f2) == 2, "adam step after load %ld", avs_finetune_adam_step(f2));
        CHECK(avs_finetune_save(f2, p3, 1, &err) == 0, "save: %s", err.msg);
        CHECK(file_eq(p1, p3), "save/load/save is not byte-identical");
        /* weights-only file, then errors */
        CHECK(avs_finetune_save(f2, p3, 0, &err) == 0, "save: %s", err.msg);
        CHECK(avs_finetune_load(f2, p3, 0, &err) == 0, "load weights: %s", err.msg);
        CHECK(avs_finetune_load(f2, p3, 1, &err) != 0 && strstr(err.msg, p3),
              "resume from a weights-only file: %s", err.msg);
        struct avs_pvt *m = avs_finetune_model(f2);
        struct avs_st_writer *w = avs_st_writer_new();
        float *hp = avs_tensor_set_to_host(&m->params); /* the arena's layout */
        for (int i = 0; i < m->np; i++)
            if (strcmp(m->spec[i].name, "block2.0.attn.q.weight"))
                avs_st_writer_add_f32(w, m->spec[i].name, m->params.t[i].ndim, m->params.t[i].shape,
                                      hp + (m->params.t[i].data - m->params.arena.base));
        CHECK(avs_st_writer_save(w, p3, &err) == 0, "%s", err.msg);
        avs_st_writer_free(&w);
        free(hp);
        CHECK(avs_finetune_load(f2, p3, 0, &err) != 0 && strstr(err.msg, p3) &&
              strstr(err.msg, "block2.0.attn.q.weight"), "missing tensor message: %s", err.msg);
        avs_finetune_close(&f2);
    }
    *after = p1;
    free(p0), free(p2), free(p3);
}

/* Every part on the active backend; grads: the gradient set of test_gradients (host copy),
 * after: the checkpoint after two steps. */
static void run_backend(sqlite3 *db, const struct avs_tset *t, const float *audio, const float *alog,
                        const float *S, float **grads, size_t *ng, char **after)
{
    struct avs_err err;
    const char *root = check_tmpdir();
    struct avs_pvt_cfg c;
    tiny_cfg(&c);
    struct avs_pvt pv;
    avs_pvt_init_random(&pv, &c, 5);
    struct avs_finetune *ft = NULL;
    /* the set-config path: this hand-made set records no encoders */
    CHECK(avs_finetune_open(&ft, db, root, t, NULL, &err) != 0 && ft == NULL &&
          strstr(err.msg, "tiny"), "open from a set without encoder entries: %s", err.msg);
    CHECK(avs_finetune_open_pvt(&ft, db, root, t, &pv, S, &err) == 0, "open: %s", err.msg);
    struct avs_tbatch b1, b2;
    avs_tbatch_init(&b1, t, 1);
    avs_tbatch_init(&b2, t, 2);
    if (ft) {
        test_gradients(ft, t, &b1, grads, ng);
        test_batch(ft, t, &b2, audio, alog, S);
        test_step_and_io(ft, t, &b2, db, S, avs_ops()->name, after);
    }
    avs_tbatch_free(&b1);
    avs_tbatch_free(&b2);
    avs_finetune_close(&ft);
    avs_finetune_close(&ft);
}

/* A missing frame names the file (the store loses a frame: last). */
static void test_missing_frame(sqlite3 *db, const struct avs_tset *t, const float *S)
{
    struct avs_err err;
    const char *root = check_tmpdir();
    struct avs_pvt_cfg c;
    tiny_cfg(&c);
    struct avs_pvt pv;
    avs_pvt_init_random(&pv, &c, 5);
    struct avs_finetune *ft = NULL;
    CHECK(avs_finetune_open_pvt(&ft, db, root, t, &pv, S, &err) == 0, "open: %s", err.msg);
    struct avs_tbatch b1;
    avs_tbatch_init(&b1, t, 1);
    char *p = avs_fs_join(root, "frames/v0/3.png");
    remove(p);
    int idx[1] = {0};
    CHECK(ft && avs_finetune_batch(ft, t, idx, NULL, 1, 1, 0, &b1, &err) != 0 &&
          strstr(err.msg, "v0") && strstr(err.msg, "3.png"), "missing frame: %s", err.msg);
    free(p);
    avs_tbatch_free(&b1);
    avs_finetune_close(&ft);
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
    test_jitter();
    if (make_store(root, &db, audio, alog))
        return check_summary("test_finetune");
    struct avs_tset t;
    int rc = avs_tset_open_cache(&t, db, root, "tiny", &err);
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
        CHECK(grads[0] && grads[1] && ng[0] == ng[1] && !memcmp(grads[0], grads[1], ng[0] * sizeof(float)),
              "guard gives the cpu's backbone gradients");
        CHECK(after[0] && after[1] && file_eq(after[0], after[1]),
              "guard gives the cpu's checkpoint after two Adam steps (byte for byte)");
        test_missing_frame(db, &t, S);
        for (int k = 0; k < 2; k++)
            free(grads[k]), free(after[k]);
    }
    if (rc == 0)
        avs_tset_free(&t);
    avs_db_close(&db);
    return check_summary("test_finetune");
}
