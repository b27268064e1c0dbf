/* train/ckpt.h: C3N checkpoints (runs/<run>/best.safetensors, last.safetensors).
 *
 *   safetensors, tensor names = the official PyTorch state_dict keys of the head (parameters,
 *   BatchNorm running stats, num_batches_tracked as I64), so `best` loads wherever the official
 *   head does; `last` adds the optimiser: adam.m.<name>, adam.v.<name> (F32).
 *   __metadata__: format "avs-c3n", version "1", config (the run's config JSON), and for `last`
 *   state (JSON: epoch, step, adam_step, loss_sum, loss_n, best_miou, best_epoch; doubles as
 *   %.17g text, which round-trips exactly).
 */
#ifndef AVS_TRAIN_CKPT_H
#define AVS_TRAIN_CKPT_H

#include "core/common.h"
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
