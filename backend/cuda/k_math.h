/* backend/cuda/k_math.h: the index maps and per-element formulas of the CUDA kernels
 * (backend/cuda/k_*.cu), as plain C that compiles for the host too. The kernels call these
 * functions for every element; tests/test_cuda_math.c calls the same functions on the host,
 * in the kernels' loop order, and compares with the cpu backend: that checks the kernels'
 * indexing without a GPU.
 *
 *   int i0, i1; float l1;
 *   avs_k_resize_src(OH, H, oy, ac, &i0, &i1, &l1);    output row oy reads rows i0, i1
 *   avs_k_resize_inv(OH, H, y, ac, &lo, &hi);          the output rows that read input row y
 *
 * Everything is static inline and AVS_HD (__host__ __device__ under nvcc); no state. The
 * formulas are the cpu backend's (backend/cpu/ files), operation for operation.
 */
#ifndef AVS_BACKEND_CUDA_K_MATH_H
#define AVS_BACKEND_CUDA_K_MATH_H

#include <math.h>
#include <stddef.h>

#include "backend/gelu_math.h"
#include "backend/ops.h"

#ifdef __CUDACC__
#define AVS_HD __host__ __device__
#else
#define AVS_HD
#endif

/* ---- activations (backend/cpu/ops_cpu.c) ---- */

static inline AVS_HD float avs_k_gelu(float x)
{
    return avs_gelu(x); /* backend/gelu_math.h, the cpu's formula */
}

/* d gelu / dx = Phi(x) + x phi(x) */
static inline AVS_HD float avs_k_gelu_grad(float x)
{
    return avs_gelu_grad(x);
}

static inline AVS_HD float avs_k_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* ---- broadcast operand index (struct avs_bcast) of element (n, c, i) ---- */

static inline AVS_HD size_t avs_k_bc_index(const struct avs_bcast *bc, size_t flat)
{
    size_t i = flat % (size_t)bc->HW, t = flat / (size_t)bc->HW;
    size_t c = t % (size_t)bc->C, n = t / (size_t)bc->C, k = 0;
    if (bc->sN)
        k = n;
    if (bc->sC)
        k = k * (size_t)bc->C + c;
    if (bc->sHW)
        k = k * (size_t)bc->HW + i;
    return k;
}

/* ---- the split of the fixed-order sums (backend/cuda/k_reduce.cuh) ----
 * A plane sum [N,C,HW] -> [C] sums over n and i; a column sum [Nb,R,K] -> [Nb*K] over r.
 * Long sums are cut into S chunks (S from the shape alone), each chunk summed in double, and
 * the chunks' partials (AVS_K_PART_CAP at most) added in chunk order. */
#define AVS_K_PART_CAP 65536

/* S for `count` terms per result, `outs` results, about `per` terms a chunk */
static inline int avs_k_splits(size_t count, size_t outs, size_t per)
{
    size_t s = (count + per - 1) / per, cap = AVS_K_PART_CAP / (outs ? outs : 1);
    if (s > cap)
        s = cap;
    if (s > 1024)
        s = 1024;
    return s < 1 ? 1 : (int)s;
}

static inline int avs_k_plane_splits(int N, int C, int HW)
{
    return avs_k_splits((size_t)N * HW, (size_t)C, 16384);
}

/* enough threads to fill a GPU (~64K), each chunk at least 32 rows */
static inline int avs_k_col_splits(int Nb, int R, int K)
{
    size_t outs = (size_t)Nb * K;
    if (outs == 0 || outs >= 65536 || R <= 64)
        return 1;
    size_t want = 65536 / outs, most = (size_t)R / 32;
    return avs_k_splits((size_t)R, outs, (size_t)R / (want < most ? want : most));
}

/* chunk s of S over count terms: [*r0, *r1) */
static inline AVS_HD void avs_k_chunk(size_t count, int S, int s, size_t *r0, size_t *r1)
{
    size_t chunk = (count + S - 1) / S;
    *r0 = (size_t)s * chunk;
    *r1 = *r0 + chunk < count ? *r0 + chunk : count;
    if (*r0 > count)
        *r0 = count;
}

