/* core/tensor.h: the one tensor type (contiguous NCHW float32) and the size tables that
 * describe a network's tensors.
 *
 * Parameters, gradients, Adam moments and activations each live in one arena of a backend's
 * memory (backend/backend.h), carved in the same order from one size table (struct
 * avs_tensor_spec), so that save/load is one loop over the table and the optimiser one loop
 * over the whole arena (llm.c's layout). Tensor data is device memory: host code reads it only
 * through the backend's copies.
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

/* A size table being built, in state_dict order (every network builds its own at init with
 * these: one builder for all). Names are owned by the list. */
struct avs_spec_list {
    struct avs_tensor_spec *v; /* [n] */
    int n, cap;
};

/* Append the tensor named printf(fmt, ...) of the given shape. */
void avs_spec_add(struct avs_spec_list *l, int ndim, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Free the table and its names; NULL-safe, leaves it empty. */
void avs_spec_list_free(struct avs_spec_list *l);

#endif
