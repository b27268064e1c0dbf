/* backend/cuda/k_norm.cu: LayerNorm and BatchNorm of the CUDA backend (backend/ops.h), with
 * the cpu's per-element arithmetic (backend/cpu/ops_cpu.c) and sums in double:
 *   LayerNorm, inner = 1 (token rows): a warp per row, lanes strided along C, a fixed
 *     shuffle tree; inner > 1 (channels of a map): a thread per position summing C in order
 *     (the cpu's order), coalesced along the positions.
 *   LayerNorm dw, db: fixed-order column / plane sums (backend/cuda/k_reduce.cuh).
 *   BatchNorm: a block per channel; every pass over the channel is a strided loop and a
 *     shared-memory tree; the statistics and the running stats are written by thread 0.
 * No atomics: the same bits for the same inputs on the same GPU. */
#include "backend/cuda/k_reduce.cuh"

#define WARPS (AVS_CU_BLOCK / 32)

static unsigned warp_blocks(size_t rows)
{
    size_t b = (rows + WARPS - 1) / WARPS;
    return b < 65535 ? (unsigned)(b ? b : 1) : 65535;
}

/* ---- LayerNorm forward ---- */

/* one row of C (inner = 1) per warp */
__global__ static void ln_fwd_rows_k(float *y, float *mean, float *rstd, const float *x,
                                     const float *w, const float *b, int rows, int C, float eps)
{
    int lane = threadIdx.x & 31;
    for (int r = blockIdx.x * WARPS + (threadIdx.x >> 5); r < rows; r += gridDim.x * WARPS) {
        const float *a = x + (size_t)r * C;
        float *z = y + (size_t)r * C;
        double s = 0, s2 = 0;
        for (int c = lane; c < C; c += 32)
            s += a[c];
        double m = avs_k_warp_sum(s) / C;
        for (int c = lane; c < C; c += 32) {
            double d = a[c] - m;
            s2 += d * d;
        }
        float mf = (float)m, rs = (float)(1.0 / sqrt(avs_k_warp_sum(s2) / C + eps));
        if (lane == 0)
            mean[r] = mf, rstd[r] = rs;
        for (int c = lane; c < C; c += 32)
            z[c] = w ? (a[c] - mf) * rs * w[c] + b[c] : (a[c] - mf) * rs;
    }
}

/* one position (o, i) per thread, inner > 1: C summed in order */
__global__ static void ln_fwd_pos_k(float *y, float *mean, float *rstd, const float *x,
                                    const float *w, const float *b, int outer, int C, int inner,
                                    float eps)
{
    AVS_K_FOR(t, (size_t)outer * inner) {
        size_t o = t / inner, i = t % inner, at = o * C * inner + i;
        double s = 0, s2 = 0;
        for (int c = 0; c < C; c++)
            s += x[at + (size_t)c * inner];
        double m = s / C;
        for (int c = 0; c < C; c++) {
            double d = x[at + (size_t)c * inner] - m;
            s2 += d * d;
        }
        float mf = (float)m, rs = (float)(1.0 / sqrt(s2 / C + eps));
        mean[t] = mf, rstd[t] = rs;
        for (int c = 0; c < C; c++) {
            size_t k = at + (size_t)c * inner;
            y[k] = w ? (x[k] - mf) * rs * w[c] + b[c] : (x[k] - mf) * rs;
        }
    }
}

void avs_cu_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, int outer, int C, int inner, float eps)
{
    if ((size_t)outer * C * inner == 0)
        return;
    if (inner == 1)
        ln_fwd_rows_k<<<warp_blocks(outer), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
            y, mean, rstd, x, w, b, outer, C, eps);
    else
        AVS_K_GO(ln_fwd_pos_k, (size_t)outer * inner)(y, mean, rstd, x, w, b, outer, C, inner, eps);
    AVS_CU_LAUNCHED("layernorm_fwd", "outer=%d C=%d inner=%d", outer, C, inner);
}

/* ---- LayerNorm backward: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w ---- */

