/* core/tensor.c: see tensor.h. */
#include "core/tensor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

size_t avs_tensor_numel(const struct avs_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

size_t avs_tensor_spec_numel(const struct avs_tensor_spec *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= (size_t)s->shape[i];
    return n;
}

char *avs_tensor_shape_str(int ndim, const int *shape, char *buf, size_t len)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", shape[i]);
    if (k < len)
        snprintf(buf + k, len - k, "]");
    return buf;
}

int avs_tensor_same_shape(int ndim_a, const int *a, int ndim_b, const int *b)
{
    if (ndim_a != ndim_b)
        return 0;
    for (int i = 0; i < ndim_a; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

size_t avs_arena_round(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void arena_alloc(struct avs_arena *a, size_t cap_floats, int zero)
{
    memset(a, 0, sizeof *a);
    cap_floats = avs_arena_round(cap_floats ? cap_floats : 16);
    size_t bytes;
    AVS_ASSERT(avs_size_mul(cap_floats, sizeof(float), &bytes) == 0);
    a->base = aligned_alloc(64, bytes);
    if (!a->base) {
        avs_log_error("out of memory: arena of %zu MB", bytes >> 20);
        abort();
    }
    if (zero)
        memset(a->base, 0, bytes);
    a->cap = cap_floats;
}

void avs_arena_init(struct avs_arena *a, size_t cap_floats)
{
    arena_alloc(a, cap_floats, 1);
}

void avs_arena_init_lazy(struct avs_arena *a, size_t cap_floats)
{
    arena_alloc(a, cap_floats, 0);
}

float *avs_arena_take(struct avs_arena *a, size_t n)
{
    n = avs_arena_round(n);
    AVS_ASSERT(a->base && n <= a->cap - a->used);
    float *p = a->base + a->used;
    a->used += n;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

size_t avs_arena_mark(const struct avs_arena *a)
{
    return a->used;
}

void avs_arena_rewind(struct avs_arena *a, size_t mark)
{
    AVS_ASSERT(mark <= a->used);
    a->used = mark;
}

void avs_zero(float *p, size_t n)
{
    const size_t block = (size_t)1 << 18;
    if (n < 4 * block) {
        memset(p, 0, n * sizeof(float));
        return;
    }
    long nb = (long)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nb; i++) {
        size_t a = (size_t)i * block, len = n - a < block ? n - a : block;
        memset(p + a, 0, len * sizeof(float));
    }
}

void avs_arena_zero(struct avs_arena *a)
{
    if (a->base)
        avs_zero(a->base, a->cap);
}

void avs_arena_free(struct avs_arena *a)
{
    free(a->base);
    memset(a, 0, sizeof *a);
}

void avs_tensor_set_init(struct avs_tensor_set *s, const struct avs_tensor_spec *spec, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += avs_arena_round(avs_tensor_spec_numel(&spec[i]));
    s->spec = spec;
    s->n = n;
    s->t = avs_calloc((size_t)(n ? n : 1), sizeof *s->t);
    avs_arena_init(&s->arena, total);
    for (int i = 0; i < n; i++) {
        s->t[i].ndim = spec[i].ndim;
        memcpy(s->t[i].shape, spec[i].shape, sizeof spec[i].shape);
        s->t[i].data = avs_arena_take(&s->arena, avs_tensor_spec_numel(&spec[i]));
    }
}

void avs_tensor_set_free(struct avs_tensor_set *s)
{
    avs_arena_free(&s->arena);
    free(s->t);
    memset(s, 0, sizeof *s);
}

int avs_tensor_set_find(const struct avs_tensor_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->spec[i].name, name))
            return i;
    return -1;
}

int avs_tensor_set_findf(const struct avs_tensor_set *s, const char *fmt, ...)
{
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    AVS_ASSERT(n > 0 && (size_t)n < sizeof name);
    int k = avs_tensor_set_find(s, name);
    AVS_ASSERT(k >= 0);
    return k;
}
