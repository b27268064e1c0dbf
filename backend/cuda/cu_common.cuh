/* backend/cuda/cu_common.cuh: what every .cu file of the CUDA backend shares (CUDA C++ only;
 * never included from .c files). Implemented in ctx.cu.
 *
 *   my_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(...);
 *   AVS_CU_LAUNCHED("relu_fwd", "n=%zu", n);          checks the launch, names op and shape
 *   AVS_CU_CHECK(cudaMemcpyAsync(...), "upload", "%zu bytes", bytes);
 *
 * A failed CUDA/cuDNN/cuBLAS call is a bug or a dead device: the process ends with a message
 * naming the op, the shape and the library's own error string (avs_cu_die).
 */
#ifndef AVS_BACKEND_CUDA_CU_COMMON_CUH
#define AVS_BACKEND_CUDA_CU_COMMON_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "backend/cuda/cuda_ops.h"

#define AVS_CU_BLOCK 256

/* The one compute stream every primitive runs on. */
cudaStream_t avs_cu_stream(void);
/* Blocks for n elements at AVS_CU_BLOCK threads (grid-stride loops cover the rest). */
unsigned avs_cu_grid(size_t n);
/* Ends the process: "avs cuda: <op> (<shape>): <what>". Never returns. */
[[noreturn]] void avs_cu_die(const char *op, const char *what, const char *shape_fmt, ...);

#define AVS_CU_CHECK(call, op, ...)                                                               \
    do {                                                                                          \
        cudaError_t avs_cu_e_ = (call);                                                           \
        if (avs_cu_e_ != cudaSuccess)                                                             \
            avs_cu_die(op, cudaGetErrorString(avs_cu_e_), __VA_ARGS__);                           \
    } while (0)
#define AVS_CU_LAUNCHED(op, ...) AVS_CU_CHECK(cudaGetLastError(), op, __VA_ARGS__)

#endif
