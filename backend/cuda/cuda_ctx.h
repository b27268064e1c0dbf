/* backend/cuda/cuda_ctx.h: the CUDA backend's context as plain C (ctx.cu): which device, how
 * it computes, how much memory it holds. backend/backend.c, backend/cuda/ops_cuda.c and the
 * GPU tests include it; no CUDA type appears here.
 *
 *   char why[256];
 *   if (avs_cu_device_count(why, sizeof why) == 0) ...   no device: why says what the driver said
 *   if (avs_cu_open(0, why, sizeof why)) ...              device 0: streams, cuBLAS, cuDNN, pool
 *   avs_cu_set_precision(AVS_PRECISION_TF32);             tensor-op math from the next op on
 *
 * The context is made once per process, on one device: opening another device after the first
 * is an error (one process, one GPU). Every op opens device 0 if nothing was opened yet (the
 * op tests set the table directly).
 */
#ifndef AVS_BACKEND_CUDA_CTX_H
#define AVS_BACKEND_CUDA_CTX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "backend/backend.h"

/* CUDA devices this process sees; 0 with the runtime's reason in why (no driver, no device). */
int avs_cu_device_count(char *why, size_t len);
/* Make the context on device dev: -1 with a message naming the devices present. */
int avs_cu_open(int dev, char *err, size_t len);
/* The device in use (-1 before open) and its name ("NVIDIA H200"). */
int avs_cu_device_index(void);
const char *avs_cu_device_name(void);
/* How GEMMs and convolutions compute (enum avs_precision, backend/backend.h): fp32 (FMA math,
 * no TF32) or tf32 (tensor-op math). bf16 is refused by backend.c before it comes here. */
void avs_cu_set_precision(enum avs_precision p);
enum avs_precision avs_cu_precision(void);
/* cudaMemGetInfo of the device (0), and the bytes the memory pool holds from the driver. */
int avs_cu_mem_info(size_t *free_bytes, size_t *total_bytes);
size_t avs_cu_pool_reserved(void);

/* The table (ops_cuda.c). */
const struct avs_ops *avs_backend_cuda(void);

#ifdef __cplusplus
}
#endif
#endif
