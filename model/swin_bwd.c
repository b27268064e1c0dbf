/* model/swin_bwd.c: Swin backward (swin.h): the Grad-CAM pass (input gradients only, from the
 * one-hot of the target logits) and the full backward (every parameter's gradient from
 * upstream gradients of the stage maps and logits), the forward's steps in reverse on the
 * activations kept in the workspace (model/swin_ws.c). Every gradient is ADDED into its tensor
 * (the llm.c contract); g == NULL: input gradients only. */
#include <math.h>
#include <string.h>

#include "backend/ops.h"
#include "model/nn.h"
#include "model/swin_internal.h"

#define P(i) ((const float *)m->params.t[(i)].data)
#define G(i) (g ? g->t[(i)].data : NULL)

/* dx [M,I] = dy [M,O] W [O,I] (overwrite): a Linear's input gradient. */
static void lin_dx(float *dx, const float *dy, const float *w, size_t M, int I, int O)
{
    avs_ops()->gemm(0, 0, (int)M, I, O, 1.0f, dy, O, w, I, 0.0f, dx, I);
}

/* A Linear's parameter gradients (dw += dy^T x, db += column sums of dy), when g is given. */
static void lin_dparams(struct avs_tensor_set *g, const int ix[2], const float *dy, const float *x,
                        size_t M, int I, int O)
{
    if (g)
        avs_linear_bwd(NULL, g->t[ix[0]].data, ix[1] >= 0 ? g->t[ix[1]].data : NULL, dy, x, NULL,
                       (int)M, I, O);
}

/* The relative-position bias table's gradient from dS [N*nW,nh,WL,WL]: summed over the images,
 * through the mask's broadcast over heads (shifted), then over the windows, then scattered
 * into the table rows (a table entry serves several token pairs). */
static void bias_bwd(struct avs_tensor_set *g,
                     const struct avs_swin_block_ix *ix, const struct swin_geo *gg,
                     const struct swin_maps *mp, int shifted, int N, const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    int B = gg->nh * gg->WL * gg->WL;
    op->zero(K->dbias, (size_t)B);
    if (shifted) {
        op->zero(K->dbm, (size_t)gg->nW * B);
        struct avs_bcast all = {N, gg->nW * B, 1, 0, 1, 0}, per = {gg->nW, gg->nh, gg->WL * gg->WL, 0, 1, 1};
        op->add_bwd(K->dbm, K->dS, &all);
        op->add_bwd(K->dbias, K->dbm, &per);
    } else {
        struct avs_bcast all = {N * gg->nW, B, 1, 0, 1, 0};
        op->add_bwd(K->dbias, K->dS, &all);
    }
    op->scatter_rows_add(g->t[ix->rpb].data, K->dbias, mp->rpb, B, 1);
}

