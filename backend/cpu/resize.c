/* backend/cpu/resize.c: bilinear resize of the CPU backend (PyTorch's F.interpolate,
 * align_corners true or false, any sizes). The head upsamples 2x (7->14 .. 112->224) on
 * 640-1280 planes per call, so the loops are built around that case:
 *   fwd: each input row is interpolated along x once (a 2-row cache), output rows are a
 *        vectorised blend of two such rows, streamed past the caches when the output is large;
 *   bwd: transposed: per input row, the weighted output rows that read it are summed
 *        (vectorised), then folded onto the input columns by a gather with K taps per column;
 *        very large upscales (K > RS_KMAX) take the general scatter.
 * Parallel over planes: one writer per element, fixed order, any thread count.
 */
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/common.h"
#include "backend/cpu/cpu.h"

#define PAR_MIN 32768 /* as model/ops_cpu.c */

/* PyTorch's source index for bilinear resize (area_pixel_compute_source_index), in float. */
static void resize_index(int out, int in, int o, int ac, int *i0, int *i1, float *l1)
{
    float scale = ac ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f) : (float)in / (float)out;
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

/* Column indices and weights computed once per call (on the stack up to 8192 columns: 8K
 * frames for avs-predict's overlays, AVS_OVERLAY_MAXW). */
#define RS_MAXW 8192

struct rs_cols {
    int x0[RS_MAXW], x1[RS_MAXW];
    float lx[RS_MAXW];
};

static void resize_cols(struct rs_cols *t, int OW, int W, int ac)
{
    for (int ox = 0; ox < OW; ox++)
        resize_index(OW, W, ox, ac, &t->x0[ox], &t->x1[ox], &t->lx[ox]);
}

/* One input row interpolated along x: h [OW] from r [W]. */
static void rs_hrow(float *restrict h, const float *restrict r, const struct rs_cols *t, int OW)
{
    for (int ox = 0; ox < OW; ox++) {
        float lx = t->lx[ox];
        h[ox] = (1 - lx) * r[t->x0[ox]] + lx * r[t->x1[ox]];
    }
}

/* The x-interpolated input row y, from a 2-row cache (tags: rows held; the row `keep` is not
 * evicted). Output rows come in order and y0 never decreases, so each input row is
 * interpolated about once per plane instead of once per output row that reads it. */
static const float *rs_cached(float *buf, int tag[2], int y, int keep, const float *a, int W,
                              const struct rs_cols *t, int OW)
{
    for (int k = 0; k < 2; k++)
        if (tag[k] == y)
            return buf + (size_t)k * OW;
    int k = tag[0] == keep ? 1 : 0;
    tag[k] = y;
    rs_hrow(buf + (size_t)k * OW, a + (size_t)y * W, t, OW);
    return buf + (size_t)k * OW;
}

/* d = (1-ly) h0 + ly h1: the same arithmetic per element as interpolating both rows inline.
 * nt: non-temporal stores (SSE2), for outputs far larger than the caches: no read for
 * ownership of lines the next layer reads from memory anyway (saves a third of the traffic). */
static void rs_vblend(float *restrict d, const float *restrict h0, const float *restrict h1,
                      float ly, int OW, int nt)
{
    float l0 = 1 - ly;
    int ox = 0;
#ifdef __SSE2__
    if (nt) {
        for (; ox < OW && ((uintptr_t)(d + ox) & 15); ox++)
            d[ox] = l0 * h0[ox] + ly * h1[ox];
        __m128 a = _mm_set1_ps(l0), b = _mm_set1_ps(ly);
        for (; ox + 4 <= OW; ox += 4)
            _mm_stream_ps(d + ox, _mm_add_ps(_mm_mul_ps(a, _mm_loadu_ps(h0 + ox)),
                                             _mm_mul_ps(b, _mm_loadu_ps(h1 + ox))));
    }
#else
    (void)nt;
#endif
#pragma omp simd
    for (int i = ox; i < OW; i++)
        d[i] = l0 * h0[i] + ly * h1[i];
}

/* outputs above this many bytes are written with non-temporal stores */
#define RS_NT_BYTES (32u << 20)

