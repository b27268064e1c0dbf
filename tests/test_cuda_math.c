/* tests/test_cuda_math.c: the CUDA kernels' index maps and formulas, checked on the host (no
 * GPU needed; built and run in every build). Each primitive below is reproduced here by
 * calling backend/cuda/k_math.h exactly as its kernel in backend/cuda/k_*.cu does (one output
 * element at a time, in the kernel's decomposition of the element index; the fixed-order sums
 * of k_reduce.cuh with their splits, per-thread strides and trees), and compared with the cpu
 * backend on random shapes including odd sizes and 1x1 / 2x2 maps:
 *   exact (same bits) where the kernel adds the same terms in the cpu's order: activations,
 *   broadcast add/mul, resize fwd and bwd (the cpu's transposed pass), dwconv3 (all three),
 *   maxpool2, taps split/merge, up2conv compose/decompose, replicate pad and its backward,
 *   pixel (un)shuffle, ring columns and their backward, ring set/take, Adam, LayerNorm over
 *   channels (inner > 1), concat, bias_fwd;
 *   within a stated tolerance where only the order of a sum differs: RTOL (2e-6 relative)
 *   for float results of double sums (bias_bwd, add/mul_bwd, the means, LayerNorm statistics
 *   and dw/db, BatchNorm statistics, softmax, l2norm, dice's gradient), 1e-5 where a float
 *   expression follows them (LayerNorm rows' output, BatchNorm's output) or of the largest
 *   value where terms cancel (resize_bwd past 4x, where the cpu scatters; the dx of LayerNorm
 *   rows and BatchNorm), 1e-12 for the losses' double values; ccam_bwd is exact when its
 *   channel sum is unsplit.
 * What this cannot check: the CUDA code around these calls (launch shapes, shared memory, the
 * device's FMA contraction); tests/test_cuda_ops.c does that against the cpu on a GPU. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda/k_math.h"
#include "core/common.h"
#include "tests/check.h"

#define BLOCK 256 /* AVS_CU_BLOCK */

static const struct avs_ops *cpu;
static uint64_t rng = 0x2545f4914f6cdd1dULL;

static float frand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *rnd(size_t n)
{
    float *p = avs_malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *dup(const float *a, size_t n)
{
    float *p = avs_malloc((n ? n : 1) * sizeof(float));
    memcpy(p, a, n * sizeof(float));
    return p;
}

/* got == want element for element (bits, up to the sign of zero); prints the first miss */
static void same(const char *what, const float *got, const float *want, size_t n)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && !(isnan(got[i]) && isnan(want[i])))
            first = bad++ ? first : i;
    CHECK(bad == 0, "%s: %zu of %zu differ, first [%zu] got %.9g want %.9g", what, bad, n, first,
          got[first], want[first]);
}

/* |got - want| <= tol (|want| + 1e-3 ...): prints the worst element */
static void near(const char *what, const float *got, const float *want, size_t n, double rtol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) + 1e-3);
        if (!(e <= worst))
            worst = e, at = i;
    }
    CHECK(worst <= rtol, "%s: worst [%zu] got %.9g want %.9g (rel %.3g > %.3g)", what, at,
          n ? got[at] : 0.0f, n ? want[at] : 0.0f, worst, rtol);
}

/* |got - want| <= tol max|want|: for sums whose terms cancel (the error scales with the terms,
 * not with the result) */
static void near_scaled(const char *what, const float *got, const float *want, size_t n,
                        double tol)
{
    double big = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        big = fabs(want[i]) > big ? fabs(want[i]) : big;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= worst))
            worst = e, at = i;
    }
    CHECK(worst <= tol * big, "%s: worst [%zu] got %.9g want %.9g (%.3g > %.3g x max %.3g)", what,
          at, n ? got[at] : 0.0f, n ? want[at] : 0.0f, worst, tol, big);
}

#define RTOL 2e-6

/* ---- the device's fixed trees, reproduced ---- */

/* lane 0 after __shfl_down_sync steps 16, 8, 4, 2, 1 */
static double shfl_down_tree(const double in[32])
{
    double v[32], t[32];
    memcpy(v, in, sizeof v);
    for (int o = 16; o > 0; o >>= 1) {
        for (int l = 0; l < 32; l++)
            t[l] = l + o < 32 ? v[l] + v[l + o] : v[l] + v[l];
        memcpy(v, t, sizeof v);
    }
    return v[0];
}

/* every lane after __shfl_xor_sync steps 16 .. 1 (all lanes agree: + commutes) */
static double shfl_xor_tree(const double in[32])
{
    double v[32], t[32];
    memcpy(v, in, sizeof v);
    for (int o = 16; o > 0; o >>= 1) {
        for (int l = 0; l < 32; l++)
            t[l] = v[l] + v[l ^ o];
        memcpy(v, t, sizeof v);
    }
    return v[0];
}

/* avs_k_block_sum over BLOCK threads' values */
static double block_tree(const double th[BLOCK])
{
    double w[32] = {0};
    for (int k = 0; k < BLOCK / 32; k++)
        w[k] = shfl_down_tree(th + 32 * k);
    return shfl_down_tree(w);
}

typedef double (*load_fn)(const void *ctx, size_t k);

struct ld2 {
    const float *a, *b; /* b NULL: a[k] */
};

static double ld2_at(const void *ctx, size_t k)
{
    const struct ld2 *l = ctx;
    return l->b ? (double)l->a[k] * l->b[k] : l->a[k];
}

/* avs_k_plane_sum: out[c] for a view [N,C,HW] */
static void plane_sum(double *out, int N, int C, int HW, load_fn f, const void *ctx)
{
    int S = avs_k_plane_splits(N, C, HW);
    for (int c = 0; c < C; c++) {
        double tot = 0;
        for (int s = 0; s < S; s++) {
            size_t r0, r1;
            double th[BLOCK];
            avs_k_chunk((size_t)N * HW, S, s, &r0, &r1);
            for (int t = 0; t < BLOCK; t++) {
                th[t] = 0;
                for (size_t r = r0 + t; r < r1; r += BLOCK)
                    th[t] += f(ctx, ((r / HW) * C + c) * HW + r % HW);
            }
            double v = block_tree(th);
            tot = S == 1 ? v : tot + v;
        }
        out[c] = tot;
    }
}

/* avs_k_col_sum: out[b*K + k] for a view [Nb,R,K] */
static void col_sum(double *out, int Nb, int R, int K, load_fn f, const void *ctx)
{
    int S = avs_k_col_splits(Nb, R, K);
    for (size_t j = 0; j < (size_t)Nb * K; j++) {
        double tot = 0;
        for (int s = 0; s < S; s++) {
            size_t r0, r1, b = j / K, k = j % K;
            double v = 0;
            avs_k_chunk((size_t)R, S, s, &r0, &r1);
            for (size_t r = r0; r < r1; r++)
                v += f(ctx, (b * R + r) * K + k);
            tot = S == 1 ? v : tot + v;
        }
        out[j] = tot;
    }
}

/* ---- activations ---- */

