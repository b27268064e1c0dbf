/* backend/cpu/winograd.c: 3x3 stride-1 convolutions by Winograd F(4x4, 3x3).
 *
 * ref: A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), F(4,3),
 * here with interpolation points 0, 1, -1, 1/2, -2, inf instead of Lavin's 0, +-1, +-2, inf
 * (point choice as in Barabasz et al., "Error analysis and improving the accuracy of Winograd
 * convolution", 2020): 1.7x less rounding error, measured. Each 4x4 output tile is
 *     Y = A^T [ (G g G^T) . (B^T d B) ] A          (6x6 transformed domain, "." elementwise)
 * for a 6x6 input tile d and 3x3 filter g: 36 multiplies instead of 144. Over channels the
 * elementwise products become 36 independent GEMMs (one per transformed position xi):
 *
 *     U[xi] [K,C]  = weights transformed once per call (G g G^T)
 *     V[xi] [C,T]  = input tiles transformed (B^T d B), T tiles of all images in a chunk
 *     M[xi] [K,T]  = U[xi] V[xi]                      (cblas_sgemm, one thread per xi)
 *     out          = A^T M A per tile, plus bias
 *
 * Backward data is the same correlation on dout with the flipped, transposed filter and
 * padding 2 - pad. Backward filter is the transpose of the forward in the transformed domain:
 *     dU[xi] [K,C] = sum over tiles  (A dY A^T)[xi] [K,T]  V[xi]^T [T,C],   dg = G^T dU G.
 * Tiles are processed in chunks of whole tile rows (the chunking depends only on the geometry,
 * never on the thread count), so results are bit-identical for any number of threads: the
 * transforms write disjoint channels, and each GEMM is computed whole by one thread.
 *
 * Error: the transforms scale values by up to 8 (A) and 2.5 (B), so the rounding error is
 * ~7x that of the GEMM path: <= 1.7e-6 relative L2 per conv on 64..256 channels against a
 * double reference (tests/test_backend_wino.c). Dilated convs run per phase (below).
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/common.h"
#include "backend/ops.h"
#include "backend/cpu/cpu.h"

#define TB 32         /* tiles per block in the transforms (bounds the stack buffers) */
#define RW (4 * TB + 2) /* row buffer width of one block */
#define TILE_BUDGET 192 /* target tiles per chunk per 256 channels of C + K (96..768 measured alike) */

struct wplan {
    int N, C, H, W; /* correlation input [N,C,H,W] */
    int K, P, Q;    /* output [N,K,P,Q], P = H + 2 pad - 2 */
    int pad;        /* top and left padding (bottom/right: zeros past the map) */
    int TH, TW;     /* tiles per image */
    int rows;       /* tile rows of all images, N*TH */
    int chunk;      /* tile rows per chunk */
    size_t Tc;      /* tiles per (full) chunk, chunk*TW */
};

static void plan(struct wplan *p, int N, int C, int H, int W, int K, int pad)
{
    p->N = N, p->C = C, p->H = H, p->W = W, p->K = K, p->pad = pad;
    p->P = H + 2 * pad - 2, p->Q = W + 2 * pad - 2;
    p->TH = (p->P + 3) / 4, p->TW = (p->Q + 3) / 4;
    p->rows = N * p->TH;
    long want = (long)TILE_BUDGET * 512 / (C + K);
    if (want < 64)
        want = 64;
    p->chunk = (int)((want + p->TW - 1) / p->TW);
    if (p->chunk > p->rows)
        p->chunk = p->rows;
    p->Tc = (size_t)p->chunk * p->TW;
}

/* Stride between the 36 planes of a transformed stack of n floats: one cache line more than
 * n. Planes of 256 x (multiple of 4) floats are a multiple of 4 KB apart, so the 36 streams a
 * transform writes (and the weight transform's) all fell into the same L1 sets. */
static size_t pstride(size_t n)
{
    return n + 16;
}

/* A dilated conv (dilation d, padding d*p1) is d*d ordinary 3x3 convs with padding p1, one
 * per phase (a, b): output (d*i + a, d*j + b) reads only input (d*(i+r-p1) + a, ...). The
 * phases of each image are gathered into N*d*d images of Hs x Ws = ceil(H/d) x ceil(W/d)
 * (zeros past the map) and scattered back after. d = 1 is the plain case, no copies. */