__global__ static void ln_bwd_rows_k(float *dx, const float *dy, const float *x,
                                     const float *mean, const float *rstd, const float *w,
                                     int rows, int C)
{
    int lane = threadIdx.x & 31;
    for (int r = blockIdx.x * WARPS + (threadIdx.x >> 5); r < rows; r += gridDim.x * WARPS) {
        const float *p = dy + (size_t)r * C, *q = x + (size_t)r * C;
        float m = mean[r], rs = rstd[r];
        double s1 = 0, s2 = 0;
        for (int c = lane; c < C; c += 32) {
            float g = p[c] * (w ? w[c] : 1.0f), xh = (q[c] - m) * rs;
            s1 += g;
            s2 += (double)g * xh;
        }
        float a1 = (float)(avs_k_warp_sum(s1) / C), a2 = (float)(avs_k_warp_sum(s2) / C);
        for (int c = lane; c < C; c += 32) {
            float g = p[c] * (w ? w[c] : 1.0f), xh = (q[c] - m) * rs;
            dx[(size_t)r * C + c] += rs * (g - a1 - xh * a2);
        }
    }
}

__global__ static void ln_bwd_pos_k(float *dx, const float *dy, const float *x,
                                    const float *mean, const float *rstd, const float *w,
                                    int outer, int C, int inner)
{
    AVS_K_FOR(t, (size_t)outer * inner) {
        size_t o = t / inner, i = t % inner, at = o * C * inner + i;
        float m = mean[t], rs = rstd[t];
        double s1 = 0, s2 = 0;
        for (int c = 0; c < C; c++) {
            size_t k = at + (size_t)c * inner;
            float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * rs;
            s1 += g;
            s2 += (double)g * xh;
        }
        float a1 = (float)(s1 / C), a2 = (float)(s2 / C);
        for (int c = 0; c < C; c++) {
            size_t k = at + (size_t)c * inner;
            float g = dy[k] * (w ? w[c] : 1.0f), xh = (x[k] - m) * rs;
            dx[k] += rs * (g - a1 - xh * a2);
        }
    }
}

/* dy * xhat of element k of [outer, C, inner] */
struct ln_dyxh {
    const float *dy, *x, *mean, *rstd;
    int C, inner;
    __device__ double operator()(size_t k) const
    {
        size_t st = k / ((size_t)C * inner) * inner + k % (size_t)inner;
        float xh = (x[k] - mean[st]) * rstd[st];
        return (double)dy[k] * xh;
    }
};

void avs_cu_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int outer, int C,
                          int inner)
{
    if ((size_t)outer * C * inner == 0)
        return;
    if (inner == 1)
        ln_bwd_rows_k<<<warp_blocks(outer), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
            dx, dy, x, mean, rstd, w, outer, C);
    else
        AVS_K_GO(ln_bwd_pos_k, (size_t)outer * inner)(dx, dy, x, mean, rstd, w, outer, C, inner);
    AVS_CU_LAUNCHED("layernorm_bwd", "outer=%d C=%d inner=%d", outer, C, inner);
    if (!dw)
        return;
    ln_dyxh gx{dy, x, mean, rstd, C, inner};
    if (inner == 1) {
        avs_k_col_sum(1, outer, C, gx, avs_k_fin_add{dw}, "layernorm_bwd dw");
        avs_k_col_sum(1, outer, C, avs_k_ld1{dy}, avs_k_fin_add{db}, "layernorm_bwd db");
    } else {
        avs_k_plane_sum(outer, C, inner, gx, avs_k_fin_add{dw}, "layernorm_bwd dw");
        avs_k_plane_sum(outer, C, inner, avs_k_ld1{dy}, avs_k_fin_add{db}, "layernorm_bwd db");
    }
}

/* ---- BatchNorm: a block per channel c of [N,C,HW] ---- */

/* the loop over channel c's elements: k is the element's index */
#define CHANNEL_LOOP(k)                                                                         \
    for (size_t r_ = threadIdx.x, k = ((r_ / HW) * C + c) * HW + r_ % HW; r_ < cnt;           \
         r_ += AVS_CU_BLOCK, k = ((r_ / HW) * C + c) * HW + r_ % HW)

