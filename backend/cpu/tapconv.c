/* backend/cpu/tapconv.c: the tap conv on the CPU: a stride-1 conv over an arbitrary set of
 * offsets (model/ops.h, struct avs_tapconv), as one im2col over those taps and one GEMM with
 * inner dimension taps*C. Dilated convs (backend/cpu/conv.c) run here with their live taps, and
 * ASPP's branches composed with its output conv (model/c3n_blocks.c) are one tap conv.
 *
 * Rows of the im2col matrix are tap-major (row i*C + c), matching w [K][taps][C]. Small maps
 * are batched: a chunk of images puts its columns side by side (at least CHUNK_COLS columns
 * per GEMM, when there are enough images), so a 7x7 map is not a 49-column GEMM.
 * Every output element has one writer and a fixed summation order: bit-identical results for
 * any thread count.
 */
#include <omp.h>
#include <string.h>

#include "core/common.h"
#include "backend/ops.h"
#include "backend/cpu/cpu.h"

#define CHUNK_COLS 2048

/* images per chunk */
static int chunk_of(const struct avs_tapconv *g)
{
    int PQ = g->P * g->Q, m = (CHUNK_COLS + PQ - 1) / PQ;
    return m < 1 ? 1 : m > g->N ? g->N : m;
}

size_t avs_cpu_tapconv_ws(const struct avs_tapconv *g)
{
    size_t cols = (size_t)chunk_of(g) * g->P * g->Q;
    return (size_t)g->n * g->C * cols + (size_t)g->K * cols + 64;
}

double avs_tapconv_flops(const struct avs_tapconv *g)
{
    return 2.0 * g->N * g->K * (double)g->P * g->Q * g->C * g->n;
}

/* The columns [q0, q1) of an output row (Q wide) that read inside the map (W wide) at a
 * column shift dx. */
static void span(int dx, int W, int Q, int *q0, int *q1)
{
    *q0 = dx < 0 ? -dx : 0;
    *q1 = W - dx < Q ? W - dx : Q;
    if (*q0 > Q)
        *q0 = Q;
    if (*q1 < *q0)
        *q1 = *q0;
}

/* col [taps*C, m*PQ]: the shifted copies of images x [m, C, H, W] side by side. */
static void im2col(float *col, const float *x, int m, const struct avs_tapconv *g)
{
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q, ld = (size_t)m * PQ;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)g->n * g->C * ld > 32768)
    for (int i = 0; i < g->n; i++)
        for (int c = 0; c < g->C; c++) {
            int dy = g->dy[i], dx = g->dx[i], q0, q1;
            span(dx, g->W, g->Q, &q0, &q1);
            for (int j = 0; j < m; j++) {
                const float *src = x + ((size_t)j * g->C + c) * HW;
                float *d = col + ((size_t)i * g->C + c) * ld + (size_t)j * PQ;
                for (int p = 0; p < g->P; p++) {
                    float *dp = d + (size_t)p * g->Q;
                    int h = p + dy;
                    if (h < 0 || h >= g->H) {
                        memset(dp, 0, (size_t)g->Q * sizeof(float));
                        continue;
                    }
                    memset(dp, 0, (size_t)q0 * sizeof(float));
                    memcpy(dp + q0, src + (size_t)h * g->W + q0 + dx, (size_t)(q1 - q0) * sizeof(float));
                    memset(dp + q1, 0, (size_t)(g->Q - q1) * sizeof(float));
                }
            }
        }
}

/* dx [m, C, H, W] += the shifted copies in col; parallel over (image, channel), taps in order */
static void col2im(float *dx, const float *col, int m, const struct avs_tapconv *g)
{
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q, ld = (size_t)m * PQ;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)g->n * g->C * ld > 32768)
    for (int j = 0; j < m; j++)
        for (int c = 0; c < g->C; c++) {
            float *dst = dx + ((size_t)j * g->C + c) * HW;
            for (int i = 0; i < g->n; i++) {
                int dy = g->dy[i], dxs = g->dx[i], q0, q1;
                span(dxs, g->W, g->Q, &q0, &q1);
                const float *src = col + ((size_t)i * g->C + c) * ld + (size_t)j * PQ;
                for (int p = 0; p < g->P; p++) {
                    int h = p + dy;
                    if (h < 0 || h >= g->H)
                        continue;
                    float *dh = dst + (size_t)h * g->W + dxs;
                    const float *sp = src + (size_t)p * g->Q;
                    for (int q = q0; q < q1; q++)
                        dh[q] += sp[q];
                }
            }
        }
}

