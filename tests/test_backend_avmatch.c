/* tests/test_backend_avmatch.c: the primitives of AVSBench's audio-visual matching loss
 * (backend/ops.h softmax_kl, adapool_fwd / adapool_bwd; model/c3n_avmatch.c) on every
 * registered backend (tests/backends.h):
 *  - adapool_fwd against a float64 recomputation of nn.AdaptiveAvgPool2d's windows, on sizes
 *    that divide, that do not (overlapping windows) and that upsample; adapool_bwd adds into
 *    dx and is the adjoint (<pool(x), dy> = <x, pool_bwd(dy)> in float64 on the results);
 *  - softmax_kl: the loss against float64 (1e-9 relative), the float64 form of its gradients
 *    against central differences of the float64 loss (the formulas), the backend's gradients
 *    within 1e-6 of the float64 ones; NULL gradients give the same loss; 1 thread and all
 *    threads give the same bits; every backend gives the cpu's.
 * The whole loss on the head is checked against PyTorch in tests/test_model_tpavi.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "tests/backends.h"
#include "tests/check.h"

static unsigned long long rng = 12345;

static float urand(void) /* [-3, 3) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 6.0 - 3.0);
}

static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = urand();
}

/* ---- adaptive average pool ---- */

static int lo(int i, int n, int m)
{
    return (int)((long)i * n / m);
}

static int hi(int i, int n, int m)
{
    return (int)(((long)(i + 1) * n + m - 1) / m);
}

static void pool64(double *y, const float *x, int NC, int H, int W, int OH, int OW)
{
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < OH; i++)
            for (int j = 0; j < OW; j++) {
                double s = 0;
                for (int r = lo(i, H, OH); r < hi(i, H, OH); r++)
                    for (int q = lo(j, W, OW); q < hi(j, W, OW); q++)
                        s += x[((size_t)c * H + r) * W + q];
                y[((size_t)c * OH + i) * OW + j] =
                    s / ((hi(i, H, OH) - lo(i, H, OH)) * (double)(hi(j, W, OW) - lo(j, W, OW)));
            }
}

static void pool_case(int NC, int H, int W, int OH, int OW)
{
    const struct avs_ops *op = avs_ops();
    size_t nx = (size_t)NC * H * W, ny = (size_t)NC * OH * OW;
    float *hx = avs_malloc(nx * sizeof(float)), *hdy = avs_malloc(ny * sizeof(float));
    double *want = avs_malloc(ny * sizeof(double));
    fill(hx, nx), fill(hdy, ny);
    pool64(want, hx, NC, H, W, OH, OW);
    float *x = avs_dev_from_host(hx, nx), *y = avs_dev_alloc(ny, "y");
    float *dy = avs_dev_from_host(hdy, ny), *dx = avs_dev_alloc(nx, "dx");
    op->adapool_fwd(y, x, NC, H, W, OH, OW);
    op->fill(dx, 1.0f, nx); /* bwd adds */
    op->adapool_bwd(dx, dy, NC, H, W, OH, OW);
    float *hy = avs_host_from_dev(y, ny), *hdx = avs_host_from_dev(dx, nx);
    double worst = 0, lhs = 0, rhs = 0, scale = 0;
    for (size_t i = 0; i < ny; i++) {
        worst = fmax(worst, fabs(hy[i] - want[i]));
        lhs += want[i] * hdy[i];
        scale += fabs(want[i] * hdy[i]);
    }
    for (size_t i = 0; i < nx; i++)
        rhs += (double)hx[i] * (hdx[i] - 1.0);
    char what[96];
    snprintf(what, sizeof what, "adapool %dx%d -> %dx%d", H, W, OH, OW);
    CHECK(worst <= 1e-6, "%s: forward %.3g from float64", what, worst);
    CHECK(fabs(lhs - rhs) <= 1e-6 * scale, "%s: backward not the adjoint: %.9g vs %.9g", what,
          lhs, rhs);
    same_bits(what, hy, ny);
    same_bits(what, hdx, nx);
    avs_dev_free(&x), avs_dev_free(&y), avs_dev_free(&dy), avs_dev_free(&dx);
    free(hx), free(hdy), free(want), free(hy), free(hdx);
}

/* ---- KL(softmax(a) || softmax(v)) summed over rows ---- */

static double lse(const double *x, int n)
{
    double m = x[0], s = 0;
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++)
        s += exp(x[i] - m);
    return m + log(s);
}

