/* tests/test_backend_gelu.c: the cpu backend's GELU (backend/gelu_math.h, vectorised: no libm
 * call per element) against the exact function in double, y = x Phi(x) with
 * Phi(x) = erfc(-x / sqrt 2) / 2, and against the libm form it replaced,
 * 0.5 x (1 + erff(x / sqrt 2)), as the yardstick of float32 GELU:
 *  - forward, a dense grid of [-9, 9] (step 4.7e-6): error in units of the last place of
 *    max(|y|, |x| / 100) (the scale of the values that meet y downstream; past |x| = 9 both
 *    are 0 or x to all digits): mean and maximum, each at most the libm form's;
 *  - forward on [-9, -1], relative to y itself: at most 16 ulp (Phi is erfc / 2 there, computed
 *    from x, not from x / sqrt 2 rounded, which alone costs x^2 ulp; the libm form loses all
 *    digits past x = -5.5);
 *  - derivative Phi(x) + x phi(x): absolute error at most 1.5 times the libm form's largest
 *    (it cancels near x = -0.75, where both lose digits), mean below the libm form's;
 *  - specials: 0, -0, +-inf, NaN, huge and tiny x as torch.nn.GELU gives them;
 *  - position and threads: a value's result is the same wherever it sits in the array (vector
 *    body or tail) and with 1 or 2 threads.
 * On every registered backend (tests/backends.h): inputs uploaded, results downloaded, the bits
 * compared with the cpu backend's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/gelu_math.h"
#include "core/common.h"
#include "tests/backends.h"
#include "tests/check.h"

static double scaled_ulp(double scale)
{
    int e;
    frexp(fmax(fabs(scale), 1e-30), &e);
    return ldexp(1.0, e - 24);
}

static float libm_gelu(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
}

static float libm_grad(float x)
{
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
    return cdf + x * (0.39894228040143267794f * expf(-0.5f * x * x));
}

struct err {
    double max, sum;
};

static void add(struct err *e, double v)
{
    e->max = fmax(e->max, v), e->sum += v;
}

/* y = gelu(x), g = gelu'(x) (dy = 1) on the active backend, with the given threads. */
static void gelu_dev(float *y, float *g, const float *x, size_t n, int threads)
{
    float *one = avs_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        one[i] = 1.0f;
    float *xd = avs_dev_from_host(x, n), *od = avs_dev_from_host(one, n);
    float *yd = avs_dev_alloc(n, "gelu y"), *gd = avs_dev_alloc(n, "gelu dx");
    avs_ops_set_threads(threads);
    avs_ops()->zero(gd, n);
    avs_ops()->gelu_fwd(yd, xd, n);
    avs_ops()->gelu_bwd(gd, od, xd, n);
    avs_ops_set_threads(1);
    avs_dev_download(y, yd, n);
    avs_dev_download(g, gd, n);
    avs_dev_free(&xd), avs_dev_free(&od), avs_dev_free(&yd), avs_dev_free(&gd);
    free(one);
}

static void test_accuracy(void)
{
    size_t n = 0, cap = 4000000;
    float *x = avs_malloc(cap * sizeof(float)), *y = avs_malloc(cap * sizeof(float));
    float *g = avs_malloc(cap * sizeof(float));
    for (double v = -9.0; v <= 9.0 && n < cap; v += 4.7e-6)
        x[n++] = (float)v;
    gelu_dev(y, g, x, n, 2);
    struct err ours = {0}, libm = {0}, dours = {0}, dlibm = {0}, tail = {0};
    for (size_t i = 0; i < n; i++) {
        double X = x[i], phi = 0.5 * erfc(-X / sqrt(2.0)), pdf = exp(-0.5 * X * X) / sqrt(2 * M_PI);
        double ry = X * phi, rg = phi + X * pdf, u = scaled_ulp(fmax(fabs(ry), fabs(X) / 100));
        if (X <= -1.0)
            add(&tail, fabs(y[i] - ry) / scaled_ulp(ry));
        add(&ours, fabs(y[i] - ry) / u);
        add(&libm, fabs(libm_gelu(x[i]) - ry) / u);
        add(&dours, fabs(g[i] - rg));
        add(&dlibm, fabs(libm_grad(x[i]) - rg));
    }
    printf("gelu, %zu values in [-9, 9]: ours max %.2f mean %.3f ulp; libm form max %.2f mean %.3f\n",
           n, ours.max, ours.sum / n, libm.max, libm.sum / n);
    printf("gelu derivative, absolute: ours max %.3g mean %.3g; libm form max %.3g mean %.3g\n",
           dours.max, dours.sum / n, dlibm.max, dlibm.sum / n);
    printf("gelu on [-9, -1], relative to y: max %.2f ulp\n", tail.max);
    CHECK(tail.max <= 16, "gelu on [-9, -1]: %.2f ulp relative to y", tail.max);
    CHECK(ours.max <= libm.max, "gelu: largest error %.2f ulp, the libm form's %.2f", ours.max,
          libm.max);
    CHECK(ours.sum <= libm.sum, "gelu: mean error %.3f ulp, the libm form's %.3f", ours.sum / n,
          libm.sum / n);
    CHECK(dours.max <= 1.5 * dlibm.max, "derivative: largest error %.3g, the libm form's %.3g",
          dours.max, dlibm.max);
    CHECK(dours.sum <= dlibm.sum, "derivative: mean error %.3g, the libm form's %.3g",
          dours.sum / n, dlibm.sum / n);
    same_bits("gelu y", y, n);
    same_bits("gelu dx", g, n);
    free(x), free(y), free(g);
}