struct phases {
    int d, p1;  /* dilation, padding / dilation */
    int Hs, Ws; /* phase input size */
    int Ps, Qs; /* phase output size */
};

static void phases_of(struct phases *ph, const struct avs_conv2d *g)
{
    ph->d = g->dil, ph->p1 = g->pad / g->dil;
    ph->Hs = (g->H + ph->d - 1) / ph->d, ph->Ws = (g->W + ph->d - 1) / ph->d;
    ph->Ps = ph->Hs + 2 * ph->p1 - 2, ph->Qs = ph->Ws + 2 * ph->p1 - 2;
}

/* The forward plan of g, and the plan of its backward data (dout correlated into din). */
static void plan_fwd(struct wplan *p, const struct avs_conv2d *g)
{
    struct phases ph;
    phases_of(&ph, g);
    plan(p, g->N * ph.d * ph.d, g->C, ph.Hs, ph.Ws, g->K, ph.p1);
}

static void plan_bwd(struct wplan *p, const struct avs_conv2d *g)
{
    struct phases ph;
    phases_of(&ph, g);
    plan(p, g->N * ph.d * ph.d, g->K, ph.Ps, ph.Qs, g->C, 2 - ph.p1);
}

int avs_cpu_winograd_fits(const struct avs_conv2d *g)
{
    return g->R == 3 && g->S == 3 && g->stride == 1 && g->groups == 1 && g->dil >= 1 &&
           g->pad % g->dil == 0 && g->pad / g->dil <= 2 && g->pad >= 0 &&
           (g->H + g->dil - 1) / g->dil + 2 * (g->pad / g->dil) >= 3 &&
           (g->W + g->dil - 1) / g->dil + 2 * (g->pad / g->dil) >= 3;
}

double avs_cpu_winograd_tiles(const struct avs_conv2d *g)
{
    struct wplan p;
    plan_fwd(&p, g);
    return (double)p.rows * p.TW;
}

/* floats of phase copies (dilated convs): inputs and outputs of all phases */
static size_t phase_floats(const struct avs_conv2d *g)
{
    if (g->dil == 1)
        return 0;
    struct phases ph;
    phases_of(&ph, g);
    size_t n = (size_t)g->N * ph.d * ph.d;
    return n * ((size_t)g->C * ph.Hs * ph.Ws + (size_t)g->K * ph.Ps * ph.Qs);
}

size_t avs_cpu_winograd_ws(const struct avs_conv2d *g)
{
    struct wplan a, b;
    plan_fwd(&a, g);
    plan_bwd(&b, g);
    /* U (or dU) + V + M chunks, for the larger of the forward and backward-data plans */
    size_t fa = 36 * (pstride((size_t)a.K * a.C) + pstride(a.C * a.Tc) + pstride(a.K * a.Tc));
    size_t fb = 36 * (pstride((size_t)b.K * b.C) + pstride(b.C * b.Tc) + pstride(b.K * b.Tc));
    return phase_floats(g) + (fa > fb ? fa : fb) + 64;
}

/* dst [N*d*d, Ch, hs, ws] = the phases of src [N, Ch, h, w] (zeros past the map) */
static void gather(float *dst, const float *src, int N, int Ch, int h, int w, int d, int hs, int ws)
{
#pragma omp parallel for schedule(static) if ((size_t)N * Ch * h * w > 32768)
    for (int nc = 0; nc < N * Ch; nc++) {
        int n = nc / Ch, c = nc % Ch;
        const float *s = src + (size_t)nc * h * w;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) {
                float *o = dst + ((((size_t)n * d + a) * d + b) * Ch + c) * hs * ws;
                for (int i = 0; i < hs; i++)
                    for (int j = 0; j < ws; j++) {
                        int y = d * i + a, x = d * j + b;
                        o[(size_t)i * ws + j] = y < h && x < w ? s[(size_t)y * w + x] : 0.0f;
                    }
            }
    }
}

/* dst [N, Ch, h, w] (= or +=) the phases src [N*d*d, Ch, hs, ws]; each element of dst is in
 * exactly one phase, and one thread writes each (n, c) plane */
