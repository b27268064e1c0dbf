/* tests/test_model_randinit.c: `--random-init` parameters: the generator's statistics and
 * determinism, PVTv2-b0 and full-size VGGish initialised at random (the official widths' code
 * path, which the reduced fixtures do not take): finite outputs, same seed = same bits, on
 * every backend (cpu and guard give the same bits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "model/pvt.h"
#include "model/randinit.h"
#include "model/vggish.h"
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

/* host copy of tensor `name` of a set */
static float *tensor_host(const struct avs_tensor_set *s, const char *name)
{
    int i = avs_tensor_set_find(s, name);
    CHECK(i >= 0, "official name %s present", name);
    if (i < 0)
        return NULL;
    float *h = malloc(avs_tensor_numel(&s->t[i]) * sizeof(float));
    avs_tensor_set_download(s, i, h);
    return h;
}

/* PVTv2-b0 at random on the active backend; its logits (host, [1000]) into lg. */
static void check_pvt(float *lg)
{
    struct avs_pvt_cfg c;
    avs_pvt_cfg_variant(&c, "b0");
    struct avs_pvt m1, m2;
    avs_pvt_init_random(&m1, &c, 5);
    avs_pvt_init_random(&m2, &c, 5);
    float *p1 = avs_tensor_set_to_host(&m1.params), *p2 = avs_tensor_set_to_host(&m2.params);
    CHECK(m1.params.arena.used == m2.params.arena.used &&
              !memcmp(p1, p2, m1.params.arena.used * sizeof(float)),
          "same seed: same parameters");
    free(p1), free(p2);
    float *q = tensor_host(&m1.params, "block1.0.attn.q.weight"),
          *nw = tensor_host(&m1.params, "norm4.weight"), *hb = tensor_host(&m1.params, "head.bias");
    if (q && nw && hb) {
        CHECK(nw[0] == 1.0f && hb[9] == 0.0f, "LayerNorm 1, bias 0");
        CHECK(fabs(q[0]) <= 0.04f, "linear std 0.02");
    }
    free(q), free(nw), free(hb);
    int N = 1, S = 64;
    float *xh = malloc((size_t)3 * S * S * sizeof(float)), *st[4], *gc[4], lg2[1000], g3[256];
    avs_randinit_uniform(xh, (size_t)3 * S * S, 1.0f, 9, 0);
    float *x = avs_dev_from_host(xh, (size_t)3 * S * S), *lgd = avs_dev_alloc(1000, "logits");
    for (int s = 0; s < 4; s++) {
        size_t side = (size_t)avs_pvt_side(S, s);
        st[s] = avs_dev_alloc(c.dims[s] * side * side, "stage");
        gc[s] = avs_dev_alloc(c.dims[s], "gradcam");
    }
    struct avs_pvt_ws ws;
    avs_pvt_ws_init(&ws, &m1, N, S, S, AVS_PVT_GRADCAM);
    avs_pvt_fwd(&m1, &ws, st, lgd, x, N);
    avs_dev_download(lg, lgd, 1000);
    float *s0 = avs_host_from_dev(st[0], (size_t)c.dims[0] * 16 * 16);
    CHECK(all_finite(lg, 1000) && all_finite(s0, (size_t)c.dims[0] * 16 * 16), "finite outputs");
    free(s0);
    int target = 17;
    avs_pvt_gradcam(&m2, &ws, gc, st, lgd, x, &target, N);
    avs_dev_download(lg2, lgd, 1000);
    CHECK(memcmp(lg, lg2, 1000 * sizeof(float)) == 0, "same seed: same logits");
    avs_dev_download(g3, gc[3], (size_t)c.dims[3]);
    float *g0 = avs_host_from_dev(gc[0], (size_t)c.dims[0]);
    CHECK(all_finite(g3, (size_t)c.dims[3]) && all_finite(g0, (size_t)c.dims[0]), "finite Grad-CAM");
    free(g0);
    struct avs_pvt m3;
    avs_pvt_init_random(&m3, &c, 6);
    avs_pvt_fwd(&m3, &ws, st, lgd, x, N);
    avs_dev_download(lg2, lgd, 1000);
    CHECK(memcmp(lg, lg2, 1000 * sizeof(float)) != 0, "another seed: other logits");
    for (int s = 0; s < 4; s++)
        avs_dev_free(&st[s]), avs_dev_free(&gc[s]);
    avs_dev_free(&x), avs_dev_free(&lgd);
    free(xh);
    avs_pvt_ws_free(&ws);
    avs_pvt_free(&m1), avs_pvt_free(&m2), avs_pvt_free(&m3);
}

/* Full-size VGGish at random on the active backend; embeddings of 2 examples into emb [256]. */
static void check_vggish(float *emb)
{
    struct avs_vggish m;
    avs_vggish_init_random(&m, 527, 3);
    CHECK(m.ch[5] == 512 && m.fc[0] == 4096 && m.fc[2] == 128 && m.classes == 527, "official widths");
    float *xh = malloc(2 * 96 * 64 * sizeof(float)), lg[2 * 527], e1[128];
    for (int i = 0; i < 2 * 96 * 64; i++)
        xh[i] = (float)(-4.0 + 6.0 * ((i * 37) % 101) / 100.0); /* log-mel-like range */
    float *x = avs_dev_from_host(xh, 2 * 96 * 64), *ws = avs_dev_alloc(avs_vggish_ws(&m, 2), "ws");
    float *embd = avs_dev_alloc(2 * 128, "emb"), *lgd = avs_dev_alloc(2 * 527, "logits");
    avs_vggish_fwd(&m, embd, lgd, x, 2, ws);
    avs_dev_download(emb, embd, 256);
    avs_dev_download(lg, lgd, 2 * 527);
    int nonneg = 1, nonzero = 0;
    for (int i = 0; i < 256; i++)
        nonneg &= emb[i] >= 0, nonzero += emb[i] > 0;
    CHECK(nonneg && nonzero > 10 && all_finite(lg, 2 * 527), "embedding after ReLU: %d > 0", nonzero);
    avs_vggish_fwd(&m, embd, NULL, x + 96 * 64, 1, ws);
    avs_dev_download(e1, embd, 128);
    /* GEMMs of 1 and 2 rows may take different BLAS kernels: equal to rounding, not in bits */
    for (int i = 0; i < 128; i++)
        CHECK_NEAR(e1[i], emb[128 + i], 1e-6, 1e-5, "batch of 2 = one at a time");
    avs_dev_free(&x), avs_dev_free(&ws), avs_dev_free(&embd), avs_dev_free(&lgd);
    free(xh);
    avs_vggish_free(&m);
}

int main(void)
{
    avs_ops_set_threads(2);
    check_generator();
    float lg[2][1000], emb[2][256];
    for (int b = 0; b < 2 && avs_backend_at(b); b++) { /* cpu, then guard: the same bits */
        avs_backend_set(avs_backend_at(b));
        check_pvt(lg[b]);
        check_vggish(emb[b]);
        if (b)
            CHECK(!memcmp(lg[0], lg[1], sizeof lg[0]) && !memcmp(emb[0], emb[1], sizeof emb[0]),
                  "%s gives the cpu's PVTv2 logits and VGGish embeddings", avs_ops()->name);
    }
    avs_backend_set(avs_backend_cpu());
    return check_summary("test_model_randinit");
}
