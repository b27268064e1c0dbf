/* backend/arena.c: arenas and tensor sets in a backend's memory (backend/backend.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

size_t avs_arena_round(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void arena_alloc(struct avs_arena *a, size_t cap_floats, int zero)
{
    memset(a, 0, sizeof *a);
    a->be = avs_ops();
    cap_floats = avs_arena_round(cap_floats ? cap_floats : 16);
    size_t bytes;
    AVS_ASSERT(avs_size_mul(cap_floats, sizeof(float), &bytes) == 0);
    a->base = a->be->alloc(bytes, zero);
    if (!a->base) {
        avs_log_error("out of memory: an arena of %zu MB on the %s backend", bytes >> 20, a->be->name);
        abort();
    }
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

void avs_arena_zero(struct avs_arena *a)
{
    if (a->base)
        a->be->zero(a->base, a->cap);
}

void avs_arena_free(struct avs_arena *a)
{
    if (a->base)
        a->be->free(a->base);
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
    if (k < 0) {
        avs_log_error("no tensor \"%s\" in the size table", name);
        AVS_ASSERT(k >= 0);
    }
    return k;
}

void avs_tensor_set_upload(struct avs_tensor_set *s, int i, const float *host)
{
    AVS_ASSERT(i >= 0 && i < s->n);
    s->arena.be->upload(s->t[i].data, host, avs_tensor_numel(&s->t[i]) * sizeof(float));
}

void avs_tensor_set_download(const struct avs_tensor_set *s, int i, float *host)
{
    AVS_ASSERT(i >= 0 && i < s->n);
    s->arena.be->download(host, s->t[i].data, avs_tensor_numel(&s->t[i]) * sizeof(float));
}

float *avs_tensor_set_to_host(const struct avs_tensor_set *s)
{
    float *h = avs_malloc((s->arena.used ? s->arena.used : 1) * sizeof(float));
    if (s->arena.used)
        s->arena.be->download(h, s->arena.base, s->arena.used * sizeof(float));
    return h;
}

void avs_tensor_set_from_host(struct avs_tensor_set *s, const float *host)
{
    if (s->arena.used)
        s->arena.be->upload(s->arena.base, host, s->arena.used * sizeof(float));
}

float *avs_carve(struct avs_carver *c, size_t n)
{
    c->total += avs_arena_round(n);
    return c->a ? avs_arena_take(c->a, n) : NULL;
}
