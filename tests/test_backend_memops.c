/* tests/test_backend_memops.c: the fast paths of the memory-bound CPU primitives
 * (backend/cpu/ops_cpu.c, resize.c) against plain one-element-at-a-time references written
 * here, on every registered backend (tests/backends.h: inputs uploaded, results downloaded,
 * every backend's bits equal to the cpu backend's):
 *  - resize_fwd: bit-identical to the inline bilinear formula at every size (2x, odd sizes,
 *    downscaling, 1-pixel maps, big upscales), incl. the non-temporal store path (> 32 MB);
 *  - resize_bwd: the transposed fast path against the general scatter path (on the CPU-based
 *    backends, which share the switch) and a double reference, at sizes that take the fast
 *    path and ones that fall back;
 *  - layernorm (blocked over positions): fwd and dx bit-identical to the per-position loops;
 *    batchnorm and the parameter gradients (8-lane sums) within float rounding;
 *  - relu_bwd, adam, adam_zero: bit-identical to the scalar formulas; adam_zero zeroes g;
 *  - 1 vs 2 threads bit-identical at sizes where the loops run in parallel.
 * (The PyTorch comparisons of the same primitives are in test_backend_ops.c.)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "core/common.h"
#include "tests/backends.h"
#include "tests/check.h"

static unsigned long long seed = 12345;

static float *rnd(size_t n)
{
    float *p = avs_malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)(seed >> 40) / 8388608.0f - 1.0f;
    }
    return p;
}

static float *copy(const float *a, size_t n)
{
    float *p = avs_malloc(n * sizeof(float) + 4);
    memcpy(p, a, n * sizeof(float));
    return p;
}

static double rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* a copy of host[n] on the backend, and back into host[n] */
static float *up(const float *host, size_t n)
{
    return avs_dev_from_host(host, n);
}

static void down(float *host, float **dev, size_t n)
{
    avs_dev_download(host, *dev, n);
    avs_dev_free(dev);
}

static const char *be(void)
{
    return backend_now()->name;
}

/* ---- resize ---- */

/* PyTorch's area_pixel_compute_source_index, as backend/cpu/resize.c computes it */
static void src_index(int out, int in, int o, int ac, int *i0, int *i1, float *l1)
{
    float scale = ac ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f) : (float)in / (float)out;
    float src = ac ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int a = (int)src;
    if (a > in - 1)
        a = in - 1;
    *i0 = a, *i1 = a < in - 1 ? a + 1 : a;
    *l1 = src - (float)a;
}

static void ref_resize_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW, int ac)
{
    for (int p = 0; p < NC; p++)
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1, x0, x1;
            float ly, lx;
            src_index(OH, H, oy, ac, &y0, &y1, &ly);
            const float *r0 = x + ((size_t)p * H + y0) * W, *r1 = x + ((size_t)p * H + y1) * W;
            for (int ox = 0; ox < OW; ox++) {
                src_index(OW, W, ox, ac, &x0, &x1, &lx);
                y[((size_t)p * OH + oy) * OW + ox] = (1 - ly) * ((1 - lx) * r0[x0] + lx * r0[x1]) +
                                                     ly * ((1 - lx) * r1[x0] + lx * r1[x1]);
            }
        }
}

/* the adjoint in double, added onto dx */
static void ref_resize_bwd(double *dx, const float *dy, int NC, int H, int W, int OH, int OW, int ac)
{
    for (int p = 0; p < NC; p++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0, y1, x0, x1;
                float ly, lx;
                src_index(OH, H, oy, ac, &y0, &y1, &ly);
                src_index(OW, W, ox, ac, &x0, &x1, &lx);
                double g = dy[((size_t)p * OH + oy) * OW + ox];
                double *a = dx + (size_t)p * H * W;
                a[(size_t)y0 * W + x0] += (1.0 - ly) * (1.0 - lx) * g;
                a[(size_t)y0 * W + x1] += (1.0 - ly) * lx * g;
                a[(size_t)y1 * W + x0] += ly * (1.0 - lx) * g;
                a[(size_t)y1 * W + x1] += ly * lx * g;
            }
}

/* fwd against the formula; bwd (fast path, and the general path where the backend has the
 * CPU's switch) against the adjoint in double */
