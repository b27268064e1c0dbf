/* backend/cpu/ops_cpu.c: the CPU backend table: memory, and every primitive but the convs
 * (conv.c, tapconv.c, winograd.c) and resize (resize.c).
 * Loops are OpenMP-parallel over an axis that is never reduced, so every output element has
 * one writer and one summation order: bit-identical results for any thread count.
 * Sums over many elements (norm statistics, bias gradients, losses) accumulate in double. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/common.h"
#include "backend/backend.h"
#include "backend/cpu/cpu.h"

/* OpenMP only pays off above a few tens of thousands of elements. */
#define PAR_MIN 32768

void openblas_set_num_threads(int n);

static int n_threads = 1;

void avs_ops_set_threads(int n)
{
    if (n <= 0)
        n = avs_num_cores();
    n_threads = n;
    openblas_set_num_threads(1); /* GEMMs are sliced over OpenMP threads (backend/cpu/conv.c) */
    omp_set_num_threads(n);
}

int avs_ops_threads(void)
{
    return n_threads;
}

char *openblas_get_corename(void);

/* The OpenBLAS kernel set to ask for when OpenBLAS fell back to its SSE3 "Prescott" kernels on
 * a CPU with AVX2 or AVX-512, else NULL. Debian 12's OpenBLAS 0.3.21 chooses kernels by CPU
 * model and does not know newer ones (Intel family 6 model 207, Emerald Rapids: 89 GFLOP/s
 * sgemm on 2 cores with Prescott, 440 with SkylakeX; head step 3.05 s -> 0.92 s). A
 * user's OPENBLAS_CORETYPE is left alone. */
static const char *blas_core_fix(void)
{
    const char *core = openblas_get_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcasecmp(core, "prescott") != 0)
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return "Haswell";
    return NULL;
}

void avs_ops_tune_process(char **argv)
{
    int spin = !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
    const char *core = blas_core_fix();
    if (!spin && !core)
        return;
    if (spin)
        setenv("GOMP_SPINCOUNT", "30000", 1);
    if (core)
        setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the defaults */
}

/* ---- memory: host memory, 64-byte aligned ---- */

void avs_cpu_zero(float *p, size_t n)
{
    const size_t block = (size_t)1 << 18;
    if (n < 4 * block) {
        memset(p, 0, n * sizeof(float));
        return;
    }
    long nb = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nb; i++) {
        size_t a = (size_t)i * block, len = n - a < block ? n - a : block;
        memset(p + a, 0, len * sizeof(float));
    }
}

static void *cpu_alloc(size_t bytes, int zero)
{
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p && zero)
        avs_cpu_zero(p, bytes / sizeof(float));
    return p;
}

static void cpu_free(void *p)
{
    free(p);
}

static void cpu_copy(void *dst, const void *src, size_t bytes)
{
    memmove(dst, src, bytes);
}

static void cpu_fill(float *y, float v, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = v;
}

static void cpu_sync(void)
{
}

void avs_cpu_add_channel(float *y, const float *b, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *p = y + ((size_t)n * C + c) * HW, v = b[c];
            for (int i = 0; i < HW; i++)
                p[i] += v;
        }
}

/* 8 fixed lanes of a long double-precision sum, reduced in a fixed tree: one dependent add
 * per element was latency-bound; the order never depends on threads */
static double lanes_total(const double s[8])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The sum of channel c of x [N,C,HW] in 8 fixed lanes (lanes_total): bias gradients, BatchNorm */
static double chan_sum(const float *x, int N, int C, int HW, int c)
{
    double s[8] = {0};
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        for (int i0 = 0; i0 < HW; i0 += 8) {
            int e = HW - i0 < 8 ? HW - i0 : 8;
#pragma omp simd
            for (int l = 0; l < e; l++)
                s[l] += p[i0 + l];
        }
    }
    return lanes_total(s);
}

void avs_cpu_sum_channel(float *db, const float *dy, int N, int C, int HW)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++)
        db[c] += (float)chan_sum(dy, N, C, HW, c);
}

static void bias_fwd(float *y, const float *b, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float *restrict yr = y + (size_t)r * cols;
#pragma omp simd
        for (int c = 0; c < cols; c++)
            yr[c] += b[c];
    }
}