void avs_cpu_resize_fwd(float *y, const float *x, int NC, int H, int W, int OH, int OW, int ac)
{
    AVS_ASSERT(OW <= RS_MAXW);
    struct rs_cols t;
    resize_cols(&t, OW, W, ac);
    int nt = (size_t)NC * OH * OW * sizeof(float) > RS_NT_BYTES;
#pragma omp parallel for schedule(static) if ((size_t)NC * OH * OW > PAR_MIN)
    for (int p = 0; p < NC; p++) {
        const float *a = x + (size_t)p * H * W;
        float *b = y + (size_t)p * OH * OW, buf[2 * RS_MAXW];
        int tag[2] = {-1, -1};
        for (int oy = 0; oy < OH; oy++) {
            int y0, y1;
            float ly;
            resize_index(OH, H, oy, ac, &y0, &y1, &ly);
            const float *h0 = rs_cached(buf, tag, y0, y1, a, W, &t, OW);
            const float *h1 = rs_cached(buf, tag, y1, y0, a, W, &t, OW);
            rs_vblend(b + (size_t)oy * OW, h0, h1, ly, OW, nt);
        }
#ifdef __SSE2__
        if (nt)
            _mm_sfence(); /* the streamed stores are visible before the loop's barrier */
#endif
    }
}

/* Backward, transposed: for each input row y, v = sum of the weighted output rows that read
 * it (contiguous, vectorised), then fold v onto the input columns once per input row. The fold
 * is a gather: input column x sums output columns lo[x] .. lo[x]+K-1 with weights wt[x*K + j]
 * (zero outside its range), so no store feeds the next load as in a scatter. Used when K and
 * the table are small (up to ~6x upscaling); otherwise the scatter below. */
#define RS_KMAX 16
#define RS_FOLD (4 * RS_MAXW)

struct rs_fold {
    int K;
    int lo[RS_MAXW];
    float wt[RS_FOLD];
};

static int rs_fold_init(struct rs_fold *f, const struct rs_cols *t, int W, int OW)
{
    int hi[RS_MAXW];
    for (int x = 0; x < W; x++)
        f->lo[x] = OW, hi[x] = -1;
    for (int ox = 0; ox < OW; ox++)
        for (int e = 0; e < 2; e++) {
            int x = e ? t->x1[ox] : t->x0[ox];
            f->lo[x] = ox < f->lo[x] ? ox : f->lo[x];
            hi[x] = ox > hi[x] ? ox : hi[x];
        }
    int K = 1;
    for (int x = 0; x < W; x++) {
        if (hi[x] < 0)
            f->lo[x] = 0, hi[x] = 0; /* read by no output column (downscaling): weights 0 */
        K = hi[x] - f->lo[x] + 1 > K ? hi[x] - f->lo[x] + 1 : K;
    }
    if (K > RS_KMAX || (size_t)K * W > RS_FOLD)
        return 0;
    f->K = K;
    memset(f->wt, 0, (size_t)K * W * sizeof(float));
    for (int ox = 0; ox < OW; ox++) {
        float lx = t->lx[ox];
        f->wt[(size_t)t->x0[ox] * K + (ox - f->lo[t->x0[ox]])] += 1 - lx;
        f->wt[(size_t)t->x1[ox] * K + (ox - f->lo[t->x1[ox]])] += lx;
    }
    return 1;
}

/* v [OW] = w g (first) or v += w g */
static void rs_vacc(float *restrict v, const float *restrict g, float w, int first, int OW)
{
    if (first) {
#pragma omp simd
        for (int ox = 0; ox < OW; ox++)
            v[ox] = w * g[ox];
    } else {
#pragma omp simd
        for (int ox = 0; ox < OW; ox++)
            v[ox] += w * g[ox];
    }
}

/* r [W] += the fold of v; K a constant in the common cases (2x: 4 or 5), so the tap loop
 * unrolls */
static inline __attribute__((always_inline)) void rs_fold_k(float *restrict r, const float *restrict v, const struct rs_fold *f,
                             int W, int K)
{
    for (int x = 0; x < W; x++) {
        const float *vv = v + f->lo[x], *ww = f->wt + (size_t)x * K;
        float s = 0;
        for (int j = 0; j < K; j++)
            s += ww[j] * vv[j];
        r[x] += s;
    }
}

