/* tests/test_model_neck.c: the AVSBench baseline's head (model/c3n_head.h cfg.avsbench) without
 * Python: its composed neck (model/c3n_neck.c) against the four dilated 3x3 convs summed
 * directly (conv2d_fwd, dilations 3/6/12/18), and its loss (BCE alone, AVSBench's
 * F1_IoU_BCELoss on frame 1) and loss gradient against a double-precision loop; on every
 * backend. The PyTorch comparison of the whole head is tests/test_model_tpavi.sh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/c3n_blocks.h"
#include "model/c3n_head.h"
#include "tests/backends.h"
#include "tests/check.h"

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

static void test_head(void)
{
    struct avs_c3n_cfg cfg;
    avs_c3n_cfg_default(&cfg, 128); /* stages 32, 16, 8, 4 */
    int ch[4] = {3, 5, 7, 9};
    memcpy(cfg.C, ch, sizeof ch);
    cfg.T = 2, cfg.D = 6, cfg.Ci = 4, cfg.A = 5, cfg.O1 = 6, cfg.O2 = 4, cfg.avsbench = 1;
    struct avs_c3n_head h;
    avs_c3n_head_init(&h, &cfg, 1);
    avs_c3n_head_init_random(&h, 5);
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

int main(void)
{
    on_every_backend("avsbench head", test_head);
    return check_summary("test_model_neck");
}