static void resize_case(int NC, int H, int W, int OH, int OW, int ac)
{
    const struct avs_ops *op = avs_ops();
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * OH * OW;
    float *x = rnd(ni), *y = rnd(no), *want = rnd(no), *dy = rnd(no);
    float *xd = up(x, ni), *yd = up(y, no), *dyd = up(dy, no);
    char what[96], name[128];
    snprintf(what, sizeof what, "resize %d: %dx%d -> %dx%d ac=%d", NC, H, W, OH, OW, ac);
    op->resize_fwd(yd, xd, NC, H, W, OH, OW, ac);
    down(y, &yd, no);
    ref_resize_fwd(want, x, NC, H, W, OH, OW, ac);
    CHECK(!memcmp(y, want, no * sizeof(float)), "%s on %s: fwd not bit-identical to the formula", what, be());
    snprintf(name, sizeof name, "%s fwd", what);
    same_bits(name, y, no);

    /* bwd adds into dx: start from the same non-zero values on every path */
    float *dx0 = rnd(ni), *fast = copy(dx0, ni), *gen = copy(dx0, ni), *d = avs_malloc(ni * sizeof(float));
    double *ref = avs_malloc(ni * sizeof(double));
    for (size_t i = 0; i < ni; i++)
        ref[i] = dx0[i];
    float *fd = up(dx0, ni);
    op->resize_bwd(fd, dyd, NC, H, W, OH, OW, ac);
    down(fast, &fd, ni);
    ref_resize_bwd(ref, dy, NC, H, W, OH, OW, ac);
    for (size_t i = 0; i < ni; i++)
        d[i] = (float)ref[i];
    double ef = rel_l2(fast, d, ni);
    CHECK(ef <= 1e-6, "%s on %s: bwd fast path rel L2 %.3g vs double reference", what, be(), ef);
    snprintf(name, sizeof name, "%s bwd", what);
    same_bits(name, fast, ni);
    if (backend_cpu_based()) {
        float *gd = up(dx0, ni);
        avs_cpu_resize_force_general(1);
        op->resize_bwd(gd, dyd, NC, H, W, OH, OW, ac);
        avs_cpu_resize_force_general(0);
        down(gen, &gd, ni);
        double eg = rel_l2(gen, d, ni);
        CHECK(eg <= 1e-6, "%s on %s: bwd general path rel L2 %.3g vs double reference", what, be(), eg);
        snprintf(name, sizeof name, "%s bwd general path", what);
        same_bits(name, gen, ni);
    }
    avs_dev_free(&xd), avs_dev_free(&dyd);
    free(x), free(y), free(want), free(dy), free(dx0), free(fast), free(gen), free(d), free(ref);
}

static void test_resize(void)
{
    static const int cs[][6] = {
        {3, 7, 7, 14, 14, 1},     {2, 56, 56, 112, 112, 1}, {2, 112, 112, 224, 224, 0},
        {2, 28, 28, 56, 56, 0},   {2, 5, 3, 7, 8, 1},       {2, 5, 3, 7, 8, 0},
        {3, 9, 13, 19, 27, 1},    {3, 9, 13, 19, 27, 0},    {2, 8, 6, 3, 4, 0},
        {2, 17, 23, 4, 5, 1},     {2, 1, 1, 3, 2, 0},       {2, 1, 1, 3, 2, 1},
        {2, 1, 1, 1, 1, 1},       {2, 3, 1, 1, 5, 0},       {2, 4, 7, 4, 7, 1},
        {2, 2, 3, 9, 70, 0},      {2, 2, 3, 9, 70, 1},      {1, 6, 2, 6, 300, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        resize_case(cs[i][0], cs[i][1], cs[i][2], cs[i][3], cs[i][4], cs[i][5]);
}

/* outputs above 32 MB are written with streaming stores; rows of odd width start unaligned */
static void test_resize_streamed(void)
{
    int NC = 170, H = 112, W = 111, OH = 223, OW = 223;
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * OH * OW;
    float *x = rnd(ni), *y = avs_malloc(no * sizeof(float)), *want = avs_malloc(no * sizeof(float));
    float *xd = up(x, ni), *yd = avs_dev_alloc(no, "resize output");
    for (int t = 1; t <= 2; t++) {
        avs_ops_set_threads(t);
        avs_ops()->zero(yd, no);
        avs_ops()->resize_fwd(yd, xd, NC, H, W, OH, OW, 1);
        avs_dev_download(y, yd, no);
        if (t == 1)
            ref_resize_fwd(want, x, NC, H, W, OH, OW, 1);
        CHECK(!memcmp(y, want, no * sizeof(float)), "streamed resize_fwd on %s, %d threads: not the formula",
              be(), t);
    }
    same_bits("streamed resize_fwd", y, no);
    avs_ops_set_threads(1);
    avs_dev_free(&xd), avs_dev_free(&yd);
    free(x), free(y), free(want);
}

/* ---- norms ---- */

static void ref_ln_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int outer, int C, int inner, float eps)
{
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            const float *a = x + (size_t)o * C * inner + i;
            float *z = y + (size_t)o * C * inner + i;
            double s = 0, s2 = 0;
            for (int c = 0; c < C; c++)
                s += a[(size_t)c * inner];
            double m = s / C;
            for (int c = 0; c < C; c++) {
                double d = a[(size_t)c * inner] - m;
                s2 += d * d;
            }
            float mf = (float)m, r = (float)(1.0 / sqrt(s2 / C + eps));
            for (int c = 0; c < C; c++) {
                float v = (a[(size_t)c * inner] - mf) * r;
                z[(size_t)c * inner] = w ? v * w[c] + b[c] : v;
            }
            mean[(size_t)o * inner + i] = mf, rstd[(size_t)o * inner + i] = r;
        }
}