static void test_activations(void)
{
    size_t n = 3001;
    float *x = rnd(n), *dy = rnd(n), *want = rnd(n), *got = dup(want, n), *y = rnd(n);
    for (size_t i = 0; i < n; i++)
        x[i] *= 6.0f;
    cpu->gelu_fwd(want, x, n);
    for (size_t i = 0; i < n; i++)
        got[i] = avs_k_gelu(x[i]);
    same("gelu_fwd", got, want, n);
    memcpy(got, y, n * sizeof(float));
    memcpy(want, y, n * sizeof(float));
    cpu->gelu_bwd(want, dy, x, n);
    for (size_t i = 0; i < n; i++)
        got[i] += dy[i] * avs_k_gelu_grad(x[i]);
    same("gelu_bwd", got, want, n);
    cpu->sigmoid_fwd(want, x, n);
    for (size_t i = 0; i < n; i++)
        got[i] = avs_k_sigmoid(x[i]);
    same("sigmoid_fwd", got, want, n);
    free(x), free(dy), free(want), free(got), free(y);
}

/* ---- broadcast add / mul, forward and backward, every pattern of axes ---- */

static void test_bcast_one(int N, int C, int HW, int mask)
{
    struct avs_bcast bc = {N, C, HW, (mask >> 2) & 1, (mask >> 1) & 1, mask & 1};
    size_t n = (size_t)N * C * HW;
    size_t ns = (size_t)(bc.sN ? N : 1) * (bc.sC ? C : 1) * (bc.sHW ? HW : 1);
    float *x = rnd(n), *s = rnd(ns), *dy = rnd(n), *want = rnd(n), *got = rnd(n);
    char what[96];
    snprintf(what, sizeof what, "add_fwd N=%d C=%d HW=%d mask=%d", N, C, HW, mask);
    cpu->add_fwd(want, x, s, &bc);
    size_t bad32 = 0;
    for (size_t i = 0; i < n; i++) {
        got[i] = x[i] + s[avs_k_bc_index(&bc, i)];
        bad32 += avs_k_bc_index32(&bc, (unsigned)i) != avs_k_bc_index(&bc, i);
    }
    same(what, got, want, n);
    CHECK(bad32 == 0, "%s: avs_k_bc_index32 differs from avs_k_bc_index at %zu", what, bad32);
    what[0] = 'm', what[1] = 'u', what[2] = 'l';
    cpu->mul_fwd(want, x, s, &bc);
    for (size_t i = 0; i < n; i++)
        got[i] = x[i] * s[avs_k_bc_index(&bc, i)];
    same(what, got, want, n);
    /* ds += the reduction through the view of k_sum.cu's bcast_reduce */
    float *dsw = rnd(ns), *dsg = dup(dsw, ns);
    double *acc = avs_malloc(ns * sizeof(double));
    for (int prod = 0; prod < 2; prod++) {
        struct ld2 l = {dy, prod ? x : NULL};
        struct avs_k_view v = avs_k_bc_view(&bc);
        if (v.kind == AVS_K_VIEW_SAME)
            for (size_t i = 0; i < n; i++)
                acc[i] = ld2_at(&l, i);
        else if (v.kind == AVS_K_VIEW_PLANE)
            plane_sum(acc, v.a, v.b, v.c, ld2_at, &l);
        else
            col_sum(acc, v.a, v.b, v.c, ld2_at, &l);
        for (size_t j = 0; j < ns; j++)
            dsg[j] += (float)acc[j];
        if (prod)
            cpu->mul_bwd(NULL, dsw, dy, x, s, &bc);
        else
            cpu->add_bwd(dsw, dy, &bc);
        snprintf(what, sizeof what, "%s_bwd ds N=%d C=%d HW=%d mask=%d", prod ? "mul" : "add", N,
                 C, HW, mask);
        near(what, dsg, dsw, ns, RTOL);
    }
    free(x), free(s), free(dy), free(want), free(got), free(dsw), free(dsg), free(acc);
}

static void test_bcast(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {2, 3, 5}, {3, 7, 97}, {1, 5, 20000}, {4, 64, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int mask = 0; mask < 8; mask++)
            test_bcast_one(shapes[s][0], shapes[s][1], shapes[s][2], mask);
}

/* ---- sums: bias_bwd, mean, chmean, tokmean ---- */

static void test_sums_one(int A, int B, int K)
{
    size_t n = (size_t)A * B * K;
    float *x = rnd(n), *w = rnd((size_t)A * K + (size_t)A * B + n), *g = dup(w, (size_t)A * K);
    double *acc = avs_malloc(((size_t)A * K + (size_t)A * B + 1) * sizeof(double));
    struct ld2 l = {x, NULL};
    char what[80];
    /* bias_bwd over [A*B, K]: a column sum of one image */
    cpu->bias_bwd(w, x, A * B, K);
    col_sum(acc, 1, A * B, K, ld2_at, &l);
    for (int k = 0; k < K; k++)
        g[k] += (float)acc[k];
    snprintf(what, sizeof what, "bias_bwd rows=%d cols=%d", A * B, K);
    near(what, g, w, (size_t)K, RTOL);
    /* tokmean [A,B,K] -> [A,K], chmean [A,B,K] -> [A,K] (C = B): column sums per image */
    col_sum(acc, A, B, K, ld2_at, &l);
    for (size_t j = 0; j < (size_t)A * K; j++)
        g[j] = (float)(acc[j] / B);
    cpu->tokmean_fwd(w, x, A, B, K);
    snprintf(what, sizeof what, "tokmean_fwd N=%d L=%d C=%d", A, B, K);
    near(what, g, w, (size_t)A * K, RTOL);
    cpu->chmean_fwd(w, x, A, B, K);
    snprintf(what, sizeof what, "chmean_fwd N=%d C=%d HW=%d", A, B, K);
    near(what, g, w, (size_t)A * K, RTOL);
    /* mean over the last axis of [A*B, K]: a plane sum with N = 1 */
    plane_sum(acc, 1, A * B, K, ld2_at, &l);
    free(g);
    g = avs_malloc((size_t)A * B * sizeof(float));
    for (size_t j = 0; j < (size_t)A * B; j++)
        g[j] = (float)(acc[j] / K);
    cpu->mean_fwd(w, x, A * B, K);
    snprintf(what, sizeof what, "mean_fwd rows=%d n=%d", A * B, K);
    near(what, g, w, (size_t)A * B, RTOL);
    free(x), free(w), free(g), free(acc);
}