/* Column sums, 64 columns at a time along the rows (a column at a time strided through the
 * whole matrix, a cache line per element); each column still sums its rows in order. */
static void bias_bwd(float *db, const float *dy, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int c0 = 0; c0 < cols; c0 += 64) {
        int nc = cols - c0 < 64 ? cols - c0 : 64;
        double acc[64] = {0};
        for (int r = 0; r < rows; r++) {
            const float *restrict p = dy + (size_t)r * cols + c0;
#pragma omp simd
            for (int c = 0; c < nc; c++)
                acc[c] += p[c];
        }
        for (int c = 0; c < nc; c++)
            db[c0 + c] += (float)acc[c];
    }
}

/* The elementwise loops say `simd`: -O2's cheap vectoriser skipped them (possible aliasing),
 * and the scalar ReLU branched on the sign, mispredicting half the time on real data. Each
 * element's arithmetic is the same as in scalar code. */
static void relu_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : 0.0f;
}

static void relu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded whatever the sign: a select, not a branch */
        dx[i] += x[i] > 0 ? g : 0.0f;
    }
}

static void sigmoid_fwd(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void sigmoid_bwd(float *dx, const float *dy, const float *y, size_t n)
{
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

static void softmax_fwd(float *y, const float *x, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols, mx = a[0];
        for (int c = 1; c < cols; c++)
            mx = a[c] > mx ? a[c] : mx;
        double s = 0;
        for (int c = 0; c < cols; c++) {
            b[c] = expf(a[c] - mx);
            s += b[c];
        }
        float inv = (float)(1.0 / s);
        for (int c = 0; c < cols; c++)
            b[c] *= inv;
    }
}

static void softmax_bwd(float *dx, const float *dy, const float *y, int rows, int cols)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *g = dy + (size_t)r * cols, *p = y + (size_t)r * cols;
        double s = 0;
        for (int c = 0; c < cols; c++)
            s += (double)g[c] * p[c];
        for (int c = 0; c < cols; c++)
            dx[(size_t)r * cols + c] += p[c] * (g[c] - (float)s);
    }
}

/* LayerNorm over C of [outer, C, inner] in blocks of up to LN_IB positions: the loops over C
 * run outside, the positions inside (vectorised), each position's sums in C order as one
 * position at a time would: the same bits, a fraction of the passes' latency. A block's
 * element (c, j) is at [c * cs + j * ps]: inner > 1, positions i0.. of one o (cs = inner,
 * ps = 1); inner = 1 (tokens [M, C]), rows o0.. (cs = 1, ps = C). x, y, mean, rstd point at
 * the block's first position. */
#define LN_IB 32

static void ln_fwd_block(float *y, float *mean, float *rstd, const float *x, const float *w,
                         const float *b, int C, size_t cs, size_t ps, int n, float eps)
{
    double s[LN_IB] = {0}, s2[LN_IB] = {0}, m[LN_IB];
    float mf[LN_IB], r[LN_IB];
    for (int c = 0; c < C; c++) {
        const float *a = x + (size_t)c * cs;
#pragma omp simd
        for (int j = 0; j < n; j++)
            s[j] += a[j * ps];
    }
#pragma omp simd
    for (int j = 0; j < n; j++)
        m[j] = s[j] / C;
    for (int c = 0; c < C; c++) {
        const float *a = x + (size_t)c * cs;
#pragma omp simd
        for (int j = 0; j < n; j++) {
            double d = a[j * ps] - m[j];
            s2[j] += d * d;
        }
    }
#pragma omp simd
    for (int j = 0; j < n; j++) {
        mf[j] = (float)m[j], r[j] = (float)(1.0 / sqrt(s2[j] / C + eps));
        mean[j] = mf[j], rstd[j] = r[j];
    }
    for (int c = 0; c < C; c++) {
        const float *a = x + (size_t)c * cs;
        float *z = y + (size_t)c * cs;
        if (w) {
            float wc = w[c], bc = b[c];
#pragma omp simd
            for (int j = 0; j < n; j++)
                z[j * ps] = (a[j * ps] - mf[j]) * r[j] * wc + bc;
        } else {
#pragma omp simd
            for (int j = 0; j < n; j++)
                z[j * ps] = (a[j * ps] - mf[j]) * r[j];
        }
    }
}

