/* backend/cuda/mem.cu: the CUDA table's memory operations and settings (backend/ops.h).
 * Allocations come from the context's pool (ctx.cu), stream-ordered on the compute stream;
 * transfers go through its pinned staging buffers on the copy stream. */
#include <cstdio>
#include <cstring>

#include "backend/cuda/cu_lib.cuh"

void *avs_cu_alloc(size_t bytes, int zero)
{
    void *p = avs_cu_pool_alloc(bytes);
    if (p && zero)
        AVS_CU_CHECK(cudaMemsetAsync(p, 0, bytes, avs_cu_stream()), "alloc", "%zu bytes", bytes);
    return p;
}

void avs_cu_free(void *p)
{
    avs_cu_pool_free(p);
}

void avs_cu_zero(float *p, size_t n)
{
    if (n)
        AVS_CU_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), avs_cu_stream()), "zero", "n=%zu", n);
}

void avs_cu_upload(void *dev, const void *host, size_t bytes)
{
    if (bytes)
        avs_cu_staged_upload(dev, host, bytes);
}

void avs_cu_download(void *host, const void *dev, size_t bytes)
{
    if (bytes)
        avs_cu_staged_download(host, dev, bytes);
}

/* memmove on the device: overlapping ranges are copied in pieces no longer than their
 * distance (each piece's source is then untouched by the pieces before it), or, when that
 * distance is short, through a buffer from the pool. */
static void copy_overlapping(char *dst, const char *src, size_t bytes)
{
    size_t d = dst > src ? (size_t)(dst - src) : (size_t)(src - dst);
    cudaStream_t s = avs_cu_stream();
    if (d * 64 < bytes) {
        void *tmp = avs_cu_pool_alloc(bytes);
        if (!tmp)
            avs_cu_die("copy", "out of device memory for an overlapping copy", "%zu bytes", bytes);
        AVS_CU_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, s), "copy",
                     "%zu bytes", bytes);
        AVS_CU_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, s), "copy",
                     "%zu bytes", bytes);
        avs_cu_pool_free(tmp);
        return;
    }
    for (size_t k = 0; k < bytes; k += d) {
        size_t n = bytes - k < d ? bytes - k : d;
        /* dst below src: front to back; above: back to front */
        size_t off = dst < src ? k : bytes - k - n;
        AVS_CU_CHECK(cudaMemcpyAsync(dst + off, src + off, n, cudaMemcpyDeviceToDevice, s), "copy",
                     "%zu bytes", bytes);
    }
}

void avs_cu_copy(void *dst, const void *src, size_t bytes)
{
    if (!bytes || dst == src)
        return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d < s + bytes && s < d + bytes) {
        copy_overlapping((char *)dst, s, bytes);
        return;
    }
    AVS_CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, avs_cu_stream()),
                 "copy", "%zu bytes", bytes);
}

__global__ void fill_kernel(float *y, float v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = v;
}

void avs_cu_fill(float *y, float v, size_t n)
{
    if (!n)
        return;
    fill_kernel<<<avs_cu_grid(n), AVS_CU_BLOCK, 0, avs_cu_stream()>>>(y, v, n);
    AVS_CU_LAUNCHED("fill", "n=%zu", n);
}

void avs_cu_sync(void)
{
    AVS_CU_CHECK(cudaStreamSynchronize(avs_cu_stream()), "sync", "-");
}

/* What changes the bits: the GPU model and the math (ref: cuBLAS and cuDNN reproducibility
 * notes: same architecture and SM count, same library versions). */
const char *avs_cu_settings(void)
{
    static char buf[320];
    snprintf(buf, sizeof buf, "%s %s", avs_cu_device_name(),
             avs_precision_name(avs_cu_precision()));
    return buf;
}