static void test_sums(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {2, 2, 2}, {3, 49, 5}, {2, 3000, 33},
                                    {1, 70000, 3}, {5, 7, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        test_sums_one(shapes[s][0], shapes[s][1], shapes[s][2]);
}

/* ---- resize ---- */

/* every output index's source rows fall in the inverse ranges, and every index in a range
 * reads its input: the gather visits exactly the outputs the scatter did */
static void test_resize_inverse(void)
{
    int bad = 0;
    for (int ac = 0; ac < 2; ac++)
        for (int in = 1; in <= 30; in++)
            for (int out = 1; out <= 30; out++) {
                int reads[32][32] = {{0}};
                for (int o = 0; o < out; o++) {
                    int i0, i1;
                    float l1;
                    avs_k_resize_src(out, in, o, ac, &i0, &i1, &l1);
                    reads[o][i0] = reads[o][i1] = 1;
                }
                for (int i = 0; i < in; i++) {
                    int lo, hi;
                    avs_k_resize_inv(out, in, i, ac, &lo, &hi);
                    for (int o = 0; o < out; o++)
                        bad += reads[o][i] != (o >= lo && o <= hi);
                }
            }
    CHECK(bad == 0, "resize inverse ranges: %d (output, input) pairs wrong", bad);
}

static void test_resize_one(int NC, int H, int W, int OH, int OW, int ac)
{
    size_t ni = (size_t)NC * H * W, no = (size_t)NC * OH * OW;
    float *x = rnd(ni), *dy = rnd(no), *want = rnd(no), *got = rnd(no);
    float *dxw = rnd(ni), *dxg = dup(dxw, ni);
    char what[96];
    cpu->resize_fwd(want, x, NC, H, W, OH, OW, ac);
    for (size_t k = 0; k < no; k++) { /* resize_fwd_k */
        size_t ox = k % OW, oy = (k / OW) % OH, p = k / ((size_t)OW * OH);
        got[k] = avs_k_resize_at(x + p * H * W, H, W, OH, OW, ac, (int)oy, (int)ox);
    }
    snprintf(what, sizeof what, "resize_fwd %dx%d -> %dx%d ac=%d", H, W, OH, OW, ac);
    same(what, got, want, no);
    cpu->resize_bwd(dxw, dy, NC, H, W, OH, OW, ac);
    for (size_t k = 0; k < ni; k++) { /* resize_bwd_k */
        size_t xx = k % W, yy = (k / W) % H, p = k / ((size_t)W * H);
        dxg[k] += avs_k_resize_gather(dy + p * OH * OW, H, W, OH, OW, ac, (int)yy, (int)xx);
    }
    snprintf(what, sizeof what, "resize_bwd %dx%d <- %dx%d ac=%d", H, W, OH, OW, ac);
    /* the cpu's transposed pass adds in this order up to ~6x; larger upscales scatter */
    if (OW <= 4 * W && OH <= 4 * H)
        same(what, dxg, dxw, ni);
    else
        near_scaled(what, dxg, dxw, ni, 1e-5);
    free(x), free(dy), free(want), free(got), free(dxw), free(dxg);
}

static void test_resize(void)
{
    static const int shapes[][4] = {{1, 1, 1, 1},   {1, 1, 3, 5},    {2, 2, 4, 4},
                                    {2, 2, 1, 1},   {3, 5, 7, 2},    {7, 7, 14, 14},
                                    {13, 9, 26, 18}, {14, 14, 7, 7}, {5, 3, 17, 10},
                                    {9, 11, 4, 3},  {2, 3, 33, 31},  {28, 28, 224, 224},
                                    {56, 56, 112, 112}};
    test_resize_inverse();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ac = 0; ac < 2; ac++)
            test_resize_one(3, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], ac);
}


/* ---- row-wise: softmax, l2norm (a warp per row: lane l takes columns l, l+32, ...) ---- */

/* lane partials of f over a row, then the xor tree */
static double warp_row_sum(const float *a, const float *b, int cols, double sub, int sq)
{
    double lanes[32] = {0};
    for (int l = 0; l < 32; l++)
        for (int c = l; c < cols; c += 32) {
            double v = b ? (double)a[c] * b[c] : (double)a[c] - sub;
            lanes[l] += sq ? v * v : v;
        }
    return shfl_xor_tree(lanes);
}

static void test_rows_one(int rows, int cols)
{
    size_t n = (size_t)rows * cols;
    float *x = rnd(n), *dy = rnd(n), *want = rnd(n), *got = rnd(n), *dxw = rnd(n);
    float *dxg = dup(dxw, n);
    char what[80];
    for (size_t i = 0; i < n; i++)
        x[i] *= 4.0f;
    cpu->softmax_fwd(want, x, rows, cols);
    for (int r = 0; r < rows; r++) { /* softmax_fwd_k */
        const float *a = x + (size_t)r * cols;
        float *o = got + (size_t)r * cols, mx = a[0];
        for (int c = 0; c < cols; c++)
            mx = a[c] > mx ? a[c] : mx;
        double lanes[32] = {0};
        for (int l = 0; l < 32; l++)
            for (int c = l; c < cols; c += 32) {
                o[c] = expf(a[c] - mx);
                lanes[l] += o[c];
            }
        float inv = (float)(1.0 / shfl_xor_tree(lanes));
        for (int c = 0; c < cols; c++)
            o[c] *= inv;
    }
    snprintf(what, sizeof what, "softmax_fwd rows=%d cols=%d", rows, cols);
    near(what, got, want, n, RTOL);
    cpu->softmax_bwd(dxw, dy, want, rows, cols);
    for (int r = 0; r < rows; r++) { /* softmax_bwd_k */
        const float *g = dy + (size_t)r * cols, *p = want + (size_t)r * cols;
        float sf = (float)warp_row_sum(g, p, cols, 0, 0);
        for (int c = 0; c < cols; c++)
            dxg[(size_t)r * cols + c] += p[c] * (g[c] - sf);
    }
    snprintf(what, sizeof what, "softmax_bwd rows=%d cols=%d", rows, cols);
    near(what, dxg, dxw, n, RTOL);
    cpu->l2norm_rows(want, x, rows, cols, 1e-12f);
    for (int r = 0; r < rows; r++) { /* l2norm_rows_k */
        const float *a = x + (size_t)r * cols;
        float nrm = (float)sqrt(warp_row_sum(a, a, cols, 0, 0));
        nrm = nrm < 1e-12f ? 1e-12f : nrm;
        for (int c = 0; c < cols; c++)
            got[(size_t)r * cols + c] = a[c] / nrm;
    }
    snprintf(what, sizeof what, "l2norm_rows rows=%d cols=%d", rows, cols);
    near(what, got, want, n, RTOL);
    free(x), free(dy), free(want), free(got), free(dxw), free(dxg);
}

/* ---- LayerNorm ---- */

struct ln_ctx {
    const float *dy, *x, *mean, *rstd;
    int C, inner;
};

static double ln_dyxh_at(const void *ctx, size_t k) /* k_norm.cu ln_dyxh */
{
    const struct ln_ctx *l = ctx;
    size_t st = k / ((size_t)l->C * l->inner) * l->inner + k % (size_t)l->inner;
    float xh = (l->x[k] - l->mean[st]) * l->rstd[st];
    return (double)l->dy[k] * xh;
}

/* the forward of position t (elements at + c*inner), sums given */
static void ln_fwd_pos(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, size_t at, size_t t, int C, int inner, double m, double s2,
                       float eps)
{
    float mf = (float)m, rs = (float)(1.0 / sqrt(s2 / C + eps));
    mean[t] = mf, rstd[t] = rs;
    for (int c = 0; c < C; c++) {
        size_t k = at + (size_t)c * inner;
        y[k] = w ? (x[k] - mf) * rs * w[c] + b[c] : (x[k] - mf) * rs;
    }
}

static void ln_fwd_host(float *y, float *mean, float *rstd, const float *x, const float *w,
                        const float *b, int outer, int C, int inner, float eps)
{
    for (size_t t = 0; t < (size_t)outer * inner; t++) {
        size_t o = t / inner, i = t % inner, at = o * C * inner + i;
        double s = 0, s2 = 0, m;
        if (inner == 1) { /* ln_fwd_rows_k */
            m = warp_row_sum(x + at, NULL, C, 0, 0) / C;
            s2 = warp_row_sum(x + at, NULL, C, m, 1);
        } else { /* ln_fwd_pos_k */
            for (int c = 0; c < C; c++)
                s += x[at + (size_t)c * inner];
            m = s / C;
            for (int c = 0; c < C; c++) {
                double d = x[at + (size_t)c * inner] - m;
                s2 += d * d;
            }
        }
        ln_fwd_pos(y, mean, rstd, x, w, b, at, t, C, inner, m, s2, eps);
    }
}

