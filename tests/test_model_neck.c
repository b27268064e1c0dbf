/* tests/test_model_neck.c: the AVSBench baseline's head (model/c3n_head.h cfg.avsbench) without
 * Python: its composed neck (model/c3n_neck.c) against the four dilated 3x3 convs summed
 * directly (conv2d_fwd, dilations 3/6/12/18), its loss (BCE alone, AVSBench's F1_IoU_BCELoss
 * on frame 1) and loss gradient against a double-precision loop, and the gradient of its
 * inputs x1..x4 (what `avs-train --model tpavi --mode finetune` hands to the backbone: the
 * neck is the only consumer of x_s; its backward's data gradient) against central finite
 * differences of sum(da * neck(x)) on every stage; on every backend. The PyTorch comparison of the
 * whole head is tests/test_model_tpavi.sh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/c3n_blocks.h"
#include "model/c3n_head.h"
#include "tests/backends.h"
#include "tests/check.h"
#include "tests/devfloat.h"

static float urand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2.0 - 1.0);
}

static float *dev_random(size_t n, unsigned *seed)
{
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        h[i] = urand(seed);
    float *d = avs_dev_from_host(h, n);
    free(h);
    return d;
}

/* A tiny baseline head (one video of 2 frames; stages 32, 16, 8, 4 at 3/5/7/9 channels),
 * randomly initialised. */
static void tiny_head(struct avs_c3n_head *h)
{
    struct avs_c3n_cfg cfg;
    avs_c3n_cfg_default(&cfg, 128);
    int ch[4] = {3, 5, 7, 9};
    memcpy(cfg.C, ch, sizeof ch);
    cfg.T = 2, cfg.D = 6, cfg.Ci = 4, cfg.A = 5, cfg.O1 = 6, cfg.O2 = 4, cfg.avsbench = 1;
    avs_c3n_head_init(h, &cfg, 1);
    avs_c3n_head_init_random(h, 5);
}

static void test_head(void)
{
    struct avs_c3n_head h;
    tiny_head(&h);
    const struct avs_c3n_cfg cfg = h.cfg;
    unsigned seed = 7;
    float *x[4], *audio = dev_random((size_t)h.B * cfg.A, &seed);
    for (int s = 0; s < 4; s++)
        x[s] = dev_random((size_t)h.B * cfg.C[s] * cfg.H[s] * cfg.W[s], &seed);
    avs_c3n_head_fwd(&h, (const float *const *)x, audio, 1);
    /* the neck of stage 1 (TPAVI rewrites st->a later only through its own buffers) */
    int s = 0, hw = cfg.H[s] * cfg.W[s];
    size_t na = (size_t)h.B * cfg.D * hw;
    float *got = avs_host_from_dev(h.st[s].a, na), *want = calloc(na, sizeof(float));
    float *y = avs_dev_alloc(na, "y");
    static const int dil[4] = {3, 6, 12, 18};
    for (int b = 0; b < 4; b++) {
        struct avs_conv2d g;
        avs_conv2d_geom(&g, h.B, cfg.C[s], cfg.H[s], cfg.W[s], cfg.D, 3, 3, 1, dil[b], dil[b], 1);
        float *ws = avs_dev_alloc(avs_conv2d_ws(&g) + 1, "ws");
        int k = h.st[s].k.br[b];
        avs_ops()->conv2d_fwd(y, x[s], h.params.t[k].data, h.params.t[k + 1].data, &g, ws);
        float *yh = avs_host_from_dev(y, na);
        for (size_t i = 0; i < na; i++)
            want[i] += yh[i];
        free(yh);
        avs_dev_free(&ws);
    }
    double worst = 0;
    for (size_t i = 0; i < na; i++)
        worst = fmax(worst, fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i])));
    CHECK(worst < 1e-5, "composed neck vs four dilated convs summed: worst %.3g", worst);
    same_bits("neck", got, na);
    /* loss: BCE alone over frame 0 */
    size_t n = (size_t)16 * cfg.H[0] * cfg.W[0];
    float *mh = malloc((size_t)h.B * n * sizeof(float));
    for (size_t i = 0; i < (size_t)h.B * n; i++)
        mh[i] = urand(&seed) > 0.3f ? 1.0f : 0.0f;
    float *mask = avs_dev_from_host(mh, (size_t)h.B * n), *dl = avs_dev_alloc((size_t)h.B * n, "dl");
    float *sl = avs_dev_alloc(2 * (size_t)h.B * n, "sl"), *sm = avs_dev_alloc((size_t)h.B * n, "sm");
    int fm[2] = {1, 0};
    double loss = avs_c3n_head_loss(&h, mask, fm, dl, sl, sm);
    float *lg = avs_host_from_dev(h.logits, (size_t)h.B * n), *dh = avs_host_from_dev(dl, (size_t)h.B * n);
    double ref = 0, dworst = 0;
    for (size_t i = 0; i < n; i++) {
        double z = lg[i], g = mh[i];
        ref += fmax(z, 0) - z * g + log1p(exp(-fabs(z)));
        double d = (1 / (1 + exp(-z)) - g) / (double)n;
        dworst = fmax(dworst, fabs(dh[i] - d) / (1e-3 / (double)n + fabs(d)));
    }
    ref /= (double)n;
    CHECK(fabs(loss - ref) <= 1e-6 * fabs(ref), "BCE-only loss %.9g, double loop %.9g", loss, ref);
    CHECK(dworst < 1e-5, "loss gradient of frame 1: worst relative %.3g", dworst);
    int zero = 1;
    for (size_t i = n; i < 2 * n; i++)
        zero &= dh[i] == 0.0f;
    CHECK(zero, "no gradient on the frame without a mask");
    free(got), free(want), free(mh), free(lg), free(dh);
    avs_dev_free(&y), avs_dev_free(&mask), avs_dev_free(&dl), avs_dev_free(&sl), avs_dev_free(&sm);
    for (int k = 0; k < 4; k++)
        avs_dev_free(&x[k]);
    avs_dev_free(&audio);
    avs_c3n_head_free(&h);
}

