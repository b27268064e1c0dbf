/* backend/cpu/conv.c: conv2d forward, backward-data and backward-filter on the CPU.
 *
 * 3x3 stride-1 convs run as Winograd F(4x4,3x3) where the cost model below says it pays
 * (model/ops_cpu_winograd.c). The other paths all end in cblas_sgemm:
 *  - 1x1, stride 1, no padding: the map is already the GEMM operand: out[K,HW] = W[K,C] x[C,HW].
 *  - stride 1, groups 1 ("shifted GEMM", no im2col): the input is copied once into a zero
 *    padded plane [C, Hp*Wp]; the output is computed in a "wide" layout [K, P*Wp] in which
 *    kernel tap (r,s) is one GEMM  out_w += W_rs[K,C] * in_pad[C, off_rs : off_rs + L]
 *    with L = (P-1)*Wp + Q; the Wp-Q extra columns of each row are garbage and dropped.
 *    Taps that only ever see padding (large dilations on small maps, e.g. ASPP's 12 and 18
 *    on 7x7) are skipped, and the padding is cut to what the live taps reach.
 *  - anything else (stride > 1, groups > 1): im2col per image and group.
 * Scratch comes from the caller (avs_conv2d_ws floats).
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/tensor.h"
#include "backend/ops.h"
#include "backend/cpu/cpu.h"

void avs_conv2d_geom(struct avs_conv2d *g, int N, int C, int H, int W, int K, int R, int S,
                     int stride, int pad, int dil, int groups)
{
    AVS_ASSERT(groups >= 1 && C % groups == 0 && K % groups == 0 && stride >= 1 && dil >= 1);
    g->N = N, g->C = C, g->H = H, g->W = W, g->K = K, g->R = R, g->S = S;
    g->stride = stride, g->pad = pad, g->dil = dil, g->groups = groups;
    g->P = (H + 2 * pad - dil * (R - 1) - 1) / stride + 1;
    g->Q = (W + 2 * pad - dil * (S - 1) - 1) / stride + 1;
    AVS_ASSERT(g->P >= 1 && g->Q >= 1);
}

static int is_1x1(const struct avs_conv2d *g)
{
    return g->R == 1 && g->S == 1 && g->stride == 1 && g->pad == 0 && g->groups == 1;
}

static int is_shifted(const struct avs_conv2d *g)
{
    return g->stride == 1 && g->groups == 1;
}

/* Stride-1 dilated convs, and stride-1 convs on small maps, run as tap convs (below): the
 * shifted GEMM's garbage columns are 2 pad / W of the work, and on a small map its GEMMs are
 * narrow, while the tap conv batches images (measured, 256 -> 256 channels, 5 images of 14x14:
 * 1.3x faster). */
static int is_dilated(const struct avs_conv2d *g)
{
    return g->stride == 1 && g->groups == 1 && (g->dil > 1 || g->P * g->Q < 1024);
}

static size_t live_ws(const struct avs_conv2d *g);

/* Live taps and the padding they need (shifted path). */
struct taps {
    int n;           /* live taps */
    int rs[64 * 64]; /* r*S + s of each live tap */
    int top, left, Hp, Wp, L;
};

static void live_range(int k, int dil, int pad, int out, int in, int *lo, int *hi, int *live)
{
    int o = k * dil - pad; /* input row of output row 0 */
    *live = o > -out && o < in;
    if (*live) {
        if (o < *lo)
            *lo = o;
        if (o > *hi)
            *hi = o;
    }
}

static void taps_plan(const struct avs_conv2d *g, struct taps *t)
{
    AVS_ASSERT(g->R * g->S <= 64 * 64);
    int rlo = 0, rhi = 0, clo = 0, chi = 0, rlive[64], clive[64];
    int first_r = 1, first_c = 1;
    for (int r = 0; r < g->R; r++) {
        int lo = first_r ? 1 << 30 : rlo, hi = first_r ? -(1 << 30) : rhi;
        live_range(r, g->dil, g->pad, g->P, g->H, &lo, &hi, &rlive[r]);
        if (rlive[r])
            rlo = lo, rhi = hi, first_r = 0;
    }
    for (int s = 0; s < g->S; s++) {
        int lo = first_c ? 1 << 30 : clo, hi = first_c ? -(1 << 30) : chi;
        live_range(s, g->dil, g->pad, g->Q, g->W, &lo, &hi, &clive[s]);
        if (clive[s])
            clo = lo, chi = hi, first_c = 0;
    }
    t->n = 0;
    for (int r = 0; r < g->R; r++)
        for (int s = 0; s < g->S; s++)
            if (rlive[r] && clive[s])
                t->rs[t->n++] = r * g->S + s;
    AVS_ASSERT(t->n > 0);
    t->top = rlo < 0 ? -rlo : 0;
    t->left = clo < 0 ? -clo : 0;
    int bottom = rhi + g->P - g->H, right = chi + g->Q - g->W;
    t->Hp = t->top + g->H + (bottom > 0 ? bottom : 0);
    t->Wp = t->left + g->W + (right > 0 ? right : 0);
    t->L = (g->P - 1) * t->Wp + g->Q;
}

