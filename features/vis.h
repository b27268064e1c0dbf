/* features/vis.h: the feature set's visual encoder, whichever it is (PVTv2 pvt_v2_bX, Swin
 * swin_* or ResNet-50 resnet50), behind the few calls avs-features makes: load by name, stage
 * shapes, a Grad-CAM workspace, the kept forward and the two Grad-CAM passes (features/vis.c);
 * and the calls fine-tuning makes (train/finetune.c; features/vis_train.c): a TRAIN workspace,
 * the full backward into the parameters, the parameter set for Adam and checkpoints.
 *
 *   struct avs_feat_vis v = {0};
 *   if (avs_feat_vis_load(&v, "swin_b", file_or_NULL, seed, H, W, &err)) ...;
 *   avs_feat_vis_dim(&v, s), avs_feat_vis_side(&v, H, s), v.classes
 *   fine-tuning: if (avs_feat_vis_trainable(&v, name, &err)) ...;   refused: no backward yet
 *     avs_feat_vis_ws_init_train(&ws, &v, N, H, W);
 *     avs_feat_vis_fwd_kept(...); avs_feat_vis_gradcam_kept(...);   targets, Grad-CAM
 *     avs_feat_vis_bwd(&v, &ws, &grads, stage, NULL, image, dstage, NULL, N);
 *     Adam over avs_feat_vis_params(&v) (grads: a set over avs_feat_vis_spec)
 */
#ifndef AVS_FEATURES_VIS_H
#define AVS_FEATURES_VIS_H

#include <stdint.h>

#include "core/safetensors.h"
#include "model/pvt.h"
#include "model/resnet.h"
#include "model/swin.h"

enum avs_feat_vis_kind { AVS_FEAT_VIS_NONE, AVS_FEAT_VIS_PVT, AVS_FEAT_VIS_SWIN, AVS_FEAT_VIS_RESNET };

struct avs_feat_vis {
    enum avs_feat_vis_kind kind;
    struct avs_pvt pvt;
    struct avs_swin swin;
    struct avs_resnet rn;
    int classes; /* ImageNet logits (0: no head) */
};

struct avs_feat_vis_ws {
    struct avs_pvt_ws pvt;
    struct avs_swin_ws swin;
    struct avs_resnet_ws rn;
};

/* The names avs-features takes for --visual (for messages). */
#define AVS_FEAT_VIS_NAMES "pvt_v2_b0..pvt_v2_b5, swin_t, swin_s, swin_b, swin_b_w12, swin_t_w4, resnet50"

/* Encoder `name` from file (NULL: random from seed) for H x W frames: -1 with err naming the
 * encoder, the file or the frame size that does not fit. */
int avs_feat_vis_load(struct avs_feat_vis *v, const char *name, const char *file, uint64_t seed,
                      int H, int W, struct avs_err *err);
void avs_feat_vis_free(struct avs_feat_vis *v); /* any state of a zeroed struct */
int avs_feat_vis_dim(const struct avs_feat_vis *v, int s);
int avs_feat_vis_side(const struct avs_feat_vis *v, int side, int s);

void avs_feat_vis_ws_init(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H,
                          int W);
void avs_feat_vis_ws_free(struct avs_feat_vis_ws *w); /* any state of a zeroed struct */
/* As avs_pvt_fwd_kept / avs_pvt_gradcam_kept / avs_pvt_gradcam (model/pvt.h). */
void avs_feat_vis_fwd_kept(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                           float *const stage[4], float *logits, const float *image, int N);
void avs_feat_vis_gradcam_kept(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                               float *const gradcam[4], const int *target);
void avs_feat_vis_gradcam(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                          float *const gradcam[4], float *const stage[4], float *logits,
                          const float *image, const int *target, int N);
/* image [N,3,H,W] -> stage maps and logits (NULL: not wanted), nothing kept. */
void avs_feat_vis_fwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                      float *const stage[4], float *logits, const float *image, int N);

/* ---- fine-tuning (features/vis_train.c) ---- */

/* 0 when the encoder has a full backward, else -1 with err naming the set's encoder `name`,
 * those that fine-tune and the way out (--mode frozen). */
int avs_feat_vis_trainable(const struct avs_feat_vis *v, const char *name, struct avs_err *err);
/* A workspace for every pass (as _ws_init, plus the full backward) on N images of H x W;
 * trainable encoders only; the frame size was checked at load. */
void avs_feat_vis_ws_init_train(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N,
                                int H, int W);
/* As avs_pvt_bwd / avs_swin_bwd: forward (stage, logits written), then the backward from
 * dstage[s] (NULL entries: zero) and dlogits (NULL: zero); gradients ADDED into grads (a set
 * over avs_feat_vis_spec, zeroed by the caller). TRAIN workspace. */
void avs_feat_vis_bwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                      struct avs_tensor_set *grads, float *const stage[4], float *logits,
                      const float *image, const float *const dstage[4], const float *dlogits,
                      int N);
/* The encoder's parameters (official names; Adam runs over the set's arena) and their size
 * table (*np entries). */
const struct avs_tensor_set *avs_feat_vis_params(const struct avs_feat_vis *v);
const struct avs_tensor_spec *avs_feat_vis_spec(const struct avs_feat_vis *v, int *np);
/* "pvt", "swin", "resnet": the family, in checkpoint formats ("avs-<family>-finetune"). */
const char *avs_feat_vis_family(const struct avs_feat_vis *v);
/* Every parameter from f (an open safetensors file: official names, "module." accepted; the
 * buffers the official files carry and we recompute are skipped, as are tensors whose names
 * start with skip, e.g. "adam." for the optimiser state of our checkpoints; skip NULL: none).
 * Errors name the file and the tensor. */
int avs_feat_vis_load_st(struct avs_feat_vis *v, const struct avs_st_file *f, const char *skip,
                         struct avs_err *err);

#endif
