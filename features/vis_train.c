/* features/vis_train.c: fine-tuning the feature set's visual encoder (features/vis.h): which
 * encoders have a full backward, their TRAIN workspaces and backward passes, parameter access
 * and checkpoint loading. The encoders that train are rows of one table (train_of); an encoder
 * without a row is refused by avs_feat_vis_trainable. */
#include "features/vis.h"

#include <string.h>

#include "model/params.h"

/* What fine-tuning needs of one encoder beyond the forward passes of features/vis.c. */
struct vis_train {
    void (*ws_init)(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H, int W);
    void (*bwd)(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                struct avs_tensor_set *grads, float *const stage[4], float *logits,
                const float *image, const float *const dstage[4], const float *dlogits, int N);
    const char *family; /* checkpoint format "avs-<family>-finetune" */
    const char *what;   /* in load errors */
};

/* ---- PVTv2 ---- */

static void pvt_ws_init(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H,
                        int W)
{
    avs_pvt_ws_init(&w->pvt, &v->pvt, N, H, W, AVS_PVT_TRAIN);
}

static void pvt_bwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                    struct avs_tensor_set *grads, float *const stage[4], float *logits,
                    const float *image, const float *const dstage[4], const float *dlogits, int N)
{
    avs_pvt_bwd(&v->pvt, &w->pvt, grads, stage, logits, image, dstage, dlogits, N);
}

static const struct vis_train pvt_train = {pvt_ws_init, pvt_bwd, "pvt", "this PVTv2 variant"};

/* ---- Swin ---- */

static void swin_ws_init(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H,
                         int W)
{
    struct avs_err err;
    int rc = avs_swin_ws_init(&w->swin, &v->swin, N, H, W, AVS_SWIN_TRAIN, &err);
    AVS_ASSERT(rc == 0); /* the frame size was checked at load */
}

static void swin_bwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                     struct avs_tensor_set *grads, float *const stage[4], float *logits,
                     const float *image, const float *const dstage[4], const float *dlogits, int N)
{
    avs_swin_bwd(&v->swin, &w->swin, grads, stage, logits, image, dstage, dlogits, N);
}

static const struct vis_train swin_train = {swin_ws_init, swin_bwd, "swin", "this Swin variant"};

/* ---- ResNet-50 ---- */

/* BatchNorm on the running statistics (torchvision's eval mode): the mode whose gradients are
 * within 3x PyTorch float32's distance; AVSBench's train.py normalises with batch statistics
 * (AVS_RESNET_TRAIN_BATCHSTATS, model/resnet.h), which small fine-tuning batches make noisy. */
static void resnet_ws_init(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N, int H,
                           int W)
{
    avs_resnet_ws_init_mode(&w->rn, &v->rn, N, H, W, AVS_RESNET_TRAIN);
}

static void resnet_bwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                       struct avs_tensor_set *grads, float *const stage[4], float *logits,
                       const float *image, const float *const dstage[4], const float *dlogits,
                       int N)
{
    avs_resnet_bwd(&v->rn, &w->rn, grads, stage, logits, image, dstage, dlogits, N);
}

static const struct vis_train resnet_train = {resnet_ws_init, resnet_bwd, "resnet", "ResNet-50"};

/* ---- dispatch ---- */

/* The row of v's encoder, NULL when it has no backward. */
static const struct vis_train *train_of(const struct avs_feat_vis *v)
{
    switch (v->kind) {
    case AVS_FEAT_VIS_PVT: return &pvt_train;
    case AVS_FEAT_VIS_SWIN: return &swin_train;
    case AVS_FEAT_VIS_RESNET: return &resnet_train;
    default: return NULL;
    }
}

/* The encoders with a row in train_of (for messages). */
#define AVS_FEAT_VIS_FINETUNE "PVTv2, Swin and ResNet-50"

int avs_feat_vis_trainable(const struct avs_feat_vis *v, const char *name, struct avs_err *err)
{
    if (train_of(v))
        return 0;
    return avs_err_set(err, "--mode finetune trains " AVS_FEAT_VIS_FINETUNE " backbones; this "
                       "set's visual encoder is %s (no backward here yet): train it with --mode "
                       "frozen", name ? name : "another");
}

void avs_feat_vis_ws_init_train(struct avs_feat_vis_ws *w, const struct avs_feat_vis *v, int N,
                                int H, int W)
{
    const struct vis_train *t = train_of(v);
    AVS_ASSERT(t);
    memset(w, 0, sizeof *w);
    t->ws_init(w, v, N, H, W);
}

void avs_feat_vis_bwd(const struct avs_feat_vis *v, struct avs_feat_vis_ws *w,
                      struct avs_tensor_set *grads, float *const stage[4], float *logits,
                      const float *image, const float *const dstage[4], const float *dlogits,
                      int N)
{
    const struct vis_train *t = train_of(v);
    AVS_ASSERT(t);
    t->bwd(v, w, grads, stage, logits, image, dstage, dlogits, N);
}

const char *avs_feat_vis_family(const struct avs_feat_vis *v)
{
    const struct vis_train *t = train_of(v);
    return t ? t->family : "none";
}

/* ---- parameters ---- */

/* v's parameter set (every kind has one). */
static struct avs_tensor_set *params_of(struct avs_feat_vis *v)
{
    switch (v->kind) {
    case AVS_FEAT_VIS_PVT: return &v->pvt.params;
    case AVS_FEAT_VIS_SWIN: return &v->swin.params;
    case AVS_FEAT_VIS_RESNET: return &v->rn.params;
    default: AVS_ASSERT(0); return NULL;
    }
}

const struct avs_tensor_set *avs_feat_vis_params(const struct avs_feat_vis *v)
{
    return params_of((struct avs_feat_vis *)v); /* const again on the way out */
}

const struct avs_tensor_spec *avs_feat_vis_spec(const struct avs_feat_vis *v, int *np)
{
    switch (v->kind) {
    case AVS_FEAT_VIS_PVT: *np = v->pvt.np; return v->pvt.spec;
    case AVS_FEAT_VIS_SWIN: *np = v->swin.np; return v->swin.spec;
    case AVS_FEAT_VIS_RESNET: *np = v->rn.specs.n; return v->rn.specs.v;
    default: AVS_ASSERT(0); return NULL;
    }
}

struct skip_ctx {
    const char *prefix;
    enum avs_feat_vis_kind kind;
};

/* Tensors of the file that are not the encoder's parameters but belong there: taken. */
static int skip_tensor(void *ctx, const struct avs_st_tensor *t, struct avs_err *err)
{
    const struct skip_ctx *c = ctx;
    (void)err;
    if (c->prefix && !strncmp(t->name, c->prefix, strlen(c->prefix)))
        return 1;
    return c->kind == AVS_FEAT_VIS_SWIN && avs_swin_is_buffer(t->name);
}

int avs_feat_vis_load_st(struct avs_feat_vis *v, const struct avs_st_file *f, const char *skip,
                         struct avs_err *err)
{
    const struct vis_train *t = train_of(v);
    struct skip_ctx c = {skip, v->kind};
    struct avs_params_io io = {.sets = {params_of(v)}, .nsets = 1, .extra = skip_tensor,
                               .ctx = &c, .what = t ? t->what : "this encoder"};
    return avs_params_load(f, &io, err);
}