static size_t tap_offset(const struct avs_conv2d *g, const struct taps *t, int rs)
{
    int r = rs / g->S, s = rs % g->S;
    return (size_t)(r * g->dil - g->pad + t->top) * (size_t)t->Wp + (size_t)(s * g->dil - g->pad + t->left);
}

static int conv_algo = -1; /* -1: not yet read from the environment */

void avs_cpu_conv_set_algo(int algo)
{
    AVS_ASSERT(algo == AVS_CONV_AUTO || algo == AVS_CONV_GEMM || algo == AVS_CONV_WINOGRAD ||
               algo == AVS_CONV_EXACT_BWD || algo == AVS_CONV_FAST_BWD);
    conv_algo = algo;
}

/* AVS_CONV=gemm|winograd|exact-bwd|fast-bwd|auto in the environment sets the default. */
static int algo(void)
{
    if (conv_algo < 0) {
        const char *e = getenv("AVS_CONV");
        conv_algo = e && !strcmp(e, "gemm")       ? AVS_CONV_GEMM
                    : e && !strcmp(e, "winograd")  ? AVS_CONV_WINOGRAD
                    : e && !strcmp(e, "exact-bwd") ? AVS_CONV_EXACT_BWD
                    : e && !strcmp(e, "fast-bwd")  ? AVS_CONV_FAST_BWD
                                                   : AVS_CONV_AUTO;
    }
    return conv_algo;
}

/* Cost model: Winograd F(4,3) does 36 multiplies per 4x4 output tile and channel pair where
 * the shifted GEMM does 9 per output, so it needs 4x fewer GEMM flops when the map is a
 * multiple of 4 (less on ragged edges: 7x7 maps are 2x2 tiles, 8x8 computed). The transforms
 * cost O(C + K) per tile against O(C K) for the GEMMs, so narrow layers stay on GEMM; the
 * transformed filter is 4x the filter and is made on every call, which only pays over enough
 * tiles (measured, 256 -> 256 channels, 5 images, 2 threads, against the tap conv: 14x14 (80
 * tiles) 1.5x faster, 7x7 (20 tiles) 1.2x slower). Dilated convs run per
 * phase (d x d maps of ceil(H/d)), against the live-tap im2col, which is near sgemm peak:
 * measured (1 thread), ASPP d6 on 56x56 with 64 -> 256 channels: im2col 6.3 ms, Winograd on
 * phases of 10x10 9.0 ms (d18, 4x4 phases: 13 ms); d6 on 112x112 (phases of 19x19): 28 vs
 * 23 ms. So phases need >= 16 rows and columns. */
int avs_cpu_conv_uses_winograd(const struct avs_conv2d *g)
{
    if (algo() == AVS_CONV_GEMM || !avs_cpu_winograd_fits(g))
        return 0;
    if (algo() == AVS_CONV_WINOGRAD)
        return 1;
    double tiles = avs_cpu_winograd_tiles(g), taps = 9;
    if (g->dil > 1) { /* against the live-tap im2col path */
        struct taps t;
        taps_plan(g, &t);
        taps = t.n;
        if ((g->H + g->dil - 1) / g->dil < 16 || (g->W + g->dil - 1) / g->dil < 16)
            return 0;
    }
    double ratio = 36.0 * tiles / (taps * g->N * g->P * g->Q);
    return g->C >= 16 && g->K >= 16 && ratio <= 0.6 && tiles >= 64;
}

