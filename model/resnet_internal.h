/* model/resnet_internal.h: what ResNet-50's forward keeps for its backwards, shared by
 * model/resnet_pass.c (workspace, forward) and model/resnet_bwd.c (Grad-CAM and parameter
 * backward). Not a public header. */
#ifndef AVS_MODEL_RESNET_INTERNAL_H
#define AVS_MODEL_RESNET_INTERNAL_H

#include "backend/ops.h"
#include "model/resnet.h"

struct bn_keep {
    float *mean, *rstd; /* [C] what batchnorm_fwd saved (running or batch statistics) */
};

struct blk_keep {
    int C, H, W, P, Ho, Wo, stride, K; /* input [C,H,W], planes P, output [K,Ho,Wo] */
    float *r1, *r2, *y;                /* [N,P,H,W], [N,P,Ho,Wo], [N,K,Ho,Wo] */
    float *c[4];  /* TRAIN: the BatchNorms' inputs (conv1..3, downsample outputs); else NULL */
    struct bn_keep bn[4];              /* bn1..3, downsample */
};

struct avs_resnet_keep {
    int H1, W1, Hp, Wp; /* after conv1, after the max-pool */
    float *stem, *pool; /* [N,width,H1,W1] after bn1 + ReLU, [N,width,Hp,Wp] */
    float *stem_c;      /* TRAIN: conv1's output [N,width,H1,W1]; else NULL */
    struct bn_keep bn1;
    struct blk_keep *b[4];
    float *pooled, *dpool, *dlog; /* [N,dims[3]], [N,dims[3]], [N,classes] */
    float *scr;                   /* [N,K,Ho,Wo] the downsample branch */
    float *g[5];                  /* gradient buffers of the largest block (or stem) tensor */
    float *cws;                   /* conv workspace */
    size_t gmax, cwmax;
    int bn_train;                 /* TRAIN_BATCHSTATS: BatchNorm on the batch's statistics */
};

/* A k x k conv's geometry (padding k/2, no dilation). */
static inline void resnet_geom(struct avs_conv2d *g, int n, int C, int H, int W, int K, int k,
                               int stride)
{
    avs_conv2d_geom(g, n, C, H, W, K, k, k, stride, k / 2, 1, 1);
}

/* The forward on n images (stage, logits NULL: not wanted), every activation kept in w
 * (and in TRAIN mode the BatchNorms' inputs); sets w->n. */
void resnet_forward(const struct avs_resnet *m, struct avs_resnet_ws *w, float *const stage[4],
                    float *logits, const float *image, int n);

#endif