static void ref_ln_bwd(float *dx, double *dw, double *db, const float *dy, const float *x,
                       const float *mean, const float *rstd, const float *w, int outer, int C, int inner)
{
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            size_t base = (size_t)o * C * inner + i;
            float m = mean[(size_t)o * inner + i], r = rstd[(size_t)o * inner + i];
            double s1 = 0, s2 = 0;
            for (int c = 0; c < C; c++) {
                size_t k = base + (size_t)c * inner;
                float g = dy[k] * w[c], xh = (x[k] - m) * r;
                s1 += g, s2 += (double)g * xh;
                dw[c] += (double)dy[k] * xh, db[c] += dy[k];
            }
            float a1 = (float)(s1 / C), a2 = (float)(s2 / C);
            for (int c = 0; c < C; c++) {
                size_t k = base + (size_t)c * inner;
                float g = dy[k] * w[c], xh = (x[k] - m) * r;
                dx[k] += r * (g - a1 - xh * a2);
            }
        }
}

static void ln_case(int outer, int C, int inner)
{
    const struct avs_ops *op = avs_ops();
    size_t n = (size_t)outer * C * inner, np = (size_t)outer * inner;
    float *x = rnd(n), *w = rnd((size_t)C), *b = rnd((size_t)C), *dy = rnd(n);
    float *y = rnd(n), *y2 = rnd(n), *m = rnd(np), *r = rnd(np), *m2 = rnd(np), *r2 = rnd(np);
    float *xd = up(x, n), *wd = up(w, (size_t)C), *bd = up(b, (size_t)C), *dyd = up(dy, n);
    float *yd = up(y, n), *md = up(m, np), *rd = up(r, np);
    char what[64], name[96];
    snprintf(what, sizeof what, "layernorm [%d,%d,%d]", outer, C, inner);
    op->layernorm_fwd(yd, md, rd, xd, wd, bd, outer, C, inner, 1e-5f);
    down(y, &yd, n), avs_dev_download(m, md, np), avs_dev_download(r, rd, np);
    ref_ln_fwd(y2, m2, r2, x, w, b, outer, C, inner, 1e-5f);
    CHECK(!memcmp(y, y2, n * 4) && !memcmp(m, m2, np * 4) && !memcmp(r, r2, np * 4),
          "%s on %s: fwd not bit-identical to the per-position loops", what, be());
    snprintf(name, sizeof name, "%s y", what), same_bits(name, y, n);
    snprintf(name, sizeof name, "%s mean", what), same_bits(name, m, np);
    snprintf(name, sizeof name, "%s rstd", what), same_bits(name, r, np);
    float *dx = rnd(n), *dx2 = copy(dx, n), *dw = avs_calloc((size_t)C, 4), *db = avs_calloc((size_t)C, 4);
    double *dw2 = avs_calloc((size_t)C, 8), *db2 = avs_calloc((size_t)C, 8);
    float *dxd = up(dx, n), *dwd = up(dw, (size_t)C), *dbd = up(db, (size_t)C);
    op->layernorm_bwd(dxd, dwd, dbd, dyd, xd, md, rd, wd, outer, C, inner);
    down(dx, &dxd, n), down(dw, &dwd, (size_t)C), down(db, &dbd, (size_t)C);
    ref_ln_bwd(dx2, dw2, db2, dy, x, m, r, w, outer, C, inner);
    CHECK(!memcmp(dx, dx2, n * 4), "%s on %s: dx not bit-identical to the per-position loops", what, be());
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(dw[c], dw2[c], 1e-5, 1e-6, what);
        CHECK_NEAR(db[c], db2[c], 1e-5, 1e-6, what);
    }
    snprintf(name, sizeof name, "%s dx", what), same_bits(name, dx, n);
    snprintf(name, sizeof name, "%s dw", what), same_bits(name, dw, (size_t)C);
    snprintf(name, sizeof name, "%s db", what), same_bits(name, db, (size_t)C);
    avs_dev_free(&xd), avs_dev_free(&wd), avs_dev_free(&bd), avs_dev_free(&dyd);
    avs_dev_free(&md), avs_dev_free(&rd);
    free(x), free(w), free(b), free(dy), free(y), free(y2), free(m), free(r), free(m2), free(r2);
    free(dx), free(dx2), free(dw), free(db), free(dw2), free(db2);
}