/* How add_bwd / mul_bwd reduce dy [N,C,HW] onto the broadcast operand's axes: element-wise
 * (all axes), a plane sum [a,b,c] (kept axes outside the summed innermost ones) or a column sum
 * [a,b,c] (the innermost axis kept); each view keeps ds's layout. */
enum { AVS_K_VIEW_SAME, AVS_K_VIEW_PLANE, AVS_K_VIEW_COL };
struct avs_k_view {
    int kind, a, b, c;
};

static inline struct avs_k_view avs_k_bc_view(const struct avs_bcast *bc)
{
    int N = bc->N, C = bc->C, HW = bc->HW;
    struct avs_k_view v = {AVS_K_VIEW_PLANE, N, C, HW};
    switch (bc->sN * 4 + bc->sC * 2 + bc->sHW) {
    case 7: v.kind = AVS_K_VIEW_SAME; break;
    case 2: break;                                            /* [C] */
    case 6: v.a = 1, v.b = N * C; break;                      /* [N,C] */
    case 4: v.a = 1, v.b = N, v.c = C * HW; break;            /* [N] */
    case 0: v.a = 1, v.b = 1, v.c = N * C * HW; break;        /* scalar */
    case 1: v.kind = AVS_K_VIEW_COL, v.a = 1, v.b = N * C; break; /* [HW] */
    case 5: v.kind = AVS_K_VIEW_COL; break;                   /* [N,HW] */
    default: v.kind = AVS_K_VIEW_COL, v.a = 1, v.b = N, v.c = C * HW; break; /* [C,HW] */
    }
    return v;
}

/* The same in 32-bit arithmetic, for tensors under 2^31 elements (the kernels' fast path:
 * a 64-bit division costs several times a 32-bit one on a GPU). */
static inline AVS_HD unsigned avs_k_bc_index32(const struct avs_bcast *bc, unsigned flat)
{
    unsigned HW = (unsigned)bc->HW, C = (unsigned)bc->C;
    unsigned i = flat % HW, t = flat / HW, c = t % C, n = t / C, k = 0;
    if (bc->sN)
        k = n;
    if (bc->sC)
        k = k * C + c;
    if (bc->sHW)
        k = k * HW + i;
    return k;
}

/* ---- bilinear resize (PyTorch's area_pixel_compute_source_index, in float) ---- */

static inline AVS_HD void avs_k_resize_src(int out, int in, int o, int ac, int *i0, int *i1,
                                           float *l1)
{
    float scale = ac ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f)
                     : (float)in / (float)out;
    float src = ac ? scale * (float)o : scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0)
        src = 0;
    int a = (int)src;
    if (a > in - 1)
        a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = src - (float)a;
}

static inline AVS_HD int avs_k_resize_i0(int out, int in, int o, int ac)
{
    int i0, i1;
    float l1;
    avs_k_resize_src(out, in, o, ac, &i0, &i1, &l1);
    return i0;
}

/* The output indices [*lo, *hi] that read input index i (as i0 or i1); empty when *lo > *hi.
 * i0(o) never decreases with o, and o reads i iff i0(o) is i-1 or i (i1 = min(i0+1, in-1)),
 * so the set is the range found by two binary searches on i0. */
static inline AVS_HD void avs_k_resize_inv(int out, int in, int i, int ac, int *lo, int *hi)
{
    int a = 0, b = out; /* first o with i0(o) >= i-1 */
    while (a < b) {
        int m = (a + b) / 2;
        if (avs_k_resize_i0(out, in, m, ac) >= i - 1)
            b = m;
        else
            a = m + 1;
    }
    *lo = a;
    a = 0, b = out; /* first o with i0(o) > i */
    while (a < b) {
        int m = (a + b) / 2;
        if (avs_k_resize_i0(out, in, m, ac) > i)
            b = m;
        else
            a = m + 1;
    }
    *hi = a - 1;
}

/* The weight of input index i in output index o (0 when o does not read it), summed as the
 * cpu's transposed pass sums it: (1-l1) for i0, then + l1 for i1. */
