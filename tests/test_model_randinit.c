/* tests/test_model_randinit.c: `--random-init` parameters: the generator's statistics and
 * determinism, PVTv2-b0 and full-size VGGish initialised at random (the official widths' code
 * path, which the reduced fixtures do not take): finite outputs, same seed = same bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/pvt.h"
#include "model/randinit.h"
#include "model/vggish.h"
#include "backend/ops.h"
#include "tests/check.h"

static void check_generator(void)
{
    size_t n = 200000;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    avs_randinit_normal(a, n, 0.02f, 7, 3);
    double s = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i], s2 += (double)a[i] * a[i], mx = fmax(mx, fabs(a[i]));
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    CHECK(fabs(mean) < 2e-4, "normal mean %g", mean);
    CHECK(fabs(sd - 0.02 * 0.8796) < 3e-4, "truncated normal std %g (expected 0.0176)", sd);
    CHECK(mx <= 0.04 + 1e-7, "truncated at 2 std: max %g", mx);
    avs_randinit_normal(b, n, 0.02f, 7, 3);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0, "same seed and stream: same bits");
    avs_randinit_normal(b, n, 0.02f, 7, 4);
    CHECK(memcmp(a, b, n * sizeof(float)) != 0, "another stream differs");
    avs_randinit_uniform(a, n, 0.5f, 1, 1);
    s = 0, mx = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i], mx = fmax(mx, fabs(a[i]));
    CHECK(fabs(s / n) < 3e-3 && mx <= 0.5 && mx > 0.49, "uniform: mean %g max %g", s / n, mx);
    free(a), free(b);
}

static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

static void check_pvt(void)
{
    struct avs_pvt_cfg c;
    avs_pvt_cfg_variant(&c, "b0");
    struct avs_pvt m1, m2;
    avs_pvt_init_random(&m1, &c, 5);
    avs_pvt_init_random(&m2, &c, 5);
    CHECK(m1.params.arena.used == m2.params.arena.used &&
              !memcmp(m1.params.arena.base, m2.params.arena.base, m1.params.arena.used * sizeof(float)),
          "same seed: same parameters");
    int iq = avs_tensor_set_find(&m1.params, "block1.0.attn.q.weight"),
        in = avs_tensor_set_find(&m1.params, "norm4.weight"),
        ib = avs_tensor_set_find(&m1.params, "head.bias");
    CHECK(iq >= 0 && in >= 0 && ib >= 0, "official names present");
    if (iq >= 0 && in >= 0 && ib >= 0) {
        CHECK(m1.params.t[in].data[0] == 1.0f && m1.params.t[ib].data[9] == 0.0f, "LayerNorm 1, bias 0");
        CHECK(fabs(m1.params.t[iq].data[0]) <= 0.04f, "linear std 0.02");
    }
    int N = 1, S = 64;
    float *x = malloc((size_t)3 * S * S * sizeof(float)), *st[4], lg[1000], lg2[1000], *gc[4];
    avs_randinit_uniform(x, (size_t)3 * S * S, 1.0f, 9, 0);
    for (int s = 0; s < 4; s++) {
        size_t side = (size_t)avs_pvt_side(S, s);
        st[s] = malloc(c.dims[s] * side * side * sizeof(float));
        gc[s] = malloc(c.dims[s] * sizeof(float));
    }
    avs_pvt_fwd(&m1, st, lg, x, N, S, S);
    CHECK(all_finite(lg, 1000) && all_finite(st[0], (size_t)c.dims[0] * 16 * 16), "finite outputs");
    int target = 17;
    avs_pvt_gradcam(&m2, gc, st, lg2, x, &target, N, S, S);
    CHECK(memcmp(lg, lg2, sizeof lg) == 0, "same seed: same logits");
    CHECK(all_finite(gc[3], (size_t)c.dims[3]) && all_finite(gc[0], (size_t)c.dims[0]), "finite Grad-CAM");
    struct avs_pvt m3;
    avs_pvt_init_random(&m3, &c, 6);
    avs_pvt_fwd(&m3, st, lg2, x, N, S, S);
    CHECK(memcmp(lg, lg2, sizeof lg) != 0, "another seed: other logits");
    for (int s = 0; s < 4; s++)
        free(st[s]), free(gc[s]);
    free(x);
    avs_pvt_free(&m1), avs_pvt_free(&m2), avs_pvt_free(&m3);
}

static void check_vggish(void)
{
    struct avs_vggish m;
    avs_vggish_init_random(&m, 527, 3);
    CHECK(m.ch[5] == 512 && m.fc[0] == 4096 && m.fc[2] == 128 && m.classes == 527, "official widths");
    float *x = malloc(2 * 96 * 64 * sizeof(float)), emb[2 * 128], lg[2 * 527];
    for (int i = 0; i < 2 * 96 * 64; i++)
        x[i] = (float)(-4.0 + 6.0 * ((i * 37) % 101) / 100.0); /* log-mel-like range */
    float *ws = malloc(avs_vggish_ws(&m, 2) * sizeof(float));
    avs_vggish_fwd(&m, emb, lg, x, 2, ws);
    int nonneg = 1, nonzero = 0;
    for (int i = 0; i < 256; i++)
        nonneg &= emb[i] >= 0, nonzero += emb[i] > 0;
    CHECK(nonneg && nonzero > 10 && all_finite(lg, 2 * 527), "embedding after ReLU: %d > 0", nonzero);
    float e1[128];
    avs_vggish_fwd(&m, e1, NULL, x + 96 * 64, 1, ws);
    /* GEMMs of 1 and 2 rows may take different BLAS kernels: equal to rounding, not in bits */
    for (int i = 0; i < 128; i++)
        CHECK_NEAR(e1[i], emb[128 + i], 1e-6, 1e-5, "batch of 2 = one at a time");
    free(ws), free(x);
    avs_vggish_free(&m);
}

int main(void)
{
    avs_ops_set_threads(2);
    check_generator();
    check_pvt();
    check_vggish();
    return check_summary("test_model_randinit");
}