static void test_layernorm(void)
{
    ln_case(7, 64, 1);   /* last-dim LayerNorm (PVT) */
    ln_case(70, 32, 1);  /* rows in blocks of 32: two whole blocks and a tail */
    ln_case(3, 5, 33);   /* a block and a 1-position tail */
    ln_case(2, 256, 49); /* the head's 7x7 stage */
    ln_case(2, 16, 70);
}

/* batchnorm (train) against double sums: mean/rstd, y, dx, dw, db */
static void test_batchnorm(void)
{
    const struct avs_ops *op = avs_ops();
    int N = 3, C = 4, HW = 203;
    size_t n = (size_t)N * C * HW;
    float *x = rnd(n), *w = rnd(4), *b = rnd(4), *dy = rnd(n), *y = rnd(n), m[4], r[4];
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1}, dw[4] = {0}, db[4] = {0};
    float *dx = avs_calloc(n, 4);
    float *xd = up(x, n), *wd = up(w, 4), *bd = up(b, 4), *dyd = up(dy, n), *yd = up(y, n);
    float *mdev = avs_dev_alloc(4, "mean"), *rdev = avs_dev_alloc(4, "rstd"), *rmd = up(rm, 4), *rvd = up(rv, 4);
    float *dwd = up(dw, 4), *dbd = up(db, 4), *dxd = up(dx, n);
    op->batchnorm_fwd(yd, mdev, rdev, xd, wd, bd, rmd, rvd, N, C, HW, 1e-5f, 0.1f, 1);
    op->batchnorm_bwd(dxd, dwd, dbd, dyd, xd, mdev, rdev, wd, N, C, HW, 1);
    down(y, &yd, n), down(m, &mdev, 4), down(r, &rdev, 4), down(rm, &rmd, 4), down(rv, &rvd, 4);
    down(dw, &dwd, 4), down(db, &dbd, 4), down(dx, &dxd, n);
    avs_dev_free(&xd), avs_dev_free(&wd), avs_dev_free(&bd), avs_dev_free(&dyd);
    same_bits("batchnorm y", y, n), same_bits("batchnorm mean", m, 4), same_bits("batchnorm rstd", r, 4);
    same_bits("batchnorm running mean", rm, 4), same_bits("batchnorm running var", rv, 4);
    same_bits("batchnorm dw", dw, 4), same_bits("batchnorm db", db, 4), same_bits("batchnorm dx", dx, n);
    size_t cnt = (size_t)N * HW;
    for (int c = 0; c < C; c++) {
        double s = 0, s2 = 0, sg = 0, sgx = 0;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++)
                s += x[((size_t)k * C + c) * HW + i];
        double md = s / cnt;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)k * C + c) * HW + i;
                s2 += (x[j] - md) * (x[j] - md);
            }
        double rd = 1 / sqrt(s2 / cnt + 1e-5);
        CHECK_NEAR(m[c], md, 1e-7, 1e-6, "batchnorm mean");
        CHECK_NEAR(r[c], rd, 0, 1e-6, "batchnorm rstd");
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)k * C + c) * HW + i;
                double xh = (x[j] - md) * rd;
                CHECK_NEAR(y[j], xh * w[c] + b[c], 1e-5, 1e-5, "batchnorm y");
                sg += dy[j], sgx += dy[j] * xh;
            }
        CHECK_NEAR(db[c], sg, 1e-5, 1e-6, "batchnorm db");
        CHECK_NEAR(dw[c], sgx, 1e-5, 1e-6, "batchnorm dw");
        double worst = 0;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)k * C + c) * HW + i;
                double xh = (x[j] - md) * rd, want = w[c] * rd * (dy[j] - sg / cnt - xh * sgx / cnt);
                worst = fmax(worst, fabs(dx[j] - want));
            }
        CHECK(worst <= 1e-5, "batchnorm dx on %s: channel %d off by %.3g", be(), c, worst);
    }
    free(x), free(w), free(b), free(dy), free(y), free(dx);
}

