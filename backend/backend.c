/* backend/backend.c: the registry of backends and the device-memory helpers (backend.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

static const struct avs_ops *active;

/* The registered backends, in the order --help lists them. */
static const struct avs_ops *registered(int i)
{
    switch (i) {
    case 0:
        return avs_backend_cpu();
    case 1:
        return avs_backend_guard();
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

int avs_backend_use(const char *name, struct avs_err *err)
{
    const struct avs_ops *be = avs_backend_find(name);
    if (!be) {
        char names[128];
        if (!strcmp(name, "cuda") || !strncmp(name, "cuda:", 5))
            return avs_err_set(err, "--device %s: this build has no CUDA backend (build with make "
                               "CUDA=1 on a machine with nvcc; available: %s)", name,
                               avs_backend_names(names, sizeof names));
        return avs_err_set(err, "--device %s: no such backend (available: %s)", name,
                           avs_backend_names(names, sizeof names));
    }
    active = be;
    return 0;
}

int avs_backend_setup(const char *device, int threads, struct avs_err *err)
{
    if (avs_backend_use(device ? device : "cpu", err))
        return -1;
    avs_ops_set_threads(threads);
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

const char *avs_ops_device(void)
{
    static char buf[160];
    const char *s = avs_ops()->settings ? avs_ops()->settings() : "";
    snprintf(buf, sizeof buf, "%s%s%s", avs_ops()->name, *s ? " " : "", s);
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
