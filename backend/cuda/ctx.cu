/* backend/cuda/ctx.cu: the CUDA backend's context (cu_common.cuh, cu_lib.cuh, cuda_ctx.h).
 *
 * One per process, on one device, made by avs_cu_open or by the first op:
 *   compute stream   every primitive, allocation (stream-ordered) and device copy
 *   copy stream      host <-> device transfers through two pinned staging buffers, ordered
 *                    with the compute stream by events both ways (double-buffered: the host
 *                    fills one buffer while the other one is in flight)
 *   memory pool      cudaMallocFromPoolAsync with a release threshold of "never", so freed
 *                    memory stays in the pool and an arena made again in a later step reuses
 *                    it: no cudaMalloc/cudaFree reaches the driver once a step's set is known
 *   cuBLAS, cuDNN    handles bound to the compute stream; cuBLAS has a fixed workspace (its
 *                    results are then the same on every run: cuBLAS's reproducibility notes)
 * Precision: fp32 (default) keeps cuBLAS off TF32 (CUBLAS_DEFAULT_MATH with reduced-precision
 * reductions disallowed) and cuDNN on FMA math (conv.cu); tf32 turns on tensor-op math.
 */
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/cu_lib.cuh"

#define STAGE_BYTES ((size_t)8 << 20)
#define BLAS_WS_BYTES ((size_t)32 << 20)

static struct {
    int dev; /* -1: not open */
    char name[256];
    int sms;
    cudaStream_t compute, copy;
    cudaEvent_t compute_done, copy_done, slot_free[2];
    void *slot[2]; /* pinned, STAGE_BYTES each */
    cudaMemPool_t pool;
    cublasHandle_t blas;
    void *blas_ws;
    cudnnHandle_t dnn;
    enum avs_precision prec;
} ctx = {-1, "", 0, 0, 0, 0, 0, {0, 0}, {0, 0}, 0, 0, 0, 0, AVS_PRECISION_FP32};

/* the device this host thread has made current (cudaSetDevice is per thread) */
static thread_local int bound = -1;

void avs_cu_die(const char *op, const char *what, const char *shape_fmt, ...)
{
    char shape[512];
    va_list ap;
    va_start(ap, shape_fmt);
    vsnprintf(shape, sizeof shape, shape_fmt, ap);
    va_end(ap);
    fprintf(stderr, "avs cuda: %s (%s): %s\n", op, shape, what);
    fflush(stderr);
    abort();
}

const char *avs_cu_blas_str(cublasStatus_t s)
{
    const char *name = cublasGetStatusName(s), *text = cublasGetStatusString(s);
    static thread_local char buf[256];
    snprintf(buf, sizeof buf, "%s: %s", name ? name : "cuBLAS error", text ? text : "");
    return buf;
}

int avs_cu_device_count(char *why, size_t len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, len, "cudaGetDeviceCount: %s%s", cudaGetErrorString(e),
                 e == cudaErrorInsufficientDriver ? ": no NVIDIA driver is loaded, or an older one "
                                                    "than this CUDA runtime needs" : "");
        cudaGetLastError();
        return 0;
    }
    if (n == 0)
        snprintf(why, len, "the CUDA driver reports no device");
    return n;
}

