/* features/visual.c: the visual encoder of a feature set by name (features/run.h): PVTv2
 * (pvt_v2_b0..b5) or ResNet-50 (resnet50), loaded or random, and its passes behind one set of
 * calls, so that the record layout, the chunked Grad-CAM and the clip path do not care which. */
#include <string.h>

#include "features/run.h"

int avs_feat_vis_is_resnet(const char *name)
{
    return name && !strcmp(name, "resnet50");
}

int avs_feat_vis_load(struct avs_feat_enc *e, const char *visual, const char *file, uint64_t seed,
                      struct avs_err *err)
{
    if (avs_feat_vis_is_resnet(visual)) {
        if (file) {
            if (avs_resnet_load(&e->rn, file, err))
                return avs_err_wrap(err, "loading the visual encoder (check --visual resnet50=FILE)");
        } else
            avs_resnet_init_random(&e->rn, 64, 1000, seed);
        e->have_rn = 1;
        memcpy(e->dims, e->rn.dims, sizeof e->dims);
        if (!e->rn.classes)
            return avs_err_set(err, "%s: no ImageNet head (fc.weight/fc.bias): C3IM needs the "
                               "visual logits; convert the full classification checkpoint", file);
        e->V = e->rn.classes;
        return 0;
    }
    struct avs_pvt_cfg cfg;
    if (avs_pvt_cfg_variant(&cfg, visual))
        return avs_err_set(err, "--visual %s: unknown encoder (pvt_v2_b0..pvt_v2_b5, resnet50)",
                           visual);
    cfg.classes = 1000;
    if (file) {
        if (avs_pvt_load(&e->pvt, &cfg, file, err))
            return avs_err_wrap(err, "loading the visual encoder (check --visual %s=FILE)", visual);
    } else
        avs_pvt_init_random(&e->pvt, &cfg, seed);
    e->have_pvt = 1;
    memcpy(e->dims, e->pvt.cfg.dims, sizeof e->dims);
    if (!e->pvt.cfg.classes)
        return avs_err_set(err, "%s: no ImageNet head (head.weight/head.bias): C3IM needs the "
                           "visual logits; convert the full classification checkpoint", file);
    e->V = e->pvt.cfg.classes;
    return 0;
}

void avs_feat_vis_free(struct avs_feat_enc *e)
{
    if (e->have_pvt)
        avs_pvt_free(&e->pvt);
    if (e->have_rn)
        avs_resnet_free(&e->rn);
    e->have_pvt = e->have_rn = 0;
}

int avs_feat_side(const struct avs_feat_enc *e, int side, int s)
{
    return e->have_rn ? avs_resnet_side(side, s) : avs_pvt_side(side, s);
}

void avs_feat_vws_init(struct avs_feat_vws *w, const struct avs_feat_enc *e, int N)
{
    memset(w, 0, sizeof *w);
    if (e->have_rn)
        avs_resnet_ws_init(&w->rn, &e->rn, N, e->H, e->W);
    else
        avs_pvt_ws_init(&w->pvt, &e->pvt, N, e->H, e->W, AVS_PVT_GRADCAM);
}

void avs_feat_vws_free(struct avs_feat_vws *w)
{
    avs_pvt_ws_free(&w->pvt);
    avs_resnet_ws_free(&w->rn);
}

void avs_feat_vis_fwd_kept(const struct avs_feat_enc *e, struct avs_feat_vws *w,
                           float *const stage[4], float *logits, const float *image, int N)
{
    if (e->have_rn)
        avs_resnet_fwd_kept(&e->rn, &w->rn, stage, logits, image, N);
    else
        avs_pvt_fwd_kept(&e->pvt, &w->pvt, stage, logits, image, N);
}

void avs_feat_vis_gradcam_kept(const struct avs_feat_enc *e, struct avs_feat_vws *w,
                               float *const gradcam[4], const int *target)
{
    if (e->have_rn)
        avs_resnet_gradcam_kept(&e->rn, &w->rn, gradcam, target);
    else
        avs_pvt_gradcam_kept(&e->pvt, &w->pvt, gradcam, target);
}

void avs_feat_vis_gradcam(const struct avs_feat_enc *e, struct avs_feat_vws *w,
                          float *const gradcam[4], float *const stage[4], float *logits,
                          const float *image, const int *target, int N)
{
    if (e->have_rn)
        avs_resnet_gradcam(&e->rn, &w->rn, gradcam, stage, logits, image, target, N);
    else
        avs_pvt_gradcam(&e->pvt, &w->pvt, gradcam, stage, logits, image, target, N);
}