const char *avs_cpu_conv_settings(void)
{
    static const char *const names[] = {"", "conv=gemm", "conv=winograd", "conv=exact-bwd",
                                        "conv=fast-bwd"};
    return names[algo()];
}

int avs_cpu_conv_uses_winograd_bwd_data(const struct avs_conv2d *g)
{
    return algo() != AVS_CONV_EXACT_BWD && avs_cpu_conv_uses_winograd(g);
}

int avs_cpu_conv_bwd_data_double(void)
{
    return algo() != AVS_CONV_FAST_BWD;
}

/* scratch of the GEMM paths */
static size_t gemm_ws(const struct avs_conv2d *g)
{
    if (is_1x1(g)) /* the backward filter's partial product and double accumulator */
        return 3 * (size_t)g->K * g->C + 32;
    if (is_dilated(g))
        return live_ws(g);
    if (is_shifted(g)) {
        struct taps t;
        taps_plan(g, &t);
        return (size_t)t.n * g->K * g->C + (size_t)g->C * t.Hp * t.Wp +
               (size_t)g->K * g->P * t.Wp + 64;
    }
    return (size_t)(g->C / g->groups) * g->R * g->S * g->P * g->Q + 16;
}

size_t avs_cpu_conv2d_ws(const struct avs_conv2d *g)
{
    if (!avs_cpu_conv_uses_winograd(g))
        return gemm_ws(g);
    size_t w = avs_cpu_winograd_ws(g, avs_cpu_conv_bwd_data_double()), e = gemm_ws(g);
    return avs_cpu_conv_uses_winograd_bwd_data(g) || w > e ? w : e;
}

double avs_conv2d_flops(const struct avs_conv2d *g)
{
    double taps = (double)g->R * g->S;
    if (is_shifted(g) && !is_1x1(g)) {
        struct taps t;
        taps_plan(g, &t);
        taps = t.n;
    }
    return 2.0 * g->N * g->K * (double)g->P * g->Q * (g->C / g->groups) * taps;
}

/* One BLAS call; a product with one row or one column is a GEMV, one with inner dimension 1
 * an outer product (OpenBLAS's GEMM does those, e.g. a conv to one channel and its backward,
 * at a few GFLOP/s). */
static void blas(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 1) /* c = op(B)^T a */
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? N : K, tb ? K : N, alpha,
                    B, ldb, A, ta ? lda : 1, beta, C, 1);
    else if (N == 1) /* c = op(A) b */
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? K : M, ta ? M : K, alpha,
                    A, lda, B, tb ? 1 : ldb, beta, C, ldc);
    else if (K == 1 && (beta == 0.0f || beta == 1.0f)) { /* C = (or +=) alpha a b^T */
        if (beta == 0.0f)
            for (int i = 0; i < M; i++)
                memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
        cblas_sger(CblasRowMajor, M, N, alpha, A, ta ? 1 : lda, B, tb ? ldb : 1, C, ldc);
    } else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Tiles of a GEMM: the larger of C's dimensions is cut into at most `cpus` slices (multiples of
 * 16, at least 64), cpus = the processors the machine has (configured, not the ones this process may use),
 * so the cut depends on the problem and the machine, never on the thread count. */
static int gemm_tiles(void)
{
    static int tiles;
    if (!tiles) {
        long n = sysconf(_SC_NPROCESSORS_CONF);
        tiles = n < 1 ? 1 : n > 64 ? 64 : (int)n;
    }
    return tiles;
}

/* One threading layer, and the same bits for any thread count: OpenBLAS runs single-threaded
 * (set in avs_ops_set_threads: its own threads and OpenMP's would spin against each other on
 * the same cores) and C is cut into fixed tiles (gemm_tiles), each multiplied whole by one
 * call with the whole K reduction; threads only choose which tiles they take. (OpenBLAS's own
 * threading cuts by thread count, and its kernels round a slice's edges differently: measured
 * on Zen and Haswell kernels, 1 vs 2 threads give other bits for 48x360x576 and 1000^3.) */