static double kl64(const double *v, const double *a, int rows, int n)
{
    double tot = 0;
    for (int r = 0; r < rows; r++) {
        const double *vr = v + (size_t)r * n, *ar = a + (size_t)r * n;
        double lv = lse(vr, n), la = lse(ar, n);
        for (int i = 0; i < n; i++)
            tot += exp(ar[i] - la) * ((ar[i] - la) - (vr[i] - lv));
    }
    return tot;
}

/* the gradients of k x kl64 by central differences (the formulas' independent check) */
static void kl_numeric(double *dv, double *da, double *v, double *a, int rows, int n, double k)
{
    double h = 1e-6;
    for (size_t i = 0; i < (size_t)rows * n; i++) {
        double *p[2] = {v, a}, *d[2] = {dv, da};
        for (int w = 0; w < 2; w++) {
            double keep = p[w][i];
            p[w][i] = keep + h;
            double up = kl64(v, a, rows, n);
            p[w][i] = keep - h;
            double down = kl64(v, a, rows, n);
            p[w][i] = keep;
            d[w][i] = k * (up - down) / (2 * h);
        }
    }
}

static double dist(const float *g, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += (g[i] - ref[i]) * (g[i] - ref[i]), den += ref[i] * ref[i];
    return sqrt(num / (den > 0 ? den : 1));
}

static void kl_case(int rows, int n, float k)
{
    const struct avs_ops *op = avs_ops();
    size_t tot = (size_t)rows * n;
    float *hv = avs_malloc(tot * sizeof(float)), *ha = avs_malloc(tot * sizeof(float));
    double *v64 = avs_malloc(tot * sizeof(double)), *a64 = avs_malloc(tot * sizeof(double));
    double *dv64 = avs_malloc(tot * sizeof(double)), *da64 = avs_malloc(tot * sizeof(double));
    fill(hv, tot), fill(ha, tot);
    for (size_t i = 0; i < tot; i++)
        v64[i] = hv[i], a64[i] = ha[i];
    double want = kl64(v64, a64, rows, n);
    kl_numeric(dv64, da64, v64, a64, rows, n, k);
    float *v = avs_dev_from_host(hv, tot), *a = avs_dev_from_host(ha, tot);
    float *dv = avs_dev_alloc(tot, "dv"), *da = avs_dev_alloc(tot, "da");
    double loss = op->softmax_kl(dv, da, v, a, rows, n, k);
    float *hdv = avs_host_from_dev(dv, tot), *hda = avs_host_from_dev(da, tot);
    char what[64];
    snprintf(what, sizeof what, "softmax_kl rows=%d cols=%d", rows, n);
    CHECK_NEAR(loss, want, 0, 1e-9, what);
    /* central differences are good to ~1e-9 here; float32 outputs to ~1e-7 */
    CHECK(dist(hdv, dv64, tot) < 1e-6 && dist(hda, da64, tot) < 1e-6,
          "%s: gradients from float64: dv %.3g, da %.3g", what, dist(hdv, dv64, tot),
          dist(hda, da64, tot));
    CHECK(op->softmax_kl(NULL, NULL, v, a, rows, n, k) == loss, "%s: NULL gradients: another loss",
          what);
    avs_ops_set_threads(1);
    double l1 = op->softmax_kl(dv, da, v, a, rows, n, k);
    avs_ops_set_threads(0);
    float *hdv1 = avs_host_from_dev(dv, tot);
    CHECK(l1 == loss && !memcmp(hdv1, hdv, tot * sizeof(float)), "%s: 1 thread: other bits", what);
    float lf = (float)loss;
    same_bits(what, &lf, 1);
    same_bits(what, hdv, tot);
    same_bits(what, hda, tot);
    avs_dev_free(&v), avs_dev_free(&a), avs_dev_free(&dv), avs_dev_free(&da);
    free(hv), free(ha), free(v64), free(a64), free(dv64), free(da64);
    free(hdv), free(hda), free(hdv1);
}

static void test_avmatch(void)
{
    pool_case(3, 8, 8, 2, 2);   /* windows tile the map (the head's case) */
    pool_case(2, 7, 10, 3, 4);  /* overlapping windows */
    pool_case(2, 3, 2, 5, 4);   /* more outputs than inputs */
    pool_case(40, 64, 64, 8, 8); /* large enough for the parallel loops */
    kl_case(5, 37, 0.125f);
    kl_case(3, 256, 1.0f);
}

int main(void)
{
    avs_ops_set_threads(0);
    backends_keep(&rng, sizeof rng);
    on_every_backend("avmatch", test_avmatch);
    return check_summary("test_backend_avmatch");
}
