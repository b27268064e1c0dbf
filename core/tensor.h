/* core/tensor.h: the one tensor type (contiguous NCHW float32) and the arenas that hold them.
 *
 *   struct avs_arena a;
 *   avs_arena_init(&a, n_floats);                   one zeroed, 64-byte aligned block
 *   float *x = avs_arena_take(&a, 4 * 256 * 7 * 7); carve; never freed one by one
 *   avs_arena_free(&a);
 *
 * Parameters, gradients, Adam moments and activations each live in one arena carved in the
 * same order from one size table (struct avs_tensor_spec), so that save/load is one loop over
 * the table and the optimiser one loop over the whole arena (llm.c's layout).
 * Shapes: up to 5 dims (Conv3d weights), outermost first; an NCHW map is {N, C, H, W}.
 */
#ifndef AVS_CORE_TENSOR_H
#define AVS_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define AVS_TENSOR_MAXDIM 5

struct avs_tensor {
    float *data; /* [numel], contiguous, row-major over shape */
    int ndim;
    int shape[AVS_TENSOR_MAXDIM];
};

/* One entry of a size table: a named tensor of a model. */
struct avs_tensor_spec {
    const char *name; /* the PyTorch state_dict key, e.g. "conv1.atrous_block6.weight" */
    int ndim;
    int shape[AVS_TENSOR_MAXDIM];
};

size_t avs_tensor_numel(const struct avs_tensor *t);
size_t avs_tensor_spec_numel(const struct avs_tensor_spec *s);
/* "[2,3,4]" into buf (always NUL-terminated); returns buf. */
char *avs_tensor_shape_str(int ndim, const int *shape, char *buf, size_t len);
/* 1 if both shapes are the same. */
int avs_tensor_same_shape(int ndim_a, const int *a, int ndim_b, const int *b);

struct avs_arena {
    float *base; /* [cap] floats, zeroed at init, 64-byte aligned */
    size_t cap;  /* floats */
    size_t used; /* floats handed out */
    size_t peak; /* largest `used` seen (for reports) */
};

void avs_arena_init(struct avs_arena *a, size_t cap_floats);
/* Same, but not zeroed: pages are only touched (resident) when used, so a generous upper
 * bound costs no memory. For scratch that callers clear themselves. */
void avs_arena_init_lazy(struct avs_arena *a, size_t cap_floats);
/* n floats, 16-float (64-byte) aligned; aborts (a bug: the size table was wrong) if full. */
float *avs_arena_take(struct avs_arena *a, size_t n);
/* Current mark and rewind to it (stack discipline for scratch). */
size_t avs_arena_mark(const struct avs_arena *a);
void avs_arena_rewind(struct avs_arena *a, size_t mark);
void avs_arena_zero(struct avs_arena *a);
/* p[0..n) = 0; large blocks are cleared by all OpenMP threads (one core's stores do not fill
 * the memory bus). */
void avs_zero(float *p, size_t n);
void avs_arena_free(struct avs_arena *a);
/* Floats an arena needs for n requests of the given sizes (each rounded up to 16). */
size_t avs_arena_round(size_t n);

/* A set of named tensors carved from one arena in table order (parameters, their gradients, or
 * the Adam moments: same table, same offsets, so one loop covers all of them). */
struct avs_tensor_set {
    const struct avs_tensor_spec *spec; /* [n], borrowed */
    int n;
    struct avs_tensor *t; /* [n], data inside arena */
    struct avs_arena arena;
};

void avs_tensor_set_init(struct avs_tensor_set *s, const struct avs_tensor_spec *spec, int n);
void avs_tensor_set_free(struct avs_tensor_set *s);
/* Index of the tensor called name, or -1. */
int avs_tensor_set_find(const struct avs_tensor_set *s, const char *name);
/* Index of the tensor named by printf(fmt, ...), which must exist (a missing one is a bug:
 * AVS_ASSERT). For layers that address their parameters by official name. */
int avs_tensor_set_findf(const struct avs_tensor_set *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
