/* core/safetensors.h: read (mmap) and write safetensors files, the format of all weights and
 * tensor dumps (the Hugging Face format, so official checkpoints convert 1:1).
 *
 *   +----------------+---------------------------------+---------------------------+
 *   | u64 LE: hlen   | JSON header, hlen bytes (padded | data buffer: raw LE       |
 *   |                | with spaces to 8-byte alignment)| tensors, back to back     |
 *   +----------------+---------------------------------+---------------------------+
 *   header: {"name": {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}, ...,
 *            "__metadata__": {"key": "value"}}   offsets are relative to the data buffer.
 *
 *   struct avs_st_file *f;
 *   if (avs_st_open(path, &f, &err)) ...;          checks every offset and shape; a PyTorch
 *                                                  .pth/.pt zip is read by core/pth.h instead
 *   const struct avs_st_tensor *t = avs_st_find(f, "conv1.conv.weight");
 *   avs_st_read_f32(t, dst, n, &err);              F32, F16, BF16 -> float
 *   avs_st_close(&f);
 *
 *   struct avs_st_writer *w = avs_st_writer_new();
 *   avs_st_writer_add_f32(w, "logits", ndim, shape, data);   data borrowed until save
 *   avs_st_writer_save(w, path, &err);                        atomic (temp + rename)
 *   avs_st_writer_free(&w);
 */
#ifndef AVS_CORE_SAFETENSORS_H
#define AVS_CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define AVS_ST_MAXDIM 8

enum avs_st_dtype {
    AVS_ST_F32,
    AVS_ST_F16,
    AVS_ST_BF16,
    AVS_ST_F64,
    AVS_ST_I64,
    AVS_ST_I32,
    AVS_ST_U8,
    AVS_ST_BOOL
};

struct avs_st_tensor {
    char *name;
    enum avs_st_dtype dtype;
    int ndim;
    int64_t shape[AVS_ST_MAXDIM];
    size_t numel;
    const void *data; /* [numel] of dtype, inside the mapping (may be unaligned) */
    size_t nbytes;
};

struct avs_st_file {
    char *path;
    void *map;
    size_t map_len;
    int n;
    struct avs_st_tensor *t; /* [n], in header order */
    int n_meta;               /* "__metadata__" string entries */
    char **meta_key, **meta_val;
};

int avs_st_open(const char *path, struct avs_st_file **out, struct avs_err *err);
void avs_st_close(struct avs_st_file **f);
const struct avs_st_tensor *avs_st_find(const struct avs_st_file *f, const char *name);
/* Value of a "__metadata__" entry, or NULL. */
const char *avs_st_meta(const struct avs_st_file *f, const char *key);
const char *avs_st_dtype_name(enum avs_st_dtype d);
size_t avs_st_dtype_size(enum avs_st_dtype d);
/* Convert a float-typed tensor (F32/F16/BF16/F64) into dst[n]; n must equal numel. */
int avs_st_read_f32(const struct avs_st_tensor *t, float *dst, size_t n, struct avs_err *err);
/* Tensor `name` of f as N class indices (int64 or int32, each in 0..classes-1) into a new int
 * array *out: 1, or 0 when f has no such tensor (*out NULL), or -1 with err naming the file,
 * the tensor and the bad entry. */
int avs_st_read_classes(const struct avs_st_file *f, const char *name, int N, int classes,
                        int **out, struct avs_err *err);

struct avs_st_writer;
struct avs_st_writer *avs_st_writer_new(void);
/* Borrowed data, shape copied. Names must be unique (asserted). */
void avs_st_writer_add(struct avs_st_writer *w, const char *name, enum avs_st_dtype dtype,
                       int ndim, const int64_t *shape, const void *data);
void avs_st_writer_add_f32(struct avs_st_writer *w, const char *name, int ndim, const int *shape,
                           const float *data);
void avs_st_writer_meta(struct avs_st_writer *w, const char *key, const char *value);
int avs_st_writer_save(struct avs_st_writer *w, const char *path, struct avs_err *err);
void avs_st_writer_free(struct avs_st_writer **w);

/* Integrity: XXH3-64 over the metadata entries except `skip` (key and value) and every
 * tensor's name, dtype, shape and bytes, in file order. A writer and the file it saved give the
 * same value, so a digest stored as metadata `skip` (train/ckpt.c's checksum) catches a flipped
 * bit anywhere a reader would notice it. */
uint64_t avs_st_writer_digest(const struct avs_st_writer *w, const char *skip);
uint64_t avs_st_digest(const struct avs_st_file *f, const char *skip);
/* No NaN/Inf in any float tensor (F32/F16/BF16/F64) of the writer / the file; the error names
 * the tensor and the element (the writer's: what, the file to be; the file's: its path). */
int avs_st_writer_check_finite(const struct avs_st_writer *w, const char *what, struct avs_err *err);
int avs_st_check_finite(const struct avs_st_file *f, struct avs_err *err);

#endif