void avs_cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    int split_m = M > N, len = split_m ? M : N;
    int chunk = ((len + gemm_tiles() - 1) / gemm_tiles() + 15) & ~15;
    if (chunk < 64)
        chunk = 64; /* narrower slices lose more to packing than threads win */
    int tiles = (len + chunk - 1) / chunk;
    if ((double)M * N * K < 2e6 || (M < 32 && N < 32) || tiles < 2) {
        blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(avs_ops_threads() < tiles ? avs_ops_threads() : tiles)
    for (int i = 0; i < tiles; i++) {
        int a = i * chunk, b = a + chunk < len ? a + chunk : len;
        if (split_m)
            blas(ta, tb, b - a, N, K, alpha, ta ? A + a : A + (size_t)a * lda, lda, B, ldb, beta,
                 C + (size_t)a * ldc, ldc);
        else
            blas(ta, tb, M, b - a, K, alpha, A, lda, tb ? B + (size_t)a * ldb : B + a, ldb, beta,
                 C + a, ldc);
    }
}

static double flop_count;

void avs_cpu_flops_add(double flops)
{
    flop_count += flops;
}

double avs_ops_flops(int reset)
{
    double v = flop_count;
    if (reset)
        flop_count = 0;
    return v;
}

void avs_cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    flop_count += 2.0 * M * N * K;
    avs_cpu_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- shifted path ---- */

/* wpk [taps][K][C] from w [K][C][R][S] */
static void pack_weights(float *wpk, const float *w, const struct avs_conv2d *g, const struct taps *t)
{
    int RS = g->R * g->S;
#pragma omp parallel for schedule(static) if ((size_t)g->K * g->C > 4096)
    for (int k = 0; k < g->K; k++)
        for (int ti = 0; ti < t->n; ti++)
            for (int c = 0; c < g->C; c++)
                wpk[((size_t)ti * g->K + k) * g->C + c] = w[((size_t)k * g->C + c) * RS + t->rs[ti]];
}

static void pad_input(float *ip, const float *x, const struct avs_conv2d *g, const struct taps *t)
{
    size_t plane = (size_t)t->Hp * t->Wp;
#pragma omp parallel for schedule(static) if ((size_t)g->C * plane > 32768)
    for (int c = 0; c < g->C; c++) {
        float *d = ip + c * plane;
        const float *s = x + (size_t)c * g->H * g->W;
        memset(d, 0, plane * sizeof(float));
        for (int h = 0; h < g->H; h++)
            memcpy(d + (size_t)(h + t->top) * t->Wp + t->left, s + (size_t)h * g->W,
                   (size_t)g->W * sizeof(float));
    }
}

static void shifted_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    taps_plan(g, &t);
    size_t plane = (size_t)t.Hp * t.Wp, PQ = (size_t)g->P * g->Q;
    float *wpk = ws, *ip = wpk + (size_t)t.n * g->K * g->C, *ow = ip + (size_t)g->C * plane;
    pack_weights(wpk, w, g, &t);
    for (int n = 0; n < g->N; n++) {
        pad_input(ip, in + (size_t)n * g->C * g->H * g->W, g, &t);
        for (int ti = 0; ti < t.n; ti++)
            avs_cpu_sgemm(0, 0, g->K, t.L, g->C, 1.0f, wpk + (size_t)ti * g->K * g->C, g->C,
                 ip + tap_offset(g, &t, t.rs[ti]), (int)plane, ti ? 1.0f : 0.0f, ow, t.Wp * g->P);
        float *o = out + (size_t)n * g->K * PQ;
#pragma omp parallel for schedule(static) if (g->K * PQ > 32768)
        for (int k = 0; k < g->K; k++) {
            float bk = b ? b[k] : 0.0f;
            for (int p = 0; p < g->P; p++) {
                const float *src = ow + (size_t)k * g->P * t.Wp + (size_t)p * t.Wp;
                float *dst = o + k * PQ + (size_t)p * g->Q;
                for (int q = 0; q < g->Q; q++)
                    dst[q] = src[q] + bk;
            }
        }
    }
}

/* dout [K,P,Q] into the wide layout [K, P*Wp] with zero garbage columns. */
static void widen(float *dw_, const float *dout, const struct avs_conv2d *g, const struct taps *t)
{
#pragma omp parallel for schedule(static) if ((size_t)g->K * g->P * t->Wp > 32768)
    for (int k = 0; k < g->K; k++)
        for (int p = 0; p < g->P; p++) {
            float *d = dw_ + ((size_t)k * g->P + p) * t->Wp;
            memcpy(d, dout + ((size_t)k * g->P + p) * g->Q, (size_t)g->Q * sizeof(float));
            memset(d + g->Q, 0, (size_t)(t->Wp - g->Q) * sizeof(float));
        }
}