/* ---- elementwise, Adam ---- */

static void test_relu_bwd(void)
{
    size_t n = 100003;
    float *x = rnd(n), *dy = rnd(n), *dx = rnd(n), *want = copy(dx, n);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-40f, x[3] = -1e-40f;
    float *xd = up(x, n), *dyd = up(dy, n), *dxd = up(dx, n);
    avs_ops()->relu_bwd(dxd, dyd, xd, n);
    down(dx, &dxd, n);
    for (size_t i = 0; i < n; i++)
        want[i] += x[i] > 0 ? dy[i] : 0.0f;
    CHECK(!memcmp(dx, want, n * 4), "relu_bwd on %s: not the scalar select", be());
    same_bits("relu_bwd", dx, n);
    avs_dev_free(&xd), avs_dev_free(&dyd);
    free(x), free(dy), free(dx), free(want);
}

static void ref_adam(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                     double b2, double eps, double wd, long step)
{
    double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    float fb1 = (float)b1, fb2 = (float)b2, a1 = (float)(1.0 - b1), a2 = (float)(1.0 - b2);
    float ss = (float)(lr / bc1), bc2s = (float)sqrt(bc2), fe = (float)eps, fw = (float)wd;
    for (size_t i = 0; i < n; i++) {
        float gi = fw != 0 ? g[i] + fw * p[i] : g[i];
        m[i] = m[i] * fb1 + a1 * gi;
        v[i] = v[i] * fb2 + a2 * gi * gi;
        float denom = sqrtf(v[i]) / bc2s + fe;
        p[i] += -ss * (m[i] / denom);
    }
}