/* The blocks of [outer, C, inner]: inner > 1, blocks of LN_IB positions along inner for each
 * o; inner = 1, blocks of LN_IB rows. Block k's first position, element strides and size. */
struct ln_cut {
    int outer, C, inner, per_o, nb;
};

static struct ln_cut ln_cut(int outer, int C, int inner)
{
    struct ln_cut u = {outer, C, inner, 0, 0};
    u.per_o = inner > 1 ? (inner + LN_IB - 1) / LN_IB : 0;
    u.nb = inner < 1 ? 0 : inner > 1 ? outer * u.per_o : (outer + LN_IB - 1) / LN_IB;
    return u;
}

/* Block k: *at (element offset), *st (offset into mean/rstd), *cs, *ps; its positions. */
static int ln_block(const struct ln_cut *u, int k, size_t *at, size_t *st, size_t *cs, size_t *ps)
{
    if (u->inner > 1) {
        int o = k / u->per_o, i0 = (k % u->per_o) * LN_IB;
        *at = (size_t)o * u->C * u->inner + i0, *st = (size_t)o * u->inner + i0;
        *cs = (size_t)u->inner, *ps = 1;
        return u->inner - i0 < LN_IB ? u->inner - i0 : LN_IB;
    }
    int o0 = k * LN_IB;
    *at = (size_t)o0 * u->C, *st = (size_t)o0, *cs = 1, *ps = (size_t)u->C;
    return u->outer - o0 < LN_IB ? u->outer - o0 : LN_IB;
}

static void layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int outer, int C, int inner, float eps)
{
    struct ln_cut u = ln_cut(outer, C, inner);
#pragma omp parallel for schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int k = 0; k < u.nb; k++) {
        size_t at, st, cs, ps;
        int n = ln_block(&u, k, &at, &st, &cs, &ps);
        ln_fwd_block(y + at, mean + st, rstd + st, x + at, w, b, C, cs, ps, n, eps);
    }
}

/* dx of one block: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w */
static void ln_bwd_block(float *dx, const float *dy, const float *x, const float *mean,
                         const float *rstd, const float *w, int C, size_t cs, size_t ps, int n)
{
    double s1[LN_IB] = {0}, s2[LN_IB] = {0};
    float a1[LN_IB], a2[LN_IB];
    for (int c = 0; c < C; c++) {
        const float *p = dy + (size_t)c * cs, *q = x + (size_t)c * cs;
        float wc = w ? w[c] : 1.0f;
#pragma omp simd
        for (int j = 0; j < n; j++) {
            float g = p[j * ps] * wc, xh = (q[j * ps] - mean[j]) * rstd[j];
            s1[j] += g;
            s2[j] += (double)g * xh;
        }
    }
#pragma omp simd
    for (int j = 0; j < n; j++)
        a1[j] = (float)(s1[j] / C), a2[j] = (float)(s2[j] / C);
    for (int c = 0; c < C; c++) {
        const float *p = dy + (size_t)c * cs, *q = x + (size_t)c * cs;
        float *d = dx + (size_t)c * cs, wc = w ? w[c] : 1.0f;
#pragma omp simd
        for (int j = 0; j < n; j++) {
            float g = p[j * ps] * wc, xh = (q[j * ps] - mean[j]) * rstd[j];
            d[j * ps] += rstd[j] * (g - a1[j] - xh * a2[j]);
        }
    }
}


/* dw [C] += sum dy xhat, db [C] += sum dy over outer and inner; parallel over C */
static void ln_bwd_params(float *dw, float *db, const float *dy, const float *x, const float *mean,
                          const float *rstd, int outer, int C, int inner)
{
#pragma omp parallel for schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int c = 0; c < C; c++) {
        double sw[8] = {0}, sb[8] = {0};
        for (int o = 0; o < outer; o++) {
            const float *p = dy + ((size_t)o * C + c) * inner, *q = x + ((size_t)o * C + c) * inner;
            const float *mo = mean + (size_t)o * inner, *ro = rstd + (size_t)o * inner;
            for (int i0 = 0; i0 < inner; i0 += 8) {
                int e = inner - i0 < 8 ? inner - i0 : 8;
#pragma omp simd
                for (int l = 0; l < e; l++) {
                    float xh = (q[i0 + l] - mo[i0 + l]) * ro[i0 + l];
                    sw[l] += (double)p[i0 + l] * xh;
                    sb[l] += p[i0 + l];
                }
            }
        }
        dw[c] += (float)lanes_total(sw);
        db[c] += (float)lanes_total(sb);
    }
}

