/* model/params.h: a network's tensors in and out of safetensors files by their official
 * names: the one loader and the one saver of every network (C3N head, PVTv2, VGGish, ...).
 *
 *   struct avs_params_io io = {.sets = {&m->params, &m->bufs}, .nsets = 2};
 *   if (avs_params_load(f, &io, &err)) ...;        every tensor of the sets, shapes checked
 *
 *   struct avs_params_stage st = {0};               saving: host copies live until the save
 *   avs_params_stage_add(&st, w, &m->params, NULL);
 *   avs_st_writer_save(w, path, &err);
 *   avs_params_stage_free(&st);
 *
 * Loading reads each tensor (F32/F16/BF16/F64 in the file) into host memory and uploads it to
 * the set's backend; errors name the file, the tensor and the fix. Names may carry a
 * "module." prefix in the file (DataParallel checkpoints).
 */
#ifndef AVS_MODEL_PARAMS_H
#define AVS_MODEL_PARAMS_H

#include "backend/backend.h"
#include "core/common.h"
#include "core/safetensors.h"

#define AVS_PARAMS_MAXSETS 4

struct avs_params_io {
    struct avs_tensor_set *sets[AVS_PARAMS_MAXSETS]; /* tensors to fill, by name */
    int nsets;
    const char *prefix; /* names in the file are prefix + name ("adam.m."); NULL: none */
    /* a tensor of the file that is in no set: 1 taken, 0 not ours, -1 error (err set); NULL */
    int (*extra)(void *ctx, const struct avs_st_tensor *t, struct avs_err *err);
    void *ctx;
    /* unknown tensors (not in a set, not taken by extra, not prefixed when a prefix is given):
     * counted here when non-NULL, else an error */
    int *ignored;
    /* tensors loaded, [sum of the sets' n] in set order; when non-NULL, missing tensors are not
     * an error (the caller decides, e.g. a head from another file) */
    char *seen;
    const char *what; /* "the C3N head", "this PVTv2 variant": named in errors */
};

int avs_params_load(const struct avs_st_file *f, const struct avs_params_io *io,
                    struct avs_err *err);
/* Open path and load (avs_params_load). */
int avs_params_load_file(const char *path, const struct avs_params_io *io, struct avs_err *err);
/* The first tensor of the sets not marked in seen, or NULL (its set index in *set). */
const char *avs_params_missing(const struct avs_params_io *io, const char *seen, int *set);

/* Host copies of tensor sets added to a writer (which borrows them until it has saved). */
struct avs_params_stage {
    float **blocks;
    char **names;
    int nblocks, nnames;
};

/* Every tensor of s as prefix + name (prefix NULL: the plain names). */
void avs_params_stage_add(struct avs_params_stage *st, struct avs_st_writer *w,
                          const struct avs_tensor_set *s, const char *prefix);
void avs_params_stage_free(struct avs_params_stage *st);

#endif