static inline AVS_HD float avs_k_resize_w(int out, int in, int o, int ac, int i)
{
    int i0, i1;
    float l1, w = 0.0f;
    avs_k_resize_src(out, in, o, ac, &i0, &i1, &l1);
    if (i0 == i)
        w = 1 - l1;
    if (i1 == i)
        w += l1;
    return w;
}

/* Output pixel (oy, ox) of the resize of plane a [H,W] to [OH,OW]: the two input rows
 * interpolated along x, then blended along y (the cpu's order of operations). */
static inline AVS_HD float avs_k_resize_at(const float *a, int H, int W, int OH, int OW, int ac,
                                           int oy, int ox)
{
    int y0, y1, x0, x1;
    float ly, lx;
    avs_k_resize_src(OH, H, oy, ac, &y0, &y1, &ly);
    avs_k_resize_src(OW, W, ox, ac, &x0, &x1, &lx);
    const float *r0 = a + (size_t)y0 * W, *r1 = a + (size_t)y1 * W;
    float h0 = (1 - lx) * r0[x0] + lx * r0[x1], h1 = (1 - lx) * r1[x0] + lx * r1[x1];
    return (1 - ly) * h0 + ly * h1;
}

/* The gradient input pixel (y, x) gathers from plane g [OH,OW], in the order of the cpu's
 * transposed pass: per output column (ascending), the output rows that read row y summed
 * first (ascending; the i0 term, then the i1 term), then weighted by the column's weight. */
static inline AVS_HD float avs_k_resize_gather(const float *g, int H, int W, int OH, int OW,
                                               int ac, int y, int x)
{
    int ylo, yhi, xlo, xhi;
    avs_k_resize_inv(OH, H, y, ac, &ylo, &yhi);
    avs_k_resize_inv(OW, W, x, ac, &xlo, &xhi);
    float s = 0.0f;
    for (int ox = xlo; ox <= xhi; ox++) {
        float v = 0.0f;
        for (int oy = ylo; oy <= yhi; oy++) {
            int y0, y1;
            float ly, gv = g[(size_t)oy * OW + ox];
            avs_k_resize_src(OH, H, oy, ac, &y0, &y1, &ly);
            if (y0 == y)
                v += (1 - ly) * gv;
            if (y1 == y)
                v += ly * gv;
        }
        s += avs_k_resize_w(OW, W, ox, ac, x) * v;
    }
    return s;
}

/* ---- depthwise 3x3 conv taps (tokens [N,H,W,C]) ---- */

/* 1 when tap (di, dj) of output (i, j) reads a pixel inside the H x W map. */
static inline AVS_HD int avs_k_dw_tap_in(int i, int j, int di, int dj, int H, int W)
{
    return i + di >= 0 && i + di < H && j + dj >= 0 && j + dj < W;
}

/* Output token (n, i, j), channel c of the depthwise conv: bias, then the taps row by row;
 * wt [9][C] tap-major. x, y [N,H,W,C]. */
static inline AVS_HD float avs_k_dw_fwd_at(const float *x, const float *wt, const float *b, int H,
                                           int W, int C, int n, int i, int j, int c)
{
    float o = b[c];
    for (int di = -1; di <= 1; di++)
        for (int dj = -1; dj <= 1; dj++)
            if (avs_k_dw_tap_in(i, j, di, dj, H, W))
                o += wt[((di + 1) * 3 + dj + 1) * C + c] *
                     x[(((size_t)n * H + i + di) * W + j + dj) * C + c];
    return o;
}

/* What input token (n, i, j), channel c gathers in the data gradient: the outputs that read it
 * through tap (di, dj), the taps in order, added to acc. */
static inline AVS_HD float avs_k_dw_bwd_at(float acc, const float *dy, const float *wt, int H,
                                           int W, int C, int n, int i, int j, int c)
{
    for (int di = -1; di <= 1; di++)
        for (int dj = -1; dj <= 1; dj++)
            if (avs_k_dw_tap_in(i, j, -di, -dj, H, W))
                acc += wt[((di + 1) * 3 + dj + 1) * C + c] *
                       dy[(((size_t)n * H + i - di) * W + j - dj) * C + c];
    return acc;
}

