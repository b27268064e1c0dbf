/* tests/test_backend_wino.c: the Winograd F(4x4,3x3) convolutions of the CPU backend
 * (backend/cpu/winograd.c) against a direct convolution in double precision, forward,
 * backward data and backward filter, on random geometries (odd sizes, maps smaller than a
 * tile, padding 0..2; dilated convs per phase); the GEMM path on the same cases for scale
 * and on a layer wide enough to span several chunks of tiles; bit
 * identity for 1 and 2 threads; the cost model's choices for the head's geometries;
 * conv2d_bwd_data_set (overwrite) equal to conv2d_bwd_data into zeros on every path. The
 * backward-data pass in double (the default) within ~1 float rounding of the exact result and
 * never worse than the GEMM path; in float (fast-bwd) within Winograd's usual bound; exact-bwd
 * and fast-bwd leave the forward and backward-filter bits alone.
 * On every registered backend (tests/backends.h: inputs uploaded, results downloaded, bits
 * equal to cpu's). The Winograd/GEMM switch (avs_cpu_conv_set_algo) is the CPU's: the cpu and
 * guard backends run both paths; another backend runs its own convs against the same
 * references.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "core/common.h"
#include "tests/backends.h"
#include "tests/check.h"

static unsigned long long rng_state = 88172645463325252ULL;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) / (double)(1 << 24) * 2.0 - 1.0);
}

static int irand(int lo, int hi) /* in [lo, hi] */
{
    return lo + (int)((frand() + 1.0f) * 0.5f * (hi - lo + 1)) % (hi - lo + 1);
}

