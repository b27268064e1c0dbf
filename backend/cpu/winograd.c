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
 * padding 2 - pad, by default with the transformed domain in double (U, V, M, dgemm, the
 * output transform; one rounding to float at the end: within ~6e-8 relative L2 of the exact
 * result, better than a direct float conv); in float only under AVS_CONV=fast-bwd. Float
 * rounding in this pass is what showed in the head's gradients (rough gradient maps: ReLU
 * masks, sign changes): 5-13x PyTorch float32's distance from float64 on a third to a half of
 * them, against <= ~2x in double (docs/backend.md, Numerics). The correlation is written once
 * for both types (backend/cpu/winograd_tf.h). Backward filter is the transpose of the forward in the transformed domain:
 *     dU[xi] [K,C] = sum over tiles  (A dY A^T)[xi] [K,T]  V[xi]^T [T,C],   dg = G^T dU G.
 * Tiles are processed in chunks of whole tile rows (the chunking depends only on the geometry,
 * never on the thread count), so results are bit-identical for any number of threads: the
 * transforms write disjoint channels, and each GEMM is computed whole by one thread.
 *
 * Error (float): the transforms scale values by up to 8 (A) and 2.5 (B), so the rounding error
 * is ~7x that of the GEMM path: <= 1.7e-6 relative L2 per conv on 64..256 channels against a
 * double reference (tests/test_backend_wino.c). Dilated convs run per phase (below).
 */
#include <cblas.h>
#include <omp.h>
#include <stdint.h>
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

/* floats of the correlation's U + V + M under plan p, in values of `size` bytes */
static size_t tf_floats(const struct wplan *p, size_t size)
{
    size_t n = 36 * (pstride((size_t)p->K * p->C) + pstride(p->C * p->Tc) + pstride(p->K * p->Tc));
    return n * (size / sizeof(float));
}

/* The transformed stacks in ws: past the phase copies, on the next 64-byte line (the double
 * instance needs aligned doubles whatever ws's own alignment; the size leaves room for it). */
static float *tf_start(float *ws, const struct avs_conv2d *g)
{
    return (float *)(void *)(((uintptr_t)(ws + 64 + phase_floats(g)) + 63) & ~(uintptr_t)63);
}

size_t avs_cpu_winograd_ws(const struct avs_conv2d *g, int bwd_double)
{
    struct wplan a, b;
    plan_fwd(&a, g);
    plan_bwd(&b, g);
    /* the larger of the forward (and backward filter: dU + V + dM) and backward-data plans */
    size_t fa = tf_floats(&a, sizeof(float));
    size_t fb = tf_floats(&b, bwd_double ? sizeof(double) : sizeof(float));
    return 64 + phase_floats(g) + 16 + (fa > fb ? fa : fb);
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

#define FB 16 /* filters per block in the weight transforms */

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

/* ---- the correlation, in float and in double ---- */

#define WREAL float
#define WN(x) x##_f
#define WGEMM cblas_sgemm
#include "backend/cpu/winograd_tf.h"
#undef WREAL
#undef WN
#undef WGEMM
#define WREAL double
#define WN(x) x##_d
#define WGEMM cblas_dgemm
#include "backend/cpu/winograd_tf.h"
#undef WREAL
#undef WN
#undef WGEMM

/* ---- the three passes ---- */

/* One side of a conv for the phase path: its maps and their phase buffer. */
struct side {
    int ch, h, w, hs, ws; /* channels, map size, phase size */
    float *buf;           /* phases [N, ch, d*d phases of hs x ws] */
};

/* Forward (bwd 0: dst = conv(src) + b) and backward data (bwd 1: dst (= or +=, by add) the
 * transposed conv of src) differ only in the plan, the filter transform and which side is the
 * source; dbl: the correlation in double (winograd_tf.h). */
static void conv_tf(float *dst, const float *src, const float *w, const float *b,
                    const struct avs_conv2d *g, float *ws, int bwd, int add, int dbl)
{
    AVS_ASSERT(avs_cpu_winograd_fits(g));
    struct wplan p;
    struct phases ph;
    if (bwd)
        plan_bwd(&p, g);
    else
        plan_fwd(&p, g);
    phases_of(&ph, g);
    float *xs = ws + 64, *ys = xs + (size_t)p.N * g->C * ph.Hs * ph.Ws, *tf = tf_start(ws, g);
    const float *x = src;
    float *y = dst;
    struct side in = {g->C, g->H, g->W, ph.Hs, ph.Ws, xs}, out = {g->K, g->P, g->Q, ph.Ps, ph.Qs, ys};
    const struct side *s = bwd ? &out : &in, *d = bwd ? &in : &out;
    if (ph.d > 1) {
        gather(s->buf, src, g->N, s->ch, s->h, s->w, ph.d, s->hs, s->ws);
        x = s->buf, y = d->buf;
    }
    int yadd = ph.d > 1 ? 0 : add;
    if (dbl)
        correlate_d(y, yadd, x, w, bwd, b, &p, (double *)(void *)tf);
    else
        correlate_f(y, yadd, x, w, bwd, b, &p, tf);
    if (ph.d > 1)
        scatter(dst, add, d->buf, g->N, d->ch, d->h, d->w, ph.d, d->hs, d->ws);
}

void avs_cpu_winograd_fwd(float *out, const float *in, const float *w, const float *b,
                          const struct avs_conv2d *g, float *ws)
{
    conv_tf(out, in, w, b, g, ws, 0, 0, 0);
}

void avs_cpu_winograd_bwd_data(float *din, int add, const float *dout, const float *w,
                               const struct avs_conv2d *g, float *ws, int dbl)
{
    conv_tf(din, dout, w, NULL, g, ws, 1, add, dbl);
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
    float *dU = tf_start(ws, g), *V = dU + 36 * us, *dM = V + 36 * vs;
    for (int r0 = 0; r0 < p.rows; r0 += p.chunk) {
        int r1 = r0 + p.chunk < p.rows ? r0 + p.chunk : p.rows;
        int T = (r1 - r0) * p.TW;
        input_tf_f(V, p.Tc, in, &p, r0, r1);
        grad_tf(dM, p.Tc, dout, &p, r0, r1);
#pragma omp parallel for schedule(static)
        for (int xi = 0; xi < 36; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.K, p.C, T, 1.0f,
                        dM + xi * ms, (int)p.Tc, V + xi * vs, (int)p.Tc, r0 ? 1.0f : 0.0f,
                        dU + xi * us, p.C);
    }
    weight_tf_bwd(dw, dU, g->K, g->C);
}