/* Token row (n, i)'s partial of the filter gradient of channel c, tap t (0..8, 3(di+1)+dj+1)
 * or the bias (t = 9): summed in double along the row. */
static inline AVS_HD double avs_k_dw_row_partial(const float *dy, const float *x, int H, int W,
                                                 int C, int n, int i, int c, int t)
{
    double acc = 0;
    int di = t / 3 - 1, dj = t % 3 - 1;
    for (int j = 0; j < W; j++) {
        float gy = dy[(((size_t)n * H + i) * W + j) * C + c];
        if (t == 9)
            acc += gy;
        else if (avs_k_dw_tap_in(i, j, di, dj, H, W))
            acc += (double)gy * x[(((size_t)n * H + i + di) * W + j + dj) * C + c];
    }
    return acc;
}

/* ---- pixel shuffle by 2 ---- */

/* x [4NC,H,W] element read by y [NC,2H,2W] element yi (pixel_shuffle2). */
static inline AVS_HD size_t avs_k_shuffle2_src(size_t yi, int H, int W)
{
    size_t W2 = (size_t)2 * W, H2 = (size_t)2 * H;
    size_t col = yi % W2, row = (yi / W2) % H2, c = yi / (W2 * H2);
    size_t a = row & 1, b = col & 1, i = row >> 1, j = col >> 1;
    return ((c * 4 + a * 2 + b) * H + i) * W + j;
}

/* x [NC,2H,2W] element read by y [4NC,H,W] element yi (pixel_unshuffle2). */
static inline AVS_HD size_t avs_k_unshuffle2_src(size_t yi, int H, int W)
{
    size_t j = yi % (size_t)W, i = (yi / W) % (size_t)H, cp = yi / ((size_t)W * H);
    size_t c = cp >> 2, p = cp & 3, a = p >> 1, b = p & 1;
    return (c * 2 * H + 2 * i + a) * (size_t)(2 * W) + 2 * j + b;
}

/* ---- replicate padding ---- */

/* The padded indices (0 .. n+1) that copy index i of a row of n, ascending (the order the
 * cpu's backward adds them); returns how many (1 to 3). */
static inline AVS_HD int avs_k_pad_sources(int i, int n, int src[3])
{
    int k = 0;
    if (i == 0)
        src[k++] = 0;
    src[k++] = i + 1;
    if (i == n - 1)
        src[k++] = n + 1;
    return k;
}

static inline AVS_HD int avs_k_clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- the border ring ---- */

/* Row-major ring pixel t of a P x Q map: (p, q) (backend/cpu/head.c ring_pixel). */
static inline AVS_HD void avs_k_ring_pixel(int t, int P, int Q, int *p, int *q)
{
    if (P < 3 || Q < 3 || t < Q) {
        *p = t / Q, *q = t % Q;
        return;
    }
    t -= Q;
    if (t < 2 * (P - 2)) {
        *p = 1 + t / 2, *q = t & 1 ? Q - 1 : 0;
        return;
    }
    *p = P - 1, *q = t - 2 * (P - 2);
}

/* The inverse: the ring index of (p, q), or -1 when the pixel is not on the ring. */
static inline AVS_HD int avs_k_ring_index(int p, int q, int P, int Q)
{
    if (p < 0 || p >= P || q < 0 || q >= Q)
        return -1;
    if (P < 3 || Q < 3 || p == 0)
        return p * Q + q;
    if (p == P - 1)
        return Q + 2 * (P - 2) + q;
    if (q == 0)
        return Q + 2 * (p - 1);
    if (q == Q - 1)
        return Q + 2 * (p - 1) + 1;
    return -1;
}

/* The padded row U row m (x2 bilinear, align_corners false) reads first, and the weights of
 * that row and the next. */
