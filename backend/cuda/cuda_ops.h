/* backend/cuda/cuda_ops.h: the CUDA backend's primitives, one C function per member of struct
 * avs_ops (backend/ops.h), named avs_cu_<member> with the member's exact signature. Plain C:
 * no CUDA type appears here, so backend/cuda/ops_cuda.c (the table) and tests include it.
 *
 * Where each lives:
 *   ctx.cu      device choice, the stream, library handles, memory pools, errors (cu_common.cuh)
 *   mem.cu      alloc/free/zero/upload/download/copy/fill/sync/settings
 *   blas.cu     gemm (cuBLAS)
 *   conv.cu     conv2d_* (cuDNN), tapconv_* (gather + cuBLAS), conv2d_ws / tapconv_ws
 *   k_*.cu      every other primitive: own kernels (elementwise, norms, softmax, resize, ...)
 * Every primitive is enqueued on the one compute stream and returns at once (no sync inside)
 * except the losses, which return the loss value (they wait for it).
 *
 * Determinism: the same inputs on the same GPU model give the same bits. Reductions run in a
 * fixed order (a fixed block/thread split that depends on the shape only, then a fixed tree);
 * no atomicAdd on floats; cuDNN/cuBLAS in their deterministic modes.
 */
#ifndef AVS_BACKEND_CUDA_OPS_H
#define AVS_BACKEND_CUDA_OPS_H

#include "backend/ops.h"
#include "backend/ops_list.h"

#ifdef __cplusplus
extern "C" {
#endif

/* memory and settings (mem.cu) */
void *avs_cu_alloc(size_t bytes, int zero);
void avs_cu_free(void *p);
void avs_cu_zero(float *p, size_t n);
void avs_cu_upload(void *dev, const void *host, size_t bytes);
void avs_cu_download(void *host, const void *dev, size_t bytes);
void avs_cu_copy(void *dst, const void *src, size_t bytes);
void avs_cu_fill(float *y, float v, size_t n);
void avs_cu_sync(void);
const char *avs_cu_settings(void);
size_t avs_cu_conv2d_ws(const struct avs_conv2d *g);
size_t avs_cu_tapconv_ws(const struct avs_tapconv *g);

/* every primitive */
#define AVS_CU_DECL_VOID(name, params, args, ptrs) void avs_cu_##name params;
#define AVS_CU_DECL_DOUBLE(name, params, args, ptrs) double avs_cu_##name params;
AVS_OPS_VOID(AVS_CU_DECL_VOID)
AVS_OPS_DOUBLE(AVS_CU_DECL_DOUBLE)
#undef AVS_CU_DECL_VOID
#undef AVS_CU_DECL_DOUBLE

#ifdef __cplusplus
}
#endif
#endif
