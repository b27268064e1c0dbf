/* backend/cuda/k_loop.cuh: the grid-stride loop and launch check of the element-wise kernels
 * of backend/cuda/k_*.cu (CUDA C++ only).
 *
 *   __global__ void k(float *y, size_t n) { AVS_K_FOR(i, n) y[i] = 0; }
 *   AVS_K_GO(k, n)(y, n);                         avs_cu_grid(n) blocks on the compute stream
 *   AVS_K_GO_IDX(k2, n, y, n);                    k2<unsigned> or k2<size_t> (index type by n)
 *   AVS_CU_LAUNCHED("op", "n=%zu", n);            the launch's status (names op and shape)
 */
#ifndef AVS_BACKEND_CUDA_K_LOOP_CUH
#define AVS_BACKEND_CUDA_K_LOOP_CUH

#include <limits.h>

/* backend/ops.h declares struct avs_ops and a function avs_ops(): legal C, but C++'s -Wshadow
 * flags it; the Makefile may give nvcc's host compiler -Wshadow */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include "backend/cuda/cu_common.cuh"
#pragma GCC diagnostic pop
#include "backend/cuda/k_math.h"

#define AVS_K_FOR(i, n)                                                                         \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)(n);            \
         i += (size_t)gridDim.x * blockDim.x)

/* The loop in index type I (unsigned where n <= INT_MAX: no overflow of i + stride) */
#define AVS_K_FOR_T(I, i, n)                                                                    \
    for (I i = (I)(blockIdx.x * blockDim.x + threadIdx.x); i < (I)(n);                         \
         i += (I)gridDim.x * blockDim.x)

/* kernel<unsigned> when n fits 32-bit index arithmetic, else kernel<size_t>; the kernel takes
 * its sizes as size_t / int and does its index arithmetic in I */
#define AVS_K_GO_IDX(kernel, n, ...)                                                            \
    do {                                                                                        \
        if ((size_t)(n) <= (size_t)INT_MAX)                                                     \
            AVS_K_GO(kernel<unsigned>, n)(__VA_ARGS__);                                         \
        else                                                                                    \
            AVS_K_GO(kernel<size_t>, n)(__VA_ARGS__);                                           \
    } while (0)

/* avs_k_bc_index in I */
template <class I> static __device__ __forceinline__ I avs_k_bc_at(const struct avs_bcast &bc, I i)
{
    if (sizeof(I) == 4)
        return (I)avs_k_bc_index32(&bc, (unsigned)i);
    return (I)avs_k_bc_index(&bc, (size_t)i);
}

/* kernel<<<blocks for n elements, AVS_CU_BLOCK threads, on the compute stream>>> */
#define AVS_K_GO(kernel, n) kernel<<<avs_cu_grid((size_t)(n)), AVS_CU_BLOCK, 0, avs_cu_stream()>>>

#endif