static void ln_bwd_host(float *dx, const float *dy, const float *x, const float *mean,
                        const float *rstd, const float *w, int outer, int C, int inner)
{
    for (size_t t = 0; t < (size_t)outer * inner; t++) {
        size_t o = t / inner, i = t % inner, at = o * C * inner + i;
        float m = mean[t], rs = rstd[t];
        double s1l[32] = {0}, s2l[32] = {0}, s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) {
            size_t k = at + (size_t)c * inner;
            float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * rs;
            if (inner == 1) /* lane c % 32 of ln_bwd_rows_k */
                s1l[c % 32] += g, s2l[c % 32] += (double)g * xh;
            else
                s1 += g, s2 += (double)g * xh;
        }
        if (inner == 1)
            s1 = shfl_xor_tree(s1l), s2 = shfl_xor_tree(s2l);
        float a1 = (float)(s1 / C), a2 = (float)(s2 / C);
        for (int c = 0; c < C; c++) {
            size_t k = at + (size_t)c * inner;
            float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * rs;
            dx[k] += rs * (g - a1 - xh * a2);
        }
    }
}

static void test_layernorm_one(int outer, int C, int inner, int affine)
{
    size_t n = (size_t)outer * C * inner, ns = (size_t)outer * inner;
    float *x = rnd(n), *w = affine ? rnd(C) : NULL, *b = affine ? rnd(C) : NULL, *dy = rnd(n);
    float *yw = rnd(n), *yg = rnd(n), *mw = rnd(ns), *mg = rnd(ns), *rw = rnd(ns), *rg = rnd(ns);
    float *dxw = rnd(n), *dxg = dup(dxw, n), *dww = rnd(C), *dwg = dup(dww, C);
    float *dbw = rnd(C), *dbg = dup(dbw, C);
    double *acc = avs_malloc(C * sizeof(double));
    char what[96];
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] * 3.0f + 0.5f;
    cpu->layernorm_fwd(yw, mw, rw, x, w, b, outer, C, inner, 1e-6f);
    ln_fwd_host(yg, mg, rg, x, w, b, outer, C, inner, 1e-6f);
    snprintf(what, sizeof what, "layernorm_fwd outer=%d C=%d inner=%d w=%d", outer, C, inner,
             affine);
    if (inner > 1) { /* the cpu's order */
        same(what, yg, yw, n);
        same(what, mg, mw, ns);
        same(what, rg, rw, ns);
    } else {
        near(what, yg, yw, n, 1e-5);
        near(what, mg, mw, ns, RTOL);
        near(what, rg, rw, ns, RTOL);
    }
    cpu->layernorm_bwd(dxw, dww, dbw, dy, x, mw, rw, w, outer, C, inner);
    ln_bwd_host(dxg, dy, x, mw, rw, w, outer, C, inner);
    struct ln_ctx l = {dy, x, mw, rw, C, inner};
    struct ld2 l1 = {dy, NULL};
    if (inner == 1)
        col_sum(acc, 1, outer, C, ln_dyxh_at, &l);
    else
        plane_sum(acc, outer, C, inner, ln_dyxh_at, &l);
    for (int c = 0; c < C; c++)
        dwg[c] += (float)acc[c];
    if (inner == 1)
        col_sum(acc, 1, outer, C, ld2_at, &l1);
    else
        plane_sum(acc, outer, C, inner, ld2_at, &l1);
    for (int c = 0; c < C; c++)
        dbg[c] += (float)acc[c];
    snprintf(what, sizeof what, "layernorm_bwd outer=%d C=%d inner=%d w=%d", outer, C, inner,
             affine);
    if (inner > 1)
        same(what, dxg, dxw, n);
    else
        near_scaled(what, dxg, dxw, n, 1e-5);
    near(what, dwg, dww, C, RTOL);
    near(what, dbg, dbw, C, RTOL);
    free(x), free(w), free(b), free(dy), free(yw), free(yg), free(mw), free(mg), free(rw);
    free(rg), free(dxw), free(dxg), free(dww), free(dwg), free(dbw), free(dbg), free(acc);
}

/* ---- BatchNorm: a block per channel, thread t takes elements t, t+256, ... ---- */

struct bn_term {
    const float *a, *b;
    float m, r, k, a1, a2;
    int kind; /* 0: a, 1: (a - md)^2, 2: a * xhat(b), 3: the train dx term */
    double md;
};

static double bn_term_at(const struct bn_term *t, size_t k)
{
    switch (t->kind) {
    case 0: return t->a[k];
    case 1: return (t->a[k] - t->md) * (t->a[k] - t->md);
    case 2: return (double)t->a[k] * ((t->b[k] - t->m) * t->r);
    default: return t->k * (t->a[k] - t->a1 - (t->b[k] - t->m) * t->r * t->a2);
    }
}

/* CHANNEL_LOOP of k_norm.cu then avs_k_block_sum */
static double bn_channel_sum(const struct bn_term *t, int N, int C, int HW, int c)
{
    double th[BLOCK] = {0};
    size_t cnt = (size_t)N * HW;
    for (size_t r = 0; r < cnt; r++)
        th[r % BLOCK] += bn_term_at(t, ((r / HW) * C + c) * HW + r % HW);
    return block_tree(th);
}

static void test_batchnorm_one(int N, int C, int HW, int train)
{
    size_t n = (size_t)N * C * HW, cnt = (size_t)N * HW;
    float *x = rnd(n), *w = rnd(C), *b = rnd(C), *dy = rnd(n), *yw = rnd(n), *yg = rnd(n);
    float *rmw = rnd(C), *rvw = rnd(C), *mw = rnd(C), *rw = rnd(C), *mg = rnd(C), *rg = rnd(C);
    for (int c = 0; c < C; c++)
        rvw[c] = fabsf(rvw[c]) + 0.5f;
    float *rmg = dup(rmw, C), *rvg = dup(rvw, C), *dxw = rnd(n), *dxg = dup(dxw, n);
    float *dww = rnd(C), *dwg = dup(dww, C), *dbw = rnd(C), *dbg = dup(dbw, C);
    char what[96];
    cpu->batchnorm_fwd(yw, mw, rw, x, w, b, rmw, rvw, N, C, HW, 1e-5f, 0.1f, train);
    for (int c = 0; c < C; c++) { /* bn_fwd_k */
        float m, r;
        if (train) {
            struct bn_term t = {x, NULL, 0, 0, 0, 0, 0, 0, 0};
            double md = bn_channel_sum(&t, N, C, HW, c) / (double)cnt;
            t.kind = 1, t.md = md;
            double s2 = bn_channel_sum(&t, N, C, HW, c), var = s2 / (double)cnt;
            m = (float)md, r = (float)(1.0 / sqrt(var + 1e-5f));
            double unb = cnt > 1 ? s2 / (double)(cnt - 1) : var;
            rmg[c] = (1.0f - 0.1f) * rmg[c] + 0.1f * m;
            rvg[c] = (1.0f - 0.1f) * rvg[c] + 0.1f * (float)unb;
        } else
            m = rmg[c], r = 1.0f / sqrtf(rvg[c] + 1e-5f);
        mg[c] = m, rg[c] = r;
        float sc = r * w[c], sh = b[c] - m * sc;
        for (size_t q = 0; q < cnt; q++) {
            size_t k = ((q / HW) * C + c) * HW + q % HW;
            yg[k] = x[k] * sc + sh;
        }
    }
    snprintf(what, sizeof what, "batchnorm_fwd N=%d C=%d HW=%d train=%d", N, C, HW, train);
    near(what, yg, yw, n, 1e-5);
    near(what, mg, mw, C, RTOL);
    near(what, rg, rw, C, RTOL);
    near(what, rmg, rmw, C, RTOL);
    near(what, rvg, rvw, C, RTOL);
    cpu->batchnorm_bwd(dxw, dww, dbw, dy, x, mw, rw, w, N, C, HW, train);
    for (int c = 0; c < C; c++) { /* bn_bwd_k */
        struct bn_term t = {dy, x, mw[c], rw[c], w[c] * rw[c], 0, 0, 0, 0};
        double sg = bn_channel_sum(&t, N, C, HW, c);
        t.kind = 2;
        double sgx = bn_channel_sum(&t, N, C, HW, c);
        dwg[c] += (float)sgx, dbg[c] += (float)sg;
        t.a1 = (float)(sg / (double)cnt), t.a2 = (float)(sgx / (double)cnt), t.kind = 3;
        float corr = train ? (float)(bn_channel_sum(&t, N, C, HW, c) / (double)cnt) : 0;
        for (size_t q = 0; q < cnt; q++) {
            size_t k = ((q / HW) * C + c) * HW + q % HW;
            dxg[k] += train ? (float)bn_term_at(&t, k) - corr : t.k * dy[k];
        }
    }
    snprintf(what, sizeof what, "batchnorm_bwd N=%d C=%d HW=%d train=%d", N, C, HW, train);
    near_scaled(what, dxg, dxw, n, 1e-5);
    near(what, dwg, dww, C, RTOL);
    near(what, dbg, dbw, C, RTOL);
    free(x), free(w), free(b), free(dy), free(yw), free(yg), free(rmw), free(rvw), free(mw);
    free(rw), free(mg), free(rg), free(rmg), free(rvg), free(dxw), free(dxg), free(dww);
    free(dwg), free(dbw), free(dbg);
}