static void shifted_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    taps_plan(g, &t);
    size_t plane = (size_t)t.Hp * t.Wp, HW = (size_t)g->H * g->W;
    float *wpk = ws, *ip = wpk + (size_t)t.n * g->K * g->C, *ow = ip + (size_t)g->C * plane;
    pack_weights(wpk, w, g, &t);
    for (int n = 0; n < g->N; n++) {
        widen(ow, dout + (size_t)n * g->K * g->P * g->Q, g, &t);
        memset(ip, 0, (size_t)g->C * plane * sizeof(float));
        for (int ti = 0; ti < t.n; ti++)
            avs_cpu_sgemm(1, 0, g->C, t.L, g->K, 1.0f, wpk + (size_t)ti * g->K * g->C, g->C, ow,
                 t.Wp * g->P, 1.0f, ip + tap_offset(g, &t, t.rs[ti]), (int)plane);
        float *d = din + (size_t)n * g->C * HW;
#pragma omp parallel for schedule(static) if (g->C * HW > 32768)
        for (int c = 0; c < g->C; c++)
            for (int h = 0; h < g->H; h++) {
                const float *src = ip + c * plane + (size_t)(h + t.top) * t.Wp + t.left;
                float *dst = d + c * HW + (size_t)h * g->W;
                for (int x = 0; x < g->W; x++)
                    dst[x] += src[x];
            }
    }
}

static void shifted_bwd_filter(float *dw, const float *dout, const float *in,
                               const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    taps_plan(g, &t);
    size_t plane = (size_t)t.Hp * t.Wp;
    int RS = g->R * g->S;
    float *wpk = ws, *ip = wpk + (size_t)t.n * g->K * g->C, *ow = ip + (size_t)g->C * plane;
    memset(wpk, 0, (size_t)t.n * g->K * g->C * sizeof(float));
    for (int n = 0; n < g->N; n++) {
        widen(ow, dout + (size_t)n * g->K * g->P * g->Q, g, &t);
        pad_input(ip, in + (size_t)n * g->C * g->H * g->W, g, &t);
        for (int ti = 0; ti < t.n; ti++)
            avs_cpu_sgemm(0, 1, g->K, g->C, t.L, 1.0f, ow, t.Wp * g->P, ip + tap_offset(g, &t, t.rs[ti]),
                 (int)plane, 1.0f, wpk + (size_t)ti * g->K * g->C, g->C);
    }
#pragma omp parallel for schedule(static) if ((size_t)g->K * g->C > 4096)
    for (int k = 0; k < g->K; k++)
        for (int ti = 0; ti < t.n; ti++)
            for (int c = 0; c < g->C; c++)
                dw[((size_t)k * g->C + c) * RS + t.rs[ti]] += wpk[((size_t)ti * g->K + k) * g->C + c];
}

/* ---- im2col path ---- */

/* col [Cg*R*S, P*Q] of image x [C,H,W], channels c0..c0+Cg */
static void im2col(float *col, const float *x, int c0, int Cg, const struct avs_conv2d *g)
{
    int RS = g->R * g->S;
    size_t PQ = (size_t)g->P * g->Q;
#pragma omp parallel for schedule(static) if ((size_t)Cg * RS * PQ > 32768)
    for (int row = 0; row < Cg * RS; row++) {
        int c = row / RS, r = row % RS / g->S, s = row % g->S;
        const float *src = x + (size_t)(c0 + c) * g->H * g->W;
        float *d = col + row * PQ;
        for (int p = 0; p < g->P; p++) {
            int h = p * g->stride - g->pad + r * g->dil;
            for (int q = 0; q < g->Q; q++) {
                int w = q * g->stride - g->pad + s * g->dil;
                d[(size_t)p * g->Q + q] = (h >= 0 && h < g->H && w >= 0 && w < g->W) ? src[(size_t)h * g->W + w] : 0.0f;
            }
        }
    }
}

