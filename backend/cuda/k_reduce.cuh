/* backend/cuda/k_reduce.cuh: the deterministic sums the kernels share (CUDA C++, included by
 * backend/cuda/k_*.cu only). No float atomics anywhere: every sum has a split that depends on
 * the shape alone and a fixed tree, so the same inputs give the same bits on the same GPU.
 *
 *   plane sum: out[c] = sum over n, i of load((n*C + c)*HW + i) for a view [N,C,HW]
 *              (channel sums, row sums with N = 1): a block per (c, split), a strided loop in
 *              double per thread, a shared-memory tree; splits summed in order by a second pass.
 *   column sum: out[b*K + k] = sum over r of load((b*R + r)*K + k) for a view [Nb,R,K]
 *              (bias gradients, token means, channel means): a thread per (b, k, split)
 *              summing its rows in order in double (coalesced along k); splits in order.
 * load(idx) returns the double to add; fin(j, sum) writes result j. Partials of split sums
 * live in a static device buffer of this translation unit (no allocation per call; one stream
 * runs one op at a time).
 */
#ifndef AVS_BACKEND_CUDA_K_REDUCE_CUH
#define AVS_BACKEND_CUDA_K_REDUCE_CUH

#include "backend/cuda/k_loop.cuh"

static __device__ double avs_k_part[AVS_K_PART_CAP];

/* The sum of v over the block's AVS_CU_BLOCK threads, in a fixed tree (warp shuffles, then the
 * warps' sums through shared memory); the result is valid in every thread. */
static __device__ __forceinline__ double avs_k_block_sum(double v)
{
    __shared__ double sh[AVS_CU_BLOCK / 32];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < AVS_CU_BLOCK / 32 ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0)
            sh[0] = v;
    }
    __syncthreads();
    return sh[0];
}

/* The sum of v over a warp (fixed shuffle tree), valid in every lane. */
static __device__ __forceinline__ double avs_k_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float avs_k_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) {
        float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = u > v ? u : v;
    }
    return v;
}

template <class L, class F>
__global__ void avs_k_plane_sum_kernel(int N, int C, int HW, int S, L load, F fin)
{
    int c = blockIdx.x, s = blockIdx.y;
    size_t r0, r1;
    avs_k_chunk((size_t)N * HW, S, s, &r0, &r1);
    double v = 0;
    for (size_t r = r0 + threadIdx.x; r < r1; r += AVS_CU_BLOCK) {
        size_t n = r / HW, i = r % HW;
        v += load((n * C + c) * HW + i);
    }
    v = avs_k_block_sum(v);
    if (threadIdx.x == 0) {
        if (S == 1)
            fin((size_t)c, v);
        else
            avs_k_part[(size_t)s * C + c] = v;
    }
}

/* out j of `outs`: its S partials (stride outs) in split order */
template <class F> __global__ void avs_k_part_finish(size_t outs, int S, F fin)
{
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < outs;
         j += (size_t)gridDim.x * blockDim.x) {
        double v = 0;
        for (int s = 0; s < S; s++)
            v += avs_k_part[(size_t)s * outs + j];
        fin(j, v);
    }
}

template <class L, class F>
static void avs_k_plane_sum(int N, int C, int HW, L load, F fin, const char *op)
{
    if (C <= 0)
        return;
    int S = avs_k_plane_splits(N, C, HW);
    dim3 grid((unsigned)C, (unsigned)S);
    avs_k_plane_sum_kernel<<<grid, AVS_CU_BLOCK, 0, avs_cu_stream()>>>(N, C, HW, S, load, fin);
    AVS_CU_LAUNCHED(op, "N=%d C=%d HW=%d", N, C, HW);
    if (S > 1) {
        avs_k_part_finish<<<avs_cu_grid((size_t)C), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
            (size_t)C, S, fin);
        AVS_CU_LAUNCHED(op, "N=%d C=%d HW=%d (finish)", N, C, HW);
    }
}

template <class L, class F>
__global__ void avs_k_col_sum_kernel(int Nb, int R, int K, int S, L load, F fin)
{
    size_t outs = (size_t)Nb * K, tot = outs * S;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < tot;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t j = t % outs, b = j / K, k = j % K, r0, r1;
        int s = (int)(t / outs);
        avs_k_chunk((size_t)R, S, s, &r0, &r1);
        double v = 0;
        for (size_t r = r0; r < r1; r++)
            v += load((b * R + r) * K + k);
        if (S == 1)
            fin(j, v);
        else
            avs_k_part[(size_t)s * outs + j] = v;
    }
}

template <class L, class F>
static void avs_k_col_sum(int Nb, int R, int K, L load, F fin, const char *op)
{
    size_t outs = (size_t)Nb * K;
    if (outs == 0)
        return;
    int S = avs_k_col_splits(Nb, R, K);
    avs_k_col_sum_kernel<<<avs_cu_grid(outs * S), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(
        Nb, R, K, S, load, fin);
    AVS_CU_LAUNCHED(op, "Nb=%d R=%d K=%d", Nb, R, K);
    if (S > 1) {
        avs_k_part_finish<<<avs_cu_grid(outs), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(outs, S, fin);
        AVS_CU_LAUNCHED(op, "Nb=%d R=%d K=%d (finish)", Nb, R, K);
    }
}

/* ---- loads and finishes the sums share ---- */

struct avs_k_ld1 { /* x[i] */
    const float *x;
    __device__ double operator()(size_t i) const { return x[i]; }
};

struct avs_k_ld2 { /* a[i] * b[i] in double */
    const float *a, *b;
    __device__ double operator()(size_t i) const { return (double)a[i] * b[i]; }
};

struct avs_k_fin_add { /* out[j] += (float)s */
    float *out;
    __device__ void operator()(size_t j, double s) const { out[j] += (float)s; }
};

struct avs_k_fin_mean { /* out[j] = (float)(s / n) */
    float *out;
    int n;
    __device__ void operator()(size_t j, double s) const { out[j] = (float)(s / n); }
};

#endif
