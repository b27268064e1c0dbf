/* tests/backends.h: an op test on every registered backend, each backend's bits compared
 * with the cpu backend's (STYLE.md: "Every op test runs on every registered backend").
 *
 *   static void test_relu(void)                  one pass on the active backend: inputs go
 *   {                                            up, results come back down
 *       float *x = avs_dev_from_host(hx, n), *y = avs_dev_alloc(n, "y");
 *       avs_ops()->relu_fwd(y, x, n);
 *       float *hy = avs_host_from_dev(y, n);
 *       ... CHECK hy against a reference ...
 *       same_bits("relu", hy, n);                cpu pass: kept; other passes: compared
 *   }
 *   backends_keep(&rng, sizeof rng);             state restored before every pass (once, in main)
 *   on_every_backend("relu", test_relu);         cpu first, then guard, then any others
 *   on_cpu_only("ccam", test_ccam, "why");       code not yet on primitives: cpu alone
 *
 * A pass must make the same same_bits calls in the same order on every backend (the i-th call
 * of a pass is compared with the cpu pass's i-th), so random inputs come from state that
 * backends_keep restores. backend_cpu_based(): the cpu and guard backends share the CPU's
 * internal switches (avs_cpu_conv_set_algo, avs_cpu_resize_force_general), so tests of those
 * paths run there; on other backends a test checks the backend's own path against the
 * reference only.
 *
 * Backends that are not CPU-based (cuda) compute the same math in another order (cuBLAS and
 * cuDNN tilings, GPU reductions), so same_bits holds them to a tolerance instead of the bits:
 * element i passes when |v_i - cpu_i| <= BACKEND_RTOL * |cpu_i| + BACKEND_ATOL * max_j |cpu_j|
 * (relative to the element, plus a floor relative to the result's scale, which covers the
 * elements that cancel to near zero), and NaN/Inf only where the cpu has the same. The cuda
 * backend is offered to the loop only when a GPU is present (backend/backend.c registers it).
 */
#ifndef AVS_TESTS_BACKENDS_H
#define AVS_TESTS_BACKENDS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "tests/check.h"

struct bits_record {
    char *what;
    float *v; /* [n], the cpu pass's result */
    size_t n;
};

static struct {
    const struct avs_ops *be; /* the backend of the current pass */
    int pass;                 /* its index: 0 is cpu */
    struct bits_record *rec;  /* the cpu pass's results, in call order */
    int nrec, cap, cursor;
    void *keep;               /* state restored before every pass (backends_keep) */
    size_t keep_bytes;
    unsigned char *saved;
} backends_;

/* Bytes at p (an RNG state) restored to their value at the start of the cpu pass before
 * every other backend's pass. */
static inline void backends_keep(void *p, size_t bytes)
{
    backends_.keep = p, backends_.keep_bytes = bytes;
}

/* The backend of the current pass (cpu outside on_every_backend). */
static inline const struct avs_ops *backend_now(void)
{
    return backends_.be ? backends_.be : avs_backend_cpu();
}

static inline int backend_cpu_based(void)
{
    return backend_now() == avs_backend_cpu() || backend_now() == avs_backend_guard();
}

#define BACKEND_RTOL 1e-4
#define BACKEND_ATOL 1e-4

/* The first element of v [n] outside the tolerance of ref (n if none). */
static inline size_t backends_first_off(const float *v, const float *ref, size_t n)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(ref[i]) && fabs(ref[i]) > scale)
            scale = fabs(ref[i]);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(ref[i]) || !isfinite(v[i])) {
            if (memcmp(&v[i], &ref[i], sizeof(float)) && !(isnan(v[i]) && isnan(ref[i])))
                return i;
            continue;
        }
        if (fabs((double)v[i] - ref[i]) > BACKEND_RTOL * fabs(ref[i]) + BACKEND_ATOL * scale)
            return i;
    }
    return n;
}

/* host[n], a result of the current pass: kept on the cpu pass, compared bit for bit with the
 * cpu pass's result of the same call on the others. */