/* din channels c0.. += col2im(col); parallel over channels so every element has one writer */
static void col2im(float *x, const float *col, int c0, int Cg, const struct avs_conv2d *g)
{
    int RS = g->R * g->S;
    size_t PQ = (size_t)g->P * g->Q;
#pragma omp parallel for schedule(static) if ((size_t)Cg * RS * PQ > 32768)
    for (int c = 0; c < Cg; c++) {
        float *dst = x + (size_t)(c0 + c) * g->H * g->W;
        for (int rs = 0; rs < RS; rs++) {
            int r = rs / g->S, s = rs % g->S;
            const float *src = col + ((size_t)c * RS + rs) * PQ;
            for (int p = 0; p < g->P; p++) {
                int h = p * g->stride - g->pad + r * g->dil;
                if (h < 0 || h >= g->H)
                    continue;
                for (int q = 0; q < g->Q; q++) {
                    int w = q * g->stride - g->pad + s * g->dil;
                    if (w >= 0 && w < g->W)
                        dst[(size_t)h * g->W + w] += src[(size_t)p * g->Q + q];
                }
            }
        }
    }
}

static void general_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_conv2d *g, float *col)
{
    int Cg = g->C / g->groups, Kg = g->K / g->groups, CRS = Cg * g->R * g->S;
    size_t PQ = (size_t)g->P * g->Q;
    for (int n = 0; n < g->N; n++) {
        const float *x = in + (size_t)n * g->C * g->H * g->W;
        float *o = out + (size_t)n * g->K * PQ;
        for (int gi = 0; gi < g->groups; gi++) {
            im2col(col, x, gi * Cg, Cg, g);
            avs_cpu_sgemm(0, 0, Kg, (int)PQ, CRS, 1.0f, w + (size_t)gi * Kg * CRS, CRS, col, (int)PQ, 0.0f,
                 o + (size_t)gi * Kg * PQ, (int)PQ);
        }
        if (b)
            for (int k = 0; k < g->K; k++)
                for (size_t i = 0; i < PQ; i++)
                    o[k * PQ + i] += b[k];
    }
}

static void general_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_conv2d *g, float *col)
{
    int Cg = g->C / g->groups, Kg = g->K / g->groups, CRS = Cg * g->R * g->S;
    size_t PQ = (size_t)g->P * g->Q;
    for (int n = 0; n < g->N; n++)
        for (int gi = 0; gi < g->groups; gi++) {
            avs_cpu_sgemm(1, 0, CRS, (int)PQ, Kg, 1.0f, w + (size_t)gi * Kg * CRS, CRS,
                 dout + ((size_t)n * g->K + (size_t)gi * Kg) * PQ, (int)PQ, 0.0f, col, (int)PQ);
            col2im(din + (size_t)n * g->C * g->H * g->W, col, gi * Cg, Cg, g);
        }
}

static void general_bwd_filter(float *dw, const float *dout, const float *in,
                               const struct avs_conv2d *g, float *col)
{
    int Cg = g->C / g->groups, Kg = g->K / g->groups, CRS = Cg * g->R * g->S;
    size_t PQ = (size_t)g->P * g->Q;
    for (int n = 0; n < g->N; n++)
        for (int gi = 0; gi < g->groups; gi++) {
            im2col(col, in + (size_t)n * g->C * g->H * g->W, gi * Cg, Cg, g);
            avs_cpu_sgemm(0, 1, Kg, CRS, (int)PQ, 1.0f, dout + ((size_t)n * g->K + (size_t)gi * Kg) * PQ,
                 (int)PQ, col, (int)PQ, 1.0f, dw + (size_t)gi * Kg * CRS, CRS);
        }
}

/* ---- dilated convs: a tap conv over the live taps (model/ops_cpu_tapconv.c) ----
 * A dilated conv on a small map (ASPP: dilation 6..18 on 7..56) wastes most of the shifted
 * GEMM: the zero-padded rows are Wp = W + 2 pad wide, so up to 2.6x of its columns are
 * garbage, and each tap's GEMM has only C as inner dimension. As a tap conv, the rows of one
 * im2col matrix are the live taps only and one GEMM with inner dimension C*taps does it all. */

static void tapconv_of(struct avs_tapconv *tc, const struct avs_conv2d *g, const struct taps *t)
{
    tc->N = g->N, tc->C = g->C, tc->H = g->H, tc->W = g->W, tc->K = g->K, tc->n = t->n;
    tc->P = g->P, tc->Q = g->Q;
    AVS_ASSERT(t->n <= AVS_TAPS_MAX);
    for (int i = 0; i < t->n; i++) {
        tc->dy[i] = t->rs[i] / g->S * g->dil - g->pad;
        tc->dx[i] = t->rs[i] % g->S * g->dil - g->pad;
    }
}