/* [m, K, PQ] <-> [K, m*PQ] (the GEMM side of a chunk); to_maps adds the bias if given */
static void unbatch(float *maps, const float *wide, const float *b, int m, int K, size_t HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)m * K * HW > 32768)
    for (int j = 0; j < m; j++)
        for (int k = 0; k < K; k++) {
            float *d = maps + ((size_t)j * K + k) * HW, bk = b ? b[k] : 0.0f;
            const float *s = wide + ((size_t)k * m + j) * HW;
            for (size_t i = 0; i < HW; i++)
                d[i] = s[i] + bk;
        }
}

static void batch(float *wide, const float *maps, int m, int K, size_t HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)m * K * HW > 32768)
    for (int j = 0; j < m; j++)
        for (int k = 0; k < K; k++)
            memcpy(wide + ((size_t)k * m + j) * HW, maps + ((size_t)j * K + k) * HW, HW * sizeof(float));
}

/* The gradient of images n0..n0+m-1 in the GEMM's layout [K, m*PQ] (batched into wide). */
static const float *dout_chunk(float *wide, const float *dout, int n0, int m, const struct avs_tapconv *g)
{
    size_t PQ = (size_t)g->P * g->Q;
    const float *d = dout + (size_t)n0 * g->K * PQ;
    if (m == 1)
        return d;
    batch(wide, d, m, g->K, PQ);
    return wide;
}

void avs_cpu_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                         const struct avs_tapconv *g, float *ws)
{
    AVS_ASSERT(g->n >= 1 && g->n <= AVS_TAPS_MAX);
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q, nC = (size_t)g->n * g->C;
    int mc = chunk_of(g);
    float *col = ws, *wide = col + nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc;
        float *o = out + (size_t)n0 * g->K * PQ;
        im2col(col, in + (size_t)n0 * g->C * HW, m, g);
        if (m == 1) {
            avs_cpu_sgemm(0, 0, g->K, (int)PQ, (int)nC, 1.0f, w, (int)nC, col, (int)PQ, 0.0f, o, (int)PQ);
            if (b)
                avs_cpu_add_channel(o, b, 1, g->K, (int)PQ);
        } else {
            avs_cpu_sgemm(0, 0, g->K, (int)(m * PQ), (int)nC, 1.0f, w, (int)nC, col, (int)(m * PQ),
                         0.0f, wide, (int)(m * PQ));
            unbatch(o, wide, b, m, g->K, PQ);
        }
    }
}

void avs_cpu_tapconv_bwd_data(float *din, const float *dout, const float *w,
                              const struct avs_tapconv *g, float *ws)
{
    AVS_ASSERT(g->n >= 1 && g->n <= AVS_TAPS_MAX);
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q, nC = (size_t)g->n * g->C;
    int mc = chunk_of(g);
    float *col = ws, *wide = col + nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc;
        const float *d = dout_chunk(wide, dout, n0, m, g);
        avs_cpu_sgemm(1, 0, (int)nC, (int)(m * PQ), g->K, 1.0f, w, (int)nC, d, (int)(m * PQ), 0.0f,
                     col, (int)(m * PQ));
        col2im(din + (size_t)n0 * g->C * HW, col, m, g);
    }
}

void avs_cpu_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                const struct avs_tapconv *g, float *ws)
{
    AVS_ASSERT(g->n >= 1 && g->n <= AVS_TAPS_MAX);
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q, nC = (size_t)g->n * g->C;
    int mc = chunk_of(g);
    float *col = ws, *wide = col + nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc;
        const float *d = dout_chunk(wide, dout, n0, m, g);
        im2col(col, in + (size_t)n0 * g->C * HW, m, g);
        avs_cpu_sgemm(0, 1, g->K, (int)nC, (int)(m * PQ), 1.0f, d, (int)(m * PQ), col, (int)(m * PQ),
                     1.0f, dw, (int)nC);
    }
    if (db)
        avs_cpu_sum_channel(db, dout, g->N, g->K, (int)PQ);
}

/* The backend table's entries: the same, counted in avs_ops_flops. */
void avs_cpu_op_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                            const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cpu_tapconv_fwd(out, in, w, b, g, ws);
}

void avs_cpu_op_tapconv_bwd_data(float *din, const float *dout, const float *w,
                                 const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cpu_tapconv_bwd_data(din, dout, w, g, ws);
}

void avs_cpu_op_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                                   const struct avs_tapconv *g, float *ws)
{
    avs_cpu_flops_add(avs_tapconv_flops(g));
    avs_cpu_tapconv_bwd_filter(dw, db, dout, in, g, ws);
}