static void scatter(float *dst, int add, const float *src, int N, int Ch, int h, int w, int d,
                    int hs, int ws)
{
#pragma omp parallel for schedule(static) if ((size_t)N * Ch * h * w > 32768)
    for (int nc = 0; nc < N * Ch; nc++) {
        int n = nc / Ch, c = nc % Ch;
        float *o = dst + (size_t)nc * h * w;
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) {
                const float *s = src + ((((size_t)n * d + a) * d + b) * Ch + c) * hs * ws;
                for (int i = 0; d * i + a < h; i++)
                    for (int j = 0; d * j + b < w; j++) {
                        float v = s[(size_t)i * ws + j];
                        float *t = o + (size_t)(d * i + a) * w + d * j + b;
                        *t = add ? *t + v : v;
                    }
            }
    }
}

/* ---- transforms ----
 * Each works on a block of up to TB tiles of one tile row and one channel. Tile columns are
 * 4 pixels apart, so a tile's pixels are the 4 "phases" x mod 4 of its columns: blocks are held
 * phase-major (b[row][phase][tile]) so that every transform step is a loop over tiles of
 * contiguous values, which the compiler vectorises (the stride-4 gathers of a pixel-major
 * layout did not). The arithmetic per value is the same whatever the layout. */

/* G applied to 3 values (stride s) into 6 (stride os); multiplies by rounded constants (a
 * division per value made the weight transform as slow as a small layer's GEMMs). */
#define G6(o, os, g, s)                                                                        \
    do {                                                                                       \
        float g0 = (g)[0], g1 = (g)[(s)], g2 = (g)[2 * (s)], e = g0 + g2;                      \
        (o)[0] = g0;                                                                           \
        (o)[(os)] = (e + g1) * (1.0f / 3);                                                     \
        (o)[2 * (os)] = (g1 - e) * (1.0f / 3);                                                 \
        (o)[3 * (os)] = (4 * g0 + 2 * g1 + g2) * (-4.0f / 15);                                 \
        (o)[4 * (os)] = (g0 - 2 * g1 + 4 * g2) * (1.0f / 15);                                  \
        (o)[5 * (os)] = g2;                                                                    \
    } while (0)

#define FB 16 /* filters per block in the weight transforms */

/* U[xi][o][i] = G g G^T for every filter of w [K][C][3][3]: (o, i) = (k, c), or with flip
 * (backward data) (c, k) of the filter rotated by 180 degrees. FB filters at a time, each
 * step a loop over the filters. */
static void weight_tf(float *U, const float *w, int K, int C, int flip)
{
    size_t KC = (size_t)K * C, us = pstride(KC);
    int no = flip ? C : K, ni = flip ? K : C;
#pragma omp parallel for schedule(static) if (KC > 4096)
    for (int o = 0; o < no; o++)
        for (int i0 = 0; i0 < ni; i0 += FB) {
            int nb = ni - i0 < FB ? ni - i0 : FB;
            float f[9][FB], t[18][FB], u[36][FB];
            for (int bi = 0; bi < nb; bi++) {
                int i = i0 + bi;
                const float *g = w + (flip ? (size_t)i * C + o : (size_t)o * C + i) * 9;
                for (int j = 0; j < 9; j++)
                    f[j][bi] = flip ? g[8 - j] : g[j];
            }
            for (int j = 0; j < 3; j++) /* t [6][3] = G f */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    G6(&t[j][bi], 3 * FB, &f[j][bi], 3 * FB);
            for (int j = 0; j < 6; j++) /* u [6][6] = t G^T */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    G6(&u[6 * j][bi], FB, &t[3 * j][bi], FB);
            for (int xi = 0; xi < 36; xi++)
                memcpy(U + xi * us + (size_t)o * ni + i0, u[xi], (size_t)nb * sizeof(float));
        }
}

/* G^T applied to 6 values (stride s) into 3 (stride os). */
#define GT3(o, os, u, s)                                                                       \
    do {                                                                                       \
        float u0 = (u)[0], u1 = (u)[(s)], u2 = (u)[2 * (s)], u3 = (u)[3 * (s)];                \
        float u4 = (u)[4 * (s)], u5 = (u)[5 * (s)];                                            \
        float a = (u1 - u2) * (1.0f / 3), b = (u1 + u2) * (1.0f / 3);                          \
        (o)[0] = u0 + a + (u4 - 16 * u3) * (1.0f / 15);                                        \
        (o)[(os)] = b - (4 * u3 + u4) * (2.0f / 15);                                           \
        (o)[2 * (os)] = a + (u4 - u3) * (4.0f / 15) + u5;                                      \
    } while (0)

