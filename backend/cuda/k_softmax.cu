/* backend/cuda/k_softmax.cu: the row-wise CUDA primitives (backend/ops.h): softmax_fwd/bwd
 * and l2norm_rows over [rows, cols]. One warp per row: its lanes stride through the row
 * (coalesced), each sums in double, and the warp's fixed shuffle tree adds the lanes: the same
 * bits for the same inputs. Per element the arithmetic is the cpu's (backend/cpu/ops_cpu.c,
 * backend/cpu/head.c). */
#include "backend/cuda/k_reduce.cuh"

#define WARPS (AVS_CU_BLOCK / 32)

/* the rows of this warp: row = warp's global index, stepping over all warps of the grid */
#define ROWS_OF_WARP(row, rows)                                                                \
    for (int row = blockIdx.x * WARPS + (threadIdx.x >> 5); row < (rows);                      \
         row += gridDim.x * WARPS)

static unsigned row_blocks(int rows)
{
    unsigned b = (unsigned)((rows + WARPS - 1) / WARPS);
    return b < 65535 ? (b ? b : 1) : 65535;
}

/* y may alias x: each lane reads a[c] before it writes b[c] */
__global__ static void softmax_fwd_k(float *y, const float *x, int rows, int cols)
{
    int lane = threadIdx.x & 31;
    ROWS_OF_WARP(r, rows) {
        const float *a = x + (size_t)r * cols;
        float *b = y + (size_t)r * cols, mx = a[0];
        for (int c = lane; c < cols; c += 32)
            mx = a[c] > mx ? a[c] : mx;
        mx = avs_k_warp_max(mx);
        double s = 0;
        for (int c = lane; c < cols; c += 32) {
            float e = expf(a[c] - mx);
            b[c] = e;
            s += e;
        }
        float inv = (float)(1.0 / avs_k_warp_sum(s));
        for (int c = lane; c < cols; c += 32)
            b[c] *= inv;
    }
}

__global__ static void softmax_bwd_k(float *dx, const float *dy, const float *y, int rows,
                                     int cols)
{
    int lane = threadIdx.x & 31;
    ROWS_OF_WARP(r, rows) {
        const float *g = dy + (size_t)r * cols, *p = y + (size_t)r * cols;
        double s = 0;
        for (int c = lane; c < cols; c += 32)
            s += (double)g[c] * p[c];
        float sf = (float)avs_k_warp_sum(s);
        for (int c = lane; c < cols; c += 32)
            dx[(size_t)r * cols + c] += p[c] * (g[c] - sf);
    }
}

__global__ static void l2norm_rows_k(float *y, const float *x, int rows, int cols, float eps)
{
    int lane = threadIdx.x & 31;
    ROWS_OF_WARP(r, rows) {
        const float *a = x + (size_t)r * cols;
        double ss = 0;
        for (int c = lane; c < cols; c += 32)
            ss += (double)a[c] * a[c];
        float nrm = (float)sqrt(avs_k_warp_sum(ss));
        if (nrm < eps)
            nrm = eps;
        for (int c = lane; c < cols; c += 32)
            y[(size_t)r * cols + c] = a[c] / nrm;
    }
}

void avs_cu_softmax_fwd(float *y, const float *x, int rows, int cols)
{
    if (rows <= 0 || cols <= 0)
        return;
    softmax_fwd_k<<<row_blocks(rows), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(y, x, rows, cols);
    AVS_CU_LAUNCHED("softmax_fwd", "rows=%d cols=%d", rows, cols);
}

void avs_cu_softmax_bwd(float *dx, const float *dy, const float *y, int rows, int cols)
{
    if (rows <= 0 || cols <= 0)
        return;
    softmax_bwd_k<<<row_blocks(rows), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(dx, dy, y, rows, cols);
    AVS_CU_LAUNCHED("softmax_bwd", "rows=%d cols=%d", rows, cols);
}

void avs_cu_l2norm_rows(float *y, const float *x, int rows, int cols, float eps)
{
    if (rows <= 0 || cols <= 0)
        return;
    l2norm_rows_k<<<row_blocks(rows), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(y, x, rows, cols, eps);
    AVS_CU_LAUNCHED("l2norm_rows", "rows=%d cols=%d", rows, cols);
}