static void layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int outer, int C,
                          int inner)
{
    struct ln_cut u = ln_cut(outer, C, inner);
#pragma omp parallel for schedule(static) if ((size_t)outer * C * inner > PAR_MIN)
    for (int k = 0; k < u.nb; k++) {
        size_t at, st, cs, ps;
        int n = ln_block(&u, k, &at, &st, &cs, &ps);
        ln_bwd_block(dx + at, dy + at, x + at, mean + st, rstd + st, w, C, cs, ps, n);
    }
    if (dw)
        ln_bwd_params(dw, db, dy, x, mean, rstd, outer, C, inner);
}

static double bn_sumsq(const float *x, int N, int C, int HW, int c, double m)
{
    double s[8] = {0};
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        for (int i0 = 0; i0 < HW; i0 += 8) {
            int e = HW - i0 < 8 ? HW - i0 : 8;
#pragma omp simd
            for (int l = 0; l < e; l++) {
                double d = p[i0 + l] - m;
                s[l] += d * d;
            }
        }
    }
    return lanes_total(s);
}

/* y = x sc + sh over channel c */
static void bn_affine(float *y, const float *x, int N, int C, int HW, int c, float sc, float sh)
{
    for (int n = 0; n < N; n++) {
        size_t at = ((size_t)n * C + c) * HW;
        const float *p = x + at;
        float *q = y + at;
#pragma omp simd
        for (int i = 0; i < HW; i++)
            q[i] = p[i] * sc + sh;
    }
}

static void batchnorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, float *run_mean, float *run_var, int N, int C, int HW,
                          float eps, float momentum, int train)
{
    size_t cnt = (size_t)N * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        float m, r;
        if (train) {
            double md = chan_sum(x, N, C, HW, c) / (double)cnt, s2 = bn_sumsq(x, N, C, HW, c, md);
            double var = s2 / (double)cnt;
            m = (float)md;
            r = (float)(1.0 / sqrt(var + eps));
            if (run_mean) {
                double unb = cnt > 1 ? s2 / (double)(cnt - 1) : var;
                run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * m;
                run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)unb;
            }
        } else {
            m = run_mean[c];
            r = 1.0f / sqrtf(run_var[c] + eps);
        }
        mean[c] = m;
        rstd[c] = r;
        float sc = r * (w ? w[c] : 1.0f);
        bn_affine(y, x, N, C, HW, c, sc, (b ? b[c] : 0.0f) - m * sc);
    }
}

/* sums of dy and dy*xhat over channel c */
static void bn_bwd_sums(double *sg, double *sgx, const float *dy, const float *x, int N, int C,
                        int HW, int c, float m, float r)
{
    double a[8] = {0}, b[8] = {0};
    for (int n = 0; n < N; n++) {
        size_t at = ((size_t)n * C + c) * HW;
        const float *p = dy + at, *q = x + at;
        for (int i0 = 0; i0 < HW; i0 += 8) {
            int e = HW - i0 < 8 ? HW - i0 : 8;
#pragma omp simd
            for (int l = 0; l < e; l++) {
                a[l] += p[i0 + l];
                b[l] += (double)p[i0 + l] * ((q[i0 + l] - m) * r);
            }
        }
    }
    *sg = lanes_total(a), *sgx = lanes_total(b);
}

/* dx (+)= k dy - a1' - xhat a2' - corr over channel c (the batch-statistics form when
 * train, else k dy); the sum of the train form is removed first (corr) */