/* wt [K][taps][C] = the live taps of w [K][C][R*S] */
static void pack_live(float *wt, const float *w, const struct avs_conv2d *g, const struct taps *t)
{
    int RS = g->R * g->S;
#pragma omp parallel for schedule(static) if ((size_t)g->K * g->C * t->n > 32768)
    for (int k = 0; k < g->K; k++)
        for (int i = 0; i < t->n; i++)
            for (int c = 0; c < g->C; c++)
                wt[((size_t)k * t->n + i) * g->C + c] = w[((size_t)k * g->C + c) * RS + t->rs[i]];
}

static size_t live_ws(const struct avs_conv2d *g)
{
    struct taps t;
    struct avs_tapconv tc;
    taps_plan(g, &t);
    tapconv_of(&tc, g, &t);
    return (((size_t)g->K * g->C * t.n + 15) & ~(size_t)15) + avs_cpu_tapconv_ws(&tc);
}

/* The tap conv of g's live taps, and w's live taps packed at the head of ws; *rest: the tap
 * conv's own scratch. */
static float *live_setup(struct avs_tapconv *tc, struct taps *t, const float *w,
                         const struct avs_conv2d *g, float *ws, float **rest)
{
    taps_plan(g, t);
    tapconv_of(tc, g, t);
    *rest = ws + (((size_t)g->K * g->C * t->n + 15) & ~(size_t)15);
    if (w)
        pack_live(ws, w, g, t);
    return ws;
}

static void live_fwd(float *out, const float *in, const float *w, const float *b,
                     const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    struct avs_tapconv tc;
    float *rest, *wt = live_setup(&tc, &t, w, g, ws, &rest);
    avs_cpu_tapconv_fwd(out, in, wt, b, &tc, rest);
}

static void live_bwd_data(float *din, const float *dout, const float *w,
                          const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    struct avs_tapconv tc;
    float *rest, *wt = live_setup(&tc, &t, w, g, ws, &rest);
    avs_cpu_tapconv_bwd_data(din, dout, wt, &tc, rest);
}

static void live_bwd_filter(float *dw, const float *dout, const float *in,
                            const struct avs_conv2d *g, float *ws)
{
    struct taps t;
    struct avs_tapconv tc;
    int RS = g->R * g->S;
    float *rest, *dwt = live_setup(&tc, &t, NULL, g, ws, &rest);
    memset(dwt, 0, (size_t)g->K * g->C * t.n * sizeof(float));
    avs_cpu_tapconv_bwd_filter(dwt, NULL, dout, in, &tc, rest);
    for (int k = 0; k < g->K; k++)
        for (int i = 0; i < t.n; i++)
            for (int c = 0; c < g->C; c++)
                dw[((size_t)k * g->C + c) * RS + t.rs[i]] += dwt[((size_t)k * t.n + i) * g->C + c];
}

/* ---- entry points ---- */

void avs_cpu_conv2d_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_conv2d *g, float *ws)
{
    flop_count += avs_conv2d_flops(g);
    if (is_1x1(g)) {
        size_t HW = (size_t)g->H * g->W;
        for (int n = 0; n < g->N; n++) {
            float *o = out + (size_t)n * g->K * HW;
            avs_cpu_sgemm(0, 0, g->K, (int)HW, g->C, 1.0f, w, g->C, in + (size_t)n * g->C * HW, (int)HW,
                 0.0f, o, (int)HW);
            if (b)
                avs_cpu_add_channel(o, b, 1, g->K, (int)HW);
        }
    } else if (avs_cpu_conv_uses_winograd(g))
        avs_cpu_winograd_fwd(out, in, w, b, g, ws);
    else if (is_dilated(g))
        live_fwd(out, in, w, b, g, ws);
    else if (is_shifted(g))
        shifted_fwd(out, in, w, b, g, ws);
    else
        general_fwd(out, in, w, b, g, ws);
}

