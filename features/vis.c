/* features/vis.c: the feature set's visual encoder, PVTv2, Swin or ResNet-50 (features/vis.h). */
#include "features/vis.h"

#include <string.h>

static int load_resnet(struct avs_feat_vis *v, const char *file, uint64_t seed,
                       struct avs_err *err)
{
    if (file && avs_resnet_load(&v->rn, file, err))
        return avs_err_wrap(err, "loading the visual encoder (check --visual resnet50=FILE)");
    if (!file)
        avs_resnet_init_random(&v->rn, 64, 1000, seed);
    v->kind = AVS_FEAT_VIS_RESNET, v->classes = v->rn.classes;
    return 0;
}

int avs_feat_vis_load(struct avs_feat_vis *v, const char *name, const char *file, uint64_t seed,
                      int H, int W, struct avs_err *err)
{
    struct avs_pvt_cfg pc;
    struct avs_swin_cfg sc;
    memset(v, 0, sizeof *v);
    if (!strcmp(name, "resnet50"))
        return load_resnet(v, file, seed, err);
    if (!avs_pvt_cfg_variant(&pc, name)) {
        pc.classes = 1000;
        if (file && avs_pvt_load(&v->pvt, &pc, file, err))
            return avs_err_wrap(err, "loading the visual encoder (check --visual %s=FILE)", name);
        if (!file)
            avs_pvt_init_random(&v->pvt, &pc, seed);
        v->kind = AVS_FEAT_VIS_PVT, v->classes = v->pvt.cfg.classes;
        return 0;
    }
    if (avs_swin_cfg_variant(&sc, name))
        return avs_err_set(err, "--visual %s: unknown encoder (%s)", name, AVS_FEAT_VIS_NAMES);
    if (avs_swin_check_size(&sc, H, W, err))
        return avs_err_wrap(err, "--visual %s on the store's %dx%d frames", name, W, H);
    if (file && avs_swin_load(&v->swin, &sc, file, err))
        return avs_err_wrap(err, "loading the visual encoder (check --visual %s=FILE)", name);
    if (!file)
        avs_swin_init_random(&v->swin, &sc, seed);
    v->kind = AVS_FEAT_VIS_SWIN, v->classes = v->swin.cfg.classes;
    return 0;
}

void avs_feat_vis_free(struct avs_feat_vis *v)
{
    if (v->kind == AVS_FEAT_VIS_PVT)
        avs_pvt_free(&v->pvt);
    if (v->kind == AVS_FEAT_VIS_SWIN)
        avs_swin_free(&v->swin);
    if (v->kind == AVS_FEAT_VIS_RESNET)
        avs_resnet_free(&v->rn);
    memset(v, 0, sizeof *v);
}

int avs_feat_vis_dim(const struct avs_feat_vis *v, int s)
{
    switch (v->kind) {
    case AVS_FEAT_VIS_SWIN: return avs_swin_dim(&v->swin.cfg, s);
    case AVS_FEAT_VIS_RESNET: return v->rn.dims[s];
    default: return v->pvt.cfg.dims[s];
    }
}

int avs_feat_vis_side(const struct avs_feat_vis *v, int side, int s)
{
    switch (v->kind) {
    case AVS_FEAT_VIS_SWIN: return avs_swin_side(side, s);
    case AVS_FEAT_VIS_RESNET: return avs_resnet_side(side, s);
    default: return avs_pvt_side(side, s);
    }
}

void avs_feat_vis_ws_init(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H,
                          int W)
{
    memset(w, 0, sizeof *w);
    if (v->kind == AVS_FEAT_VIS_PVT) {
        avs_pvt_ws_init(&w->pvt, &v->pvt, N, H, W, AVS_PVT_GRADCAM);
        return;
    }
    if (v->kind == AVS_FEAT_VIS_RESNET) {
        avs_resnet_ws_init(&w->rn, &v->rn, N, H, W);
        return;
    }
    struct avs_err err;
    int rc = avs_swin_ws_init(&w->swin, &v->swin, N, H, W, AVS_SWIN_GRADCAM, &err);
    AVS_ASSERT(rc == 0); /* the frame size was checked at load */
}

void avs_feat_vis_ws_free(struct avs_feat_vis_ws *w)
{
    avs_pvt_ws_free(&w->pvt);
    avs_swin_ws_free(&w->swin);
    avs_resnet_ws_free(&w->rn);
}

void avs_feat_vis_fwd_kept(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                           float *const stage[4], float *logits, const float *image, int N)
{
    if (v->kind == AVS_FEAT_VIS_PVT)
        avs_pvt_fwd_kept(&v->pvt, &w->pvt, stage, logits, image, N);
    else if (v->kind == AVS_FEAT_VIS_RESNET)
        avs_resnet_fwd_kept(&v->rn, &w->rn, stage, logits, image, N);
    else
        avs_swin_fwd_kept(&v->swin, &w->swin, stage, logits, image, N);
}

void avs_feat_vis_gradcam_kept(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                               float *const gradcam[4], const int *target)
{
    if (v->kind == AVS_FEAT_VIS_PVT)
        avs_pvt_gradcam_kept(&v->pvt, &w->pvt, gradcam, target);
    else if (v->kind == AVS_FEAT_VIS_RESNET)
        avs_resnet_gradcam_kept(&v->rn, &w->rn, gradcam, target);
    else
        avs_swin_gradcam_kept(&v->swin, &w->swin, gradcam, target);
}

void avs_feat_vis_gradcam(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                          float *const gradcam[4], float *const stage[4], float *logits,
                          const float *image, const int *target, int N)
{
    if (v->kind == AVS_FEAT_VIS_PVT)
        avs_pvt_gradcam(&v->pvt, &w->pvt, gradcam, stage, logits, image, target, N);
    else if (v->kind == AVS_FEAT_VIS_RESNET)
        avs_resnet_gradcam(&v->rn, &w->rn, gradcam, stage, logits, image, target, N);
    else
        avs_swin_gradcam(&v->swin, &w->swin, gradcam, stage, logits, image, target, N);
}

void avs_feat_vis_fwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                      float *const stage[4], float *logits, const float *image, int N)
{
    if (v->kind == AVS_FEAT_VIS_PVT)
        avs_pvt_fwd(&v->pvt, &w->pvt, stage, logits, image, N);
    else if (v->kind == AVS_FEAT_VIS_RESNET)
        avs_resnet_fwd(&v->rn, &w->rn, stage, logits, image, N);
    else
        avs_swin_fwd(&v->swin, &w->swin, stage, logits, image, N);
}