static void bn_bwd_dx(float *dx, const float *dy, const float *x, int N, int C, int HW, int c,
                      float m, float r, float k, float a1, float a2, int train)
{
    size_t cnt = (size_t)N * HW;
    float corr = 0;
    if (train) {
        double s[8] = {0};
        for (int n = 0; n < N; n++) {
            size_t at = ((size_t)n * C + c) * HW;
            const float *p = dy + at, *q = x + at;
            for (int i0 = 0; i0 < HW; i0 += 8) {
                int e = HW - i0 < 8 ? HW - i0 : 8;
#pragma omp simd
                for (int l = 0; l < e; l++)
                    s[l] += k * (p[i0 + l] - a1 - (q[i0 + l] - m) * r * a2);
            }
        }
        corr = (float)(lanes_total(s) / (double)cnt);
    }
    for (int n = 0; n < N; n++) {
        size_t at = ((size_t)n * C + c) * HW;
        const float *p = dy + at, *q = x + at;
        float *d = dx + at;
        if (train) {
#pragma omp simd
            for (int i = 0; i < HW; i++)
                d[i] += k * (p[i] - a1 - (q[i] - m) * r * a2) - corr;
        } else {
#pragma omp simd
            for (int i = 0; i < HW; i++)
                d[i] += k * p[i];
        }
    }
}

static void batchnorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int N, int C,
                          int HW, int train)
{
    size_t cnt = (size_t)N * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        float m = mean[c], r = rstd[c], wc = w ? w[c] : 1.0f;
        double sg, sgx;
        bn_bwd_sums(&sg, &sgx, dy, x, N, C, HW, c, m, r);
        if (dw)
            dw[c] += (float)sgx;
        if (db)
            db[c] += (float)sg;
        /* batch statistics: dx = w*rstd*(dy - mean(dy) - xhat*mean(dy*xhat)). Its sum over
         * the channel is exactly 0; float rounding leaves a residue that would show up as a
         * spurious gradient of a bias before the norm, so the residue is removed (two passes). */
        if (dx)
            bn_bwd_dx(dx, dy, x, N, C, HW, c, m, r, wc * r, (float)(sg / (double)cnt),
                      (float)(sgx / (double)cnt), train);
    }
}

static void mean_fwd(float *y, const float *x, int rows, int n)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += x[(size_t)r * n + i];
        y[r] = (float)(s / n);
    }
}

static void mean_bwd(float *dx, const float *dy, int rows, int n)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * n > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float g = dy[r] / (float)n;
        for (int i = 0; i < n; i++)
            dx[(size_t)r * n + i] += g;
    }
}

static void chmean_fwd(float *y, const float *x, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += x[((size_t)n * C + c) * HW + i];
            y[(size_t)n * HW + i] = (float)(s / C);
        }
}

static void chmean_bwd(float *dx, const float *dy, int N, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                dx[((size_t)n * C + c) * HW + i] += dy[(size_t)n * HW + i] / (float)C;
}

static void concat_fwd(float *y, const float *x, int N, int Cx, int HW, int Cy, int c0)
{
    for (int n = 0; n < N; n++)
        memcpy(y + ((size_t)n * Cy + c0) * HW, x + (size_t)n * Cx * HW,
               (size_t)Cx * HW * sizeof(float));
}

static void concat_bwd(float *dx, const float *dy, int N, int Cx, int HW, int Cy, int c0)
{
    for (int n = 0; n < N; n++) {
        const float *s = dy + ((size_t)n * Cy + c0) * HW;
        float *d = dx + (size_t)n * Cx * HW;
        for (size_t i = 0; i < (size_t)Cx * HW; i++)
            d[i] += s[i];
    }
}

static size_t bc_index(const struct avs_bcast *bc, int n, int c, int i)
{
    size_t k = 0;
    if (bc->sN)
        k = (size_t)n;
    if (bc->sC)
        k = k * bc->C + c;
    if (bc->sHW)
        k = k * bc->HW + i;
    return k;
}

static void add_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (int n = 0; n < bc->N; n++)
        for (int c = 0; c < bc->C; c++)
            for (int i = 0; i < bc->HW; i++) {
                size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                y[k] = x[k] + s[bc_index(bc, n, c, i)];
            }
}

static void mul_fwd(float *y, const float *x, const float *s, const struct avs_bcast *bc)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (int n = 0; n < bc->N; n++)
        for (int c = 0; c < bc->C; c++)
            for (int i = 0; i < bc->HW; i++) {
                size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                y[k] = x[k] * s[bc_index(bc, n, c, i)];
            }
}

