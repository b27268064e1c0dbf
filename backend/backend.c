/* backend/backend.c: the registry of backends and the device-memory helpers (backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#ifdef AVS_USE_CUDA
#include "backend/cuda/cuda_ctx.h"
#endif

static const struct avs_ops *active;
static enum avs_precision precision = AVS_PRECISION_FP32;

/* The CUDA table when this build has it and a GPU is present (asked once), else NULL; why:
 * the runtime's reason when there is none. */
static const struct avs_ops *cuda_table(const char **why)
{
#ifdef AVS_USE_CUDA
    static int count = -1;
    static char reason[256];
    if (count < 0)
        count = avs_cu_device_count(reason, sizeof reason);
    if (why)
        *why = reason;
    return count > 0 ? avs_backend_cuda() : NULL;
#else
    if (why)
        *why = "this build has no CUDA backend";
    return NULL;
#endif
}

/* The registered backends, in the order --help lists them (cuda only while a GPU is there). */
static const struct avs_ops *registered(int i)
{
    switch (i) {
    case 0:
        return avs_backend_cpu();
    case 1:
        return avs_backend_guard();
    case 2:
        return cuda_table(NULL);
    default:
        return NULL;
    }
}

const struct avs_ops *avs_backend_at(int i)
{
    return i < 0 ? NULL : registered(i);
}

const struct avs_ops *avs_backend_find(const char *name)
{
    for (int i = 0; registered(i); i++)
        if (!strcmp(registered(i)->name, name))
            return registered(i);
    return NULL;
}

const char *avs_backend_names(char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; registered(i) && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", registered(i)->name);
    return buf;
}

static int is_cuda_name(const char *name)
{
    return !strcmp(name, "cuda") || !strncmp(name, "cuda:", 5);
}

#ifdef AVS_USE_CUDA
/* "cuda" or "cuda:N": the device index, or -1 for a malformed name. */
static int cuda_index(const char *name)
{
    if (!name[4])
        return 0;
    char *end;
    long n = strtol(name + 5, &end, 10);
    return name[5] && !*end && n >= 0 && n < 1024 ? (int)n : -1;
}
#endif

static int use_cuda(const char *name, struct avs_err *err)
{
#ifdef AVS_USE_CUDA
    const char *why;
    int dev = cuda_index(name);
    if (dev < 0)
        return avs_err_set(err, "--device %s: expected cuda or cuda:N (N: a device index, e.g. "
                           "cuda:0)", name);
    if (!cuda_table(&why))
        return avs_err_set(err, "--device %s: no CUDA device found (%s); use --device cpu", name,
                           why);
    char msg[512];
    if (avs_cu_open(dev, msg, sizeof msg))
        return avs_err_set(err, "--device %s: %s", name, msg);
    active = avs_backend_cuda();
    return 0;
#else
    char names[128];
    return avs_err_set(err, "--device %s: this build has no CUDA backend (build with make "
                       "CUDA=1 on a machine with nvcc; available: %s)", name,
                       avs_backend_names(names, sizeof names));
#endif
}

int avs_backend_use(const char *name, struct avs_err *err)
{
    if (is_cuda_name(name))
        return use_cuda(name, err);
    const struct avs_ops *be = avs_backend_find(name);
    if (!be) {
        char names[128];
        return avs_err_set(err, "--device %s: no such backend (available: %s)", name,
                           avs_backend_names(names, sizeof names));
    }
    active = be;
    return 0;
}

const char *avs_backend_default(void)
{
    return cuda_table(NULL) ? "cuda:0" : "cpu";
}

const char *avs_precision_name(enum avs_precision p)
{
    return p == AVS_PRECISION_TF32 ? "tf32" : p == AVS_PRECISION_BF16 ? "bf16" : "fp32";
}

enum avs_precision avs_backend_precision(void)
{
    return precision;
}

