/* backend/guard.c: the "guard" backend, for tests. Its primitives are the CPU backend's, on
 * memory that the host cannot touch outside them:
 *
 *   alloc     mmap'd pages, PROT_NONE, recorded in a region table
 *   each op   checks that every tensor pointer it is given is guard memory (a host buffer
 *             passed to a primitive would work on the CPU and crash on a GPU), opens every
 *             region (PROT_READ|PROT_WRITE), runs the CPU op, closes them again
 *   upload/download/copy: the only doors between host and guard memory
 *
 * So layer code that dereferences a tensor, or hands a primitive host memory, fails at once
 * under the guard instead of silently computing on the host: what a CUDA table would do
 * later, caught on a machine without a GPU. Same arithmetic as "cpu": bit-identical results.
 * Single-threaded host use only (the ops themselves run OpenMP inside).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "backend/ops_list.h"

struct region {
    uintptr_t lo, hi; /* [lo, hi): the mapping */
};

static struct region *regions;
static int nregions, cap_regions;
static int depth; /* nesting of open sections: only the outermost opens and closes */

static void protect_all(int prot)
{
    for (int i = 0; i < nregions; i++)
        if (mprotect((void *)regions[i].lo, regions[i].hi - regions[i].lo, prot)) {
            perror("guard backend: mprotect");
            abort();
        }
}

static void open_all(void)
{
    if (depth++ == 0)
        protect_all(PROT_READ | PROT_WRITE);
}

static void close_all(void)
{
    AVS_ASSERT(depth > 0);
    if (--depth == 0)
        protect_all(PROT_NONE);
}

static int owns(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    for (int i = 0; i < nregions; i++)
        if (a >= regions[i].lo && a < regions[i].hi)
            return 1;
    return 0;
}

/* A primitive was given memory that is not the guard's: a bug in the caller. */
static void check_ptrs(const char *op, const void *const *p, int n)
{
    for (int i = 0; i < n; i++)
        if (p[i] && !owns(p[i])) {
            fprintf(stderr, "guard backend: %s was given host memory (argument pointer %d, %p): "
                    "tensors must be the backend's memory (alloc, an arena, or upload first)\n",
                    op, i + 1, p[i]);
            abort();
        }
}

/* ---- memory ---- */

static size_t page_round(size_t bytes)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + pg - 1) / pg * pg;
}

static void *g_alloc(size_t bytes, int zero)
{
    (void)zero; /* fresh anonymous pages are zero */
    size_t len = page_round(bytes ? bytes : 1);
    void *p = mmap(NULL, len, depth ? PROT_READ | PROT_WRITE : PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (nregions == cap_regions) {
        cap_regions = cap_regions ? 2 * cap_regions : 64;
        regions = avs_realloc(regions, (size_t)cap_regions * sizeof *regions);
    }
    regions[nregions++] = (struct region){(uintptr_t)p, (uintptr_t)p + len};
    return p;
}

static void g_free(void *p)
{
    if (!p)
        return;
    for (int i = 0; i < nregions; i++)
        if (regions[i].lo == (uintptr_t)p) {
            munmap(p, regions[i].hi - regions[i].lo);
            regions[i] = regions[--nregions];
            return;
        }
    fprintf(stderr, "guard backend: free of %p, which is not guard memory\n", p);
    abort();
}

static void g_zero(float *p, size_t n)
{
    check_ptrs("zero", (const void *[]){p}, 1);
    open_all();
    avs_cpu_zero(p, n);
    close_all();
}

static void g_fill(float *y, float v, size_t n)
{
    check_ptrs("fill", (const void *[]){y}, 1);
    open_all();
    avs_backend_cpu()->fill(y, v, n);
    close_all();
}

/* host -> guard */
static void g_upload(void *dev, const void *host, size_t bytes)
{
    check_ptrs("upload (destination)", (const void *[]){dev}, 1);
    if (owns(host)) {
        fprintf(stderr, "guard backend: upload from guard memory %p (use copy)\n", host);
        abort();
    }
    open_all();
    memcpy(dev, host, bytes);
    close_all();
}

/* guard -> host */
static void g_download(void *host, const void *dev, size_t bytes)
{
    check_ptrs("download (source)", (const void *[]){dev}, 1);
    if (owns(host)) {
        fprintf(stderr, "guard backend: download into guard memory %p (use copy)\n", host);
        abort();
    }
    open_all();
    memcpy(host, dev, bytes);
    close_all();
}

static void g_copy(void *dst, const void *src, size_t bytes)
{
    check_ptrs("copy", (const void *[]){dst, src}, 2);
    open_all();
    memmove(dst, src, bytes);
    close_all();
}

static void g_sync(void)
{
}

/* ---- the primitives: the CPU's, between open_all and close_all ---- */

#define UNPAREN(...) __VA_ARGS__
#define WRAP_VOID(name, params, args, ptrs)                                                    \
    static void g_##name params                                                                \
    {                                                                                          \
        const void *p_[] = {UNPAREN ptrs};                                                     \
        check_ptrs(#name, p_, (int)(sizeof p_ / sizeof *p_));                                  \
        open_all();                                                                            \
        avs_backend_cpu()->name args;                                                          \
        close_all();                                                                           \
    }
#define WRAP_DOUBLE(name, params, args, ptrs)                                                  \
    static double g_##name params                                                              \
    {                                                                                          \
        const void *p_[] = {UNPAREN ptrs};                                                     \
        check_ptrs(#name, p_, (int)(sizeof p_ / sizeof *p_));                                  \
        open_all();                                                                            \
        double r_ = avs_backend_cpu()->name args;                                              \
        close_all();                                                                           \
        return r_;                                                                             \
    }
AVS_OPS_VOID(WRAP_VOID)
AVS_OPS_DOUBLE(WRAP_DOUBLE)

#define SET(name, params, args, ptrs) t.name = g_##name;
#define COUNT(name, params, args, ptrs) +1

/* The table must be the memory members plus the two lists, nothing left out. */
enum { N_MEMORY = 10, N_PRIMS = 0 AVS_OPS_VOID(COUNT) AVS_OPS_DOUBLE(COUNT) };
_Static_assert(sizeof(struct avs_ops) == 2 * sizeof(const char *) +
                                             (N_MEMORY + N_PRIMS) * sizeof(void (*)(void)),
               "backend/ops_list.h does not list every primitive of struct avs_ops");

const struct avs_ops *avs_backend_guard(void)
{
    static struct avs_ops t;
    if (!t.name) {
        t.name = "guard";
        t.about = "tests only: the CPU ops on memory the host cannot touch outside them";
        t.alloc = g_alloc, t.free = g_free, t.zero = g_zero, t.upload = g_upload;
        t.download = g_download, t.copy = g_copy, t.fill = g_fill, t.sync = g_sync;
        t.conv2d_ws = avs_backend_cpu()->conv2d_ws, t.tapconv_ws = avs_backend_cpu()->tapconv_ws;
        AVS_OPS_VOID(SET)
        AVS_OPS_DOUBLE(SET)
    }
    return &t;
}
