/* model/swin_pass.c: Swin forward and Grad-CAM backward (swin.h; ref: microsoft/Swin-
 * Transformer models/swin_transformer.py: PatchEmbed, WindowAttention, SwinTransformerBlock,
 * PatchMerging, SwinTransformer.forward_features), in a workspace made at init
 * (model/swin_ws.c). Every step is a backend primitive; parameters are found by the size
 * table's indices (m->ix), never by name. The window partition with its cyclic shift, its
 * reverse and patch merging are row gathers by the workspace's index maps. */
#include <math.h>
#include <string.h>

#include "backend/ops.h"
#include "model/nn.h"
#include "model/swin_internal.h"

#define P(i) ((const float *)m->params.t[(i)].data)

/* dx [M,I] = dy [M,O] W [O,I] (overwrite): a Linear's input gradient. */
static void lin_dx(float *dx, const float *dy, const float *w, size_t M, int I, int O)
{
    avs_ops()->gemm(0, 0, (int)M, I, O, 1.0f, dy, O, w, I, 0.0f, dx, I);
}

/* ---- forward ---- */

/* The bias of every window and head for a block into K->bm (shifted: + the mask), and how it
 * broadcasts over the scores [N*nW, nh, WL*WL]. */
static const float *attn_bias(const struct avs_swin *m, const struct avs_swin_block_ix *ix,
                              const struct swin_geo *g, const struct swin_maps *mp, int shifted,
                              const struct avs_swin_keep *K, int N, struct avs_bcast *bc)
{
    const struct avs_ops *op = avs_ops();
    int B = g->nh * g->WL * g->WL;
    op->gather_rows(K->bias, P(ix->rpb), mp->rpb, B, 1);
    if (!shifted) {
        *bc = (struct avs_bcast){N * g->nW, B, 1, 0, 1, 0};
        return K->bias;
    }
    struct avs_bcast per = {g->nW, g->nh, g->WL * g->WL, 0, 1, 1};
    op->add_fwd(K->bm, mp->mask, K->bias, &per);
    *bc = (struct avs_bcast){N, g->nW * B, 1, 0, 1, 0};
    return K->bm;
}

/* scores, bias, softmax, weighted values per (window, head): qkv [M,3C] (q | k | v, head h at
 * columns h*hd), P [N*nW,nh,WL,WL], ow [M,C]. */
static void heads_fwd(const struct swin_geo *g, int N, const struct swin_blk *b, float *ow,
                      const float *bias, const struct avs_bcast *bc)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, WL = g->WL, hd = g->hd, nwin = N * g->nW;
    float scale = 1.0f / sqrtf((float)hd);
    for (int wi = 0; wi < nwin; wi++)
        for (int h = 0; h < g->nh; h++) {
            const float *q = b->qkv + (size_t)wi * WL * 3 * C + h * hd;
            op->gemm(0, 1, WL, WL, hd, scale, q, 3 * C, q + C, 3 * C, 0.0f,
                     b->P + ((size_t)wi * g->nh + h) * WL * WL, WL);
        }
    op->add_fwd(b->P, b->P, bias, bc);
    op->softmax_fwd(b->P, b->P, nwin * g->nh * WL, WL);
    for (int wi = 0; wi < nwin; wi++)
        for (int h = 0; h < g->nh; h++) {
            const float *v = b->qkv + (size_t)wi * WL * 3 * C + 2 * C + h * hd;
            op->gemm(0, 0, WL, hd, WL, 1.0f, b->P + ((size_t)wi * g->nh + h) * WL * WL, WL, v,
                     3 * C, 0.0f, ow + (size_t)wi * WL * C + h * hd, C);
        }
}