/* dw [K][C][3][3] += G^T dU G */
static void weight_tf_bwd(float *dw, const float *dU, int K, int C)
{
    size_t KC = (size_t)K * C, us = pstride(KC);
#pragma omp parallel for schedule(static) if (KC > 4096)
    for (int k = 0; k < K; k++)
        for (int c0 = 0; c0 < C; c0 += FB) {
            int nb = C - c0 < FB ? C - c0 : FB;
            float u[36][FB], t[18][FB], r[9][FB];
            for (int xi = 0; xi < 36; xi++) {
                memcpy(u[xi], dU + xi * us + (size_t)k * C + c0, (size_t)nb * sizeof(float));
                for (int bi = nb; bi < FB; bi++)
                    u[xi][bi] = 0.0f;
            }
            for (int j = 0; j < 6; j++) /* t [3][6] = G^T u */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    GT3(&t[j][bi], 6 * FB, &u[j][bi], 6 * FB);
            for (int j = 0; j < 3; j++) /* r [3][3] = t G */
#pragma omp simd
                for (int bi = 0; bi < FB; bi++)
                    GT3(&r[3 * j][bi], FB, &t[6 * j][bi], FB);
            for (int bi = 0; bi < nb; bi++) {
                float *d = dw + ((size_t)k * C + c0 + bi) * 9;
                for (int j = 0; j < 9; j++)
                    d[j] += r[j][bi];
            }
        }
}

/* B^T applied to 6 values with stride s: the 6 results to o[0..5] with stride os. */
#define BT6(o, os, d, s)                                                                       \
    do {                                                                                       \
        float d0 = (d)[0], d1 = (d)[(s)], d2 = (d)[2 * (s)], d3 = (d)[3 * (s)];                \
        float d4 = (d)[4 * (s)], d5 = (d)[5 * (s)];                                            \
        (o)[0] = d0 + d4 + 1.5f * (d3 - d1) - 2 * d2;                                          \
        (o)[(os)] = d4 - d1 + 0.5f * d2 + 2.5f * d3;                                           \
        (o)[2 * (os)] = d4 + d1 - 2.5f * d2 + 0.5f * d3;                                       \
        (o)[3 * (os)] = d4 - d2 + 2 * (d3 - d1);                                               \
        (o)[4 * (os)] = d4 - d2 + 0.5f * (d1 - d3);                                            \
        (o)[5 * (os)] = d5 + d1 + 1.5f * (d4 - d2) - 2 * d3;                                   \
    } while (0)

/* V[xi][c][t] (row stride ldv) for the tiles of tile rows [r0, r1) of x [N,C,H,W]. */
static void input_tf(float *V, size_t ldv, const float *x, const struct wplan *p, int r0, int r1)
{
    size_t plane = pstride((size_t)p->C * ldv);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < p->C; c++)
        for (int row = r0; row < r1; row++) {
            int n = row / p->TH, tr = row % p->TH;
            const float *xc = x + ((size_t)n * p->C + c) * p->H * p->W;
            float *vc = V + (size_t)c * ldv + (size_t)(row - r0) * p->TW;
            for (int t0 = 0; t0 < p->TW; t0 += TB) {
                int nt = p->TW - t0 < TB ? p->TW - t0 : TB, width = 4 * nt + 2;
                int w0 = 4 * t0 - p->pad;
                float d[6 * RW], r[6 * RW]; /* 6 input rows; B^T applied down the columns */
                for (int i = 0; i < 6; i++) {
                    int h = 4 * tr - p->pad + i;
                    float *di = d + i * RW;
                    if (h < 0 || h >= p->H) {
                        memset(di, 0, (size_t)width * sizeof(float));
                        continue;
                    }
                    int lo = w0 < 0 ? -w0 : 0, hi = p->W - w0 < width ? p->W - w0 : width;
                    for (int j = 0; j < lo; j++)
                        di[j] = 0.0f;
                    memcpy(di + lo, xc + (size_t)h * p->W + w0 + lo, (size_t)(hi - lo) * sizeof(float));
                    for (int j = hi; j < width; j++)
                        di[j] = 0.0f;
                }
#pragma omp simd
                for (int j = 0; j < width; j++)
                    BT6(r + j, RW, d + j, RW);
                for (int i = 0; i < 6; i++) {
                    float *v = vc + (size_t)(i * 6) * plane + t0;
                    const float *ri = r + i * RW;
#pragma omp simd
                    for (int j = 0; j < nt; j++)
                        BT6(v + j, plane, ri + 4 * j, 1);
                }
            }
        }
}