static void test_norms(void)
{
    static const int rows[][2] = {{1, 1}, {3, 2}, {7, 33}, {5, 320}, {2, 3000}};
    for (size_t s = 0; s < sizeof rows / sizeof rows[0]; s++)
        test_rows_one(rows[s][0], rows[s][1]);
    static const int ln[][3] = {{1, 1, 1}, {5, 64, 1}, {3, 97, 1}, {2, 7, 9}, {2, 33, 49}};
    for (size_t s = 0; s < sizeof ln / sizeof ln[0]; s++)
        for (int affine = 0; affine < 2; affine++)
            test_layernorm_one(ln[s][0], ln[s][1], ln[s][2], affine);
    static const int bn[][3] = {{1, 1, 1}, {2, 3, 1}, {2, 5, 49}, {3, 4, 300}};
    for (size_t s = 0; s < sizeof bn / sizeof bn[0]; s++)
        for (int train = 0; train < 2; train++)
            test_batchnorm_one(bn[s][0], bn[s][1], bn[s][2], train);
}

/* ---- losses ---- */

static unsigned loss_blocks(size_t n) /* k_loss.cu */
{
    size_t b = (n + BLOCK - 1) / BLOCK;
    return b < 1024 ? (unsigned)(b ? b : 1) : 1024;
}

/* per-thread sums over a grid of nb blocks (grid-stride), block trees, the finish tree */
static double grid_total(const double *term, size_t tot)
{
    unsigned nb = loss_blocks(tot);
    double *part = avs_malloc(nb * sizeof(double)), th[BLOCK];
    for (unsigned bk = 0; bk < nb; bk++) {
        for (int t = 0; t < BLOCK; t++) {
            th[t] = 0;
            for (size_t i = bk * (size_t)BLOCK + t; i < tot; i += (size_t)nb * BLOCK)
                th[t] += term[i];
        }
        part[bk] = block_tree(th);
    }
    for (int t = 0; t < BLOCK; t++) { /* loss_finish_k */
        th[t] = 0;
        for (unsigned j = t; j < nb; j += BLOCK)
            th[t] += part[j];
    }
    free(part);
    return block_tree(th);
}

static void test_bce_dice(int B, int n)
{
    size_t tot = (size_t)B * n;
    float *x = rnd(tot), *g = rnd(tot), *dxw = rnd(tot), *dxg = rnd(tot);
    double *term = avs_malloc(tot * sizeof(double));
    char what[64];
    for (size_t i = 0; i < tot; i++)
        x[i] *= 5.0f, g[i] = g[i] > 0 ? 1.0f : 0.0f;
    double lw = cpu->bce_logits(dxw, x, g, B, n, 0.7f);
    for (size_t i = 0; i < tot; i++) { /* bce_k */
        term[i] = avs_k_bce_term(x[i], g[i]);
        dxg[i] = 0.7f * (avs_k_sigmoid(x[i]) - g[i]) / (float)tot;
    }
    double lg = grid_total(term, tot) / (double)tot;
    snprintf(what, sizeof what, "bce_logits B=%d n=%d", B, n);
    CHECK_NEAR(lg, lw, 1e-12, 1e-12, what);
    same(what, dxg, dxw, tot);
    /* dice: S chunks per image (dice_sums_k), images in order (dice_finish_k) */
    lw = cpu->dice(dxw, x, g, B, n, 0.7f);
    int S = avs_k_splits((size_t)n, (size_t)B * 3, 16384);
    double loss = 0;
    for (int b = 0; b < B; b++) {
        double tq[3] = {0, 0, 0};
        for (int s = 0; s < S; s++) {
            size_t i0, i1;
            avs_k_chunk((size_t)n, S, s, &i0, &i1);
            double th[3][BLOCK] = {{0}};
            for (size_t i = i0; i < i1; i++) {
                double p = 1.0 / (1.0 + exp(-(double)x[(size_t)b * n + i]));
                th[0][(i - i0) % BLOCK] += p * g[(size_t)b * n + i];
                th[1][(i - i0) % BLOCK] += p;
                th[2][(i - i0) % BLOCK] += g[(size_t)b * n + i];
            }
            for (int q = 0; q < 3; q++)
                tq[q] += block_tree(th[q]);
        }
        double num = 2 * (tq[0] + 1), den = tq[1] + tq[2] + 1;
        loss += 1 - num / den;
        for (int i = 0; i < n; i++) { /* dice_dx_k */
            size_t k = (size_t)b * n + i;
            double p = 1.0 / (1.0 + exp(-(double)x[k]));
            double dp = -(2 * g[k] * den - num) / (den * den) / B;
            dxg[k] = (float)(0.7f * dp * p * (1 - p));
        }
    }
    snprintf(what, sizeof what, "dice B=%d n=%d", B, n);
    CHECK_NEAR(loss / B, lw, 1e-12, 1e-12, what);
    near(what, dxg, dxw, tot, RTOL);
    free(x), free(g), free(dxw), free(dxg), free(term);
}

static void test_ce(int B, int C, int n)
{
    size_t tot = (size_t)B * n, nx = tot * C;
    float *x = rnd(nx), *lab = rnd(tot), *dxw = rnd(nx), *dxg = rnd(nx);
    double *term = avs_malloc(tot * sizeof(double));
    char what[64];
    for (size_t i = 0; i < nx; i++)
        x[i] *= 4.0f;
    for (size_t i = 0; i < tot; i++) /* classes, out of range (-1, C), fractional */
        lab[i] = i % 7 == 3 ? (float)C : i % 7 == 5 ? -1.0f : i % 11 == 4 ? 1.5f
                                                            : (float)((i * 5) % C);
    float k = 0.9f / ((float)B * (float)n);
    double lw = cpu->softmax_ce(dxw, x, lab, B, C, n, 0.9f);
    for (size_t t = 0; t < tot; t++) { /* ce_k */
        size_t b = t / n, i = t % n;
        const float *xb = x + b * C * n + i;
        int y = avs_k_ce_label(lab[t], C);
        double m = avs_k_ce_logsumexp(xb, n, C);
        term[t] = m - xb[(size_t)y * n];
        for (int c = 0; c < C; c++) {
            double p = exp((double)xb[(size_t)c * n] - m);
            dxg[b * C * n + i + (size_t)c * n] = (float)(k * (p - (y == c)));
        }
    }
    double lg = grid_total(term, tot) / (double)tot;
    snprintf(what, sizeof what, "softmax_ce B=%d C=%d n=%d", B, C, n);
    CHECK_NEAR(lg, lw, 1e-12, 1e-12, what);
    same(what, dxg, dxw, nx);
    free(x), free(lab), free(dxw), free(dxg), free(term);
}