/* x [M,C] (token order) = one Swin block of x; b keeps what the backward needs. */
static void block_fwd(const struct avs_swin *m, const struct avs_swin_block_ix *ix,
                      const struct swin_geo *g, const struct swin_maps *mp, int shifted, int N,
                      float *x, struct swin_blk *b, const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    size_t M = (size_t)N * g->L, MC = M * g->C;
    int C = g->C;
    op->copy(b->xin, x, MC * sizeof(float));
    op->layernorm_fwd(K->t1, b->mean1, b->rstd1, x, P(ix->norm1[0]), P(ix->norm1[1]), (int)M, C,
                      1, AVS_SWIN_EPS);
    op->gather_rows(K->yw, K->t1, mp->part[shifted], (int)M, C);
    avs_linear_fwd(b->qkv, K->yw, P(ix->qkv[0]), P(ix->qkv[1]), (int)M, C, 3 * C);
    struct avs_bcast bc;
    const float *bias = attn_bias(m, ix, g, mp, shifted, K, N, &bc);
    heads_fwd(g, N, b, K->ow, bias, &bc);
    avs_linear_fwd(K->t1, K->ow, P(ix->proj[0]), P(ix->proj[1]), (int)M, C, C);
    op->gather_rows(K->t2, K->t1, mp->rev[shifted], (int)M, C);
    op->axpy(x, 1.0f, K->t2, MC);
    op->copy(b->xmid, x, MC * sizeof(float));
    op->layernorm_fwd(K->y2, b->mean2, b->rstd2, x, P(ix->norm2[0]), P(ix->norm2[1]), (int)M, C,
                      1, AVS_SWIN_EPS);
    avs_linear_fwd(b->h1, K->y2, P(ix->fc1[0]), P(ix->fc1[1]), (int)M, C, 4 * C);
    op->gelu_fwd(K->h3, b->h1, 4 * MC);
    avs_linear_fwd(K->t1, K->h3, P(ix->fc2[0]), P(ix->fc2[1]), (int)M, 4 * C, C);
    op->axpy(x, 1.0f, K->t1, MC);
}

/* image [N,3,H,W] -> stage 1 tokens (4x4 stride-4 conv, tokens, LayerNorm). */
static void embed_fwd(const struct avs_swin *m, const struct avs_swin_ws *w, const float *image,
                      int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    struct swin_geo g;
    swin_geo(&g, &m->cfg, N, w->H, w->W, 0);
    struct avs_conv2d pe;
    avs_conv2d_geom(&pe, N, 3, w->H, w->W, g.C, 4, 4, 4, 0, 1, 1);
    float *map = K->conv + avs_conv2d_ws(&pe);
    op->conv2d_fwd(map, image, P(m->pe[0]), P(m->pe[1]), &pe, K->conv);
    op->transpose(K->pe_pre, map, N, g.C, g.L);
    op->layernorm_fwd(K->st[0].tok, K->pe_mean, K->pe_rstd, K->pe_pre, P(m->pe_norm[0]),
                      P(m->pe_norm[1]), (int)g.M, g.C, 1, AVS_SWIN_EPS);
}

/* stage s tokens -> stage s+1 tokens: 2x2 gather, LayerNorm(4C), reduction (no bias). */
static void merge_fwd(const struct avs_swin *m, struct swin_stage *st, struct swin_stage *next,
                      const struct swin_geo *g, const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_swin_stage_ix *ix = &m->ix[g->s];
    int M4 = (int)(g->M / 4), C4 = 4 * g->C;
    op->gather_rows(st->mg, st->tok, st->map.merge, (int)g->M, g->C);
    op->layernorm_fwd(K->t1, st->mmean, st->mrstd, st->mg, P(ix->mnorm[0]), P(ix->mnorm[1]), M4,
                      C4, 1, AVS_SWIN_EPS);
    avs_linear_fwd(next->tok, K->t1, P(ix->red), NULL, M4, C4, 2 * g->C);
}

/* Final norm, token mean, head. */
static void head_fwd(const struct avs_swin *m, const struct avs_swin_ws *w, float *logits, int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    struct swin_geo g;
    swin_geo(&g, &m->cfg, N, w->H, w->W, 3);
    op->layernorm_fwd(K->fout, K->fmean, K->frstd, K->st[3].tok, P(m->norm[0]), P(m->norm[1]),
                      (int)g.M, g.C, 1, AVS_SWIN_EPS);
    op->tokmean_fwd(K->mt, K->fout, N, g.L, g.C);
    avs_linear_fwd(logits, K->mt, P(m->head[0]), P(m->head[1]), N, g.C, m->cfg.classes);
}