/* A y for a 4-vector y (stride s) into 6 values (stride os): the transpose of A^T. */
#define A6(o, os, y, s)                                                                        \
    do {                                                                                       \
        float y0 = (y)[0], y1 = (y)[(s)], y2 = (y)[2 * (s)], y3 = (y)[3 * (s)];                \
        (o)[0] = y0;                                                                           \
        (o)[(os)] = y0 + y1 + y2 + y3;                                                         \
        (o)[2 * (os)] = y0 - y1 + y2 - y3;                                                     \
        (o)[3 * (os)] = y0 + 0.5f * y1 + 0.25f * y2 + 0.125f * y3;                             \
        (o)[4 * (os)] = y0 - 2 * y1 + 4 * y2 - 8 * y3;                                         \
        (o)[5 * (os)] = y3;                                                                    \
    } while (0)

/* dM[xi][k][t] = (A dY A^T)[xi] for the 4x4 tiles of dy [N,K,P,Q] in tile rows [r0, r1)
 * (backward filter). */
static void grad_tf(float *dM, size_t ldm, const float *dy, const struct wplan *p, int r0, int r1)
{
    size_t plane = pstride((size_t)p->K * ldm);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < p->K; k++)
        for (int row = r0; row < r1; row++) {
            int n = row / p->TH, tr = row % p->TH;
            const float *yk = dy + ((size_t)n * p->K + k) * p->P * p->Q;
            float *mk = dM + (size_t)k * ldm + (size_t)(row - r0) * p->TW;
            for (int t0 = 0; t0 < p->TW; t0 += TB) {
                int nt = p->TW - t0 < TB ? p->TW - t0 : TB, width = 4 * nt;
                float d[4 * RW], r[6 * RW];
                for (int i = 0; i < 4; i++) {
                    int h = 4 * tr + i;
                    float *di = d + i * RW;
                    if (h >= p->P) {
                        memset(di, 0, (size_t)width * sizeof(float));
                        continue;
                    }
                    const float *src = yk + (size_t)h * p->Q;
                    for (int j = 0; j < width; j++) {
                        int q = 4 * t0 + j;
                        di[j] = q < p->Q ? src[q] : 0.0f;
                    }
                }
#pragma omp simd
                for (int j = 0; j < width; j++)
                    A6(r + j, RW, d + j, RW);
                for (int i = 0; i < 6; i++) {
                    float *m = mk + (size_t)(i * 6) * plane + t0;
                    const float *ri = r + i * RW;
#pragma omp simd
                    for (int j = 0; j < nt; j++)
                        A6(m + j, plane, ri + 4 * j, 1);
                }
            }
        }
}

/* A^T m for 6 values m0..m5 into 4 (stride os). */
#define AT4V(o, os, m0, m1, m2, m3, m4, m5)                                                    \
    do {                                                                                       \
        float a_ = (m1) + (m2), b_ = (m1) - (m2);                                              \
        (o)[0] = (m0) + a_ + (m3) + (m4);                                                      \
        (o)[(os)] = b_ + 0.5f * (m3) - 2 * (m4);                                               \
        (o)[2 * (os)] = a_ + 0.25f * (m3) + 4 * (m4);                                          \
        (o)[3 * (os)] = b_ + 0.125f * (m3) - 8 * (m4) + (m5);                                  \
    } while (0)

