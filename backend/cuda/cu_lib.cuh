/* backend/cuda/cu_lib.cuh: the library side of the CUDA context (ctx.cu) for mem.cu, blas.cu
 * and conv.cu: cuBLAS and cuDNN handles bound to the compute stream, the copy stream, staged
 * transfers through pinned host buffers, the memory pool, and status checks for cuBLAS and
 * cuDNN that name the op and the shape (as AVS_CU_CHECK does for the runtime).
 */
#ifndef AVS_BACKEND_CUDA_CU_LIB_CUH
#define AVS_BACKEND_CUDA_CU_LIB_CUH

#include <cublas_v2.h>
#include <cudnn.h>

#include "backend/cuda/cu_common.cuh"
#include "backend/cuda/cuda_ctx.h"

cublasHandle_t avs_cu_blas(void);
cudnnHandle_t avs_cu_dnn(void);
/* n bytes from the pool (stream-ordered on the compute stream; NULL when out of memory) */
void *avs_cu_pool_alloc(size_t bytes);
void avs_cu_pool_free(void *p);
/* host <-> device through the pinned staging buffers on the copy stream, ordered with the
 * compute stream both ways. upload returns once the host memory may be reused; download once
 * the host memory holds the data. */
void avs_cu_staged_upload(void *dev, const void *host, size_t bytes);
void avs_cu_staged_download(void *host, const void *dev, size_t bytes);
const char *avs_cu_blas_str(cublasStatus_t s);

#define AVS_CUBLAS_CHECK(call, op, ...)                                                           \
    do {                                                                                          \
        cublasStatus_t avs_cu_s_ = (call);                                                        \
        if (avs_cu_s_ != CUBLAS_STATUS_SUCCESS)                                                   \
            avs_cu_die(op, avs_cu_blas_str(avs_cu_s_), __VA_ARGS__);                              \
    } while (0)
#define AVS_CUDNN_CHECK(call, op, ...)                                                            \
    do {                                                                                          \
        cudnnStatus_t avs_cu_s_ = (call);                                                         \
        if (avs_cu_s_ != CUDNN_STATUS_SUCCESS)                                                    \
            avs_cu_die(op, cudnnGetErrorString(avs_cu_s_), __VA_ARGS__);                          \
    } while (0)

#endif