int avs_backend_set_precision(const char *name, struct avs_err *err)
{
    const char *be = avs_ops()->name;
    if (!name || !strcmp(name, "fp32"))
        precision = AVS_PRECISION_FP32;
    else if (strcmp(name, "tf32") && strcmp(name, "bf16"))
        return avs_err_set(err, "--precision %s: expected fp32, tf32 or bf16", name);
    else if (strcmp(be, "cuda"))
        return avs_err_set(err, "--precision %s: the %s backend computes in fp32 only (tf32 "
                           "needs --device cuda)", name, be);
    else if (!strcmp(name, "bf16"))
        return avs_err_set(err, "--precision bf16: not implemented yet on the cuda backend; "
                           "--precision tf32 is available (or fp32, the default)");
    else
        precision = AVS_PRECISION_TF32;
#ifdef AVS_USE_CUDA
    if (!strcmp(be, "cuda"))
        avs_cu_set_precision(precision);
#endif
    return 0;
}

int avs_backend_setup(const char *prog, const char *device, const char *precision_name,
                      int threads, int quiet, struct avs_err *err)
{
    if (avs_backend_use(device ? device : avs_backend_default(), err) ||
        avs_backend_set_precision(precision_name, err))
        return -1;
    avs_ops_set_threads(threads);
    if (!quiet)
        fprintf(stderr, "%s: device %s\n", prog, avs_ops_device());
    return 0;
}

void avs_backend_set(const struct avs_ops *be)
{
    AVS_ASSERT(be);
    active = be;
}

const struct avs_ops *avs_ops(void)
{
    return avs_ops_profiled(active ? active : avs_backend_cpu());
}

size_t avs_conv2d_ws(const struct avs_conv2d *g)
{
    return avs_ops()->conv2d_ws(g);
}

size_t avs_tapconv_ws(const struct avs_tapconv *g)
{
    return avs_ops()->tapconv_ws(g);
}

/* The active backend's name as a device: "cuda:0" for the CUDA table (its device index). */
static const char *device_name(char *buf, size_t len)
{
    const char *name = avs_ops()->name;
#ifdef AVS_USE_CUDA
    if (!strcmp(name, "cuda")) {
        int dev = avs_cu_device_index();
        snprintf(buf, len, "cuda:%d", dev < 0 ? 0 : dev);
        return buf;
    }
#endif
    snprintf(buf, len, "%s", name);
    return buf;
}

const char *avs_ops_device(void)
{
    static char buf[256];
    char name[32];
    const char *s = avs_ops()->settings ? avs_ops()->settings() : "";
    snprintf(buf, sizeof buf, "%s%s%s", device_name(name, sizeof name), *s ? " " : "", s);
    return buf;
}

/* ---- device memory ---- */

float *avs_dev_alloc(size_t n, const char *what)
{
    size_t bytes;
    AVS_ASSERT(avs_size_mul(n ? n : 1, sizeof(float), &bytes) == 0);
    float *p = avs_ops()->alloc(bytes, 1);
    if (!p) {
        avs_log_error("out of memory: %zu MB for %s on the %s backend", bytes >> 20, what,
                      avs_ops()->name);
        abort();
    }
    return p;
}

void avs_dev_free(float **p)
{
    if (*p)
        avs_ops()->free(*p);
    *p = NULL;
}

void avs_dev_upload(float *dev, const float *host, size_t n)
{
    if (n)
        avs_ops()->upload(dev, host, n * sizeof(float));
}

void avs_dev_download(float *host, const float *dev, size_t n)
{
    if (n)
        avs_ops()->download(host, dev, n * sizeof(float));
}

float *avs_dev_from_host(const float *host, size_t n)
{
    float *d = avs_dev_alloc(n, "a tensor");
    avs_dev_upload(d, host, n);
    return d;
}

float *avs_host_from_dev(const float *dev, size_t n)
{
    float *h = avs_malloc((n ? n : 1) * sizeof(float));
    avs_dev_download(h, dev, n);
    return h;
}