/* dst[q] (= or +=) ph[q mod 4][q / 4] + bk for q < nq: phases back into a row. */
static void store_phases(float *restrict dst, int add, const float (*restrict ph)[TB], float bk, int nq)
{
    const float *restrict p0 = ph[0], *restrict p1 = ph[1], *restrict p2 = ph[2], *restrict p3 = ph[3];
    int full = nq / 4, q;
    if (add)
#pragma omp simd
        for (int j = 0; j < full; j++) {
            dst[4 * j] += p0[j] + bk;
            dst[4 * j + 1] += p1[j] + bk;
            dst[4 * j + 2] += p2[j] + bk;
            dst[4 * j + 3] += p3[j] + bk;
        }
    else
#pragma omp simd
        for (int j = 0; j < full; j++) {
            dst[4 * j] = p0[j] + bk;
            dst[4 * j + 1] = p1[j] + bk;
            dst[4 * j + 2] = p2[j] + bk;
            dst[4 * j + 3] = p3[j] + bk;
        }
    for (q = 4 * full; q < nq; q++)
        dst[q] = (add ? dst[q] : 0.0f) + (ph[q & 3][q >> 2] + bk);
}

/* Output rows 4 tr .. 4 tr + 3 of plane ok (P x Q) (= or +=) A^T M A + bk for nt tiles of
 * tile row tr from mk (value xi at mk[xi * plane + tile]). */
static void output_block(float *ok, int add, const float *mk, size_t plane, float bk,
                         const struct wplan *p, int tr, int t0, int nt)
{
    float s[6][4][TB], y[4][4][TB];
    const int rs = 4 * TB;
    for (int i = 0; i < 6; i++) { /* A^T along the rows of each tile: s[i][phase][tile] */
        const float *m = mk + (size_t)(6 * i) * plane;
#pragma omp simd
        for (int j = 0; j < nt; j++)
            AT4V(&s[i][0][j], TB, m[j], m[plane + j], m[2 * plane + j], m[3 * plane + j],
                 m[4 * plane + j], m[5 * plane + j]);
    }
    for (int n = 0; n < 4; n++) /* then down */
#pragma omp simd
        for (int j = 0; j < nt; j++)
            AT4V(&y[0][n][j], rs, s[0][n][j], s[1][n][j], s[2][n][j], s[3][n][j], s[4][n][j], s[5][n][j]);
    int q0 = 4 * t0, nq = p->Q - q0 < 4 * nt ? p->Q - q0 : 4 * nt;
    for (int i = 0; i < 4 && 4 * tr + i < p->P; i++)
        store_phases(ok + (size_t)(4 * tr + i) * p->Q + q0, add, y[i], bk, nq);
}

/* out [N,K,P,Q] (= or +=) A^T M A (+ bias) for tile rows [r0, r1). */
static void output_tf(float *out, int add, const float *M, size_t ldm, const float *bias,
                      const struct wplan *p, int r0, int r1)
{
    size_t plane = pstride((size_t)p->K * ldm);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < p->K; k++) {
        float bk = bias ? bias[k] : 0.0f;
        for (int row = r0; row < r1; row++) {
            int n = row / p->TH, tr = row % p->TH;
            float *ok = out + ((size_t)n * p->K + k) * p->P * p->Q;
            const float *mk = M + (size_t)k * ldm + (size_t)(row - r0) * p->TW;
            for (int t0 = 0; t0 < p->TW; t0 += TB)
                output_block(ok, add, mk + t0, plane, bk, p, tr, t0, p->TW - t0 < TB ? p->TW - t0 : TB);
        }
    }
}

/* ---- the three passes ---- */

/* out = (or +=) correlation of x with the transformed filter U, chunk by chunk. */
static void correlate(float *out, int add, const float *x, const float *U, const float *bias,
                      const struct wplan *p, float *ws)
{
    size_t vs = pstride(p->C * p->Tc), ms = pstride(p->K * p->Tc), us = pstride((size_t)p->K * p->C);
    float *V = ws, *M = V + 36 * vs;
    for (int r0 = 0; r0 < p->rows; r0 += p->chunk) {
        int r1 = r0 + p->chunk < p->rows ? r0 + p->chunk : p->rows;
        int T = (r1 - r0) * p->TW;
        input_tf(V, p->Tc, x, p, r0, r1);
#pragma omp parallel for schedule(static)
        for (int xi = 0; xi < 36; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->K, T, p->C, 1.0f,
                        U + xi * us, p->C, V + xi * vs, (int)p->Tc, 0.0f, M + xi * ms, (int)p->Tc);
        output_tf(out, add, M, p->Tc, bias, p, r0, r1);
    }
}

