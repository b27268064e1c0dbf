/* tests/test_backend_ce.c: the backend's pixel-wise cross-entropy (backend/ops.h softmax_ce,
 * the AVSS loss) on every registered backend (tests/backends.h):
 *  - loss and gradient against float64 (a recomputation here, and PyTorch's float64 in
 *    tests/fixtures/train/ce.safetensors from tests/gen/train_ce.py): the gradient within 2x of
 *    PyTorch float32's own distance from float64 (+1e-7), the loss within 1e-6 relative;
 *  - unknown labels (255) count as class 0, as the official AVSS loader maps them;
 *  - dx NULL gives the same loss; 1 thread and all threads give the same bits; every backend
 *    gives the cpu's bits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/safetensors.h"
#include "tests/backends.h"
#include "tests/check.h"

#define FIX "tests/fixtures/train/ce.safetensors"

static struct avs_st_file *fx;
static const char *cases[] = {"small", "avss", "wide"};
static const int dims[][3] = {{2, 5, 37}, {3, 71, 300}, {1, 3, 1029}}; /* B, C, n: train_ce.py */

static float *fget(const char *cs, const char *what, size_t want)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", cs, what);
    const struct avs_st_tensor *t = avs_st_find(fx, name);
    CHECK(t && t->numel == want, "fixture %s: missing or not %zu values", name, want);
    float *p = avs_calloc(want + 1, sizeof(float));
    struct avs_err err;
    if (t && t->numel == want)
        AVS_ASSERT(avs_st_read_f32(t, p, want, &err) == 0);
    return p;
}

/* float64 loss and gradient */
static double ref64(double *dx, const float *x, const float *lab, int B, int C, int n, double scale)
{
    double sum = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            const float *xp = x + (size_t)b * C * n + i;
            int l = (int)lab[(size_t)b * n + i];
            l = l >= 0 && l < C ? l : 0;
            double m = xp[0], s = 0;
            for (int c = 1; c < C; c++)
                m = xp[(size_t)c * n] > m ? xp[(size_t)c * n] : m;
            for (int c = 0; c < C; c++)
                s += exp(xp[(size_t)c * n] - m);
            double lse = m + log(s);
            sum += lse - xp[(size_t)l * n];
            for (int c = 0; c < C; c++)
                dx[((size_t)b * C + c) * n + i] =
                    scale * (exp(xp[(size_t)c * n] - lse) - (c == l)) / ((double)B * n);
        }
    return sum / ((double)B * n);
}

static double dist(const float *a, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - ref[i];
        num += d * d, den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void one_case(int k)
{
    const char *cs = cases[k];
    int B = dims[k][0], C = dims[k][1], n = dims[k][2];
    size_t nx = (size_t)B * C * n, nl = (size_t)B * n;
    float *hx = fget(cs, "x", nx), *hl = fget(cs, "lab", nl), *sc = fget(cs, "scale", 1);
    float *d32 = fget(cs, "dx32", nx), *d64f = fget(cs, "dx64", nx), *l32 = fget(cs, "loss32", 1);
    double *d64 = avs_malloc(nx * sizeof(double));
    double want = ref64(d64, hx, hl, B, C, n, sc[0]);
    /* our float64 agrees with PyTorch's float64 (stored as float32) */
    CHECK(dist(d64f, d64, nx) < 1e-6, "%s: float64 gradient vs PyTorch float64: %.3g", cs,
          dist(d64f, d64, nx));
    float *x = avs_dev_from_host(hx, nx), *lab = avs_dev_from_host(hl, nl);
    float *dx = avs_dev_alloc(nx, "dx");
    const struct avs_ops *op = avs_ops();
    double loss = op->softmax_ce(dx, x, lab, B, C, n, sc[0]);
    float *got = avs_host_from_dev(dx, nx);
    CHECK_NEAR(loss, want, 0, 1e-6, cs);
    CHECK(fabs(l32[0] - want) <= 1e-5 * fabs(want), "%s: PyTorch float32 loss %.9g vs %.9g", cs,
          l32[0], want);
    double e = dist(got, d64, nx), et = dist(d32, d64, nx);
    CHECK(e <= 2 * et + 1e-7, "%s: gradient %.3g from float64, PyTorch float32 %.3g", cs, e, et);
    printf("%s on %s: loss %.9g (float64 %.9g), gradient %.2g from float64 (PyTorch float32 %.2g)\n",
           cs, op->name, loss, want, e, et);
    CHECK(op->softmax_ce(NULL, x, lab, B, C, n, sc[0]) == loss, "%s: dx NULL: another loss", cs);
    avs_ops_set_threads(1);
    double l1 = op->softmax_ce(dx, x, lab, B, C, n, sc[0]);
    avs_ops_set_threads(0);
    float *got1 = avs_host_from_dev(dx, nx);
    CHECK(l1 == loss && !memcmp(got1, got, nx * sizeof(float)), "%s: 1 thread: other bits", cs);
    same_bits(cs, got, nx);
    float lf = (float)loss;
    same_bits("loss", &lf, 1);
    avs_dev_free(&x), avs_dev_free(&lab), avs_dev_free(&dx);
    free(hx), free(hl), free(sc), free(d32), free(d64f), free(l32), free(d64), free(got), free(got1);
}

/* 255 (unknown) is class 0: the same loss as the labels with 0 in its place */
static void unknown_is_background(void)
{
    float hx[2 * 3 * 2] = {1, 2, -1, 0.5f, 3, -2, 0, 1, 2, 2, -1, 1}, hl[4] = {255, 2, 0, 1};
    float hl0[4] = {0, 2, 0, 1};
    float *x = avs_dev_from_host(hx, 12), *a = avs_dev_from_host(hl, 4), *b = avs_dev_from_host(hl0, 4);
    double la = avs_ops()->softmax_ce(NULL, x, a, 2, 3, 2, 1.0f);
    double lb = avs_ops()->softmax_ce(NULL, x, b, 2, 3, 2, 1.0f);
    CHECK(la == lb, "255 counts as class 0: %.9g vs %.9g", la, lb);
    avs_dev_free(&x), avs_dev_free(&a), avs_dev_free(&b);
}

static void test_ce(void)
{
    for (int k = 0; k < 3; k++)
        one_case(k);
    unknown_is_background();
}

int main(void)
{
    struct avs_err err = {0};
    if (avs_st_open(FIX, &fx, &err)) {
        fprintf(stderr, "%s (regenerate with /usr/bin/python3 tests/gen/train_ce.py)\n", err.msg);
        return 1;
    }
    avs_ops_set_threads(0);
    on_every_backend("softmax_ce", test_ce);
    avs_st_close(&fx);
    return check_summary("test_backend_ce");
}