/* ds[j] += sum of dy*(x or 1) over the positions that map to j; serial over the broadcast
 * operand's elements so the order is fixed. */
static void bcast_reduce(float *ds, const float *dy, const float *x, const struct avs_bcast *bc)
{
    size_t ns = (size_t)(bc->sN ? bc->N : 1) * (bc->sC ? bc->C : 1) * (bc->sHW ? bc->HW : 1);
#pragma omp parallel for schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
    for (size_t j = 0; j < ns; j++) {
        size_t t = j;
        int i0 = 0, i1 = bc->HW, c0 = 0, c1 = bc->C, n0 = 0, n1 = bc->N;
        if (bc->sHW)
            i0 = (int)(t % bc->HW), i1 = i0 + 1, t /= bc->HW;
        if (bc->sC)
            c0 = (int)(t % bc->C), c1 = c0 + 1, t /= bc->C;
        if (bc->sN)
            n0 = (int)t, n1 = n0 + 1;
        double s = 0;
        for (int n = n0; n < n1; n++)
            for (int c = c0; c < c1; c++)
                for (int i = i0; i < i1; i++) {
                    size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                    s += x ? (double)dy[k] * x[k] : dy[k];
                }
        ds[j] += (float)s;
    }
}

static void add_bwd(float *ds, const float *dy, const struct avs_bcast *bc)
{
    bcast_reduce(ds, dy, NULL, bc);
}

static void mul_bwd(float *dx, float *ds, const float *dy, const float *x, const float *s,
                    const struct avs_bcast *bc)
{
    if (dx) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)bc->N * bc->C * bc->HW > PAR_MIN)
        for (int n = 0; n < bc->N; n++)
            for (int c = 0; c < bc->C; c++)
                for (int i = 0; i < bc->HW; i++) {
                    size_t k = ((size_t)n * bc->C + c) * bc->HW + i;
                    dx[k] += dy[k] * s[bc_index(bc, n, c, i)];
                }
    }
    if (ds)
        bcast_reduce(ds, dy, x, bc);
}

static void axpy(float *y, float alpha, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* BCE with logits, stable form: max(x,0) - x*g + log(1 + exp(-|x|)). */
static double bce_logits(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    size_t tot = (size_t)B * n;
    double s = 0;
    for (size_t i = 0; i < tot; i++) {
        float v = x[i];
        s += (v > 0 ? v : 0) - v * g[i] + log1pf(expf(-fabsf(v)));
        if (dx)
            dx[i] = scale * (1.0f / (1.0f + expf(-v)) - g[i]) / (float)tot;
    }
    return s / (double)tot;
}

static double dice(float *dx, const float *x, const float *g, int B, int n, float scale)
{
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * n, *gb = g + (size_t)b * n;
        double spg = 0, sp = 0, sg = 0;
        for (int i = 0; i < n; i++) {
            double p = 1.0 / (1.0 + exp(-(double)xb[i]));
            spg += p * gb[i];
            sp += p;
            sg += gb[i];
        }
        double num = 2 * (spg + 1), den = sp + sg + 1;
        loss += 1 - num / den;
        if (dx)
            for (int i = 0; i < n; i++) {
                double p = 1.0 / (1.0 + exp(-(double)xb[i]));
                /* d(-num/den)/dp = -(2 g den - num) / den^2 */
                double dp = -(2 * gb[i] * den - num) / (den * den) / B;
                dx[(size_t)b * n + i] = (float)(scale * dp * p * (1 - p));
            }
    }
    return loss / B;
}

/* torch 1.13 _single_tensor_adam: scalars are Python doubles, rounded to float where they
 * meet a tensor; the update order below is PyTorch's. */
struct adam_k {
    float b1, b2, a1, a2, step_size, bc2s, eps, wd;
};

static struct adam_k adam_consts(double lr, double b1, double b2, double eps, double wd, long step)
{
    double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    return (struct adam_k){.b1 = (float)b1, .b2 = (float)b2, .a1 = (float)(1.0 - b1),
                           .a2 = (float)(1.0 - b2), .step_size = (float)(lr / bc1),
                           .bc2s = (float)sqrt(bc2), .eps = (float)eps, .wd = (float)wd};
}