/* dqkv [M,3C] from dO (K->da, [M,C] window order) through the heads of block b; dS kept in K. */
static void heads_bwd(const struct swin_geo *g, int N, const struct swin_blk *b,
                      const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, WL = g->WL, hd = g->hd, nwin = N * g->nW, WW = WL * WL;
    float scale = 1.0f / sqrtf((float)hd);
    op->zero(K->dqkv, (size_t)N * g->L * 3 * C);
    for (int wi = 0; wi < nwin; wi++)
        for (int h = 0; h < g->nh; h++) {
            const float *q = b->qkv + (size_t)wi * WL * 3 * C + h * hd;
            const float *dO = K->da + (size_t)wi * WL * C + h * hd;
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
static void block_bwd(const struct avs_swin *m, struct avs_tensor_set *g,
                      const struct avs_swin_block_ix *ix, const struct swin_geo *gg,
                      const struct swin_maps *mp, int shifted, int N, const struct swin_blk *b,
                      const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    size_t M = (size_t)N * gg->L;
    int C = gg->C;
    lin_dx(K->dh3, K->dx, P(ix->fc2[0]), M, 4 * C, C);
    lin_dparams(g, ix->fc2, K->dx, b->h3, M, 4 * C, C);
    op->zero(K->dh1, 4 * M * C);
    op->gelu_bwd(K->dh1, K->dh3, b->h1, 4 * M * C);
    lin_dx(K->da, K->dh1, P(ix->fc1[0]), M, C, 4 * C);
    lin_dparams(g, ix->fc1, K->dh1, b->y2, M, C, 4 * C);
    op->layernorm_bwd(K->dx, G(ix->norm2[0]), G(ix->norm2[1]), K->da, b->xmid, b->mean2, b->rstd2,
                      P(ix->norm2[0]), (int)M, C, 1);
    op->gather_rows(K->db, K->dx, mp->part[shifted], (int)M, C);
    lin_dx(K->da, K->db, P(ix->proj[0]), M, C, C);
    lin_dparams(g, ix->proj, K->db, b->ow, M, C, C);
    heads_bwd(gg, N, b, K);
    if (g)
        bias_bwd(g, ix, gg, mp, shifted, N, K);
    lin_dx(K->db, K->dqkv, P(ix->qkv[0]), M, C, 3 * C);
    lin_dparams(g, ix->qkv, K->dqkv, b->yw, M, C, 3 * C);
    op->gather_rows(K->da, K->db, mp->rev[shifted], (int)M, C);
    op->layernorm_bwd(K->dx, G(ix->norm1[0]), G(ix->norm1[1]), K->da, b->xin, b->mean1, b->rstd1,
                      P(ix->norm1[0]), (int)M, C, 1);
}

/* K->dx: the gradient of stage s+1's input in ([M_{s+1}, 2C]), of stage s's last output out. */
static void merge_bwd(const struct avs_swin *m, struct avs_tensor_set *g,
                      const struct swin_stage *st, const struct swin_geo *gg,
                      const struct avs_swin_keep *K)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_swin_stage_ix *ix = &m->ix[gg->s];
    int M4 = (int)(gg->M / 4), C4 = 4 * gg->C;
    lin_dx(K->db, K->dx, P(ix->red), (size_t)M4, C4, 2 * gg->C);
    if (g)
        lin_dparams(g, (int[]){ix->red, -1}, K->dx, st->mgn, (size_t)M4, C4, 2 * gg->C);
    op->zero(K->da, gg->M * gg->C);
    op->layernorm_bwd(K->da, G(ix->mnorm[0]), G(ix->mnorm[1]), K->db, st->mg, st->mmean, st->mrstd,
                      P(ix->mnorm[0]), M4, C4, 1);
    op->gather_rows(K->dx, K->da, st->map.merge_inv, (int)gg->M, gg->C);
}

/* K->dx = the gradient at stage 4's last output from dl (K->dl [N,classes]) through the head,
 * the token mean and the final norm. */
static void head_bwd(const struct avs_swin *m, struct avs_tensor_set *g, const struct avs_swin_ws *w,
                     int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    int cls = m->cfg.classes;
    struct swin_geo gg;
    swin_geo(&gg, &m->cfg, N, w->H, w->W, 3);
    lin_dx(K->dmt, K->dl, P(m->head[0]), (size_t)N, gg.C, cls);
    lin_dparams(g, m->head, K->dl, K->mt, (size_t)N, gg.C, cls);
    op->zero(K->da, gg.M * gg.C);
    op->tokmean_bwd(K->da, K->dmt, N, gg.L, gg.C);
    op->zero(K->dx, gg.M * gg.C);
    op->layernorm_bwd(K->dx, G(m->norm[0]), G(m->norm[1]), K->da, K->st[3].tok, K->fmean, K->frstd,
                      P(m->norm[0]), (int)gg.M, gg.C, 1);
}

/* The one-hot of target into K->dl. */
static void onehot(const struct avs_swin *m, struct avs_swin_ws *w, const int *target, int N)
{
    int cls = m->cfg.classes;
    memset(w->onehot, 0, (size_t)N * cls * sizeof(float));
    for (int n = 0; n < N; n++) {
        AVS_ASSERT(target[n] >= 0 && target[n] < cls);
        w->onehot[(size_t)n * cls + target[n]] = 1.0f;
    }
    avs_ops()->upload(w->k->dl, w->onehot, (size_t)N * cls * sizeof(float));
}

void avs_swin_gradcam_kept(const struct avs_swin *m, struct avs_swin_ws *w,
                           float *const gradcam[4], const int *target)
{
    AVS_ASSERT(w->kept && w->mode != AVS_SWIN_FWD);
    int N = w->n;
    struct avs_swin_keep *K = w->k;
    onehot(m, w, target, N);
    head_bwd(m, NULL, w, N);
    for (int s = 3; s >= 0; s--) {
        struct swin_geo gg;
        swin_geo(&gg, &m->cfg, N, w->H, w->W, s);
        avs_ops()->tokmean_fwd(gradcam[s], K->dx, N, gg.L, gg.C);
        if (s == 0) /* stage 1's blocks are not on the path to its own last output */
            break;
        for (int i = m->cfg.depths[s] - 1; i >= 0; i--)
            block_bwd(m, NULL, &m->ix[s].blk[i], &gg, &K->st[s].map, (i & 1) && gg.shift, N,
                      &K->st[s].blk[i], K);
        struct swin_geo gp;
        swin_geo(&gp, &m->cfg, N, w->H, w->W, s - 1);
        merge_bwd(m, NULL, &K->st[s - 1], &gp, K);
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

/* The patch embedding's parameter gradients from K->dx (stage 1's input gradient). */
static void embed_bwd(const struct avs_swin *m, struct avs_tensor_set *g, const struct avs_swin_ws *w,
                      const float *image, int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    struct swin_geo gg;
    swin_geo(&gg, &m->cfg, N, w->H, w->W, 0);
    op->zero(K->da, gg.M * gg.C);
    op->layernorm_bwd(K->da, G(m->pe_norm[0]), G(m->pe_norm[1]), K->dx, K->pe_pre, K->pe_mean,
                      K->pe_rstd, P(m->pe_norm[0]), (int)gg.M, gg.C, 1);
    struct avs_conv2d pe;
    avs_conv2d_geom(&pe, N, 3, w->H, w->W, gg.C, 4, 4, 4, 0, 1, 1);
    float *dmap = K->conv + avs_conv2d_ws(&pe);
    op->transpose(dmap, K->da, N, gg.L, gg.C);
    op->conv2d_bwd_filter(G(m->pe[0]), G(m->pe[1]), dmap, image, &pe, K->conv);
}

void avs_swin_bwd(const struct avs_swin *m, struct avs_swin_ws *w, struct avs_tensor_set *g,
                  float *const stage[4], float *logits, const float *image,
                  const float *const dstage[4], const float *dlogits, int N)
{
    AVS_ASSERT(w->mode == AVS_SWIN_TRAIN && g && (logits || !dlogits));
    const struct avs_ops *op = avs_ops();
    struct avs_swin_keep *K = w->k;
    swin_forward(m, w, stage, logits, image, N);
    if (logits) {
        if (dlogits)
            op->copy(K->dl, dlogits, (size_t)N * m->cfg.classes * sizeof(float));
        else
            op->zero(K->dl, (size_t)N * m->cfg.classes);
        head_bwd(m, g, w, N);
    } else { /* no head run: its and the final norm's gradients stay as they are */
        struct swin_geo g4;
        swin_geo(&g4, &m->cfg, N, w->H, w->W, 3);
        op->zero(K->dx, g4.M * g4.C);
    }
    for (int s = 3; s >= 0; s--) {
        struct swin_geo gg;
        swin_geo(&gg, &m->cfg, N, w->H, w->W, s);
        if (dstage && dstage[s]) { /* NCHW map gradient -> tokens, added */
            op->transpose(K->t1, dstage[s], N, gg.C, gg.L);
            op->axpy(K->dx, 1.0f, K->t1, gg.M * gg.C);
        }
        for (int i = m->cfg.depths[s] - 1; i >= 0; i--)
            block_bwd(m, g, &m->ix[s].blk[i], &gg, &K->st[s].map, (i & 1) && gg.shift, N,
                      &K->st[s].blk[i], K);
        if (s > 0) {
            struct swin_geo gp;
            swin_geo(&gp, &m->cfg, N, w->H, w->W, s - 1);
            merge_bwd(m, g, &K->st[s - 1], &gp, K);
        }
    }
    embed_bwd(m, g, w, image, N);
    w->kept = 0;
}