static float *rnd(size_t n)
{
    float *p = avs_malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

/* Direct convolution in double: y = conv(x, w) + b, dx = conv^T(dy, w), dw = corr(dy, x). */
static void ref_conv(double *y, double *dx, double *dw, const float *x, const float *w,
                     const float *b, const float *dy, const struct avs_conv2d *g)
{
    int C = g->C, K = g->K, H = g->H, W = g->W, P = g->P, Q = g->Q;
    memset(dx, 0, sizeof(double) * g->N * C * H * W);
    memset(dw, 0, sizeof(double) * K * C * 9);
    for (int n = 0; n < g->N; n++)
        for (int k = 0; k < K; k++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    double s = b[k], d = dy[(((size_t)n * K + k) * P + p) * Q + q];
                    for (int c = 0; c < C; c++)
                        for (int r = 0; r < 3; r++)
                            for (int t = 0; t < 3; t++) {
                                int h = p - g->pad + r * g->dil, v = q - g->pad + t * g->dil;
                                if (h < 0 || h >= H || v < 0 || v >= W)
                                    continue;
                                size_t xi = (((size_t)n * C + c) * H + h) * W + v;
                                size_t wi = ((size_t)k * C + c) * 9 + r * 3 + t;
                                s += (double)x[xi] * w[wi];
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                    y[(((size_t)n * K + k) * P + p) * Q + q] = s;
                }
}

/* rel L2 error of got against want */
static double rel_err(const float *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = got[i] - want[i];
        num += d * d, den += want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* rel L2 difference of two float results */
static double rel_diff(const float *got, const float *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d, den += (double)want[i] * want[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

struct result {
    float *y, *dx, *dw;
};

/* the CPU's conv algorithm, on the backends that have the switch */
static void set_algo(int algo)
{
    if (backend_cpu_based())
        avs_cpu_conv_set_algo(algo);
}

/* All three passes with the given algorithm (on the CPU-based backends; another backend
 * uses its own), on the backend; dx and dw start at `base` to check that the backwards add.
 * Results on the host. */
static struct result run(int algo, const struct avs_conv2d *g, const float *x, const float *w,
                         const float *b, const float *dy, float base)
{
    size_t nx = (size_t)g->N * g->C * g->H * g->W, ny = (size_t)g->N * g->K * g->P * g->Q;
    size_t nw = (size_t)g->K * g->C * 9;
    set_algo(algo);
    float *ws = avs_dev_alloc(avs_conv2d_ws(g), "conv scratch");
    float *xd = avs_dev_from_host(x, nx), *wd = avs_dev_from_host(w, nw);
    float *bd = avs_dev_from_host(b, (size_t)g->K), *dyd = avs_dev_from_host(dy, ny);
    float *y = avs_dev_alloc(ny, "y"), *dx = avs_dev_alloc(nx, "dx"), *dw = avs_dev_alloc(nw, "dw");
    const struct avs_ops *op = avs_ops();
    op->fill(dx, base, nx);
    op->fill(dw, base, nw);
    op->conv2d_fwd(y, xd, wd, bd, g, ws);
    op->conv2d_bwd_data(dx, dyd, wd, g, ws);
    op->conv2d_bwd_filter(dw, NULL, dyd, xd, g, ws);
    struct result r = {avs_host_from_dev(y, ny), avs_host_from_dev(dx, nx), avs_host_from_dev(dw, nw)};
    for (size_t i = 0; i < nx; i++)
        r.dx[i] -= base;
    for (size_t i = 0; i < nw; i++)
        r.dw[i] -= base;
    avs_dev_free(&ws), avs_dev_free(&xd), avs_dev_free(&wd), avs_dev_free(&bd), avs_dev_free(&dyd);
    avs_dev_free(&y), avs_dev_free(&dx), avs_dev_free(&dw);
    set_algo(AVS_CONV_AUTO);
    return r;
}

/* r's three results must be the cpu backend's bits */
static void result_same_bits(const char *what, const struct result *r, const struct avs_conv2d *g)
{
    size_t nx = (size_t)g->N * g->C * g->H * g->W, ny = (size_t)g->N * g->K * g->P * g->Q;
    size_t nw = (size_t)g->K * g->C * 9;
    char name[160];
    snprintf(name, sizeof name, "N%d C%d %dx%d K%d pad %d dil %d %s: forward", g->N, g->C, g->H,
             g->W, g->K, g->pad, g->dil, what);
    same_bits(name, r->y, ny);
    snprintf(name, sizeof name, "N%d C%d %dx%d K%d pad %d dil %d %s: backward data", g->N, g->C,
             g->H, g->W, g->K, g->pad, g->dil, what);
    same_bits(name, r->dx, nx);
    snprintf(name, sizeof name, "N%d C%d %dx%d K%d pad %d dil %d %s: backward filter", g->N, g->C,
             g->H, g->W, g->K, g->pad, g->dil, what);
    same_bits(name, r->dw, nw);
}

static void free_result(struct result *r)
{
    free(r->y), free(r->dx), free(r->dw);
}

static double worst_float_bwd, worst_double_bwd; /* backward data: float and double Winograd */

/* rel L2 error of the float Winograd backward-data pass (AVS_CONV=fast-bwd's) on g, called
 * directly on host memory (the cpu backend only), adding into a non-zero buffer */
static double float_wino_dx(const struct avs_conv2d *g, const float *dy, const float *w,
                            const double *rdx, size_t nx)
{
    float *ws = avs_malloc(avs_cpu_winograd_ws(g, 0) * sizeof(float));
    float *dx = avs_malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++)
        dx[i] = 0.5f;
    avs_cpu_winograd_bwd_data(dx, 1, dy, w, g, ws, 0);
    for (size_t i = 0; i < nx; i++)
        dx[i] -= 0.5f;
    double e = rel_err(dx, rdx, nx);
    free(ws), free(dx);
    return e;
}

/* One geometry: Winograd within tol of the double reference, and within 30x of the GEMM
 * path's own error (plus a floor at float resolution); the GEMM path (for dilated convs the
 * live-tap im2col) within 1e-6. On a backend without the CPU's paths: its own convs within
 * tol. Returns the worst Winograd (own) error. */
static double check_case(int N, int C, int H, int W, int K, int pad, int dil, double tol)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, N, C, H, W, K, 3, 3, 1, pad, dil, 1);
    CHECK(avs_cpu_winograd_fits(&g), "geometry should fit Winograd");
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * g.P * g.Q, nw = (size_t)K * C * 9;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(K), *dy = rnd(ny);
    double *ry = avs_malloc(ny * 8), *rdx = avs_malloc(nx * 8), *rdw = avs_malloc(nw * 8);
    ref_conv(ry, rdx, rdw, x, w, b, dy, &g);
    const char *be = backend_now()->name;
    int cpu = backend_cpu_based();
    struct result wr = run(AVS_CONV_WINOGRAD, &g, x, w, b, dy, 0.5f);
    result_same_bits("Winograd", &wr, &g);
    double ew[3] = {rel_err(wr.y, ry, ny), rel_err(wr.dx, rdx, nx), rel_err(wr.dw, rdw, nw)};
    static const char *what[3] = {"forward", "backward data", "backward filter"};
    double worst = 0;
    if (!cpu) {
        for (int i = 0; i < 3; i++) {
            CHECK(ew[i] <= tol, "N%d C%d %dx%d K%d pad %d dil %d %s on %s: rel L2 %.3g > %.1g", N, C,
                  H, W, K, pad, dil, what[i], be, ew[i], tol);
            worst = fmax(worst, ew[i]);
        }
        free_result(&wr);
        free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw);
        return worst;
    }
    struct result gr = run(AVS_CONV_GEMM, &g, x, w, b, dy, 0.5f);
    result_same_bits("GEMM", &gr, &g);
    double eg[3] = {rel_err(gr.y, ry, ny), rel_err(gr.dx, rdx, nx), rel_err(gr.dw, rdw, nw)};
    for (int i = 0; i < 3; i++) {
        CHECK(ew[i] <= tol, "N%d C%d %dx%d K%d pad %d dil %d %s on %s: Winograd rel L2 %.3g > %.1g (GEMM %.3g)",
              N, C, H, W, K, pad, dil, what[i], be, ew[i], tol, eg[i]);
        CHECK(ew[i] <= 30 * eg[i] + 1e-7,
              "N%d C%d %dx%d K%d pad %d dil %d %s on %s: Winograd rel L2 %.3g vs GEMM path %.3g", N, C,
              H, W, K, pad, dil, what[i], be, ew[i], eg[i]);
        CHECK(eg[i] <= 1e-6, "N%d C%d %dx%d K%d pad %d dil %d %s on %s: GEMM path rel L2 %.3g", N, C,
              H, W, K, pad, dil, what[i], be, eg[i]);
        if (ew[i] > worst)
            worst = ew[i];
    }
    /* exact-bwd: forward and backward filter as AUTO picks them, backward data the GEMM path */
    int auto_wino = avs_cpu_conv_uses_winograd(&g);
    struct result er = run(AVS_CONV_EXACT_BWD, &g, x, w, b, dy, 0.5f);
    const struct result *fw = auto_wino ? &wr : &gr;
    CHECK(!memcmp(er.y, fw->y, ny * sizeof(float)) && !memcmp(er.dw, fw->dw, nw * sizeof(float)),
          "N%d C%d %dx%d K%d pad %d dil %d exact-bwd on %s: forward or backward filter not the %s bits",
          N, C, H, W, K, pad, dil, be, auto_wino ? "Winograd" : "GEMM");
    CHECK(!memcmp(er.dx, gr.dx, nx * sizeof(float)),
          "N%d C%d %dx%d K%d pad %d dil %d exact-bwd on %s: backward data not the GEMM path's bits", N, C,
          H, W, K, pad, dil, be);
    /* the backward-data pass Winograd runs by default is in double: about one float rounding
     * from the exact result, never worse than the direct (GEMM) path; fast-bwd runs it in
     * float (within tol and 30x of the GEMM path, above) and leaves the other passes alone */
    CHECK(ew[1] <= 1.2e-7 && ew[1] <= eg[1] + 3e-8,
          "N%d C%d %dx%d K%d pad %d dil %d backward data on %s: double Winograd rel L2 %.3g (GEMM %.3g)",
          N, C, H, W, K, pad, dil, be, ew[1], eg[1]);
    struct result fr = run(AVS_CONV_FAST_BWD, &g, x, w, b, dy, 0.5f);
    CHECK(!memcmp(fr.y, fw->y, ny * sizeof(float)) && !memcmp(fr.dw, fw->dw, nw * sizeof(float)),
          "N%d C%d %dx%d K%d pad %d dil %d fast-bwd on %s: forward or backward filter not the %s bits",
          N, C, H, W, K, pad, dil, be, auto_wino ? "Winograd" : "GEMM");
    double ef = rel_err(fr.dx, rdx, nx);
    if (auto_wino)
        CHECK(ef <= tol && ef <= 30 * eg[1] + 1e-7,
              "N%d C%d %dx%d K%d pad %d dil %d fast-bwd on %s: float Winograd backward data rel L2 %.3g (GEMM %.3g)",
              N, C, H, W, K, pad, dil, be, ef, eg[1]);
    else
        CHECK(!memcmp(fr.dx, gr.dx, nx * sizeof(float)),
              "N%d C%d %dx%d K%d pad %d dil %d fast-bwd on %s: backward data not the GEMM path's bits", N,
              C, H, W, K, pad, dil, be);
    if (!strcmp(be, "cpu")) { /* the float Winograd pass itself, forced (host memory on cpu) */
        ef = float_wino_dx(&g, dy, w, rdx, nx);
        CHECK(ef <= tol && ef <= 30 * eg[1] + 1e-7,
              "N%d C%d %dx%d K%d pad %d dil %d: float Winograd backward data rel L2 %.3g (GEMM %.3g)",
              N, C, H, W, K, pad, dil, ef, eg[1]);
    }
    worst_float_bwd = fmax(worst_float_bwd, ef);
    worst_double_bwd = fmax(worst_double_bwd, ew[1]);
    free_result(&fr);
    free_result(&wr), free_result(&gr), free_result(&er);
    free(x), free(w), free(b), free(dy);
    free(ry), free(rdx), free(rdw);
    return worst;
}

static void test_random(void)
{
    double worst = 0;
    for (int i = 0; i < 40; i++) {
        int pad = irand(0, 2);
        int H = irand(pad ? 1 : 3, 23), W = irand(pad ? 1 : 3, 23);
        if (H + 2 * pad < 3)
            H = 3 - 2 * pad;
        if (W + 2 * pad < 3)
            W = 3 - 2 * pad;
        double e = check_case(irand(1, 3), irand(1, 24), H, W, irand(1, 24), pad, 1, 5e-6);
        if (e > worst)
            worst = e;
    }
    printf("random geometries on %s: worst Winograd rel L2 error %.3g\n", backend_now()->name, worst);
    /* dilated (per phase): padding = dilation x 0..2, maps not a multiple of the dilation */
    worst = 0;
    for (int i = 0; i < 16; i++) {
        int dil = irand(2, 7), p1 = irand(0, 2);
        int H = irand(1, 30), W = irand(1, 30);
        while ((H + dil - 1) / dil + 2 * p1 < 3)
            H += dil;
        while ((W + dil - 1) / dil + 2 * p1 < 3)
            W += dil;
        double e = check_case(irand(1, 2), irand(1, 20), H, W, irand(1, 20), p1 * dil, dil, 5e-6);
        if (e > worst)
            worst = e;
    }
    printf("dilated geometries on %s: worst Winograd rel L2 error %.3g\n", backend_now()->name, worst);
    /* head-like widths (many chunks, the transforms' tile blocks wrap) */
    printf("C128 K96 30x37 pad 1: %.3g\n", check_case(2, 128, 30, 37, 96, 1, 1, 5e-6));
    printf("C64 K160 9x141 pad 1: %.3g\n", check_case(1, 64, 9, 141, 160, 1, 1, 5e-6));
    if (backend_cpu_based())
        printf("backward data on %s, worst rel L2: double Winograd (default) %.3g, float "
               "(fast-bwd) %.3g\n", backend_now()->name, worst_double_bwd, worst_float_bwd);
    worst_float_bwd = worst_double_bwd = 0;
}

/* 1 and 2 threads give the same bits (the chunking does not depend on the thread count). */
static void test_threads_geom(int N, int C, int H, int W, int K, int pad, int dil)
{
    struct avs_conv2d g;
    avs_conv2d_geom(&g, N, C, H, W, K, 3, 3, 1, pad, dil, 1);
    size_t nx = (size_t)g.N * g.C * g.H * g.W, ny = (size_t)g.N * g.K * g.P * g.Q;
    size_t nw = (size_t)g.K * g.C * 9;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(g.K), *dy = rnd(ny);
    const char *be = backend_now()->name;
    struct result r[2], f[2]; /* f: fast-bwd (float backward data where AUTO picks Winograd) */
    for (int t = 0; t < 2; t++) {
        avs_ops_set_threads(t + 1);
        r[t] = run(AVS_CONV_WINOGRAD, &g, x, w, b, dy, 0.25f);
        f[t] = run(AVS_CONV_FAST_BWD, &g, x, w, b, dy, 0.25f);
    }
    avs_ops_set_threads(0);
    CHECK(!memcmp(f[0].dx, f[1].dx, nx * 4), "dil %d on %s: fast-bwd backward data differs between 1 and 2 threads",
          dil, be);
    free_result(&f[0]), free_result(&f[1]);
    result_same_bits("Winograd (threads)", &r[0], &g);
    /* and the same as the GEMM path up to Winograd's rounding (this also covers inputs that
     * span several chunks of tiles, where a double reference would be too slow) */
    if (backend_cpu_based()) {
        struct result ref = run(AVS_CONV_GEMM, &g, x, w, b, dy, 0.25f);
        double e[3] = {rel_diff(r[0].y, ref.y, ny), rel_diff(r[0].dx, ref.dx, nx),
                       rel_diff(r[0].dw, ref.dw, nw)};
        for (int i = 0; i < 3; i++)
            CHECK(e[i] <= 5e-6, "N%d C%d %dx%d K%d dil %d pass %d on %s: Winograd vs GEMM rel L2 %.3g",
                  N, C, H, W, K, dil, i, be, e[i]);
        free_result(&ref);
    }
    CHECK(!memcmp(r[0].y, r[1].y, ny * 4), "dil %d on %s: forward differs between 1 and 2 threads", dil, be);
    CHECK(!memcmp(r[0].dx, r[1].dx, nx * 4), "dil %d on %s: backward data differs between 1 and 2 threads",
          dil, be);
    CHECK(!memcmp(r[0].dw, r[1].dw, nw * 4), "dil %d on %s: backward filter differs between 1 and 2 threads",
          dil, be);
    free_result(&r[0]), free_result(&r[1]);
    free(x), free(w), free(b), free(dy);
}

static void test_threads(void)
{
    test_threads_geom(3, 48, 22, 19, 40, 1, 1);
    test_threads_geom(1, 40, 29, 26, 36, 6, 6);
    test_threads_geom(2, 256, 48, 47, 256, 1, 1); /* 288 tiles: 2 chunks */
}

/* The cost model: the head's 3x3 convs go to Winograd; narrow, strided, dilated, 1x1 don't. */
static void test_choice(void)
{
    static const int yes[][5] = {{5, 256, 56, 56, 256}, {5, 256, 28, 28, 256},
                                 {5, 256, 14, 14, 256}, {5, 256, 112, 112, 128},
                                 {5, 128, 224, 224, 32}};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        struct avs_conv2d g;
        avs_conv2d_geom(&g, yes[i][0], yes[i][1], yes[i][2], yes[i][3], yes[i][4], 3, 3, 1, 1, 1, 1);
        CHECK(avs_cpu_conv_uses_winograd(&g), "head conv %d should use Winograd", (int)i);
    }
    struct avs_conv2d g;
    avs_conv2d_geom(&g, 1, 3, 56, 56, 64, 3, 3, 1, 1, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "3 input channels: GEMM");
    avs_conv2d_geom(&g, 1, 64, 56, 56, 64, 3, 3, 2, 1, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "stride 2: GEMM");
    avs_conv2d_geom(&g, 1, 64, 112, 112, 256, 3, 3, 1, 6, 6, 1);
    CHECK(avs_cpu_conv_uses_winograd(&g), "d6 on 112x112: Winograd per phase");
    avs_conv2d_geom(&g, 1, 64, 56, 56, 256, 3, 3, 1, 6, 6, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "ASPP d6 on 56x56 (phases of 10x10): im2col");
    avs_conv2d_geom(&g, 1, 128, 28, 28, 256, 3, 3, 1, 6, 6, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "ASPP d6 on 28x28 (phases of 5x5): im2col");
    avs_conv2d_geom(&g, 1, 64, 56, 56, 64, 3, 3, 1, 3, 6, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g) && !avs_cpu_winograd_fits(&g), "pad not a multiple of the dilation");
    avs_conv2d_geom(&g, 1, 64, 56, 56, 64, 1, 1, 1, 0, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "1x1: GEMM");
    avs_conv2d_geom(&g, 1, 64, 5, 5, 64, 3, 3, 1, 1, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "5x5 map (2x2 tiles for 25 outputs): GEMM");
    avs_conv2d_geom(&g, 5, 256, 7, 7, 256, 3, 3, 1, 1, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "7x7 maps, 20 tiles: GEMM");
    avs_cpu_conv_set_algo(AVS_CONV_GEMM);
    avs_conv2d_geom(&g, 5, 256, 56, 56, 256, 3, 3, 1, 1, 1, 1);
    CHECK(!avs_cpu_conv_uses_winograd(&g), "forced GEMM");
    avs_cpu_conv_set_algo(AVS_CONV_AUTO);
}

