/* backend/backend.h: the registry of backends, and the device memory the networks live in.
 *
 *   avs_backend_use("guard", &err);              choose the active backend (default "cpu")
 *   const struct avs_ops *op = avs_ops();        its table (backend/ops.h)
 *
 *   struct avs_arena a;                          one block of the active backend's memory,
 *   avs_arena_init(&a, n_floats);                carved in order, freed at once
 *   float *x = avs_arena_take(&a, 4 * 256 * 7 * 7);
 *   avs_arena_free(&a);
 *
 *   struct avs_tensor_set p;                     named tensors (a size table) in one arena:
 *   avs_tensor_set_init(&p, spec, n);            parameters, gradients, Adam moments share
 *   avs_tensor_set_upload(&p, i, host);          the table, so one loop covers all of them
 *
 * Backends: "cpu" (the reference: OpenBLAS GEMMs, OpenMP loops), "guard" (tests: the CPU ops
 * on memory that is PROT_NONE outside its own ops, so any host access to tensor memory that
 * bypasses the table crashes at once, and every tensor pointer given to an op must be its own
 * memory), "cuda" (make CUDA=1, backend/cuda/; registered only while a GPU is present). An arena remembers the backend it came from; choose the backend
 * before making a model, and keep it while the model lives.
 */
#ifndef AVS_BACKEND_BACKEND_H
#define AVS_BACKEND_BACKEND_H

#include <stddef.h>

#include "backend/ops.h"
#include "core/common.h"
#include "core/tensor.h"

/* ---- registry ---- */

/* Registered backends (cpu first), NULL after the last. */
const struct avs_ops *avs_backend_at(int i);
const struct avs_ops *avs_backend_find(const char *name);
/* Make `name` active ("cpu", "guard", "cuda", "cuda:N"). -1 with err naming the choices (or
 * saying why there is no CUDA device). */
int avs_backend_use(const char *name, struct avs_err *err);
void avs_backend_set(const struct avs_ops *be);
/* The device a program uses without --device: "cuda:0" when this build has the CUDA backend
 * and a GPU is present, else "cpu". */
const char *avs_backend_default(void);

/* --precision: how GEMMs and convolutions compute. fp32 (default) everywhere; tf32 (cuBLAS and
 * cuDNN tensor-op math) on cuda only; bf16 is not implemented (refused, naming tf32). */
enum avs_precision { AVS_PRECISION_FP32, AVS_PRECISION_TF32, AVS_PRECISION_BF16 };
/* Set it for the active backend (name NULL: fp32). -1 with err when the backend lacks it. */
int avs_backend_set_precision(const char *name, struct avs_err *err);
enum avs_precision avs_backend_precision(void);
const char *avs_precision_name(enum avs_precision p);

/* A program's compute set-up: the backend (--device; NULL: avs_backend_default()), its
 * precision (--precision; NULL: fp32) and its threads (-j). -1 with err. Unless quiet, one
 * line on stderr says what was chosen ("avs-train: device cuda:0 NVIDIA H200 fp32"). */
int avs_backend_setup(const char *prog, const char *device, const char *precision, int threads,
                      int quiet, struct avs_err *err);
/* "cpu, guard" into buf (for --help and errors); returns buf. */
const char *avs_backend_names(char *buf, size_t len);

/* The guard backend's table (backend/guard.c) and the CPU table (backend/cpu/). */
const struct avs_ops *avs_backend_guard(void);
/* f() as if it were a guard op given the tensor p: p's region open, every other closed (for
 * tests of the guard itself). */
void avs_backend_guard_run(const void *p, void (*f)(void));
const struct avs_ops *avs_backend_cpu(void);

/* ---- device memory of the active backend ---- */

/* n floats (zeroed), aborting with a message naming `what` when out of memory. */
float *avs_dev_alloc(size_t n, const char *what);
void avs_dev_free(float **p);
/* n floats host -> device, device -> host */
void avs_dev_upload(float *dev, const float *host, size_t n);
void avs_dev_download(float *host, const float *dev, size_t n);
/* A device copy of host[n] / a malloc'd host copy of dev[n] (tests, tools). */
float *avs_dev_from_host(const float *host, size_t n);
float *avs_host_from_dev(const float *dev, size_t n);

/* ---- arenas ---- */

struct avs_arena {
    const struct avs_ops *be; /* the backend the memory came from */
    float *base; /* [cap] floats of device memory, 64-byte aligned */
    size_t cap;  /* floats */
    size_t used; /* floats handed out */
    size_t peak; /* largest `used` seen (for reports) */
};

/* One zeroed block of the active backend's memory. */
void avs_arena_init(struct avs_arena *a, size_t cap_floats);
/* Same, but not zeroed: untouched pages cost nothing (CPU), so a generous upper bound is free.
 * For scratch that callers clear themselves. */
void avs_arena_init_lazy(struct avs_arena *a, size_t cap_floats);
/* n floats, 16-float (64-byte) aligned; aborts (a bug: the size table was wrong) if full. */
float *avs_arena_take(struct avs_arena *a, size_t n);
/* Current mark and rewind to it (stack discipline for scratch). */
size_t avs_arena_mark(const struct avs_arena *a);
void avs_arena_rewind(struct avs_arena *a, size_t mark);
void avs_arena_zero(struct avs_arena *a);
void avs_arena_free(struct avs_arena *a);
/* Floats an arena needs for a request of n (rounded up to 16). */
size_t avs_arena_round(size_t n);

/* One function for counting and for carving an arena's layout: with a == NULL avs_carve only
 * adds n (rounded as the arena rounds) to total and returns NULL; else it takes from a. */
struct avs_carver {
    struct avs_arena *a;
    size_t total;
};
float *avs_carve(struct avs_carver *c, size_t n);

/* ---- tensor sets: named tensors carved from one arena in table order ---- */

struct avs_tensor_set {
    const struct avs_tensor_spec *spec; /* [n], borrowed */
    int n;
    struct avs_tensor *t; /* [n], data: device memory inside arena */
    struct avs_arena arena;
};

void avs_tensor_set_init(struct avs_tensor_set *s, const struct avs_tensor_spec *spec, int n);
void avs_tensor_set_free(struct avs_tensor_set *s);
/* Index of the tensor called name, or -1 (loading and saving by name; never in a forward). */
int avs_tensor_set_find(const struct avs_tensor_set *s, const char *name);
/* Index of the tensor named by printf(fmt, ...), which must exist (a missing one is a bug:
 * AVS_ASSERT). For resolving parameter indices once, at a network's init. */
int avs_tensor_set_findf(const struct avs_tensor_set *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Tensor i from / to host memory (numel floats). */
void avs_tensor_set_upload(struct avs_tensor_set *s, int i, const float *host);
void avs_tensor_set_download(const struct avs_tensor_set *s, int i, float *host);
/* The whole set as one host block (arena order: offsets as in the arena) and back. */
float *avs_tensor_set_to_host(const struct avs_tensor_set *s);
void avs_tensor_set_from_host(struct avs_tensor_set *s, const float *host);

#endif
