/* train/syncbn.h: SyncBN for data-parallel training (model/c3n_head.h, struct avs_bn_sync):
 * TPAVI's W_z.1 BatchNorm takes its batch statistics over the frames of every rank, as
 * PyTorch's SyncBatchNorm does, so N ranks x b videos normalise as 1 rank x N*b videos.
 *
 *   struct avs_syncbn *s = avs_syncbn_new(&head);   head.bn_sync set; the largest map sized
 *   ... training steps ...
 *   avs_syncbn_free(&s);                            head.bn_sync cleared
 *
 * Forward: the backend's batchnorm_fwd gives each rank's mean and biased variance (train
 * form, no running update); sums n*mean and n*(var + mean^2) in double over the ranks give the
 * global mean and variance (the moments combine exactly; the variance from the float rstd is
 * good to ~1e-7 relative); the running stats move with the global unbiased variance; the
 * output is the eval form of batchnorm_fwd on the global statistics.
 * Backward: the eval form of batchnorm_bwd gives dx = w*rstd*dy and this rank's sums of dy and
 * dy*xhat (added to the parameter gradients, which the trainer then sums over the ranks); the
 * two sums over the ranks give the batch-statistics terms, -w*rstd/n (sum dy + xhat sum dy*xhat),
 * applied with the eval form of batchnorm_fwd as a per-channel affine map of x.
 * Every rank has the same number of frames (the trainer splits the global batch evenly).
 */
#ifndef AVS_TRAIN_SYNCBN_H
#define AVS_TRAIN_SYNCBN_H

#include "model/c3n_head.h"

struct avs_syncbn;

struct avs_syncbn *avs_syncbn_new(struct avs_c3n_head *h);
void avs_syncbn_free(struct avs_syncbn **s);

#endif