void avs_cpu_conv2d_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_conv2d *g, float *ws)
{
    flop_count += avs_conv2d_flops(g);
    if (is_1x1(g)) {
        size_t HW = (size_t)g->H * g->W;
        for (int n = 0; n < g->N; n++)
            avs_cpu_sgemm(1, 0, g->C, (int)HW, g->K, 1.0f, w, g->C, dout + (size_t)n * g->K * HW, (int)HW,
                 1.0f, din + (size_t)n * g->C * HW, (int)HW);
    } else if (avs_cpu_conv_uses_winograd_bwd_data(g))
        avs_cpu_winograd_bwd_data(din, 1, dout, w, g, ws, avs_cpu_conv_bwd_data_double());
    else if (is_dilated(g))
        live_bwd_data(din, dout, w, g, ws);
    else if (is_shifted(g))
        shifted_bwd_data(din, dout, w, g, ws);
    else
        general_bwd_data(din, dout, w, g, ws);
}

/* The same into a fresh buffer (overwritten): Winograd and 1x1 write it directly, saving
 * the clearing and the read of the zeros; the other paths clear it first. */
void avs_cpu_conv2d_bwd_data_set(float *din, const float *dout, const float *w,
                                 const struct avs_conv2d *g, float *ws)
{
    if (avs_cpu_conv_uses_winograd_bwd_data(g) || is_1x1(g)) {
        flop_count += avs_conv2d_flops(g);
        if (!is_1x1(g)) {
            avs_cpu_winograd_bwd_data(din, 0, dout, w, g, ws, avs_cpu_conv_bwd_data_double());
            return;
        }
        size_t HW = (size_t)g->H * g->W;
        for (int n = 0; n < g->N; n++)
            avs_cpu_sgemm(1, 0, g->C, (int)HW, g->K, 1.0f, w, g->C, dout + (size_t)n * g->K * HW,
                          (int)HW, 0.0f, din + (size_t)n * g->C * HW, (int)HW);
        return;
    }
    avs_cpu_zero(din, (size_t)g->N * g->C * g->H * g->W);
    avs_cpu_conv2d_bwd_data(din, dout, w, g, ws);
}

/* Positions per partial product of the 1x1 backward filter. */
#define BWF_SPAN 256

/* dw [K,C] += sum over images and positions of dout x in^T for a 1x1 conv: a reduction over
 * N*P*Q positions (50176 per image for the output conv's last layer at 224). One float GEMM
 * over all of them rounds like a running sum of that length; here each span of BWF_SPAN
 * positions is one GEMM and the spans are summed in double (fixed spans: the same bits for
 * any thread count), so the error is that of a 256-term float sum. The GEMMs are as large as
 * before in K*C and the extra adds are K*C per span. */
static void bwd_filter_1x1(float *dw, const float *dout, const float *in, const struct avs_conv2d *g,
                           float *ws)
{
    size_t PQ = (size_t)g->P * g->Q, KC = (size_t)g->K * g->C;
    double *acc = (double *)(void *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *part = (float *)(acc + KC);
    for (size_t i = 0; i < KC; i++)
        acc[i] = 0;
    for (int n = 0; n < g->N; n++)
        for (size_t p0 = 0; p0 < PQ; p0 += BWF_SPAN) {
            int len = PQ - p0 < BWF_SPAN ? (int)(PQ - p0) : BWF_SPAN;
            avs_cpu_sgemm(0, 1, g->K, g->C, len, 1.0f, dout + (size_t)n * g->K * PQ + p0, (int)PQ,
                          in + (size_t)n * g->C * PQ + p0, (int)PQ, 0.0f, part, g->C);
#pragma omp parallel for schedule(static) if (KC > 65536)
            for (size_t i = 0; i < KC; i++)
                acc[i] += part[i];
        }
#pragma omp parallel for schedule(static) if (KC > 65536)
    for (size_t i = 0; i < KC; i++)
        dw[i] = (float)(dw[i] + acc[i]);
}

void avs_cpu_conv2d_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                               const struct avs_conv2d *g, float *ws)
{
    flop_count += avs_conv2d_flops(g);
    size_t PQ = (size_t)g->P * g->Q;
    if (is_1x1(g))
        bwd_filter_1x1(dw, dout, in, g, ws);
    else if (avs_cpu_conv_uses_winograd(g))
        avs_cpu_winograd_bwd_filter(dw, dout, in, g, ws);
    else if (is_dilated(g))
        live_bwd_filter(dw, dout, in, g, ws);
    else if (is_shifted(g))
        shifted_bwd_filter(dw, dout, in, g, ws);
    else
        general_bwd_filter(dw, dout, in, g, ws);
    if (db)
        avs_cpu_sum_channel(db, dout, g->N, g->K, (int)PQ);
}