__global__ static void bn_fwd_k(float *y, float *mean, float *rstd, const float *x,
                                const float *w, const float *b, float *run_mean, float *run_var,
                                int C, int HW, size_t cnt, float eps, float momentum, int train)
{
    __shared__ float sc_sh[2];
    int c = blockIdx.x;
    if (train) {
        double s = 0, s2 = 0;
        CHANNEL_LOOP(k) s += x[k];
        double md = avs_k_block_sum(s) / (double)cnt;
        CHANNEL_LOOP(k) {
            double d = x[k] - md;
            s2 += d * d;
        }
        s2 = avs_k_block_sum(s2);
        if (threadIdx.x == 0) {
            double var = s2 / (double)cnt;
            float m = (float)md, r = (float)(1.0 / sqrt(var + eps));
            if (run_mean) {
                double unb = cnt > 1 ? s2 / (double)(cnt - 1) : var;
                run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * m;
                run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)unb;
            }
            mean[c] = m, rstd[c] = r;
        }
    } else if (threadIdx.x == 0) {
        mean[c] = run_mean[c];
        rstd[c] = 1.0f / sqrtf(run_var[c] + eps);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = mean[c], r = rstd[c], sc = r * (w ? w[c] : 1.0f);
        sc_sh[0] = sc, sc_sh[1] = (b ? b[c] : 0.0f) - m * sc;
    }
    __syncthreads();
    float sc = sc_sh[0], sh = sc_sh[1];
    CHANNEL_LOOP(k) y[k] = x[k] * sc + sh;
}

void avs_cu_batchnorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                          const float *b, float *run_mean, float *run_var, int N, int C, int HW,
                          float eps, float momentum, int train)
{
    if (C <= 0)
        return;
    bn_fwd_k<<<(unsigned)C, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
        y, mean, rstd, x, w, b, run_mean, run_var, C, HW, (size_t)N * HW, eps, momentum, train);
    AVS_CU_LAUNCHED("batchnorm_fwd", "N=%d C=%d HW=%d", N, C, HW);
}

/* sums of dy and dy xhat; dw, db; then dx = k dy - a1' - xhat a2' with the channel's residue
 * removed (train: two passes, as the cpu), or k dy (eval) */
__global__ static void bn_bwd_k(float *dx, float *dw, float *db, const float *dy, const float *x,
                                const float *mean, const float *rstd, const float *w, int C,
                                int HW, size_t cnt, int train)
{
    int c = blockIdx.x;
    float m = mean[c], r = rstd[c], kk = (w ? w[c] : 1.0f) * r;
    double a = 0, bb = 0;
    CHANNEL_LOOP(k) {
        a += dy[k];
        bb += (double)dy[k] * ((x[k] - m) * r);
    }
    double sg = avs_k_block_sum(a), sgx = avs_k_block_sum(bb);
    if (threadIdx.x == 0) {
        if (dw)
            dw[c] += (float)sgx;
        if (db)
            db[c] += (float)sg;
    }
    if (!dx)
        return;
    float a1 = (float)(sg / (double)cnt), a2 = (float)(sgx / (double)cnt), corr = 0;
    if (train) {
        double s = 0;
        CHANNEL_LOOP(k) s += kk * (dy[k] - a1 - (x[k] - m) * r * a2);
        corr = (float)(avs_k_block_sum(s) / (double)cnt);
        CHANNEL_LOOP(k) dx[k] += kk * (dy[k] - a1 - (x[k] - m) * r * a2) - corr;
    } else {
        CHANNEL_LOOP(k) dx[k] += kk * dy[k];
    }
}

void avs_cu_batchnorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *mean, const float *rstd, const float *w, int N, int C,
                          int HW, int train)
{
    if (C <= 0)
        return;
    bn_bwd_k<<<(unsigned)C, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(dx, dw, db, dy, x, mean, rstd, w,
                                                                C, HW, (size_t)N * HW, train);
    AVS_CU_LAUNCHED("batchnorm_bwd", "N=%d C=%d HW=%d", N, C, HW);
}
