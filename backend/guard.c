/* backend/guard.c: the "guard" backend, for tests. Its primitives are the CPU backend's, on
 * memory that the host cannot touch outside them:
 *
 *   alloc     mmap'd pages, PROT_NONE, recorded in a region table (2 MB aligned huge pages
 *             for large ones, so that opening them is cheap)
 *   each op   checks that every tensor pointer it is given is guard memory (a host buffer
 *             passed to a primitive would work on the CPU and crash on a GPU), opens the
 *             regions those pointers lie in (PROT_READ|PROT_WRITE), runs the CPU op, closes
 *             them again: an op that touches memory it was not given crashes too
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
    int open;         /* nesting count of the sections that opened it */
};

static struct region *regions;
static int nregions, cap_regions;

static void protect(struct region *r, int prot)
{
    if (mprotect((void *)r->lo, r->hi - r->lo, prot)) {
        perror("guard backend: mprotect");
        abort();
    }
}

static struct region *region_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    for (int i = 0; i < nregions; i++)
        if (a >= regions[i].lo && a < regions[i].hi)
            return &regions[i];
    return NULL;
}

static int owns(const void *p)
{
    return region_of(p) != NULL;
}

/* Opens the regions that hold p[0..n) (the tensors of one op) for the op's duration: only
 * those, so an op that reads memory it was not given crashes too. Regions are whole
 * allocations (an arena or a tensor set is one). */
static void open_ptrs(const void *const *p, int n)
{
    for (int i = 0; i < n; i++) {
        struct region *r = p[i] ? region_of(p[i]) : NULL;
        if (r && r->open++ == 0)
            protect(r, PROT_READ | PROT_WRITE);
    }
}

static void close_ptrs(const void *const *p, int n)
{
    for (int i = 0; i < n; i++) {
        struct region *r = p[i] ? region_of(p[i]) : NULL;
        if (r && --r->open == 0)
            protect(r, PROT_NONE);
    }
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

enum { HUGE = 2 << 20 };

/* Large regions are 2 MB aligned and ask for transparent huge pages: opening and closing them
 * then changes a few page-table entries per op instead of one per 4 kB page (with THP off it
 * still works, ~100x slower on VGGish's 290 MB of weights). */
static void *map_region(size_t *len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), align = *len >= HUGE ? HUGE : pg;
    *len = (*len + align - 1) / align * align;
    size_t span = *len + (align > pg ? align : 0);
    char *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *q = (char *)(((uintptr_t)p + align - 1) / align * align);
    if (q > p)
        munmap(p, (size_t)(q - p));
    if (q + *len < p + span)
        munmap(q + *len, (size_t)(p + span - (q + *len)));
#ifdef MADV_HUGEPAGE
    if (align == HUGE)
        madvise(q, *len, MADV_HUGEPAGE);
#endif
    return q;
}

static void *g_alloc(size_t bytes, int zero)
{
    (void)zero; /* fresh anonymous pages are zero */
    size_t len = bytes ? bytes : 1;
    void *p = map_region(&len);
    if (!p)
        return NULL;
    if (nregions == cap_regions) {
        cap_regions = cap_regions ? 2 * cap_regions : 64;
        regions = avs_realloc(regions, (size_t)cap_regions * sizeof *regions);
    }
    regions[nregions++] = (struct region){(uintptr_t)p, (uintptr_t)p + len, 0};
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
    const void *q[] = {p};
    check_ptrs("zero", q, 1);
    open_ptrs(q, 1);
    avs_cpu_zero(p, n);
    close_ptrs(q, 1);
}

static void g_fill(float *y, float v, size_t n)
{
    const void *q[] = {y};
    check_ptrs("fill", q, 1);
    open_ptrs(q, 1);
    avs_backend_cpu()->fill(y, v, n);
    close_ptrs(q, 1);
}

/* host -> guard */
static void g_upload(void *dev, const void *host, size_t bytes)
{
    check_ptrs("upload (destination)", (const void *[]){dev}, 1);
    if (owns(host)) {
        fprintf(stderr, "guard backend: upload from guard memory %p (use copy)\n", host);
        abort();
    }
    const void *q[] = {dev};
    open_ptrs(q, 1);
    memcpy(dev, host, bytes);
    close_ptrs(q, 1);
}

/* guard -> host */
static void g_download(void *host, const void *dev, size_t bytes)
{
    check_ptrs("download (source)", (const void *[]){dev}, 1);
    if (owns(host)) {
        fprintf(stderr, "guard backend: download into guard memory %p (use copy)\n", host);
        abort();
    }
    const void *q[] = {dev};
    open_ptrs(q, 1);
    memcpy(host, dev, bytes);
    close_ptrs(q, 1);
}

static void g_copy(void *dst, const void *src, size_t bytes)
{
    const void *q[] = {dst, src};
    check_ptrs("copy", q, 2);
    open_ptrs(q, 2);
    memmove(dst, src, bytes);
    close_ptrs(q, 2);
}

static void g_sync(void)
{
}

/* ---- the primitives: the CPU's, between open_ptrs and close_ptrs ---- */

#define UNPAREN(...) __VA_ARGS__
#define WRAP_VOID(name, params, args, ptrs)                                                    \
    static void g_##name params                                                                \
    {                                                                                          \
        const void *p_[] = {UNPAREN ptrs};                                                     \
        check_ptrs(#name, p_, (int)(sizeof p_ / sizeof *p_));                                  \
        open_ptrs(p_, (int)(sizeof p_ / sizeof *p_));                                          \
        avs_backend_cpu()->name args;                                                          \
        close_ptrs(p_, (int)(sizeof p_ / sizeof *p_));                                         \
    }
#define WRAP_DOUBLE(name, params, args, ptrs)                                                  \
    static double g_##name params                                                              \
    {                                                                                          \
        const void *p_[] = {UNPAREN ptrs};                                                     \
        check_ptrs(#name, p_, (int)(sizeof p_ / sizeof *p_));                                  \
        open_ptrs(p_, (int)(sizeof p_ / sizeof *p_));                                          \
        double r_ = avs_backend_cpu()->name args;                                              \
        close_ptrs(p_, (int)(sizeof p_ / sizeof *p_));                                         \
        return r_;                                                                             \
    }
AVS_OPS_VOID(WRAP_VOID)
AVS_OPS_DOUBLE(WRAP_DOUBLE)

void avs_backend_guard_run(const void *p, void (*f)(void))
{
    const void *q[] = {p};
    check_ptrs("avs_backend_guard_run", q, 1);
    open_ptrs(q, 1);
    f();
    close_ptrs(q, 1);
}

#define SET(name, params, args, ptrs) t.name = g_##name;
#define COUNT(name, params, args, ptrs) +1

/* The table must be the memory members plus the two lists, nothing left out. */
enum { N_MEMORY = 11, N_PRIMS = 0 AVS_OPS_VOID(COUNT) AVS_OPS_DOUBLE(COUNT) };
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
        t.settings = avs_backend_cpu()->settings;
        t.conv2d_ws = avs_backend_cpu()->conv2d_ws, t.tapconv_ws = avs_backend_cpu()->tapconv_ws;
        AVS_OPS_VOID(SET)
        AVS_OPS_DOUBLE(SET)
    }
    return &t;
}