static void forward(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                    float *logits, const float *image, int N)
{
    AVS_ASSERT(N > 0 && N <= w->N && (!logits || m->cfg.classes));
    struct avs_swin_keep *K = w->k;
    embed_fwd(m, w, image, N);
    for (int s = 0; s < 4; s++) {
        struct swin_geo g;
        swin_geo(&g, &m->cfg, N, w->H, w->W, s);
        struct swin_stage *st = &K->st[s];
        for (int i = 0; i < m->cfg.depths[s]; i++)
            block_fwd(m, &m->ix[s].blk[i], &g, &st->map, (i & 1) && g.shift, N, st->tok,
                      &st->blk[st->nblk > 1 ? i : 0], K);
        if (stage && stage[s])
            avs_ops()->transpose(stage[s], st->tok, N, g.L, g.C);
        if (s < 3)
            merge_fwd(m, st, &K->st[s + 1], &g, K);
    }
    if (logits)
        head_fwd(m, w, logits, N);
}

void avs_swin_fwd(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                  float *logits, const float *image, int N)
{
    forward(m, w, stage, logits, image, N);
    w->kept = 0;
}

void avs_swin_fwd_kept(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                       float *logits, const float *image, int N)
{
    AVS_ASSERT(w->mode == AVS_SWIN_GRADCAM && logits);
    forward(m, w, stage, logits, image, N);
    w->kept = 1, w->n = N;
}

/* ---- Grad-CAM backward (input gradients only: the parameters are constants here) ---- */

/* dqkv [M,3C] from dO (da, [M,C] window order) through the heads of block b. */
static void heads_bwd(const struct swin_geo *g, int N, const struct swin_blk *b,
                      const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, WL = g->WL, hd = g->hd, nwin = N * g->nW, WW = WL * WL;
    float scale = 1.0f / sqrtf((float)hd);
    op->zero(K->dqkv, (size_t)N * g->L * 3 * C);
    for (int wi = 0; wi < nwin; wi++)
        for (int h = 0; h < g->nh; h++) {
            const float *q = b->qkv + (size_t)wi * WL * 3 * C + h * hd, *dO = K->da + (size_t)wi * WL * C + h * hd;
            size_t at = ((size_t)wi * g->nh + h) * WW;
            op->gemm(0, 1, WL, WL, hd, 1.0f, dO, C, q + 2 * C, 3 * C, 0.0f, K->dP + at, WL);
            op->gemm(1, 0, WL, hd, WL, 1.0f, b->P + at, WL, dO, C, 1.0f,
                     K->dqkv + (size_t)wi * WL * 3 * C + 2 * C + h * hd, 3 * C);
        }
    size_t rows = (size_t)nwin * g->nh * WL;
    op->zero(K->dS, rows * WL);
    op->softmax_bwd(K->dS, K->dP, b->P, (int)rows, WL);
    for (int wi = 0; wi < nwin; wi++)
        for (int h = 0; h < g->nh; h++) {
            const float *q = b->qkv + (size_t)wi * WL * 3 * C + h * hd;
            float *dq = K->dqkv + (size_t)wi * WL * 3 * C + h * hd;
            const float *dS = K->dS + ((size_t)wi * g->nh + h) * WW;
            op->gemm(0, 0, WL, hd, WL, scale, dS, WL, q + C, 3 * C, 1.0f, dq, 3 * C);
            op->gemm(1, 0, WL, hd, WL, scale, dS, WL, q, 3 * C, 1.0f, dq + C, 3 * C);
        }
}

/* K->dx [M,C]: the gradient of block b's output in, of its input out. */
static void block_bwd(const struct avs_swin *m, const struct avs_swin_block_ix *ix,
                      const struct swin_geo *g, const struct swin_maps *mp, int shifted, int N,
                      const struct swin_blk *b, const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    size_t M = (size_t)N * g->L;
    int C = g->C;
    lin_dx(K->dh3, K->dx, P(ix->fc2[0]), M, 4 * C, C);
    op->zero(K->dh1, 4 * M * C);
    op->gelu_bwd(K->dh1, K->dh3, b->h1, 4 * M * C);
    lin_dx(K->da, K->dh1, P(ix->fc1[0]), M, C, 4 * C);
    op->layernorm_bwd(K->dx, NULL, NULL, K->da, b->xmid, b->mean2, b->rstd2, P(ix->norm2[0]),
                      (int)M, C, 1);
    op->gather_rows(K->db, K->dx, mp->part[shifted], (int)M, C);
    lin_dx(K->da, K->db, P(ix->proj[0]), M, C, C);
    heads_bwd(g, N, b, K);
    lin_dx(K->db, K->dqkv, P(ix->qkv[0]), M, C, 3 * C);
    op->gather_rows(K->da, K->db, mp->rev[shifted], (int)M, C);
    op->layernorm_bwd(K->dx, NULL, NULL, K->da, b->xin, b->mean1, b->rstd1, P(ix->norm1[0]),
                      (int)M, C, 1);
}