static void rs_fold_row(float *r, const float *v, const struct rs_fold *f, int W)
{
    switch (f->K) {
    case 3:
        rs_fold_k(r, v, f, W, 3);
        break;
    case 4:
        rs_fold_k(r, v, f, W, 4);
        break;
    case 5:
        rs_fold_k(r, v, f, W, 5);
        break;
    default:
        rs_fold_k(r, v, f, W, f->K);
    }
}

/* one plane: a [H,W] += resize_fwd^T b [OH,OW]; v: OW + K floats, the tail zero */
static void rs_bwd_plane(float *a, const float *b, int H, int W, int OH, int OW, int ac,
                         const struct rs_fold *f, float *v)
{
    int first = 0; /* output rows before it have y1 < y: done with */
    for (int y = 0; y < H; y++) {
        int n = 0, y0, y1;
        float ly;
        for (; first < OH; first++) {
            resize_index(OH, H, first, ac, &y0, &y1, &ly);
            if (y1 >= y)
                break;
        }
        for (int oy = first; oy < OH; oy++) {
            resize_index(OH, H, oy, ac, &y0, &y1, &ly);
            if (y0 > y)
                break;
            const float *g = b + (size_t)oy * OW;
            if (y0 == y)
                rs_vacc(v, g, 1 - ly, n++ == 0, OW);
            if (y1 == y)
                rs_vacc(v, g, ly, n++ == 0, OW);
        }
        if (n)
            rs_fold_row(a + (size_t)y * W, v, f, W);
    }
}

/* The general backward (any scale): per output row, fold onto the input columns through a
 * scatter, then spread on its two input rows. t: W floats. */
static void rs_bwd_plane_scatter(float *a, const float *b, int H, int W, int OH, int OW, int ac,
                                 const struct rs_cols *c, float *t)
{
    for (int oy = 0; oy < OH; oy++) {
        int y0, y1;
        float ly;
        resize_index(OH, H, oy, ac, &y0, &y1, &ly);
        float *r0 = a + (size_t)y0 * W, *r1 = a + (size_t)y1 * W;
        const float *g = b + (size_t)oy * OW;
        memset(t, 0, (size_t)W * sizeof(float));
        for (int ox = 0; ox < OW; ox++) {
            float lx = c->lx[ox];
            t[c->x0[ox]] += (1 - lx) * g[ox];
            t[c->x1[ox]] += lx * g[ox];
        }
        float l0 = 1 - ly;
        for (int x = 0; x < W; x++) {
            r0[x] += l0 * t[x];
            r1[x] += ly * t[x];
        }
    }
}

static int rs_force_scatter; /* tests: avs_cpu_resize_force_general */

void avs_cpu_resize_force_general(int on)
{
    rs_force_scatter = on;
}

void avs_cpu_resize_bwd(float *dx, const float *dy, int NC, int H, int W, int OH, int OW, int ac)
{
    AVS_ASSERT(OW <= RS_MAXW && W <= RS_MAXW);
    struct rs_cols c;
    static _Thread_local struct rs_fold fs; /* 160 KB: off the stack */
    struct rs_fold *f = &fs; /* the caller's copy, read by all threads */
    resize_cols(&c, OW, W, ac);
    int fold = !rs_force_scatter && rs_fold_init(f, &c, W, OW);
#pragma omp parallel for schedule(static) if ((size_t)NC * OH * OW > PAR_MIN)
    for (int p = 0; p < NC; p++) {
        float buf[RS_MAXW + RS_KMAX];
        if (fold) {
            memset(buf + OW, 0, RS_KMAX * sizeof(float));
            rs_bwd_plane(dx + (size_t)p * H * W, dy + (size_t)p * OH * OW, H, W, OH, OW, ac, f, buf);
        } else
            rs_bwd_plane_scatter(dx + (size_t)p * H * W, dy + (size_t)p * OH * OW, H, W, OH, OW, ac,
                                 &c, buf);
    }
}