static inline void same_bits(const char *what, const float *host, size_t n)
{
    if (backends_.pass == 0) {
        if (backends_.nrec == backends_.cap) {
            backends_.cap = backends_.cap ? 2 * backends_.cap : 64;
            backends_.rec = realloc(backends_.rec, (size_t)backends_.cap * sizeof *backends_.rec);
            AVS_ASSERT(backends_.rec);
        }
        struct bits_record *r = &backends_.rec[backends_.nrec++];
        r->what = strdup(what);
        r->v = malloc((n ? n : 1) * sizeof(float));
        AVS_ASSERT(r->what && r->v);
        memcpy(r->v, host, n * sizeof(float));
        r->n = n;
        return;
    }
    const char *be = backend_now()->name;
    int k = backends_.cursor++;
    CHECK(k < backends_.nrec, "%s on %s: the cpu pass made no result #%d to compare with", what, be, k);
    if (k >= backends_.nrec)
        return;
    const struct bits_record *r = &backends_.rec[k];
    CHECK(!strcmp(r->what, what) && r->n == n, "%s [%zu] on %s: result #%d of the cpu pass was %s [%zu] "
          "(a pass must make the same calls on every backend)", what, n, be, k, r->what, r->n);
    if (strcmp(r->what, what) || r->n != n)
        return;
    size_t i = 0;
    if (backend_cpu_based()) {
        while (i < n && !memcmp(&host[i], &r->v[i], sizeof(float)))
            i++;
        CHECK(i == n, "%s on %s: not the cpu backend's bits (element %zu of %zu: %.9g, cpu %.9g)",
              what, be, i, n, i < n ? host[i] : 0.0f, i < n ? r->v[i] : 0.0f);
        return;
    }
    i = backends_first_off(host, r->v, n);
    CHECK(i == n, "%s on %s: beyond the tolerance of the cpu backend's result (element %zu of %zu: "
          "%.9g, cpu %.9g; rule: |d| <= %g |cpu| + %g max|cpu|)", what, be, i, n,
          i < n ? host[i] : 0.0f, i < n ? r->v[i] : 0.0f, BACKEND_RTOL, BACKEND_ATOL);
}

static inline void backends_forget(void)
{
    for (int i = 0; i < backends_.nrec; i++)
        free(backends_.rec[i].what), free(backends_.rec[i].v);
    free(backends_.rec);
    backends_.rec = NULL, backends_.nrec = backends_.cap = backends_.cursor = 0;
}

/* test() once per registered backend, that backend active; then cpu again. */
static inline void on_every_backend(const char *name, void (*test)(void))
{
    const struct avs_ops *be;
    if (backends_.keep) {
        backends_.saved = malloc(backends_.keep_bytes);
        AVS_ASSERT(backends_.saved);
        memcpy(backends_.saved, backends_.keep, backends_.keep_bytes);
    }
    for (int i = 0; (be = avs_backend_at(i)); i++) {
        if (i && backends_.keep)
            memcpy(backends_.keep, backends_.saved, backends_.keep_bytes);
        backends_.be = be, backends_.pass = i, backends_.cursor = 0;
        avs_backend_set(be);
        int failed = check_failed;
        test();
        if (i)
            CHECK(backends_.cursor == backends_.nrec, "%s on %s: %d results, the cpu pass made %d",
                  name, be->name, backends_.cursor, backends_.nrec);
        printf("%s on %s: %s\n", name, be->name, check_failed == failed ? "ok" : "FAILED");
    }
    backends_.be = NULL, backends_.pass = 0;
    avs_backend_set(avs_backend_cpu());
    free(backends_.saved);
    backends_.saved = NULL;
    backends_forget();
}

/* test() on cpu alone, for code that cannot run on the other backends yet (why: printed). */
static inline void on_cpu_only(const char *name, void (*test)(void), const char *why)
{
    avs_backend_set(avs_backend_cpu());
    int failed = check_failed;
    test();
    printf("%s on cpu: %s; not run on the other backends: %s\n", name,
           check_failed == failed ? "ok" : "FAILED", why);
    backends_forget();
}

#endif