/* K->dx: the gradient of stage s+1's input in ([M_{s+1}, 2C]), of stage s's last output out. */
static void merge_bwd(const struct avs_swin *m, const struct swin_stage *st,
                      const struct swin_geo *g, const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_swin_stage_ix *ix = &m->ix[g->s];
    int M4 = (int)(g->M / 4), C4 = 4 * g->C;
    lin_dx(K->db, K->dx, P(ix->red), (size_t)M4, C4, 2 * g->C);
    op->zero(K->da, g->M * g->C);
    op->layernorm_bwd(K->da, NULL, NULL, K->db, st->mg, st->mmean, st->mrstd, P(ix->mnorm[0]), M4,
                      C4, 1);
    op->gather_rows(K->dx, K->da, st->map.merge_inv, (int)g->M, g->C);
}

/* K->dx = d sum_n logits[n, target[n]] / d (stage 4's last output). */
static void head_bwd(const struct avs_swin *m, struct avs_swin_ws *w, const int *target, int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    int cls = m->cfg.classes;
    struct swin_geo g;
    swin_geo(&g, &m->cfg, N, w->H, w->W, 3);
    memset(w->onehot, 0, (size_t)N * cls * sizeof(float));
    for (int n = 0; n < N; n++) {
        AVS_ASSERT(target[n] >= 0 && target[n] < cls);
        w->onehot[(size_t)n * cls + target[n]] = 1.0f;
    }
    op->upload(K->dl, w->onehot, (size_t)N * cls * sizeof(float));
    lin_dx(K->dmt, K->dl, P(m->head[0]), (size_t)N, g.C, cls);
    op->zero(K->da, g.M * g.C);
    op->tokmean_bwd(K->da, K->dmt, N, g.L, g.C);
    op->zero(K->dx, g.M * g.C);
    op->layernorm_bwd(K->dx, NULL, NULL, K->da, K->st[3].tok, K->fmean, K->frstd, P(m->norm[0]),
                      (int)g.M, g.C, 1);
}

void avs_swin_gradcam_kept(const struct avs_swin *m, struct avs_swin_ws *w,
                           float *const gradcam[4], const int *target)
{
    AVS_ASSERT(w->kept && w->mode == AVS_SWIN_GRADCAM);
    int N = w->n;
    struct avs_swin_keep *K = w->k;
    head_bwd(m, w, target, N);
    for (int s = 3; s >= 0; s--) {
        struct swin_geo g;
        swin_geo(&g, &m->cfg, N, w->H, w->W, s);
        avs_ops()->tokmean_fwd(gradcam[s], K->dx, N, g.L, g.C);
        if (s == 0)
            break;
        for (int i = m->cfg.depths[s] - 1; i >= 0; i--)
            block_bwd(m, &m->ix[s].blk[i], &g, &K->st[s].map, (i & 1) && g.shift, N,
                      &K->st[s].blk[i], K);
        struct swin_geo gp;
        swin_geo(&gp, &m->cfg, N, w->H, w->W, s - 1);
        merge_bwd(m, &K->st[s - 1], &gp, K);
    }
    w->kept = 0;
}

void avs_swin_gradcam(const struct avs_swin *m, struct avs_swin_ws *w, float *const gradcam[4],
                      float *const stage[4], float *logits, const float *image, const int *target,
                      int N)
{
    avs_swin_fwd_kept(m, w, stage, logits, image, N);
    avs_swin_gradcam_kept(m, w, gradcam, target);
}