static void test_losses(void)
{
    static const int bd[][2] = {{1, 1}, {2, 3}, {3, 1000}, {4, 50176}};
    for (size_t s = 0; s < sizeof bd / sizeof bd[0]; s++)
        test_bce_dice(bd[s][0], bd[s][1]);
    static const int ce[][3] = {{1, 2, 1}, {2, 3, 7}, {3, 71, 300}, {2, 5, 70000}};
    for (size_t s = 0; s < sizeof ce / sizeof ce[0]; s++)
        test_ce(ce[s][0], ce[s][1], ce[s][2]);
}

/* ---- Adam ---- */

static void test_adam(void)
{
    size_t n = 1031;
    for (int v = 0; v < 4; v++) {
        double wd = v & 1 ? 0.01 : 0.0;
        int zero = v >> 1;
        long step = 1 + 7 * v;
        float *p = rnd(n), *g = rnd(n), *m = rnd(n), *vv = rnd(n);
        for (size_t i = 0; i < n; i++)
            vv[i] = fabsf(vv[i]);
        float *p2 = dup(p, n), *g2 = dup(g, n), *m2 = dup(m, n), *v2 = dup(vv, n);
        if (zero)
            cpu->adam_zero(p, g, m, vv, n, 1e-3, 0.9, 0.999, 1e-8, wd, step);
        else
            cpu->adam(p, g, m, vv, n, 1e-3, 0.9, 0.999, 1e-8, wd, step);
        struct avs_k_adam k = avs_k_adam_consts(1e-3, 0.9, 0.999, 1e-8, wd, step);
        for (size_t i = 0; i < n; i++) { /* adam_k */
            avs_k_adam_step(p2 + i, m2 + i, v2 + i, g2[i], &k);
            if (zero)
                g2[i] = 0;
        }
        same("adam p", p2, p, n);
        same("adam m", m2, m, n);
        same("adam v", v2, vv, n);
        same("adam g", g2, g, n);
        free(p), free(g), free(m), free(vv), free(p2), free(g2), free(m2), free(v2);
    }
}

/* ---- tokens: dwconv3, maxpool2, transpose, tokmean_bwd ---- */

static void test_dwconv_one(int N, int H, int W, int C)
{
    size_t n = (size_t)N * H * W * C;
    float *x = rnd(n), *w = rnd((size_t)C * 9), *b = rnd(C), *dy = rnd(n), *yw = rnd(n);
    float *yg = rnd(n), *dxw = rnd(n), *dxg = dup(dxw, n), *dww = rnd((size_t)C * 9);
    float *dwg = dup(dww, (size_t)C * 9), *dbw = rnd(C), *dbg = dup(dbw, C);
    float *ws = avs_malloc(avs_dwconv3_ws(N, H, C) * sizeof(float)), *wt = rnd((size_t)9 * C);
    double *part = avs_malloc((size_t)N * H * 10 * C * sizeof(double));
    char what[80];
    for (size_t k = 0; k < (size_t)9 * C; k++) /* taps_major_k */
        wt[k] = w[(k % C) * 9 + k / C];
    cpu->dwconv3_fwd(yw, x, w, b, N, H, W, C, ws);
    cpu->dwconv3_bwd_data(dxw, dy, w, N, H, W, C, ws);
    cpu->dwconv3_bwd_filter(dww, dbw, dy, x, N, H, W, C, ws);
    for (size_t k = 0; k < n; k++) { /* dw_fwd_k, dw_bwd_data_k */
        size_t t = k / C;
        int c = (int)(k % C), j = (int)(t % W), i = (int)(t / W % H), nn = (int)(t / W / H);
        yg[k] = avs_k_dw_fwd_at(x, wt, b, H, W, C, nn, i, j, c);
        dxg[k] = avs_k_dw_bwd_at(dxg[k], dy, wt, H, W, C, nn, i, j, c);
    }
    for (size_t k = 0; k < (size_t)N * H * 10 * C; k++) { /* dw_partials_k */
        int c = (int)(k % C), t = (int)(k / C % 10);
        size_t r = k / ((size_t)10 * C);
        part[k] = avs_k_dw_row_partial(dy, x, H, W, C, (int)(r / H), (int)(r % H), c, t);
    }
    for (size_t k = 0; k < (size_t)10 * C; k++) { /* dw_rows_k */
        int c = (int)(k % C), t = (int)(k / C);
        double acc = 0;
        for (int r = 0; r < N * H; r++)
            acc += part[((size_t)r * 10 + t) * C + c];
        if (t < 9)
            dwg[c * 9 + t] += (float)acc;
        else
            dbg[c] += (float)acc;
    }
    snprintf(what, sizeof what, "dwconv3 N=%d H=%d W=%d C=%d", N, H, W, C);
    same(what, yg, yw, n);
    same(what, dxg, dxw, n);
    same(what, dwg, dww, (size_t)C * 9);
    same(what, dbg, dbw, C);
    free(x), free(w), free(b), free(dy), free(yw), free(yg), free(dxw), free(dxg), free(dww);
    free(dwg), free(dbw), free(dbg), free(ws), free(wt), free(part);
}

static void test_tokens(void)
{
    static const int dw[][4] = {{1, 1, 1, 1}, {1, 2, 2, 3}, {2, 5, 3, 7}, {2, 7, 9, 64}};
    for (size_t s = 0; s < sizeof dw / sizeof dw[0]; s++)
        test_dwconv_one(dw[s][0], dw[s][1], dw[s][2], dw[s][3]);
    int NC = 3, H = 6, W = 10, N = 2, L = 13, C = 5;
    size_t no = (size_t)NC * (H / 2) * (W / 2), nt = (size_t)N * L * C;
    float *x = rnd((size_t)NC * H * W), *yw = rnd(no), *yg = rnd(no);
    cpu->maxpool2_fwd(yw, x, NC, H, W);
    for (size_t k = 0; k < no; k++) { /* maxpool2_k */
        size_t j = k % (W / 2), i = (k / (W / 2)) % (H / 2), c = k / ((size_t)(W / 2) * (H / 2));
        const float *p = x + (c * H + 2 * i) * W + 2 * j;
        float a = p[0] > p[1] ? p[0] : p[1], bb = p[W] > p[W + 1] ? p[W] : p[W + 1];
        yg[k] = a > bb ? a : bb;
    }
    same("maxpool2_fwd", yg, yw, no);
    float *t = rnd(nt), *tw = rnd(nt), *tg = dup(tw, nt), *dy = rnd((size_t)N * C);
    cpu->tokmean_bwd(tw, dy, N, L, C);
    for (size_t k = 0; k < nt; k++) /* tokmean_bwd_k */
        tg[k] += dy[k / ((size_t)L * C) * C + k % C] / (float)L;
    same("tokmean_bwd", tg, tw, nt);
    cpu->transpose(tw, t, N, L, C);
    for (int n = 0; n < N; n++) /* transpose_k: y [N,C,R] (c, r) from x (r, c) */
        for (int r = 0; r < L; r++)
            for (int c = 0; c < C; c++)
                tg[((size_t)n * C + c) * L + r] = t[((size_t)n * L + r) * C + c];
    same("transpose", tg, tw, nt);
    free(x), free(yw), free(yg), free(t), free(tw), free(tg), free(dy);
}

