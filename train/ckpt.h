/* train/ckpt.h: C3N checkpoints (runs/<run>/best.safetensors, last.safetensors).
 *
 *   safetensors, tensor names = the official PyTorch state_dict keys of the head (parameters,
 *   BatchNorm running stats, num_batches_tracked as I64), so `best` loads wherever the official
 *   head does; `last` adds the optimiser: adam.m.<name>, adam.v.<name> (F32).
 *   __metadata__: format "avs-c3n", version "2", config (the run's config JSON), for `last`
 *   state (JSON: epoch, step, adam_step, loss_sum, loss_n, best_miou, best_epoch; doubles as
 *   %.17g text, which round-trips exactly), and checksum "xxh3:<16 hex digits>".
 *
 * Integrity (README "Reliability"), for every checkpoint avs-train writes (this head's and the
 * fine-tuned backbone's, train/finetune.c): saving refuses a NaN/Inf in any tensor (nothing is
 * written; the previous file stays); the checksum is avs_st_digest (core/safetensors.h: every
 * tensor's name, dtype, shape and bytes and every other metadata entry). Opening checks it and
 * scans every tensor for NaN/Inf. Version 1 files (before checksums) load with a warning, still
 * NaN/Inf-checked: trained weights are worth keeping and cannot be rebuilt like a cache.
 */
#ifndef AVS_TRAIN_CKPT_H
#define AVS_TRAIN_CKPT_H

#include "core/common.h"
#include "core/safetensors.h"
#include "model/c3n_head.h"

struct avs_train_state {
    int epoch;          /* epoch in progress (0-based) */
    int step;           /* steps of that epoch already done */
    long adam_step;
    double loss_sum;    /* sum of step losses of the epoch so far */
    int loss_n;
    double best_miou;   /* best val mIoU so far (-1: none) */
    int best_epoch;     /* 1-based, 0: none */
    double seconds;     /* training seconds of the epoch so far (not saved: a checkpoint's
                           bytes depend only on the training state, so runs compare with cmp) */
};

#define AVS_CKPT_VERSION 2

/* Before avs_st_writer_save: refuse a NaN/Inf in any tensor, then add version and checksum. */
int avs_ckpt_seal(struct avs_st_writer *w, const char *path, struct avs_err *err);
/* An opened checkpoint: version known, checksum (version 2) and no NaN/Inf in any tensor.
 * Errors name the file (and the tensor) and what to do. */
int avs_ckpt_verify(const struct avs_st_file *f, struct avs_err *err);

/* st NULL: weights only (best). Atomic (temp + rename). */
int avs_ckpt_save(const char *path, const struct avs_c3n_head *h, const char *config,
                  const struct avs_train_state *st, struct avs_err *err);
/* Loads what the file has into h (parameters and buffers must all be there; Adam moments and
 * state when st != NULL, else ignored). *config (may be NULL) gets the recorded config. */
int avs_ckpt_load(const char *path, struct avs_c3n_head *h, char **config,
                  struct avs_train_state *st, struct avs_err *err);
/* Only the training state of a `last` file. */
int avs_ckpt_state(const char *path, struct avs_train_state *st, struct avs_err *err);
/* Only the recorded config JSON (malloc'd). */
int avs_ckpt_config(const char *path, char **config, struct avs_err *err);

#endif
