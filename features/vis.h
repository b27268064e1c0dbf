/* features/vis.h: internal to features/: the feature set's visual encoder, whichever it is
 * (PVTv2 pvt_v2_bX, Swin swin_* or ResNet-50 resnet50), behind the few calls avs-features makes: load by name,
 * stage shapes, a Grad-CAM workspace, the kept forward and the two Grad-CAM passes.
 *
 *   struct avs_feat_vis v = {0};
 *   if (avs_feat_vis_load(&v, "swin_b", file_or_NULL, seed, H, W, &err)) ...;
 *   avs_feat_vis_dim(&v, s), avs_feat_vis_side(&v, H, s), v.classes
 */
#ifndef AVS_FEATURES_VIS_H
#define AVS_FEATURES_VIS_H

#include <stdint.h>

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
#define AVS_FEAT_VIS_NAMES "pvt_v2_b0..pvt_v2_b5, swin_t, swin_s, swin_b, swin_b_w12, resnet50"

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

#endif