/* adam (or adam_zero) on the backend, on copies of p, g, m, v uploaded; results back in them */
static void adam_on_backend(int zero, float *p, float *g, float *m, float *v, size_t n, double wd)
{
    float *pd = up(p, n), *gd = up(g, n), *md = up(m, n), *vd = up(v, n);
    if (zero)
        avs_ops()->adam_zero(pd, gd, md, vd, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
    else
        avs_ops()->adam(pd, gd, md, vd, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
    down(p, &pd, n), down(g, &gd, n), down(m, &md, n), down(v, &vd, n);
}

static void test_adam(void)
{
    size_t n = 70001; /* parallel, several blocks, a tail of 1 */
    for (int t = 1; t <= 2; t++)
        for (int k = 0; k < 2; k++) {
            double wd = k ? 0.1 : 0.0;
            avs_ops_set_threads(t);
            float *p = rnd(n), *g = rnd(n), *m = rnd(n), *v = rnd(n);
            for (size_t i = 0; i < n; i++)
                v[i] = fabsf(v[i]);
            float *p2 = copy(p, n), *m2 = copy(m, n), *v2 = copy(v, n), *g2 = copy(g, n);
            float *p3 = copy(p, n), *m3 = copy(m, n), *v3 = copy(v, n), *g3 = copy(g, n);
            adam_on_backend(0, p, g, m, v, n, wd);
            ref_adam(p2, g2, m2, v2, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
            adam_on_backend(1, p3, g3, m3, v3, n, wd);
            CHECK(!memcmp(p, p2, n * 4) && !memcmp(m, m2, n * 4) && !memcmp(v, v2, n * 4),
                  "adam on %s (%d threads, wd %g): not the scalar update", be(), t, wd);
            CHECK(!memcmp(g, g2, n * 4), "adam on %s changed g", be());
            CHECK(!memcmp(p, p3, n * 4) && !memcmp(m, m3, n * 4) && !memcmp(v, v3, n * 4),
                  "adam_zero on %s (%d threads, wd %g): differs from adam", be(), t, wd);
            size_t nz = 0;
            for (size_t i = 0; i < n; i++)
                nz += g3[i] != 0;
            CHECK(nz == 0, "adam_zero on %s left %zu gradients non-zero", be(), nz);
            same_bits("adam p", p, n), same_bits("adam m", m, n), same_bits("adam v", v, n);
            free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2), free(g2);
            free(p3), free(m3), free(v3), free(g3);
        }
    avs_ops_set_threads(1);
}

/* ---- 1 vs 2 threads at parallel sizes ---- */

static void test_threads(void)
{
    const struct avs_ops *op = avs_ops();
    int NC = 40, H = 28, W = 28, B = 2, C = 64, HW = 300;
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * 4 * H * W, n = (size_t)B * C * HW;
    float *x = rnd(ni), *dy = rnd(no), *lx = rnd(n), *ldy = rnd(n), *w = rnd((size_t)C), *b = rnd((size_t)C);
    float *xd = up(x, ni), *dyd = up(dy, no), *lxd = up(lx, n), *ldyd = up(ldy, n);
    float *wd = up(w, (size_t)C), *bd = up(b, (size_t)C);
    size_t sz[6] = {no, ni, n, n, (size_t)2 * B * HW + 4 * C, n};
    float *out[2][6];
    for (int t = 0; t < 2; t++) {
        avs_ops_set_threads(t + 1);
        float *d[6];
        for (int k = 0; k < 6; k++)
            d[k] = avs_dev_alloc(sz[k], "a result");
        float *y = d[0], *dx = d[1], *ly = d[2], *ldx = d[3], *st = d[4], *bdx = d[5];
        float *rm = avs_dev_alloc(64, "running mean"), *rv = avs_dev_alloc(64, "running var");
        op->resize_fwd(y, xd, NC, H, W, 2 * H, 2 * W, 1);
        op->resize_bwd(dx, dyd, NC, H, W, 2 * H, 2 * W, 1);
        op->layernorm_fwd(ly, st, st + B * HW, lxd, wd, bd, B, C, HW, 1e-5f);
        op->layernorm_bwd(ldx, st + 2 * B * HW, st + 2 * B * HW + C, ldyd, lxd, st, st + B * HW, wd, B, C, HW);
        float *bst = avs_dev_alloc((size_t)4 * C, "batchnorm state"), hb[4 * 64];
        op->batchnorm_fwd(ly, bst, bst + C, lxd, wd, bd, rm, rv, B, C, HW, 1e-5f, 0.1f, 1);
        op->batchnorm_bwd(bdx, bst + 2 * C, bst + 3 * C, ldyd, lxd, bst, bst + C, wd, B, C, HW, 1);
        for (int k = 0; k < 6; k++)
            out[t][k] = avs_host_from_dev(d[k], sz[k]), avs_dev_free(&d[k]);
        down(hb, &bst, (size_t)4 * C);
        for (int i = 0; i < 4 * C; i++)
            out[t][4][2 * B * HW + i] += hb[i]; /* compared with the layernorm state below */
        avs_dev_free(&rm), avs_dev_free(&rv);
    }
    const char *nm[6] = {"resize_fwd", "resize_bwd", "norm fwd", "layernorm dx", "norm stats+grads", "batchnorm dx"};
    for (int k = 0; k < 6; k++) {
        CHECK(!memcmp(out[0][k], out[1][k], sz[k] * 4), "%s on %s: 1 vs 2 threads differ", nm[k], be());
        same_bits(nm[k], out[0][k], sz[k]);
        free(out[0][k]), free(out[1][k]);
    }
    avs_ops_set_threads(1);
    avs_dev_free(&xd), avs_dev_free(&dyd), avs_dev_free(&lxd), avs_dev_free(&ldyd);
    avs_dev_free(&wd), avs_dev_free(&bd);
    free(x), free(dy), free(lx), free(ldy), free(w), free(b);
}

int main(void)
{
    avs_ops_set_threads(1);
    backends_keep(&seed, sizeof seed);
    on_every_backend("resize", test_resize);
    on_every_backend("streamed resize", test_resize_streamed);
    on_every_backend("layernorm", test_layernorm);
    on_every_backend("batchnorm", test_batchnorm);
    on_every_backend("relu_bwd", test_relu_bwd);
    on_every_backend("adam", test_adam);
    on_every_backend("threads", test_threads);
    return check_summary("test_backend_memops");
}