static void adam_scalar(float *p, float *g, float *m, float *v, size_t i0, size_t i1,
                        const struct adam_k *k, int zero)
{
    for (size_t i = i0; i < i1; i++) {
        float gi = k->wd != 0 ? g[i] + k->wd * p[i] : g[i];
        m[i] = m[i] * k->b1 + k->a1 * gi;
        v[i] = v[i] * k->b2 + k->a2 * gi * gi;
        float denom = sqrtf(v[i]) / k->bc2s + k->eps;
        p[i] += -k->step_size * (m[i] / denom);
        if (zero)
            g[i] = 0;
    }
}

/* [i0, i1): 4 lanes at a time with the scalar code's operations in its order (sqrtf is
 * exactly rounded, as sqrtps: same bits); the compiler would not vectorise sqrtf (errno). */
static void adam_span(float *p, float *g, float *m, float *v, size_t i0, size_t i1,
                      const struct adam_k *k, int zero)
{
    size_t i = i0;
#ifdef __SSE2__
    __m128 b1 = _mm_set1_ps(k->b1), b2 = _mm_set1_ps(k->b2), a1 = _mm_set1_ps(k->a1);
    __m128 a2 = _mm_set1_ps(k->a2), bc2s = _mm_set1_ps(k->bc2s), eps = _mm_set1_ps(k->eps);
    __m128 nss = _mm_set1_ps(-k->step_size), wd = _mm_set1_ps(k->wd), z = _mm_setzero_ps();
    for (; i + 4 <= i1; i += 4) {
        __m128 gi = _mm_loadu_ps(g + i), pi = _mm_loadu_ps(p + i);
        if (k->wd != 0)
            gi = _mm_add_ps(gi, _mm_mul_ps(wd, pi));
        __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), b1), _mm_mul_ps(a1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), b2), _mm_mul_ps(_mm_mul_ps(a2, gi), gi));
        __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc2s), eps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(p + i, _mm_add_ps(pi, _mm_mul_ps(nss, _mm_div_ps(mi, den))));
        if (zero)
            _mm_storeu_ps(g + i, z);
    }
#endif
    adam_scalar(p, g, m, v, i, i1, k, zero);
}

#define ADAM_BLOCK 16384

static void adam_run(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                     double b2, double eps, double wd, long step, int zero)
{
    struct adam_k k = adam_consts(lr, b1, b2, eps, wd, step);
    size_t nb = (n + ADAM_BLOCK - 1) / ADAM_BLOCK;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * ADAM_BLOCK, i1 = i0 + ADAM_BLOCK < n ? i0 + ADAM_BLOCK : n;
        adam_span(p, g, m, v, i0, i1, &k, zero);
    }
}

static void adam(float *p, const float *g, float *m, float *v, size_t n, double lr, double b1,
                 double b2, double eps, double wd, long step)
{
    adam_run(p, (float *)g, m, v, n, lr, b1, b2, eps, wd, step, 0); /* g only read */
}

/* adam, then g = 0: the next step's zero_grad in the same pass over memory */
static void adam_zero(float *p, float *g, float *m, float *v, size_t n, double lr, double b1,
                      double b2, double eps, double wd, long step)
{
    adam_run(p, g, m, v, n, lr, b1, b2, eps, wd, step, 1);
}

