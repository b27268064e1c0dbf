/* model/pvt_internal.h: internal to model/pvt*.c: a stage's geometry, and where the tensors
 * of a workspace (struct avs_pvt_ws) are. Users include model/pvt.h.
 *
 * Layout: tokens [N,L,C] row-major (L = H*W of the stage grid), maps NCHW. Every tensor below
 * is carved at workspace init for its largest batch N, with N outermost, so a pass on fewer
 * images uses the leading part of each.
 */
#ifndef AVS_MODEL_PVT_INTERNAL_H
#define AVS_MODEL_PVT_INTERNAL_H

#include "model/pvt.h"

#define AVS_PVT_EPS_BLOCK 1e-6f /* blocks and stage norms: partial(nn.LayerNorm, eps=1e-6) */
#define AVS_PVT_EPS_EMBED 1e-5f /* patch-embedding norm, attention's sr norm: nn.LayerNorm default */

/* Stage s on N images: its patch embedding (input Cin x Hin x Win -> C x H x W), attention
 * (nh heads, spatial reduction sr: Lk keys), MLP width hid. */
struct pvt_geo {
    int N, s, C, Cin, Hin, Win, H, W, L, Lk, hid, nh, sr;
    size_t M;                    /* N*L tokens */
    struct avs_conv2d pe, srg;   /* patch-embedding conv; sr conv (sr > 1) */
};
void pvt_geo(struct pvt_geo *g, const struct avs_pvt_cfg *c, int N, int H, int W, int s);

/* What one block keeps from its forward for its backward. */
struct pvt_blk {
    float *xin, *y1, *mean1, *rstd1; /* [M,C] block input, LN1 out; [M] */
    float *q;                        /* [M,C] */
    float *srin, *srpre, *srmean, *srrstd, *srtok; /* sr>1: [N,C,L], [N*Lk,C], [N*Lk] x2, [N*Lk,C] */
    float *kv;                       /* [N*Lk,2C]: k then v per token */
    float *P;                        /* [N,nh,L,Lk] attention probabilities */
    float *o;                        /* [M,C] attention output before proj */
    float *xmid, *y2, *mean2, *rstd2; /* [M,C] after attention, LN2 out; [M] */
    float *h1, *h2, *h3;             /* [M,hid]: fc1 out, dwconv out, GELU out */
};

/* Scratch of one stage's pass (stages overlap in the scratch arena: one stage at a time). */
struct pvt_scratch {
    float *t1, *t2;   /* [M,C] */
    float *att;       /* [L,Lk] one head's scores */
    float *conv;      /* conv workspace [conv_cap] (patch embedding, sr conv) */
    float *hbuf;      /* [2,M,hid] */
    float *dws;       /* depthwise conv scratch [avs_dwconv3_ws(N, H, hid)] */
    float *dmap;      /* backward, stage > 1: [N,C_{s-1},H_{s-1},W_{s-1}] */
    size_t conv_cap;
};

struct pvt_stage {
    float *pe_pre, *pe_mean, *pe_rstd; /* patch-embedding tokens before its LN [M,C]; [M] x2 */
    float *last, *n_mean, *n_rstd;     /* last block output (before the stage norm); [M] x2 */
    struct pvt_blk *blk;               /* [nblk]: depth (kept) or 1 (reused) */
    int nblk;
    struct pvt_scratch w;
};

struct avs_pvt_keep {
    struct pvt_stage st[4];
    float *mt;            /* [N,C_4] mean tokens, the head's input */
    /* backward (GRADCAM, TRAIN): token gradients of two stages in turn [max M*C], the
     * gradient at a stage's last block [max M*C], the logits' gradient [N,classes] and the
     * mean tokens' [N,C_4] */
    float *dtok[2], *dx, *dl, *dmt;
};

#endif
