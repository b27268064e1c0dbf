/* tests/test_model_memops.c: the fast paths of the memory-bound CPU primitives
 * (model/ops_cpu.c) against plain one-element-at-a-time references written here:
 *  - resize_fwd: bit-identical to the inline bilinear formula at every size (2x, odd sizes,
 *    downscaling, 1-pixel maps, big upscales), incl. the non-temporal store path (> 32 MB);
 *  - resize_bwd: the transposed fast path against the general scatter path and a double
 *    reference, at sizes that take the fast path and ones that fall back;
 *  - layernorm (blocked over positions): fwd and dx bit-identical to the per-position loops;
 *    batchnorm and the parameter gradients (8-lane sums) within float rounding;
 *  - relu_bwd, adam, adam_zero: bit-identical to the scalar formulas; adam_zero zeroes g;
 *  - 1 vs 2 threads bit-identical at sizes where the loops run in parallel.
 * (The PyTorch comparisons of the same primitives are in test_model_ops.c.)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "backend/backend.h"
#include "backend/cpu/cpu.h"
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

/* ---- resize ---- */

/* PyTorch's area_pixel_compute_source_index, as model/ops_cpu.c computes it */
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

static void resize_case(int NC, int H, int W, int OH, int OW, int ac)
{
    const struct avs_ops *op = avs_backend_cpu();
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * OH * OW;
    float *x = rnd(ni), *y = rnd(no), *want = rnd(no), *dy = rnd(no);
    char what[96];
    snprintf(what, sizeof what, "resize %d: %dx%d -> %dx%d ac=%d", NC, H, W, OH, OW, ac);
    op->resize_fwd(y, x, NC, H, W, OH, OW, ac);
    ref_resize_fwd(want, x, NC, H, W, OH, OW, ac);
    CHECK(!memcmp(y, want, no * sizeof(float)), "%s: fwd not bit-identical to the formula", what);

    /* bwd adds into dx: start from the same non-zero values on every path */
    float *dx0 = rnd(ni), *fast = copy(dx0, ni), *gen = copy(dx0, ni), *d = avs_malloc(ni * sizeof(float));
    double *ref = avs_malloc(ni * sizeof(double));
    for (size_t i = 0; i < ni; i++)
        ref[i] = dx0[i];
    op->resize_bwd(fast, dy, NC, H, W, OH, OW, ac);
    avs_cpu_resize_force_general(1);
    op->resize_bwd(gen, dy, NC, H, W, OH, OW, ac);
    avs_cpu_resize_force_general(0);
    ref_resize_bwd(ref, dy, NC, H, W, OH, OW, ac);
    for (size_t i = 0; i < ni; i++)
        d[i] = (float)ref[i];
    double ef = rel_l2(fast, d, ni), eg = rel_l2(gen, d, ni);
    CHECK(ef <= 1e-6, "%s: bwd fast path rel L2 %.3g vs double reference", what, ef);
    CHECK(eg <= 1e-6, "%s: bwd general path rel L2 %.3g vs double reference", what, eg);
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
    for (int t = 1; t <= 2; t++) {
        avs_ops_set_threads(t);
        memset(y, 0, no * sizeof(float));
        avs_backend_cpu()->resize_fwd(y, x, NC, H, W, OH, OW, 1);
        if (t == 1)
            ref_resize_fwd(want, x, NC, H, W, OH, OW, 1);
        CHECK(!memcmp(y, want, no * sizeof(float)), "streamed resize_fwd, %d threads: not the formula", t);
    }
    avs_ops_set_threads(1);
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
    const struct avs_ops *op = avs_backend_cpu();
    size_t n = (size_t)outer * C * inner, np = (size_t)outer * inner;
    float *x = rnd(n), *w = rnd((size_t)C), *b = rnd((size_t)C), *dy = rnd(n);
    float *y = rnd(n), *y2 = rnd(n), *m = rnd(np), *r = rnd(np), *m2 = rnd(np), *r2 = rnd(np);
    char what[64];
    snprintf(what, sizeof what, "layernorm [%d,%d,%d]", outer, C, inner);
    op->layernorm_fwd(y, m, r, x, w, b, outer, C, inner, 1e-5f);
    ref_ln_fwd(y2, m2, r2, x, w, b, outer, C, inner, 1e-5f);
    CHECK(!memcmp(y, y2, n * 4) && !memcmp(m, m2, np * 4) && !memcmp(r, r2, np * 4),
          "%s: fwd not bit-identical to the per-position loops", what);
    float *dx = rnd(n), *dx2 = copy(dx, n), *dw = avs_calloc((size_t)C, 4), *db = avs_calloc((size_t)C, 4);
    double *dw2 = avs_calloc((size_t)C, 8), *db2 = avs_calloc((size_t)C, 8);
    op->layernorm_bwd(dx, dw, db, dy, x, m, r, w, outer, C, inner);
    ref_ln_bwd(dx2, dw2, db2, dy, x, m, r, w, outer, C, inner);
    CHECK(!memcmp(dx, dx2, n * 4), "%s: dx not bit-identical to the per-position loops", what);
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(dw[c], dw2[c], 1e-5, 1e-6, what);
        CHECK_NEAR(db[c], db2[c], 1e-5, 1e-6, what);
    }
    free(x), free(w), free(b), free(dy), free(y), free(y2), free(m), free(r), free(m2), free(r2);
    free(dx), free(dx2), free(dw), free(db), free(dw2), free(db2);
}

static void test_layernorm(void)
{
    ln_case(7, 64, 1);   /* last-dim LayerNorm (PVT) */
    ln_case(3, 5, 33);   /* a block and a 1-position tail */
    ln_case(2, 256, 49); /* the head's 7x7 stage */
    ln_case(2, 16, 70);
}

