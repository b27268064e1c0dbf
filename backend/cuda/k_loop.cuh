/* backend/cuda/k_loop.cuh: the grid-stride loop and launch check of the element-wise kernels
 * of backend/cuda/k_*.cu (CUDA C++ only).
 *
 *   __global__ void k(float *y, size_t n) { AVS_K_FOR(i, n) y[i] = 0; }
 *   AVS_K_GO(k, n)(y, n);                         avs_cu_grid(n) blocks on the compute stream
 *   AVS_CU_LAUNCHED("op", "n=%zu", n);            the launch's status (names op and shape)
 */
#ifndef AVS_BACKEND_CUDA_K_LOOP_CUH
#define AVS_BACKEND_CUDA_K_LOOP_CUH

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/k_math.h"

#define AVS_K_FOR(i, n)                                                                         \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)(n);            \
         i += (size_t)gridDim.x * blockDim.x)

/* kernel<<<blocks for n elements, AVS_CU_BLOCK threads, on the compute stream>>> */
#define AVS_K_GO(kernel, n) kernel<<<avs_cu_grid((size_t)(n)), AVS_CU_BLOCK, 0, avs_cu_stream()>>>

#endif