/* ---- input gradients: the neck's x_s -> a_s ---- */

static size_t x_numel(const struct avs_c3n_head *h, int s)
{
    return (size_t)h->B * h->cfg.C[s] * h->cfg.H[s] * h->cfg.W[s];
}

/* sum(r * neck_s(x)) in double (the neck's output a_s [B,D,H_s,W_s], n floats). */
static double neck_loss(struct avs_c3n_head *h, int s, const float *x, const float *r, size_t n)
{
    avs_c3n_neck_fwd(h, s, x);
    float *a = avs_host_from_dev(h->st[s].a, n);
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)r[i] * a[i];
    free(a);
    return acc;
}

/* Probe q of a stage: the element with the largest |gradient| first, then pseudo-random ones
 * (borders included: the dilated taps that read padding are left out there). */
static size_t probe_index(const float *g, size_t n, int q, unsigned *seed)
{
    if (q > 0)
        return (size_t)((urand(seed) + 1.0f) * 0.5f * (float)(n - 1));
    size_t best = 0;
    for (size_t k = 1; k < n; k++)
        if (fabsf(g[k]) > fabsf(g[best]))
            best = k;
    return best;
}

/* Stage s: the neck's backward (what the head's backward calls with TPAVI's gradient, and
 * what fine-tuning passes on to the backbone) for a random da = r against central differences
 * of sum(r * a_s(x)); the neck is linear in x, so the only error is float32 rounding. Returns
 * the worst relative error. */
static double check_stage(struct avs_c3n_head *h, float *x, int s, unsigned *seed)
{
    size_t n = x_numel(h, s), na = (size_t)h->B * h->cfg.D * h->cfg.H[s] * h->cfg.W[s];
    float *r = malloc(na * sizeof(float));
    for (size_t i = 0; i < na; i++)
        r[i] = urand(seed);
    float *da = avs_dev_from_host(r, na), *dx = avs_dev_alloc(n, "dx");
    avs_ops()->zero(dx, n);
    avs_c3n_neck_bwd(h, s, da, dx);
    float *g = avs_host_from_dev(dx, n);
    same_bits("neck input gradient", g, n);
    double worst = 0;
    for (int q = 0; q < 6; q++) {
        size_t i = probe_index(g, n, q, seed);
        float x0 = get1(x + i), e = 0.25f;
        set1(x + i, x0 + e);
        double lp = neck_loss(h, s, x, r, na);
        set1(x + i, x0 - e);
        double lm = neck_loss(h, s, x, r, na);
        set1(x + i, x0);
        double fd = (lp - lm) / (2.0 * e), an = g[i], err = fabs(fd - an) / (1e-2 + fabs(fd));
        CHECK(err < 1e-4, "stage %d x[%zu]: analytic %.7g, finite difference %.7g", s + 1, i, an, fd);
        CHECK(q > 0 || fabs(an) > 1e-2, "stage %d: no gradient reaches x (largest %.3g)", s + 1, an);
        worst = fmax(worst, err);
    }
    free(r), free(g);
    avs_dev_free(&da), avs_dev_free(&dx);
    return worst;
}

static void test_input_grads(void)
{
    struct avs_c3n_head h;
    tiny_head(&h);
    unsigned seed = 11;
    float *x[4], *audio = dev_random((size_t)h.B * h.cfg.A, &seed);
    for (int s = 0; s < 4; s++)
        x[s] = dev_random(x_numel(&h, s), &seed);
    avs_c3n_head_fwd(&h, (const float *const *)x, audio, 1); /* the backward's saved inputs */
    double worst = 0;
    for (int s = 0; s < 4; s++)
        worst = fmax(worst, check_stage(&h, x[s], s, &seed));
    printf("neck input gradients (4 stages x 6 elements): worst relative error %.3g\n", worst);
    avs_dev_free(&audio);
    for (int s = 0; s < 4; s++)
        avs_dev_free(&x[s]);
    avs_c3n_head_free(&h);
}

int main(void)
{
    on_every_backend("avsbench head", test_head);
    on_every_backend("avsbench head: input gradients", test_input_grads);
    return check_summary("test_model_neck");
}