static inline AVS_HD void avs_k_up2_pair(int m, int *i0, float *w0, float *w1)
{
    int i = m >> 1;
    if (m & 1)
        *i0 = i + 1, *w0 = 0.75f, *w1 = 0.25f;
    else
        *i0 = i, *w0 = 0.25f, *w1 = 0.75f;
}

/* The taps of U (2H x 2W, zero outside) at ring pixel t offset by tap rs (3r+s), into a padded
 * plane [H+2][W+2]: 0 or 4 offsets and weights, in the order the sums take them. */
static inline AVS_HD int avs_k_ring_taps(int t, int rs, int H, int W, int off[4], float wt[4])
{
    int p, q;
    avs_k_ring_pixel(t, 2 * H, 2 * W, &p, &q);
    int m = p + rs / 3 - 1, l = q + rs % 3 - 1, i0, j0, Wp = W + 2;
    if (m < 0 || m >= 2 * H || l < 0 || l >= 2 * W)
        return 0;
    float a0, a1, b0, b1;
    avs_k_up2_pair(m, &i0, &a0, &a1);
    avs_k_up2_pair(l, &j0, &b0, &b1);
    off[0] = i0 * Wp + j0, wt[0] = a0 * b0;
    off[1] = off[0] + 1, wt[1] = a0 * b1;
    off[2] = off[0] + Wp, wt[2] = a1 * b0;
    off[3] = off[2] + 1, wt[3] = a1 * b1;
    return 4;
}

/* Column entry (c*9 + rs, b*n + t) of up2_ring_cols from plane pc [H+2][W+2] of (b, c). */
static inline AVS_HD float avs_k_ring_col_at(const float *pc, int t, int rs, int H, int W)
{
    int off[4];
    float wt[4], v = 0.0f;
    int nt = avs_k_ring_taps(t, rs, H, W, off, wt);
    for (int e = 0; e < nt; e++)
        v += wt[e] * pc[off[e]];
    return v;
}

/* The ring pixels of a 2H x 2W map whose tap r (row offset r-1) can read padded row i:
 * U rows m in [2i-3, 2i] (up2_pair reads rows i0, i0+1 with i0 = m/2 or (m+1)/2), so ring
 * rows p = m - r + 1 in [2i-2-r, 2i+1-r]. The same holds for columns. */
static inline AVS_HD int avs_k_ring_cand_lo(int i, int r)
{
    return 2 * i - 2 - r;
}

/* The gradient that padded pixel pos (row i, column j) of one plane gathers from the ring
 * columns cv (rows c*9+rs, this image's n entries, stride ld between rs rows), added to acc in
 * the cpu's scatter order: rs ascending, then ring index t ascending, then tap e. */
static inline AVS_HD float avs_k_ring_gather(float acc, const float *cv, size_t ld, int i, int j,
                                             int H, int W)
{
    int pos = i * (W + 2) + j;
    if (2 * i - 4 > 0 && 2 * i + 1 < 2 * H - 1 && 2 * j - 4 > 0 && 2 * j + 1 < 2 * W - 1)
        return acc; /* no ring pixel among the candidates: an inner pixel */
    for (int rs = 0; rs < 9; rs++) {
        int r = rs / 3, s = rs % 3;
        for (int p = avs_k_ring_cand_lo(i, r); p < avs_k_ring_cand_lo(i, r) + 4; p++)
            for (int q = avs_k_ring_cand_lo(j, s); q < avs_k_ring_cand_lo(j, s) + 4; q++) {
                int t = avs_k_ring_index(p, q, 2 * H, 2 * W);
                if (t < 0)
                    continue;
                int off[4];
                float wt[4];
                int nt = avs_k_ring_taps(t, rs, H, W, off, wt);
                for (int e = 0; e < nt; e++)
                    if (off[e] == pos)
                        acc += wt[e] * cv[(size_t)rs * ld + t];
            }
    }
    return acc;
}

/* ---- output_conv.2 composed with the x2 upsampling (backend/cpu/head.c) ---- */