/* bwd_data_set into a buffer of garbage == bwd_data into zeros, on Winograd (plain and
 * dilated), 1x1, GEMM and strided geometries (on a backend without the CPU's switch: its own
 * paths, each case once). */
static void test_set(void)
{
    static const int geo[][8] = {/* N C H W K R pad dil, stride 1 unless noted below */
                                 {2, 32, 20, 20, 24, 3, 1, 1}, {1, 16, 40, 36, 16, 3, 2, 2},
                                 {2, 24, 9, 11, 8, 1, 0, 1},   {1, 8, 12, 10, 6, 3, 1, 1},
                                 {2, 6, 13, 13, 5, 3, 1, 1}};
    for (int k = 0; k < 10; k++) { /* each case on Winograd (where it fits), then on GEMM */
        int i = k / 2;
        const int *q = geo[i];
        if (k % 2 && !backend_cpu_based())
            continue;
        set_algo(k % 2 ? AVS_CONV_GEMM : AVS_CONV_WINOGRAD);
        struct avs_conv2d g;
        avs_conv2d_geom(&g, q[0], q[1], q[2], q[3], q[4], q[5], q[5], i == 4 ? 2 : 1, q[6], q[7], 1);
        size_t nx = (size_t)g.N * g.C * g.H * g.W, ny = (size_t)g.N * g.K * g.P * g.Q;
        size_t nw = (size_t)g.K * g.C * g.R * g.S;
        float *w = rnd(nw), *dy = rnd(ny), *a = rnd(nx), *b;
        float *wd = avs_dev_from_host(w, nw), *dyd = avs_dev_from_host(dy, ny);
        float *ad = avs_dev_from_host(a, nx), *bd = avs_dev_alloc(nx, "dx");
        float *ws = avs_dev_alloc(avs_conv2d_ws(&g), "conv scratch");
        avs_ops()->conv2d_bwd_data(bd, dyd, wd, &g, ws);
        avs_ops()->conv2d_bwd_data_set(ad, dyd, wd, &g, ws);
        avs_dev_download(a, ad, nx);
        b = avs_host_from_dev(bd, nx);
        CHECK(rel_diff(a, b, nx) == 0.0, "bwd_data_set case %d on %s differs by %g", i,
              backend_now()->name, rel_diff(a, b, nx));
        char name[64];
        snprintf(name, sizeof name, "bwd_data_set case %d %s", i, k % 2 ? "GEMM" : "Winograd");
        same_bits(name, a, nx);
        avs_dev_free(&wd), avs_dev_free(&dyd), avs_dev_free(&ad), avs_dev_free(&bd), avs_dev_free(&ws);
        free(w), free(dy), free(a), free(b);
    }
    set_algo(AVS_CONV_AUTO);
}

int main(void)
{
    avs_ops_set_threads(0);
    test_choice(); /* the CPU's cost model: no tensor memory, no backend */
    backends_keep(&rng_state, sizeof rng_state);
    on_every_backend("random geometries", test_random);
    on_every_backend("threads", test_threads);
    on_every_backend("bwd_data_set", test_set);
    return check_summary("test_backend_wino");
}