/* ---- head ---- */

static void test_taps_compose(int K, int C, int T)
{
    size_t n = (size_t)K * C * T, nk = (size_t)K * C * 9;
    float *w = rnd(n), *ww = rnd(n), *wg = rnd(n), *dw = rnd(n), *dwg = dup(dw, n);
    char what[64];
    cpu->taps_split(ww, w, K, C, T);
    for (size_t e = 0; e < n; e++) { /* taps_split_k */
        size_t c = e % C, k = e / C % K, t = e / ((size_t)C * K);
        wg[e] = w[(k * C + c) * T + t];
    }
    snprintf(what, sizeof what, "taps_split K=%d C=%d T=%d", K, C, T);
    same(what, wg, ww, n);
    cpu->taps_merge(dw, w, K, C, T);
    for (size_t e = 0; e < n; e++) { /* taps_merge_k */
        size_t t = e % T, c = e / T % C, k = e / ((size_t)T * C);
        dwg[e] += w[(t * K + k) * C + c];
    }
    snprintf(what, sizeof what, "taps_merge K=%d C=%d T=%d", K, C, T);
    same(what, dwg, dw, n);
    float *w9 = rnd(nk), *b = rnd(K), *kcw = rnd(4 * nk), *kcg = rnd(4 * nk), *kbw = rnd(4 * K);
    float *kbg = rnd(4 * K), *d9 = rnd(nk), *d9g = dup(d9, nk), *db = rnd(K), *dbg = dup(db, K);
    cpu->up2conv_compose(kcw, kbw, w9, b, K, C);
    for (size_t e = 0; e < 4 * nk; e++) { /* up2_compose_k */
        int uv = (int)(e % 9);
        size_t c = e / 9 % C, kp = e / ((size_t)9 * C), k = kp / 4;
        kcg[e] = avs_k_compose(w9 + (k * C + c) * 9, (int)(kp % 4), uv / 3, uv % 3);
        if (c == 0 && uv == 0)
            kbg[kp] = b[k];
    }
    snprintf(what, sizeof what, "up2conv_compose K=%d C=%d", K, C);
    same(what, kcg, kcw, 4 * nk);
    same(what, kbg, kbw, 4 * (size_t)K);
    cpu->up2conv_decompose(d9, db, kcw, kbw, K, C);
    for (size_t e = 0; e < nk; e++) { /* up2_decompose_k */
        int rs = (int)(e % 9);
        size_t c = e / 9 % C, k = e / ((size_t)9 * C);
        d9g[e] += avs_k_decompose(kcw + (k * 4 * C + c) * 9, (size_t)C * 9, rs / 3, rs % 3);
        if (c == 0 && rs == 0)
            for (int p = 0; p < 4; p++)
                dbg[k] += kbw[k * 4 + p];
    }
    snprintf(what, sizeof what, "up2conv_decompose K=%d C=%d", K, C);
    same(what, d9g, d9, nk);
    same(what, dbg, db, K);
    free(w), free(ww), free(wg), free(dw), free(dwg), free(w9), free(b), free(kcw), free(kcg);
    free(kbw), free(kbg), free(d9), free(d9g), free(db), free(dbg);
}

static void test_pad_shuffle(int NC, int H, int W)
{
    int Hp = H + 2, Wp = W + 2;
    size_t n = (size_t)NC * H * W, np = (size_t)NC * Hp * Wp, n4 = 4 * n;
    float *x = rnd(n), *pw = rnd(np), *pg = rnd(np), *dx = rnd(n), *dxg = dup(dx, n);
    float *x4 = rnd(n4), *sw = rnd(n4), *sg = rnd(n4);
    char what[64];
    cpu->pad_replicate(pw, x, NC, H, W);
    for (size_t e = 0; e < np; e++) { /* pad_k */
        int jp = (int)(e % Wp), ip = (int)(e / Wp % Hp);
        size_t nc = e / ((size_t)Wp * Hp);
        pg[e] = x[(nc * H + avs_k_clampi(ip - 1, 0, H - 1)) * W + avs_k_clampi(jp - 1, 0, W - 1)];
    }
    snprintf(what, sizeof what, "pad_replicate NC=%d H=%d W=%d", NC, H, W);
    same(what, pg, pw, np);
    float *dy = rnd(np);
    cpu->pad_replicate_bwd(dx, dy, NC, H, W);
    for (size_t e = 0; e < n; e++) { /* pad_bwd_k */
        int j = (int)(e % W), i = (int)(e / W % H), ri[3], ci[3];
        size_t nc = e / ((size_t)W * H);
        int nr = avs_k_pad_sources(i, H, ri), ncl = avs_k_pad_sources(j, W, ci);
        const float *s = dy + nc * Hp * Wp;
        float acc = dxg[e];
        for (int a = 0; a < nr; a++)
            for (int b = 0; b < ncl; b++)
                acc += s[(size_t)ri[a] * Wp + ci[b]];
        dxg[e] = acc;
    }
    snprintf(what, sizeof what, "pad_replicate_bwd NC=%d H=%d W=%d", NC, H, W);
    same(what, dxg, dx, n);
    cpu->pixel_shuffle2(sw, x4, NC, H, W);
    for (size_t e = 0; e < n4; e++) /* shuffle2_k */
        sg[e] = x4[avs_k_shuffle2_src(e, H, W)];
    snprintf(what, sizeof what, "pixel_shuffle2 NC=%d H=%d W=%d", NC, H, W);
    same(what, sg, sw, n4);
    cpu->pixel_unshuffle2(sw, x4, NC, H, W);
    for (size_t e = 0; e < n4; e++) /* unshuffle2_k */
        sg[e] = x4[avs_k_unshuffle2_src(e, H, W)];
    snprintf(what, sizeof what, "pixel_unshuffle2 NC=%d H=%d W=%d", NC, H, W);
    same(what, sg, sw, n4);
    free(x), free(pw), free(pg), free(dx), free(dxg), free(x4), free(sw), free(sg), free(dy);
}

/* the ring index is the inverse of the ring enumeration, and -1 off the ring */
static void test_ring_index(void)
{
    int bad = 0;
    for (int P = 1; P <= 9; P++)
        for (int Q = 1; Q <= 9; Q++) {
            int n = avs_ring_n(P, Q), seen[81] = {0};
            for (int t = 0; t < n; t++) {
                int p, q;
                avs_k_ring_pixel(t, P, Q, &p, &q);
                bad += avs_k_ring_index(p, q, P, Q) != t;
                seen[p * Q + q] = 1;
            }
            for (int k = 0; k < P * Q; k++)
                bad += !seen[k] && avs_k_ring_index(k / Q, k % Q, P, Q) != -1;
        }
    CHECK(bad == 0, "ring index: %d pixels wrong", bad);
}