static void test_specials(void)
{
    const float in[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f, 40.0f, -40.0f,
                        3e38f, -3e38f};
    size_t n = sizeof in / sizeof *in;
    float y[sizeof in / sizeof *in], g[sizeof in / sizeof *in];
    gelu_dev(y, g, in, n, 1);
    CHECK(y[0] == 0 && !signbit(y[0]) && y[1] == 0 && signbit(y[1]), "gelu(+-0) = +-0");
    CHECK(y[2] == INFINITY && isnan(y[3]) && isnan(y[4]), "gelu(inf) = inf, gelu(-inf) and "
          "gelu(NaN) NaN (as 0.5 x (1 + erf) gives them): %g %g %g", y[2], y[3], y[4]);
    CHECK(y[5] == 0.5e-30f && y[6] == -0.5e-30f, "gelu(+-1e-30) = +-5e-31: %g %g", y[5], y[6]);
    CHECK(y[7] == 40.0f && y[8] == 0 && y[9] == 3e38f && y[10] == 0,
          "gelu of large |x|: x or 0: %g %g %g %g", y[7], y[8], y[9], y[10]);
    CHECK(g[0] == 0.5f && g[7] == 1.0f && g[8] == 0 && isnan(g[4]) && isnan(g[2]) &&
          isnan(libm_grad(INFINITY)), "derivative at 0, 40, -40, NaN, inf (NaN: x phi(x) is "
          "inf times 0, in the libm form too): %g %g %g %g %g", g[0], g[7], g[8], g[4], g[2]);
}

static void test_position(void)
{
    size_t n = 100003; /* past the parallel threshold, odd: a tail after the vector body */
    float *x = avs_malloc((n + 3) * sizeof(float)), *a = avs_malloc((n + 3) * sizeof(float));
    float *ga = avs_malloc((n + 3) * sizeof(float)), *b = avs_malloc(n * sizeof(float));
    float *gb = avs_malloc(n * sizeof(float));
    unsigned long long s = 7;
    for (size_t i = 0; i < n + 3; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((float)(s >> 40) / 8388608.0f - 1.0f) * 6.0f;
    }
    gelu_dev(a, ga, x, n + 3, 1);
    int same = 1;
    for (size_t off = 1; off <= 3; off++) { /* the same values shifted by 1..3 places, 2 threads */
        gelu_dev(b, gb, x + off, n, 2);
        same &= !memcmp(a + off, b, n * sizeof(float)) && !memcmp(ga + off, gb, n * sizeof(float));
    }
    CHECK(same, "gelu's bits depend on where a value sits or on the threads (%s)",
          avs_ops()->name);
    int one_at_a_time = 1;
    for (size_t i = 0; i < n && backend_cpu_based(); i++) /* as the CUDA kernels call it */
        one_at_a_time &= avs_gelu(x[i]) == a[i] || (isnan(a[i]) && isnan(avs_gelu(x[i])));
    CHECK(one_at_a_time, "the loop and avs_gelu one value at a time differ");
    free(x), free(a), free(ga), free(b), free(gb);
}

int main(void)
{
    avs_ops_set_threads(1);
    on_every_backend("gelu accuracy", test_accuracy);
    on_every_backend("gelu specials", test_specials);
    on_every_backend("gelu position and threads", test_position);
    return check_summary("test_backend_gelu");
}
