/* backend/cuda/tapconv.cu: the tap conv (backend/ops.h struct avs_tapconv) as a gather kernel
 * (im2col over the taps, zeros outside the map) and one cuBLAS GEMM per chunk of images: the
 * contract and the layouts of backend/cpu/tapconv.c.
 *
 *   col  [taps*C, m*PQ]   row i*C + c (tap-major, as w [K][taps][C]); image j's columns at j*PQ
 *   wide [K, m*PQ]        the GEMM's side of a chunk; maps are [m, K, PQ]
 * A chunk holds as many images as keep col under CHUNK_FLOATS (at least one). col2im is a
 * gather too: every din element has one thread, which adds its taps in tap order (no atomics).
 */
#include "backend/cuda/conv_plan.cuh"

#define CHUNK_FLOATS ((size_t)1 << 25)

#define TAP_FMT "in [%d,%d,%d,%d] out [%d,%d,%d,%d] taps %d"
#define TAP_ARGS(g) (g)->N, (g)->C, (g)->H, (g)->W, (g)->N, (g)->K, (g)->P, (g)->Q, (g)->n

#define GRID_STRIDE(i, n)                                                                         \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);                      \
         i += (size_t)gridDim.x * blockDim.x)

static int chunk_of(const struct avs_tapconv *g)
{
    size_t per = (size_t)g->n * g->C * g->P * g->Q;
    size_t m = per ? CHUNK_FLOATS / per : 1;
    return m < 1 ? 1 : m > (size_t)g->N ? g->N : (int)m;
}

size_t avs_cu_tapconv_ws(const struct avs_tapconv *g)
{
    size_t cols = (size_t)chunk_of(g) * g->P * g->Q;
    return (size_t)g->n * g->C * cols + (size_t)g->K * cols + 64;
}

__global__ void im2col_kernel(float *col, const float *x, int m, struct avs_tapconv g)
{
    size_t PQ = (size_t)g.P * g.Q, ld = (size_t)m * PQ, total = (size_t)g.n * g.C * ld;
    GRID_STRIDE(e, total) {
        size_t r = e / ld, cidx = e % ld;
        int i = (int)(r / g.C), c = (int)(r % g.C), j = (int)(cidx / PQ);
        int pq = (int)(cidx % PQ), p = pq / g.Q, q = pq % g.Q;
        int h = p + g.dy[i], w = q + g.dx[i];
        col[e] = h >= 0 && h < g.H && w >= 0 && w < g.W
                     ? x[(((size_t)j * g.C + c) * g.H + h) * g.W + w]
                     : 0.0f;
    }
}

__global__ void col2im_kernel(float *dx, const float *col, int m, struct avs_tapconv g)
{
    size_t HW = (size_t)g.H * g.W, PQ = (size_t)g.P * g.Q, ld = (size_t)m * PQ;
    size_t total = (size_t)m * g.C * HW;
    GRID_STRIDE(e, total) {
        int j = (int)(e / (g.C * HW)), c = (int)(e / HW % g.C), hw = (int)(e % HW);
        int h = hw / g.W, w = hw % g.W;
        float v = dx[e];
        for (int i = 0; i < g.n; i++) {
            int p = h - g.dy[i], q = w - g.dx[i];
            if (p >= 0 && p < g.P && q >= 0 && q < g.Q)
                v += col[((size_t)i * g.C + c) * ld + (size_t)j * PQ + (size_t)p * g.Q + q];
        }
        dx[e] = v;
    }
}

/* maps [m,K,T] (+ b[k]) from wide [K, m*T], and wide from maps */
__global__ void unbatch_kernel(float *maps, const float *wide, const float *b, int m, int K,
                               size_t T)
{
    GRID_STRIDE(e, (size_t)m * K * T) {
        size_t t = e % T, k = e / T % K, j = e / T / K;
        maps[e] = wide[(k * m + j) * T + t] + (b ? b[k] : 0.0f);
    }
}

__global__ void batch_kernel(float *wide, const float *maps, int m, int K, size_t T)
{
    GRID_STRIDE(e, (size_t)m * K * T) {
        size_t t = e % T, k = e / T % K, j = e / T / K;
        wide[(k * m + j) * T + t] = maps[e];
    }
}

