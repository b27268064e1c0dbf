/* tests/test_backend_attpool.c: the AudioSet attention head's primitives (backend/ops.h,
 * "audioset") on every backend against references written here from their contracts:
 *  - attpool_fwd over variable-length clips (off) and fixed T (off NULL) vs a float64 loop,
 *    including saturated attention logits (the clamp); attpool_bwd vs central finite
 *    differences of the float64 forward (the clamped entries get no gradient), and adding
 *  - quant8_fwd vs the postprocessor's formula in double, on values at the clip limits and on
 *    0 (an exact half step)
 *  - dropout_fwd: the kept fraction near 1 - p, kept values x / (1 - p), the mask a function
 *    of the seed alone; dropout_bwd adds dy * mask */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "tests/backends.h"
#include "tests/check.h"

#define NCLIP 4
#define C 7
#define EPS 1e-7f

static const int offs[NCLIP + 1] = {0, 3, 4, 9, 11}; /* clips of 3, 1, 5 and 2 rows */
#define R 11
static float ha[R * C], hv[R * C], hdy[NCLIP * C];

static uint64_t rs = 5;
static double unif(void) /* [0,1) */
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rs >> 11) * (1.0 / 9007199254740992.0);
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* y[n,c] in double from a, v (float values) */
static void ref_fwd(double *y, const double *a, const double *v)
{
    for (int n = 0; n < NCLIP; n++)
        for (int c = 0; c < C; c++) {
            double G = 0, S = 0;
            for (int r = offs[n]; r < offs[n + 1]; r++) {
                double g = clampd(1 / (1 + exp(-a[r * C + c])), EPS, (double)(1 - EPS));
                G += g, S += g * v[r * C + c];
            }
            y[n * C + c] = S / G;
        }
}

/* sum dy . y as a function of (a, v) */
static double ref_obj(const double *a, const double *v)
{
    double y[NCLIP * C], s = 0;
    ref_fwd(y, a, v);
    for (int i = 0; i < NCLIP * C; i++)
        s += hdy[i] * y[i];
    return s;
}

static int *dev_ints(const int *h, size_t n)
{
    int *d = (int *)avs_dev_alloc(n, "off");
    avs_ops()->upload(d, h, n * sizeof(int));
    return d;
}

static void test_attpool(void)
{
    const struct avs_ops *op = avs_ops();
    float *a = avs_dev_from_host(ha, R * C), *v = avs_dev_from_host(hv, R * C);
    float *y = avs_dev_alloc(NCLIP * C, "y"), *s = avs_dev_alloc(R * C, "s");
    int *off = dev_ints(offs, NCLIP + 1);
    op->attpool_fwd(y, s, a, v, off, NCLIP, 0, C, EPS);
    float *hy = avs_host_from_dev(y, NCLIP * C), *hs = avs_host_from_dev(s, R * C);
    double da[R * C], dv[R * C], yr[NCLIP * C], worst = 0;
    for (int i = 0; i < R * C; i++)
        da[i] = ha[i], dv[i] = hv[i];
    ref_fwd(yr, da, dv);
    for (int i = 0; i < NCLIP * C; i++)
        worst = fmax(worst, fabs(hy[i] - yr[i]));
    CHECK(worst < 2e-6, "attpool_fwd vs float64: max |d| %.3g", worst);
    worst = 0;
    for (int i = 0; i < R * C; i++)
        worst = fmax(worst, fabs(hs[i] - 1 / (1 + exp(-da[i]))));
    CHECK(worst < 1e-6, "saved sigmoid: max |d| %.3g", worst);
    same_bits("attpool_fwd", hy, NCLIP * C);

    /* fixed T: the first 2 clips of 2 rows */
    float *y2 = avs_dev_alloc(2 * C, "y2");
    op->attpool_fwd(y2, s, a, v, NULL, 2, 2, C, EPS);
    float *hy2 = avs_host_from_dev(y2, 2 * C);
    int ok = 1;
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < C; c++) {
            double G = 0, S = 0;
            for (int r = 2 * n; r < 2 * n + 2; r++) {
                double g = clampd(1 / (1 + exp(-da[r * C + c])), EPS, (double)(1 - EPS));
                G += g, S += g * dv[r * C + c];
            }
            ok &= fabs(hy2[n * C + c] - S / G) < 2e-6;
        }
    CHECK(ok, "attpool_fwd with off NULL (fixed T)");

    /* backward: finite differences; the gradients add into what is there */
    op->attpool_fwd(y, s, a, v, off, NCLIP, 0, C, EPS);
    float *dy = avs_dev_from_host(hdy, NCLIP * C), *ga = avs_dev_alloc(R * C, "ga");
    float *gv = avs_dev_alloc(R * C, "gv");
    op->fill(ga, 0.5f, R * C);
    op->attpool_bwd(ga, gv, dy, s, v, y, off, NCLIP, 0, C, EPS);
    float *hga = avs_host_from_dev(ga, R * C), *hgv = avs_host_from_dev(gv, R * C);
    double wa = 0, wv = 0, h = 1e-4;
    for (int i = 0; i < R * C; i++) {
        double sa = da[i], sv = dv[i];
        da[i] = sa + h;
        double p = ref_obj(da, dv);
        da[i] = sa - h;
        double q = ref_obj(da, dv);
        da[i] = sa;
        /* the clamp holds saturated logits: no gradient there (torch.clamp's) */
        double fa = fabs(sa) > 30 ? 0 : (p - q) / (2 * h);
        dv[i] = sv + h, p = ref_obj(da, dv);
        dv[i] = sv - h, q = ref_obj(da, dv);
        dv[i] = sv;
        wa = fmax(wa, fabs((hga[i] - 0.5) - fa));
        wv = fmax(wv, fabs(hgv[i] - (p - q) / (2 * h)));
    }
    CHECK(wa < 2e-5, "attpool_bwd da vs finite differences: max |d| %.3g", wa);
    CHECK(wv < 2e-5, "attpool_bwd dv vs finite differences: max |d| %.3g", wv);
    CHECK(hga[0 * C + 0] == 0.5f, "a saturated logit (clamped attention) gets no gradient: %g",
          hga[0] - 0.5);
    same_bits("attpool_bwd da", hga, R * C);
    same_bits("attpool_bwd dv", hgv, R * C);
    float *ds[] = {a, v, y, s, y2, dy, ga, gv};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        avs_dev_free(&ds[i]);
    avs_dev_free((float **)&off);
    free(hy), free(hs), free(hy2), free(hga), free(hgv);
}