/* Each step of making the context: a failed one leaves its message in err. */
#define OPEN_STEP(call, what)                                                                     \
    do {                                                                                          \
        if ((call)) {                                                                             \
            snprintf(err, len, "cuda:%d: %s failed", dev, what);                                 \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)
#define OPEN_CUDA(call, what)                                                                     \
    do {                                                                                          \
        cudaError_t e_ = (call);                                                                  \
        if (e_ != cudaSuccess) {                                                                  \
            snprintf(err, len, "cuda:%d: %s: %s", dev, what, cudaGetErrorString(e_));           \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

static int open_memory(int dev, char *err, size_t len)
{
    cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    OPEN_CUDA(cudaMemPoolCreate(&ctx.pool, &props), "cudaMemPoolCreate");
    uint64_t never = UINT64_MAX;
    OPEN_CUDA(cudaMemPoolSetAttribute(ctx.pool, cudaMemPoolAttrReleaseThreshold, &never),
              "cudaMemPoolSetAttribute(release threshold)");
    for (int i = 0; i < 2; i++) {
        OPEN_CUDA(cudaHostAlloc(&ctx.slot[i], STAGE_BYTES, cudaHostAllocDefault),
                  "cudaHostAlloc (pinned staging buffer)");
        OPEN_CUDA(cudaEventCreateWithFlags(&ctx.slot_free[i], cudaEventDisableTiming),
                  "cudaEventCreate");
    }
    return 0;
}

static int open_libraries(int dev, char *err, size_t len)
{
    cublasStatus_t bs = cublasCreate(&ctx.blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, len, "cuda:%d: cublasCreate: %s", dev, avs_cu_blas_str(bs));
        return -1;
    }
    OPEN_CUDA(cudaMallocFromPoolAsync(&ctx.blas_ws, BLAS_WS_BYTES, ctx.pool, ctx.compute),
              "cuBLAS workspace");
    OPEN_STEP(cublasSetStream(ctx.blas, ctx.compute), "cublasSetStream");
    OPEN_STEP(cublasSetWorkspace(ctx.blas, ctx.blas_ws, BLAS_WS_BYTES), "cublasSetWorkspace");
    OPEN_STEP(cublasSetPointerMode(ctx.blas, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    cudnnStatus_t ds = cudnnCreate(&ctx.dnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        snprintf(err, len, "cuda:%d: cudnnCreate: %s (is cuDNN 9 on LD_LIBRARY_PATH?)", dev,
                 cudnnGetErrorString(ds));
        return -1;
    }
    OPEN_STEP(cudnnSetStream(ctx.dnn, ctx.compute), "cudnnSetStream");
    return 0;
}

static int open_device(int dev, char *err, size_t len)
{
    cudaDeviceProp prop;
    OPEN_CUDA(cudaSetDevice(dev), "cudaSetDevice");
    OPEN_CUDA(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
    snprintf(ctx.name, sizeof ctx.name, "%s", prop.name);
    ctx.sms = prop.multiProcessorCount;
    OPEN_CUDA(cudaStreamCreateWithFlags(&ctx.compute, cudaStreamNonBlocking), "cudaStreamCreate");
    OPEN_CUDA(cudaStreamCreateWithFlags(&ctx.copy, cudaStreamNonBlocking), "cudaStreamCreate");
    OPEN_CUDA(cudaEventCreateWithFlags(&ctx.compute_done, cudaEventDisableTiming), "cudaEventCreate");
    OPEN_CUDA(cudaEventCreateWithFlags(&ctx.copy_done, cudaEventDisableTiming), "cudaEventCreate");
    if (open_memory(dev, err, len) || open_libraries(dev, err, len))
        return -1;
    OPEN_CUDA(cudaStreamSynchronize(ctx.compute), "cudaStreamSynchronize");
    return 0;
}

/* AVS_CUDA_MEMSTATS=1: at exit, one line on stderr with what the pool holds and held at most
 * and what the device has in use (tests/test_cuda_train.sh: 200 steps hold no more than 20). */
static void print_memstats(void)
{
    uint64_t now = 0, high = 0;
    size_t free_b = 0, total_b = 0;
    if (ctx.dev < 0 ||
        cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &now) != cudaSuccess ||
        cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemHigh, &high) != cudaSuccess ||
        cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
        return;
    fprintf(stderr, "avs cuda memory: pool reserved %llu bytes, high %llu bytes; device used %zu "
            "of %zu bytes\n", (unsigned long long)now, (unsigned long long)high,
            total_b - free_b, total_b);
}

int avs_cu_open(int dev, char *err, size_t len)
{
    char why[256];
    int n = avs_cu_device_count(why, sizeof why);
    if (n == 0) {
        snprintf(err, len, "no CUDA device found (%s)", why);
        return -1;
    }
    if (dev < 0 || dev >= n) {
        snprintf(err, len, "no such device: this machine has %d CUDA device%s (cuda:0%s%.0d)", n,
                 n > 1 ? "s" : "", n > 1 ? " .. cuda:" : "", n > 1 ? n - 1 : 0);
        return -1;
    }
    if (ctx.dev >= 0) {
        if (ctx.dev == dev)
            return 0;
        snprintf(err, len, "this process already computes on cuda:%d (one device per process)",
                 ctx.dev);
        return -1;
    }
    if (open_device(dev, err, len))
        return -1;
    ctx.dev = bound = dev;
    avs_cu_set_precision(ctx.prec);
    const char *stats = getenv("AVS_CUDA_MEMSTATS");
    if (stats && *stats && strcmp(stats, "0"))
        atexit(print_memstats);
    return 0;
}

/* The context, made on device 0 if nothing opened it yet, current on this thread. */
static void ensure(void)
{
    if (ctx.dev < 0) {
        char err[512];
        if (avs_cu_open(0, err, sizeof err))
            avs_cu_die("open", err, "cuda:0");
    }
    if (bound != ctx.dev) {
        AVS_CU_CHECK(cudaSetDevice(ctx.dev), "cudaSetDevice", "cuda:%d", ctx.dev);
        bound = ctx.dev;
    }
}

int avs_cu_device_index(void) { return ctx.dev; }

const char *avs_cu_device_name(void)
{
    ensure();
    return ctx.name;
}

cudaStream_t avs_cu_stream(void)
{
    ensure();
    return ctx.compute;
}

unsigned avs_cu_grid(size_t n)
{
    ensure();
    size_t blocks = (n + AVS_CU_BLOCK - 1) / AVS_CU_BLOCK, cap = (size_t)ctx.sms * 32;
    return (unsigned)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

cublasHandle_t avs_cu_blas(void)
{
    ensure();
    return ctx.blas;
}

cudnnHandle_t avs_cu_dnn(void)
{
    ensure();
    return ctx.dnn;
}

void avs_cu_set_precision(enum avs_precision p)
{
    ctx.prec = p;
    if (ctx.dev < 0)
        return; /* applied at open */
    cublasMath_t m = p == AVS_PRECISION_TF32
                         ? CUBLAS_TF32_TENSOR_OP_MATH
                         : (cublasMath_t)(CUBLAS_DEFAULT_MATH |
                                          CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    AVS_CUBLAS_CHECK(cublasSetMathMode(ctx.blas, m), "cublasSetMathMode", "%s",
                     avs_precision_name(p));
}

enum avs_precision avs_cu_precision(void) { return ctx.prec; }

int avs_cu_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    ensure();
    return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess ? 0 : -1;
}

size_t avs_cu_pool_reserved(void)
{
    ensure();
    uint64_t v = 0;
    AVS_CU_CHECK(cudaMemPoolGetAttribute(ctx.pool, cudaMemPoolAttrReservedMemCurrent, &v),
                 "pool_reserved", "-");
    return (size_t)v;
}

/* ---- memory ---- */

void *avs_cu_pool_alloc(size_t bytes)
{
    ensure();
    void *p = NULL;
    cudaError_t e = cudaMallocFromPoolAsync(&p, bytes ? bytes : 1, ctx.pool, ctx.compute);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return NULL;
    }
    AVS_CU_CHECK(e, "alloc", "%zu bytes", bytes);
    return p;
}

void avs_cu_pool_free(void *p)
{
    if (!p)
        return;
    ensure();
    AVS_CU_CHECK(cudaFreeAsync(p, ctx.compute), "free", "%p", p);
}

/* The copy stream waits for what the compute stream has been given so far. */
static void copy_after_compute(void)
{
    AVS_CU_CHECK(cudaEventRecord(ctx.compute_done, ctx.compute), "transfer", "event");
    AVS_CU_CHECK(cudaStreamWaitEvent(ctx.copy, ctx.compute_done, 0), "transfer", "event");
}

void avs_cu_staged_upload(void *dev, const void *host, size_t bytes)
{
    ensure();
    copy_after_compute();
    for (size_t off = 0, k = 0; off < bytes; off += STAGE_BYTES, k ^= 1) {
        size_t n = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
        AVS_CU_CHECK(cudaEventSynchronize(ctx.slot_free[k]), "upload", "%zu bytes", bytes);
        memcpy(ctx.slot[k], (const char *)host + off, n);
        AVS_CU_CHECK(cudaMemcpyAsync((char *)dev + off, ctx.slot[k], n, cudaMemcpyHostToDevice,
                                     ctx.copy), "upload", "%zu bytes at %zu", n, off);
        AVS_CU_CHECK(cudaEventRecord(ctx.slot_free[k], ctx.copy), "upload", "event");
    }
    AVS_CU_CHECK(cudaEventRecord(ctx.copy_done, ctx.copy), "upload", "event");
    AVS_CU_CHECK(cudaStreamWaitEvent(ctx.compute, ctx.copy_done, 0), "upload", "event");
}

void avs_cu_staged_download(void *host, const void *dev, size_t bytes)
{
    ensure();
    copy_after_compute();
    size_t chunks = (bytes + STAGE_BYTES - 1) / STAGE_BYTES;
    /* chunk c goes to slot c % 2; chunk c+1 is in flight while chunk c is copied out */
    for (size_t c = 0; c <= chunks; c++) {
        if (c < chunks) {
            size_t off = c * STAGE_BYTES, n = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
            AVS_CU_CHECK(cudaMemcpyAsync(ctx.slot[c & 1], (const char *)dev + off, n,
                                         cudaMemcpyDeviceToHost, ctx.copy),
                         "download", "%zu bytes at %zu", n, off);
            AVS_CU_CHECK(cudaEventRecord(ctx.slot_free[c & 1], ctx.copy), "download", "event");
        }
        if (c > 0) {
            size_t p = c - 1, off = p * STAGE_BYTES;
            size_t n = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
            AVS_CU_CHECK(cudaEventSynchronize(ctx.slot_free[p & 1]), "download", "%zu bytes",
                         bytes);
            memcpy((char *)host + off, ctx.slot[p & 1], n);
        }
    }
}