static void im2col(float *col, const float *x, int m, const struct avs_tapconv *g, const char *op)
{
    size_t n = (size_t)g->n * g->C * m * g->P * g->Q;
    im2col_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(col, x, m, *g);
    AVS_CU_LAUNCHED(op, "im2col of %d images: " TAP_FMT, m, TAP_ARGS(g));
}

/* The gradient of images n0.. n0+m-1 in the GEMM's layout [K, m*PQ]. */
static const float *dout_chunk(float *wide, const float *dout, int n0, int m,
                               const struct avs_tapconv *g, const char *op)
{
    size_t PQ = (size_t)g->P * g->Q, n = (size_t)m * g->K * PQ;
    const float *d = dout + (size_t)n0 * g->K * PQ;
    if (m == 1)
        return d;
    batch_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(wide, d, m, g->K, PQ);
    AVS_CU_LAUNCHED(op, "batch of %d images: " TAP_FMT, m, TAP_ARGS(g));
    return wide;
}

void avs_cu_tapconv_fwd(float *out, const float *in, const float *w, const float *b,
                        const struct avs_tapconv *g, float *ws)
{
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q;
    int nC = g->n * g->C, mc = chunk_of(g);
    float *col = ws, *wide = col + (size_t)nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc, cols = (int)(m * PQ);
        float *o = out + (size_t)n0 * g->K * PQ;
        im2col(col, in + (size_t)n0 * g->C * HW, m, g, "tapconv_fwd");
        avs_cu_gemm(0, 0, g->K, cols, nC, 1.0f, w, nC, col, cols, 0.0f, m == 1 ? o : wide, cols);
        if (m == 1) {
            if (b)
                avs_cu_channel_add(o, b, 1, g->K, PQ, "tapconv_fwd");
            continue;
        }
        unbatch_kernel<<<avs_cu_grid((size_t)m * g->K * PQ), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
            o, wide, b, m, g->K, PQ);
        AVS_CU_LAUNCHED("tapconv_fwd", "unbatch of %d images: " TAP_FMT, m, TAP_ARGS(g));
    }
}

void avs_cu_tapconv_bwd_data(float *din, const float *dout, const float *w,
                             const struct avs_tapconv *g, float *ws)
{
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q;
    int nC = g->n * g->C, mc = chunk_of(g);
    float *col = ws, *wide = col + (size_t)nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc, cols = (int)(m * PQ);
        const float *d = dout_chunk(wide, dout, n0, m, g, "tapconv_bwd_data");
        avs_cu_gemm(1, 0, nC, cols, g->K, 1.0f, w, nC, d, cols, 0.0f, col, cols);
        size_t n = (size_t)m * g->C * HW;
        col2im_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
            din + (size_t)n0 * g->C * HW, col, m, *g);
        AVS_CU_LAUNCHED("tapconv_bwd_data", "col2im of %d images: " TAP_FMT, m, TAP_ARGS(g));
    }
}

void avs_cu_tapconv_bwd_filter(float *dw, float *db, const float *dout, const float *in,
                               const struct avs_tapconv *g, float *ws)
{
    size_t HW = (size_t)g->H * g->W, PQ = (size_t)g->P * g->Q;
    int nC = g->n * g->C, mc = chunk_of(g);
    float *col = ws, *wide = col + (size_t)nC * mc * PQ;
    for (int n0 = 0; n0 < g->N; n0 += mc) {
        int m = g->N - n0 < mc ? g->N - n0 : mc, cols = (int)(m * PQ);
        const float *d = dout_chunk(wide, dout, n0, m, g, "tapconv_bwd_filter");
        im2col(col, in + (size_t)n0 * g->C * HW, m, g, "tapconv_bwd_filter");
        avs_cu_gemm(0, 1, g->K, nC, cols, 1.0f, d, cols, col, cols, 1.0f, dw, nC);
    }
    if (db)
        avs_cu_channel_sum(db, dout, g->N, g->K, PQ, "tapconv_bwd_filter");
}
