/* model/swin_internal.h: internal to model/swin*.c: a stage's geometry and where the tensors
 * of a workspace (struct avs_swin_ws) are. Users include model/swin.h.
 *
 * Layout: tokens [N,L,C] row-major (L = H*W of the stage grid, row by row), maps NCHW. Window
 * order: the same rows permuted to [N, nW, ws*ws, C] (windows row by row, tokens row by row
 * inside a window), after the cyclic shift for shifted blocks. Every tensor is carved for the
 * workspace's largest N with N outermost, so a pass on fewer images uses the leading part.
 */
#ifndef AVS_MODEL_SWIN_INTERNAL_H
#define AVS_MODEL_SWIN_INTERNAL_H

#include "model/swin.h"

#define AVS_SWIN_EPS 1e-5f       /* every LayerNorm (nn.LayerNorm default) */
#define AVS_SWIN_MASK (-100.0f)  /* between shifted-window regions (official value) */

struct swin_geo {
    int N, s, C, H, W, L, nh, hd, ws, WL, nW, shift; /* shift of the odd blocks (0: none) */
    size_t M;                                          /* N*L tokens */
};
void swin_geo(struct swin_geo *g, const struct avs_swin_cfg *c, int N, int H, int W, int s);

/* What one block keeps from its forward for the Grad-CAM backward. */
struct swin_blk {
    float *xin, *mean1, *rstd1; /* [M,C] block input (token order); LN1 statistics [M] */
    float *qkv;                 /* [M,3C] window order */
    float *P;                   /* [N*nW, nh, WL, WL] attention probabilities */
    float *xmid, *mean2, *rstd2; /* [M,C] after attention; LN2 statistics [M] */
    float *h1;                  /* [M,4C] fc1 output (GELU input) */
    /* TRAIN only (else NULL: the forward uses scratch): the Linear inputs the parameter
     * gradients need */
    float *yw, *ow, *y2, *h3;   /* [M,C] qkv input, proj input (window order), fc1 input; [M,4C] */
};

/* Index maps of a stage (int32, device): window order <-> token order, unshifted [0] and
 * shifted [1]; patch merging (s < 3); the bias-table lookup [nh*WL*WL]. */
struct swin_maps {
    int *part[2], *rev[2], *merge, *merge_inv, *rpb;
    float *mask; /* [nW, nh, WL*WL] shifted-window mask (shift > 0), else NULL */
};

struct swin_stage {
    float *tok;                  /* [M,C] the stage's tokens: input, then last block output */
    float *mg, *mmean, *mrstd;   /* s < 3: merged [M/4,4C] before its LN; LN statistics [M/4] */
    float *mgn;                  /* s < 3, TRAIN: the LN's output (the reduction's input) */
    struct swin_blk *blk;        /* [nblk]: depth (GRADCAM) or 1 (reused) */
    int nblk;
    struct swin_maps map;
};

struct avs_swin_keep {
    struct swin_stage st[4];
    float *pe_pre, *pe_mean, *pe_rstd; /* patch-embedding tokens before LN [M1,C1]; [M1] x2 */
    float *fmean, *frstd, *fout, *mt;  /* final norm statistics [M4] x2, output [M4,C4]; [N,C4] */
    /* scratch (one stage at a time, sized for the largest) */
    float *conv, *yw, *ow, *t1, *t2, *y2, *h3, *bias, *bm;
    size_t conv_cap;
    /* backward */
    float *dx, *da, *db, *dqkv, *dP, *dS, *dh1, *dh3, *dl, *dmt;
    float *dbias, *dbm; /* TRAIN: the bias of one window [nh*WL*WL], with the windows [nW*...] */
};

/* The forward of every pass (model/swin_pass.c): stage maps (NULL entries: not wanted), logits
 * (NULL: not wanted), activations into w's blocks. */
void swin_forward(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                  float *logits, const float *image, int N);

#endif