/* The weight of padded row i+u+1 (u = -1..1) in U row 2i+a+r (a: parity, r: tap -1..1). */
static inline AVS_HD float avs_k_tap_c(int a, int r, int u)
{
    int m = a + r, d = m < 0 ? -1 : m / 2, ap = m - 2 * d;
    int up = u - d;
    if (up < -1 || up > 1)
        return 0.0f;
    /* up_c = {{.25, .75, 0}, {0, .75, .25}} */
    return up == 0 ? 0.75f : (ap == 0 ? (up == -1 ? 0.25f : 0.0f) : (up == 1 ? 0.25f : 0.0f));
}

/* kc[4k+p][c][u][v] from one weight plane wk [3][3] (p = 2a+b), in the cpu's order */
static inline AVS_HD float avs_k_compose(const float *wk, int p, int u, int v)
{
    float sum = 0.0f;
    for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++)
            sum += avs_k_tap_c(p >> 1, r - 1, u - 1) * avs_k_tap_c(p & 1, s - 1, v - 1) *
                   wk[r * 3 + s];
    return sum;
}

/* dw[k][c][r][s] from dkc planes d(p) = dkc + ((k*4+p)*C + c)*9 (stride C*9 between p) */
static inline AVS_HD float avs_k_decompose(const float *d0, size_t pstride, int r, int s)
{
    float sum = 0.0f;
    for (int p = 0; p < 4; p++) {
        const float *d = d0 + (size_t)p * pstride;
        for (int u = 0; u < 3; u++)
            for (int v = 0; v < 3; v++)
                sum += avs_k_tap_c(p >> 1, r - 1, u - 1) * avs_k_tap_c(p & 1, s - 1, v - 1) *
                       d[u * 3 + v];
    }
    return sum;
}

/* ---- softmax cross-entropy label (backend/cpu/loss.c): out of range counts as class 0 ---- */

static inline AVS_HD int avs_k_ce_label(float v, int C)
{
    int c = (int)v;
    return v >= 0 && c < C && (float)c == v ? c : 0;
}

/* logsumexp over the C classes of one pixel, xb[c * n] (stride n between classes), in double
 * with the max subtracted first: the pixel's loss is this minus xb[y * n], and its softmax
 * p_c = exp(xb[c * n] - this). */
static inline AVS_HD double avs_k_ce_logsumexp(const float *xb, size_t n, int C)
{
    double m = xb[0], s = 0;
    for (int c = 1; c < C; c++)
        m = xb[(size_t)c * n] > m ? xb[(size_t)c * n] : m;
    for (int c = 0; c < C; c++)
        s += exp((double)xb[(size_t)c * n] - m);
    return m + log(s);
}

/* ---- BCE with logits: the loss term and the gradient of one element ---- */

static inline AVS_HD float avs_k_bce_term(float v, float g)
{
    return (v > 0 ? v : 0) - v * g + log1pf(expf(-fabsf(v)));
}

/* ---- Adam (torch 1.13 _single_tensor_adam; backend/cpu/ops_cpu.c) ---- */

struct avs_k_adam {
    float b1, b2, a1, a2, step_size, bc2s, eps, wd;
};

static inline struct avs_k_adam avs_k_adam_consts(double lr, double b1, double b2, double eps,
                                                  double wd, long step)
{
    double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    struct avs_k_adam k;
    k.b1 = (float)b1, k.b2 = (float)b2, k.a1 = (float)(1.0 - b1), k.a2 = (float)(1.0 - b2);
    k.step_size = (float)(lr / bc1), k.bc2s = (float)sqrt(bc2), k.eps = (float)eps;
    k.wd = (float)wd;
    return k;
}

/* one element: p, m, v updated in place from gradient g */
static inline AVS_HD void avs_k_adam_step(float *p, float *m, float *v, float g,
                                          const struct avs_k_adam *k)
{
    float gi = k->wd != 0 ? g + k->wd * *p : g;
    float mi = *m * k->b1 + k->a1 * gi;
    float vi = *v * k->b2 + k->a2 * gi * gi;
    float denom = sqrtf(vi) / k->bc2s + k->eps;
    *m = mi, *v = vi;
    *p += -k->step_size * (mi / denom);
}

#endif