static const struct avs_ops cpu_ops = {
    .name = "cpu",
    .about = "the reference: OpenBLAS GEMMs and OpenMP loops on this machine's cores",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = avs_cpu_zero,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .settings = avs_cpu_conv_settings,
    .conv2d_ws = avs_cpu_conv2d_ws,
    .tapconv_ws = avs_cpu_tapconv_ws,
    .gemm = avs_cpu_gemm,
    .conv2d_fwd = avs_cpu_conv2d_fwd,
    .conv2d_bwd_data = avs_cpu_conv2d_bwd_data,
    .conv2d_bwd_filter = avs_cpu_conv2d_bwd_filter,
    .conv2d_bwd_data_set = avs_cpu_conv2d_bwd_data_set,
    .tapconv_fwd = avs_cpu_op_tapconv_fwd,
    .tapconv_bwd_data = avs_cpu_op_tapconv_bwd_data,
    .tapconv_bwd_filter = avs_cpu_op_tapconv_bwd_filter,
    .bias_fwd = bias_fwd,
    .bias_bwd = bias_bwd,
    .relu_fwd = relu_fwd,
    .relu_bwd = relu_bwd,
    .gelu_fwd = avs_cpu_gelu_fwd,
    .gelu_bwd = avs_cpu_gelu_bwd,
    .sigmoid_fwd = sigmoid_fwd,
    .sigmoid_bwd = sigmoid_bwd,
    .softmax_fwd = softmax_fwd,
    .softmax_bwd = softmax_bwd,
    .layernorm_fwd = layernorm_fwd,
    .layernorm_bwd = layernorm_bwd,
    .batchnorm_fwd = batchnorm_fwd,
    .batchnorm_bwd = batchnorm_bwd,
    .resize_fwd = avs_cpu_resize_fwd,
    .resize_bwd = avs_cpu_resize_bwd,
    .mean_fwd = mean_fwd,
    .mean_bwd = mean_bwd,
    .chmean_fwd = chmean_fwd,
    .chmean_bwd = chmean_bwd,
    .concat_fwd = concat_fwd,
    .concat_bwd = concat_bwd,
    .add_fwd = add_fwd,
    .add_bwd = add_bwd,
    .mul_fwd = mul_fwd,
    .mul_bwd = mul_bwd,
    .axpy = axpy,
    .bce_logits = bce_logits,
    .dice = dice,
    .softmax_ce = avs_cpu_softmax_ce,
    .softmax_kl = avs_cpu_softmax_kl,
    .adam = adam,
    .adam_zero = adam_zero,
    /* PVT/VGGish token primitives (tokens.c) */
    .transpose = avs_cpu_transpose,
    .dwconv3_fwd = avs_cpu_dwconv3_fwd,
    .dwconv3_bwd_data = avs_cpu_dwconv3_bwd_data,
    .dwconv3_bwd_filter = avs_cpu_dwconv3_bwd_filter,
    .tokmean_fwd = avs_cpu_tokmean_fwd,
    .tokmean_bwd = avs_cpu_tokmean_bwd,
    .maxpool2_fwd = avs_cpu_maxpool2_fwd,
    .maxpool3s2_fwd = avs_cpu_maxpool3s2_fwd,
    .maxpool3s2_bwd = avs_cpu_maxpool3s2_bwd,
    .avgpool2_fwd = avs_cpu_avgpool2_fwd,
    .adapool_fwd = avs_cpu_adapool_fwd,
    .adapool_bwd = avs_cpu_adapool_bwd,
    .rowmax_fwd = avs_cpu_rowmax_fwd,
    /* head (backend/cpu/head.c) */
    .taps_split = avs_cpu_taps_split,
    .taps_merge = avs_cpu_taps_merge,
    .up2conv_compose = avs_cpu_up2conv_compose,
    .up2conv_decompose = avs_cpu_up2conv_decompose,
    .pad_replicate = avs_cpu_pad_replicate,
    .pad_replicate_bwd = avs_cpu_pad_replicate_bwd,
    .pixel_shuffle2 = avs_cpu_pixel_shuffle2,
    .pixel_unshuffle2 = avs_cpu_pixel_unshuffle2,
    .up2_ring_cols = avs_cpu_up2_ring_cols,
    .up2_ring_cols_bwd = avs_cpu_up2_ring_cols_bwd,
    .ring_set = avs_cpu_ring_set,
    .ring_take = avs_cpu_ring_take,
    .l2norm_rows = avs_cpu_l2norm_rows,
    .ccam_bwd = avs_cpu_ccam_bwd,
    /* rows (backend/cpu/rows.c) */
    .gather_rows = avs_cpu_gather_rows,
    .scatter_rows_add = avs_cpu_scatter_rows_add,
    /* audioset (backend/cpu/attpool.c) */
    .attpool_fwd = avs_cpu_attpool_fwd,
    .attpool_bwd = avs_cpu_attpool_bwd,
    .quant8_fwd = avs_cpu_quant8_fwd,
    .dropout_fwd = avs_cpu_dropout_fwd,
    .dropout_bwd = avs_cpu_dropout_bwd,
};

const struct avs_ops *avs_backend_cpu(void)
{
    return &cpu_ops;
}