/* batchnorm (train) against double sums: mean/rstd, y, dx, dw, db */
static void test_batchnorm(void)
{
    const struct avs_ops *op = avs_backend_cpu();
    int N = 3, C = 4, HW = 203;
    size_t n = (size_t)N * C * HW;
    float *x = rnd(n), *w = rnd(4), *b = rnd(4), *dy = rnd(n), *y = rnd(n), m[4], r[4];
    float rm[4] = {0}, rv[4] = {1, 1, 1, 1}, dw[4] = {0}, db[4] = {0};
    float *dx = avs_calloc(n, 4);
    op->batchnorm_fwd(y, m, r, x, w, b, rm, rv, N, C, HW, 1e-5f, 0.1f, 1);
    op->batchnorm_bwd(dx, dw, db, dy, x, m, r, w, N, C, HW, 1);
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
        CHECK(worst <= 1e-5, "batchnorm dx: channel %d off by %.3g", c, worst);
    }
    free(x), free(w), free(b), free(dy), free(y), free(dx);
}

/* ---- elementwise, Adam ---- */

static void test_relu_bwd(void)
{
    size_t n = 100003;
    float *x = rnd(n), *dy = rnd(n), *dx = rnd(n), *want = copy(dx, n);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-40f, x[3] = -1e-40f;
    avs_backend_cpu()->relu_bwd(dx, dy, x, n);
    for (size_t i = 0; i < n; i++)
        want[i] += x[i] > 0 ? dy[i] : 0.0f;
    CHECK(!memcmp(dx, want, n * 4), "relu_bwd: not the scalar select");
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

static void test_adam(void)
{
    const struct avs_ops *op = avs_backend_cpu();
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
            op->adam(p, g, m, v, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
            ref_adam(p2, g2, m2, v2, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
            op->adam_zero(p3, g3, m3, v3, n, 1e-3, 0.9, 0.999, 1e-8, wd, 3);
            CHECK(!memcmp(p, p2, n * 4) && !memcmp(m, m2, n * 4) && !memcmp(v, v2, n * 4),
                  "adam (%d threads, wd %g): not the scalar update", t, wd);
            CHECK(!memcmp(g, g2, n * 4), "adam changed g");
            CHECK(!memcmp(p, p3, n * 4) && !memcmp(m, m3, n * 4) && !memcmp(v, v3, n * 4),
                  "adam_zero (%d threads, wd %g): differs from adam", t, wd);
            size_t nz = 0;
            for (size_t i = 0; i < n; i++)
                nz += g3[i] != 0;
            CHECK(nz == 0, "adam_zero left %zu gradients non-zero", nz);
            free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2), free(g2);
            free(p3), free(m3), free(v3), free(g3);
        }
    avs_ops_set_threads(1);
}

/* ---- 1 vs 2 threads at parallel sizes ---- */

static void test_threads(void)
{
    const struct avs_ops *op = avs_backend_cpu();
    int NC = 40, H = 28, W = 28, B = 2, C = 64, HW = 300;
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * 4 * H * W, n = (size_t)B * C * HW;
    float *x = rnd(ni), *dy = rnd(no), *lx = rnd(n), *ldy = rnd(n), *w = rnd((size_t)C), *b = rnd((size_t)C);
    float *out[2][6];
    for (int t = 0; t < 2; t++) {
        avs_ops_set_threads(t + 1);
        float *y = avs_calloc(no, 4), *dx = avs_calloc(ni, 4), *ly = avs_calloc(n, 4), *ldx = avs_calloc(n, 4);
        float *st = avs_calloc((size_t)2 * B * HW + 4 * C, 4), rm[64] = {0}, rv[64] = {0};
        op->resize_fwd(y, x, NC, H, W, 2 * H, 2 * W, 1);
        op->resize_bwd(dx, dy, NC, H, W, 2 * H, 2 * W, 1);
        op->layernorm_fwd(ly, st, st + B * HW, lx, w, b, B, C, HW, 1e-5f);
        op->layernorm_bwd(ldx, st + 2 * B * HW, st + 2 * B * HW + C, ldy, lx, st, st + B * HW, w, B, C, HW);
        float *bdx = avs_calloc(n, 4), *bst = avs_calloc((size_t)4 * C, 4);
        op->batchnorm_fwd(ly, bst, bst + C, lx, w, b, rm, rv, B, C, HW, 1e-5f, 0.1f, 1);
        op->batchnorm_bwd(bdx, bst + 2 * C, bst + 3 * C, ldy, lx, bst, bst + C, w, B, C, HW, 1);
        out[t][0] = y, out[t][1] = dx, out[t][2] = ly, out[t][3] = ldx, out[t][4] = st;
        out[t][5] = bdx;
        for (int i = 0; i < 4 * C; i++)
            st[2 * B * HW + i] += bst[i]; /* compared with the layernorm state below */
        free(bst);
    }
    size_t sz[6] = {no, ni, n, n, (size_t)2 * B * HW + 4 * C, n};
    const char *nm[6] = {"resize_fwd", "resize_bwd", "norm fwd", "layernorm dx", "norm stats+grads", "batchnorm dx"};
    for (int k = 0; k < 6; k++) {
        CHECK(!memcmp(out[0][k], out[1][k], sz[k] * 4), "%s: 1 vs 2 threads differ", nm[k]);
        free(out[0][k]), free(out[1][k]);
    }
    avs_ops_set_threads(1);
    free(x), free(dy), free(lx), free(ldy), free(w), free(b);
}

int main(void)
{
    avs_ops_set_threads(1);
    test_resize();
    test_resize_streamed();
    test_layernorm();
    test_batchnorm();
    test_relu_bwd();
    test_adam();
    test_threads();
    return check_summary("test_model_memops");
}
