/* model/swin_pass.c: Swin forward (swin.h; the backward is model/swin_bwd.c; ref: microsoft/Swin-
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
    float *yw = b->yw ? b->yw : K->yw, *ow = b->ow ? b->ow : K->ow;
    float *y2 = b->y2 ? b->y2 : K->y2, *h3 = b->h3 ? b->h3 : K->h3;
    op->gather_rows(yw, K->t1, mp->part[shifted], (int)M, C);
    avs_linear_fwd(b->qkv, yw, P(ix->qkv[0]), P(ix->qkv[1]), (int)M, C, 3 * C);
    struct avs_bcast bc;
    const float *bias = attn_bias(m, ix, g, mp, shifted, K, N, &bc);
    heads_fwd(g, N, b, ow, bias, &bc);
    avs_linear_fwd(K->t1, ow, P(ix->proj[0]), P(ix->proj[1]), (int)M, C, C);
    op->gather_rows(K->t2, K->t1, mp->rev[shifted], (int)M, C);
    op->axpy(x, 1.0f, K->t2, MC);
    op->copy(b->xmid, x, MC * sizeof(float));
    op->layernorm_fwd(y2, b->mean2, b->rstd2, x, P(ix->norm2[0]), P(ix->norm2[1]), (int)M, C, 1,
                      AVS_SWIN_EPS);
    avs_linear_fwd(b->h1, y2, P(ix->fc1[0]), P(ix->fc1[1]), (int)M, C, 4 * C);
    op->gelu_fwd(h3, b->h1, 4 * MC);
    avs_linear_fwd(K->t1, h3, P(ix->fc2[0]), P(ix->fc2[1]), (int)M, 4 * C, C);
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
    float *y = st->mgn ? st->mgn : K->t1;
    op->layernorm_fwd(y, st->mmean, st->mrstd, st->mg, P(ix->mnorm[0]), P(ix->mnorm[1]), M4, C4,
                      1, AVS_SWIN_EPS);
    avs_linear_fwd(next->tok, y, P(ix->red), NULL, M4, C4, 2 * g->C);
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

void swin_forward(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
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
    swin_forward(m, w, stage, logits, image, N);
    w->kept = 0;
}

void avs_swin_fwd_kept(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                       float *logits, const float *image, int N)
{
    AVS_ASSERT(w->mode != AVS_SWIN_FWD && logits);
    swin_forward(m, w, stage, logits, image, N);
    w->kept = 1, w->n = N;
}