/* One side of a conv for the phase path: its maps and their phase buffer. */
struct side {
    int ch, h, w, hs, ws; /* channels, map size, phase size */
    float *buf;           /* phases [N, ch, d*d phases of hs x ws] */
};

/* Forward (bwd 0: dst = conv(src) + b) and backward data (bwd 1: dst (= or +=, by add) the
 * transposed conv of src) differ only in the plan, the filter transform and which side is the
 * source. */
static void conv_tf(float *dst, const float *src, const float *w, const float *b,
                    const struct avs_conv2d *g, float *ws, int bwd, int add)
{
    AVS_ASSERT(avs_cpu_winograd_fits(g));
    struct wplan p;
    struct phases ph;
    if (bwd)
        plan_bwd(&p, g);
    else
        plan_fwd(&p, g);
    phases_of(&ph, g);
    float *xs = ws + 64, *ys = xs + (size_t)p.N * g->C * ph.Hs * ph.Ws;
    float *U = ws + 64 + phase_floats(g), *scratch = U + 36 * pstride((size_t)g->K * g->C);
    weight_tf(U, w, g->K, g->C, bwd);
    if (ph.d == 1) {
        correlate(dst, add, src, U, b, &p, scratch);
        return;
    }
    struct side in = {g->C, g->H, g->W, ph.Hs, ph.Ws, xs}, out = {g->K, g->P, g->Q, ph.Ps, ph.Qs, ys};
    const struct side *s = bwd ? &out : &in, *d = bwd ? &in : &out;
    gather(s->buf, src, g->N, s->ch, s->h, s->w, ph.d, s->hs, s->ws);
    correlate(d->buf, 0, s->buf, U, b, &p, scratch);
    scatter(dst, add, d->buf, g->N, d->ch, d->h, d->w, ph.d, d->hs, d->ws);
}

void avs_cpu_winograd_fwd(float *out, const float *in, const float *w, const float *b,
                          const struct avs_conv2d *g, float *ws)
{
    conv_tf(out, in, w, b, g, ws, 0, 0);
}

void avs_cpu_winograd_bwd_data(float *din, int add, const float *dout, const float *w,
                               const struct avs_conv2d *g, float *ws)
{
    conv_tf(din, dout, w, NULL, g, ws, 1, add);
}

void avs_cpu_winograd_bwd_filter(float *dw, const float *dout, const float *in,
                                 const struct avs_conv2d *g, float *ws)
{
    AVS_ASSERT(avs_cpu_winograd_fits(g));
    struct wplan p;
    struct phases ph;
    plan_fwd(&p, g);
    phases_of(&ph, g);
    float *xs = ws + 64, *ys = xs + (size_t)p.N * g->C * ph.Hs * ph.Ws;
    if (ph.d > 1) {
        gather(xs, in, g->N, g->C, g->H, g->W, ph.d, ph.Hs, ph.Ws);
        gather(ys, dout, g->N, g->K, g->P, g->Q, ph.d, ph.Ps, ph.Qs);
        in = xs, dout = ys;
    }
    size_t KC = (size_t)g->K * g->C;
    size_t us = pstride(KC), vs = pstride(p.C * p.Tc), ms = pstride(p.K * p.Tc);
    float *dU = ws + 64 + phase_floats(g), *V = dU + 36 * us, *dM = V + 36 * vs;
    for (int r0 = 0; r0 < p.rows; r0 += p.chunk) {
        int r1 = r0 + p.chunk < p.rows ? r0 + p.chunk : p.rows;
        int T = (r1 - r0) * p.TW;
        input_tf(V, p.Tc, in, &p, r0, r1);
        grad_tf(dM, p.Tc, dout, &p, r0, r1);
#pragma omp parallel for schedule(static)
        for (int xi = 0; xi < 36; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.K, p.C, T, 1.0f,
                        dM + xi * ms, (int)p.Tc, V + xi * vs, (int)p.Tc, r0 ? 1.0f : 0.0f,
                        dU + xi * us, p.C);
    }
    weight_tf_bwd(dw, dU, g->K, g->C);
}