static void test_quant8(void)
{
    enum { N = 64 };
    float hx[N];
    for (int i = 0; i < N; i++)
        hx[i] = (float)(unif() * 6 - 3);
    hx[0] = -2.5f, hx[1] = 2.5f, hx[2] = -2.0f, hx[3] = 2.0f;
    hx[4] = 0.0f; /* byte 127.5 exactly: rounds to 128, i.e. 0 */
    hx[5] = 1.0f; /* byte 191.25 -> 191 */
    float *x = avs_dev_from_host(hx, N), *y = avs_dev_alloc(N, "y");
    avs_ops()->quant8_fwd(y, x, N);
    float *hy = avs_host_from_dev(y, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float byte = nearbyintf((fminf(fmaxf(hx[i], -2.0f), 2.0f) + 2.0f) * (255.0f / 4.0f));
        bad += hy[i] != (byte - 128.0f) / 128.0f;
    }
    CHECK(bad == 0, "quant8_fwd: %d of %d values differ", bad, N);
    CHECK(hy[0] == -1.0f && hy[1] == 127.0f / 128.0f, "clip limits: %g %g", hy[0], hy[1]);
    CHECK(hy[4] == 0.0f && hy[5] == 63.0f / 128.0f, "0 -> 0, 1 -> 63/128: %.9g %.9g", hy[4], hy[5]);
    same_bits("quant8_fwd", hy, N);
    avs_dev_free(&x), avs_dev_free(&y), free(hy);
}

static void test_dropout(void)
{
    enum { N = 20000 };
    const struct avs_ops *op = avs_ops();
    float *hx = malloc(N * sizeof *hx);
    for (int i = 0; i < N; i++)
        hx[i] = (float)(unif() + 0.5);
    float *x = avs_dev_from_host(hx, N), *y = avs_dev_alloc(N, "y"), *m = avs_dev_alloc(N, "m");
    float *m2 = avs_dev_alloc(N, "m2"), *y2 = avs_dev_alloc(N, "y2");
    op->dropout_fwd(y, m, x, N, 0.5f, 42);
    op->dropout_fwd(y2, m2, x, N, 0.5f, 42);
    float *hy = avs_host_from_dev(y, N), *hm = avs_host_from_dev(m, N), *hm2 = avs_host_from_dev(m2, N);
    int kept = 0, bad = 0;
    for (int i = 0; i < N; i++) {
        kept += hm[i] != 0;
        bad += !(hm[i] == 0 || hm[i] == 2.0f) || hy[i] != hx[i] * hm[i];
    }
    CHECK(bad == 0, "dropout: %d values not 0 or x / (1 - p)", bad);
    CHECK(fabs(kept / (double)N - 0.5) < 0.02, "kept fraction %.4f, want 0.5", kept / (double)N);
    CHECK(!memcmp(hm, hm2, N * sizeof *hm), "same seed, same mask");
    op->dropout_fwd(y2, m2, x, N, 0.5f, 43);
    free(hm2), hm2 = avs_host_from_dev(m2, N);
    CHECK(memcmp(hm, hm2, N * sizeof *hm), "another seed, another mask");
    op->dropout_fwd(y2, m2, x, N, 0.0f, 7);
    free(hm2), hm2 = avs_host_from_dev(m2, N);
    int ones = 0;
    for (int i = 0; i < N; i++)
        ones += hm2[i] == 1.0f;
    CHECK(ones == N, "p = 0 keeps everything (%d of %d)", ones, N);
    /* backward adds dy * mask */
    op->fill(y2, 1.0f, N);
    op->dropout_bwd(y2, x, m, N);
    float *hg = avs_host_from_dev(y2, N);
    bad = 0;
    for (int i = 0; i < N; i++)
        bad += hg[i] != 1.0f + hx[i] * hm[i];
    CHECK(bad == 0, "dropout_bwd: %d values differ", bad);
    same_bits("dropout_fwd mask", hm, N);
    same_bits("dropout_bwd", hg, N);
    avs_dev_free(&x), avs_dev_free(&y), avs_dev_free(&m), avs_dev_free(&m2), avs_dev_free(&y2);
    free(hx), free(hy), free(hm), free(hm2), free(hg);
}

int main(void)
{
    for (int i = 0; i < R * C; i++)
        ha[i] = (float)(unif() * 6 - 3), hv[i] = (float)(unif() * 2 - 1);
    ha[0] = -40.0f;     /* sigmoid below eps: clamped */
    ha[3 * C + 1] = 40; /* above 1 - eps (clip 1 has one row: the clamp alone shapes it) */
    for (int i = 0; i < NCLIP * C; i++)
        hdy[i] = (float)(unif() * 2 - 1);
    avs_ops_set_threads(2);
    backends_keep(&rs, sizeof rs);
    on_every_backend("attpool", test_attpool);
    on_every_backend("quant8", test_quant8);
    on_every_backend("dropout", test_dropout);
    return check_summary("test_backend_attpool");
}