static void test_ring(int B, int C, int H, int W)
{
    int n = avs_ring_n(2 * H, 2 * W), Hp = H + 2, Wp = W + 2, P = 2 * H, Q = 2 * W;
    size_t ld = (size_t)B * n, plane = (size_t)Hp * Wp, ncol = (size_t)C * 9 * ld;
    size_t nhp = (size_t)B * C * plane;
    float *hp = rnd(nhp), *cw = rnd(ncol), *cg = rnd(ncol), *dh = rnd(nhp), *dhg = dup(dh, nhp);
    char what[64];
    cpu->up2_ring_cols(cw, hp, B, C, H, W);
    for (size_t e = 0; e < ncol; e++) { /* ring_cols_k */
        size_t bt = e % ld, crs = e / ld, b = bt / n, c = crs / 9;
        cg[e] = avs_k_ring_col_at(hp + (b * C + c) * plane, (int)(bt % n), (int)(crs % 9), H, W);
    }
    snprintf(what, sizeof what, "up2_ring_cols B=%d C=%d H=%d W=%d", B, C, H, W);
    same(what, cg, cw, ncol);
    cpu->up2_ring_cols_bwd(dh, cw, B, C, H, W);
    for (size_t e = 0; e < nhp; e++) { /* ring_cols_bwd_k */
        int j = (int)(e % Wp), i = (int)(e / Wp % Hp);
        size_t bc = e / plane, b = bc / C, c = bc % C;
        dhg[e] = avs_k_ring_gather(dhg[e], cw + c * 9 * ld + b * n, ld, i, j, H, W);
    }
    snprintf(what, sizeof what, "up2_ring_cols_bwd B=%d C=%d H=%d W=%d", B, C, H, W);
    same(what, dhg, dh, nhp);
    /* ring_set / ring_take on y [B,C,P,Q] with yr [C, B*n] */
    size_t ny = (size_t)B * C * P * Q, nr = (size_t)C * ld;
    float *y = rnd(ny), *yg = dup(y, ny), *yr = rnd(nr), *bias = rnd(C), *rw = rnd(nr);
    float *rg = rnd(nr);
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            cpu->ring_take(rw, y, B, C, P, Q);
        else
            cpu->ring_set(y, yr, bias, B, C, P, Q);
        for (size_t e = 0; e < nr; e++) { /* ring_set_k, ring_take_k (ring_at) */
            size_t bt = e % ld;
            int k = (int)(e / ld), p, q;
            avs_k_ring_pixel((int)(bt % n), P, Q, &p, &q);
            size_t at = ((bt / n) * C + k) * (size_t)P * Q + (size_t)p * Q + q;
            if (pass)
                rg[e] = yg[at], yg[at] = 0.0f;
            else
                yg[at] = yr[e] + bias[k];
        }
        snprintf(what, sizeof what, "ring_%s B=%d K=%d P=%d Q=%d", pass ? "take" : "set", B, C,
                 P, Q);
        same(what, yg, y, ny);
        if (pass)
            same(what, rg, rw, nr);
    }
    free(hp), free(cw), free(cg), free(dh), free(dhg), free(y), free(yg), free(yr), free(bias);
    free(rw), free(rg);
}

static void test_ccam(int N, int C, int HW)
{
    size_t n = (size_t)N * C * HW, nm = (size_t)N * HW;
    float *dout = rnd(n), *s = rnd((size_t)N * C), *x1 = rnd(n), *sm = rnd(nm), *dx = rnd(n);
    float *dxg = dup(dx, n), *ws = rnd(nm), *wsg = rnd(nm);
    double *acc = avs_malloc(nm * sizeof(double));
    char what[64];
    for (size_t i = 0; i < nm; i++)
        sm[i] = 0.5f + 0.4f * sm[i];
    cpu->ccam_bwd(dx, dout, s, x1, sm, N, C, HW, ws);
    struct ld2 l = {dout, x1};
    col_sum(acc, N, C, HW, ld2_at, &l); /* ccam_fin */
    for (size_t j = 0; j < nm; j++)
        wsg[j] = (float)acc[j] * (sm[j] * (1.0f - sm[j]) / (float)C);
    for (size_t e = 0; e < n; e++) { /* ccam_dx_k */
        size_t i = e % HW, nc = e / HW, j = nc / C * HW + i;
        dxg[e] += (dout[e] * sm[j] + wsg[j]) * s[nc];
    }
    snprintf(what, sizeof what, "ccam_bwd N=%d C=%d HW=%d", N, C, HW);
    if (avs_k_col_splits(N, C, HW) == 1) /* the channels in order, as the cpu */
        same(what, dxg, dx, n);
    else
        near_scaled(what, dxg, dx, n, 1e-6);
    free(dout), free(s), free(x1), free(sm), free(dx), free(dxg), free(ws), free(wsg), free(acc);
}

static void test_concat_bias(int N, int Cx, int HW, int Cy, int c0)
{
    size_t nx = (size_t)N * Cx * HW, ny = (size_t)N * Cy * HW, CxHW = (size_t)Cx * HW;
    float *x = rnd(nx), *y = rnd(ny), *yg = dup(y, ny), *dx = rnd(nx), *dxg = dup(dx, nx);
    cpu->concat_fwd(y, x, N, Cx, HW, Cy, c0);
    cpu->concat_bwd(dx, y, N, Cx, HW, Cy, c0);
    for (size_t i = 0; i < nx; i++) /* concat_fwd_k (concat_at) */
        yg[(i / CxHW * Cy + c0) * (size_t)HW + i % CxHW] = x[i];
    for (size_t i = 0; i < nx; i++) /* concat_bwd_k */
        dxg[i] += yg[(i / CxHW * Cy + c0) * (size_t)HW + i % CxHW];
    same("concat_fwd", yg, y, ny);
    same("concat_bwd", dxg, dx, nx);
    float *b = rnd(HW);
    cpu->bias_fwd(y, b, N * Cy, HW);
    for (size_t i = 0; i < ny; i++) /* bias_fwd_k */
        yg[i] += b[i % (size_t)HW];
    same("bias_fwd", yg, y, ny);
    free(x), free(y), free(yg), free(dx), free(dxg), free(b);
}

static void test_head(void)
{
    static const int tc[][3] = {{1, 1, 1}, {2, 3, 9}, {5, 7, 4}, {4, 32, 9}};
    for (size_t s = 0; s < sizeof tc / sizeof tc[0]; s++)
        test_taps_compose(tc[s][0], tc[s][1], tc[s][2]);
    static const int ps[][3] = {{1, 1, 1}, {2, 2, 2}, {3, 1, 5}, {2, 7, 4}, {3, 13, 11}};
    for (size_t s = 0; s < sizeof ps / sizeof ps[0]; s++)
        test_pad_shuffle(ps[s][0], ps[s][1], ps[s][2]);
    test_ring_index();
    static const int rg[][4] = {{1, 1, 1, 1}, {2, 2, 1, 2}, {1, 3, 2, 2}, {2, 2, 3, 5},
                                {3, 2, 7, 7}, {2, 3, 14, 9}};
    for (size_t s = 0; s < sizeof rg / sizeof rg[0]; s++)
        test_ring(rg[s][0], rg[s][1], rg[s][2], rg[s][3]);
    test_ccam(1, 1, 1);
    test_ccam(2, 3, 49);
    test_ccam(2, 64, 5);
    test_ccam(1, 300, 4);
    test_concat_bias(2, 3, 7, 8, 4);
    test_concat_bias(1, 1, 1, 1, 0);
}

int main(void)
{
    cpu = avs_backend_cpu();
    test_activations();
    test_bcast();
    test_sums();
    test_resize();
    test_norms();
    test_losses();
    test_adam();
    test_tokens();
    test_head();
    return check_summary("test_cuda_math");
}
