/* model/pvt_pass.c: PVTv2 forward, Grad-CAM and full backward (pvt.h; ref: pvt_v2.py), all in
 * a workspace made at init (model/pvt_ws.c). Every step is a backend primitive on device
 * memory; parameters are found by the indices of the size table (m->ix), never by name.
 * Tokens are [N,L,C] row-major (L = H*W of the stage grid), maps NCHW. */
#include <math.h>
#include <string.h>

#include "backend/ops.h"
#include "model/nn.h"
#include "model/pvt_internal.h"

/* parameter i of the size table; its gradient in g (NULL without g) */
#define P(i) ((const float *)m->params.t[(i)].data)
#define G(i) (g ? g->t[(i)].data : NULL)

/* ---- forward ---- */

/* One head's attention per (image, head): scores, softmax, weighted values. The loop only
 * computes device pointers: q [N,L,C], k, v inside kv [N,Lk,2C], o [N,L,C] (head h: columns
 * h*hd..), P [N,nh,L,Lk]. */
static void heads_fwd(const struct pvt_geo *g, int N, const struct pvt_blk *b, float *att)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, L = g->L, Lk = g->Lk, nh = g->nh, hd = C / nh;
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            const float *q = b->q + (size_t)n * L * C + h * hd;
            const float *k = b->kv + (size_t)n * Lk * 2 * C + h * hd, *v = k + C;
            float *P = b->P + ((size_t)n * nh + h) * L * Lk;
            op->gemm(0, 1, L, Lk, hd, scale, q, C, k, 2 * C, 0.0f, att, Lk);
            op->softmax_fwd(P, att, L, Lk);
            op->gemm(0, 0, L, hd, Lk, 1.0f, P, Lk, v, 2 * C, 0.0f, b->o + (size_t)n * L * C + h * hd, C);
        }
}

/* x [N,L,C] += attention(norm1(x)); b keeps what backward needs. */
static void attention_fwd(const struct avs_pvt *m, const struct avs_pvt_block_ix *ix,
                          const struct pvt_geo *g, int N, float *x, struct pvt_blk *b,
                          const struct pvt_scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, L = g->L, Lk = g->Lk, M = N * L;
    op->copy(b->xin, x, (size_t)M * C * sizeof(float));
    op->layernorm_fwd(b->y1, b->mean1, b->rstd1, x, P(ix->norm1[0]), P(ix->norm1[1]), M, C, 1,
                      AVS_PVT_EPS_BLOCK);
    avs_linear_fwd(b->q, b->y1, P(ix->q[0]), P(ix->q[1]), M, C, C);
    const float *kvin = b->y1;
    if (g->sr > 1) { /* keys and values from the map reduced by an sr x sr stride-sr conv + LN */
        op->transpose(b->srin, b->y1, N, L, C);
        op->conv2d_fwd(w->t1, b->srin, P(ix->sr[0]), P(ix->sr[1]), &g->srg, w->conv);
        op->transpose(b->srpre, w->t1, N, C, Lk);
        op->layernorm_fwd(b->srtok, b->srmean, b->srrstd, b->srpre, P(ix->srnorm[0]),
                          P(ix->srnorm[1]), N * Lk, C, 1, AVS_PVT_EPS_EMBED);
        kvin = b->srtok;
    }
    avs_linear_fwd(b->kv, kvin, P(ix->kv[0]), P(ix->kv[1]), N * Lk, C, 2 * C);
    heads_fwd(g, N, b, w->att);
    avs_linear_fwd(w->t2, b->o, P(ix->proj[0]), P(ix->proj[1]), M, C, C);
    op->axpy(x, 1.0f, w->t2, (size_t)M * C);
}

/* x [N,L,C] += fc2(gelu(dwconv(fc1(norm2(x))))) */
static void mlp_fwd(const struct avs_pvt *m, const struct avs_pvt_block_ix *ix,
                    const struct pvt_geo *g, int N, float *x, struct pvt_blk *b,
                    const struct pvt_scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, hid = g->hid, M = N * g->L;
    op->copy(b->xmid, x, (size_t)M * C * sizeof(float));
    op->layernorm_fwd(b->y2, b->mean2, b->rstd2, x, P(ix->norm2[0]), P(ix->norm2[1]), M, C, 1,
                      AVS_PVT_EPS_BLOCK);
    avs_linear_fwd(b->h1, b->y2, P(ix->fc1[0]), P(ix->fc1[1]), M, C, hid);
    op->dwconv3_fwd(b->h2, b->h1, P(ix->dw[0]), P(ix->dw[1]), N, g->H, g->W, hid, w->dws);
    op->gelu_fwd(b->h3, b->h2, (size_t)M * hid);
    avs_linear_fwd(w->t2, b->h3, P(ix->fc2[0]), P(ix->fc2[1]), M, hid, C);
    op->axpy(x, 1.0f, w->t2, (size_t)M * C);
}

/* Stage s: patch embedding (conv -> tokens -> LN eps 1e-5), the blocks, the stage norm ->
 * out [N,C,H,W]; after stage 4, logits = head(mean token) when wanted. */
static void stage_fwd(const struct avs_pvt *m, struct avs_pvt_ws *ws, int s, int N,
                      const float *in, float *out, float *logits)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_pvt_stage_ix *x = &m->ix[s];
    struct pvt_stage *k = &ws->k->st[s];
    const struct pvt_scratch *w = &k->w;
    struct pvt_geo g;
    pvt_geo(&g, &m->cfg, N, ws->H, ws->W, s);
    AVS_ASSERT(avs_conv2d_ws(&g.pe) <= w->conv_cap &&
               (g.sr == 1 || avs_conv2d_ws(&g.srg) <= w->conv_cap));
    int C = g.C, L = g.L, M = (int)g.M;
    op->conv2d_fwd(w->hbuf, in, P(x->pe[0]), P(x->pe[1]), &g.pe, w->conv);
    op->transpose(k->pe_pre, w->hbuf, N, C, L);
    op->layernorm_fwd(k->last, k->pe_mean, k->pe_rstd, k->pe_pre, P(x->pe_norm[0]),
                      P(x->pe_norm[1]), M, C, 1, AVS_PVT_EPS_EMBED);
    for (int i = 0; i < m->cfg.depths[s]; i++) {
        struct pvt_blk *b = &k->blk[k->nblk > 1 ? i : 0];
        attention_fwd(m, &x->blk[i], &g, N, k->last, b, w);
        mlp_fwd(m, &x->blk[i], &g, N, k->last, b, w);
    }
    op->layernorm_fwd(w->t1, k->n_mean, k->n_rstd, k->last, P(x->norm[0]), P(x->norm[1]), M, C,
                      1, AVS_PVT_EPS_BLOCK);
    op->transpose(out, w->t1, N, L, C);
    if (s == 3 && m->cfg.classes) { /* the mean tokens are kept for the head's backward */
        op->tokmean_fwd(ws->k->mt, w->t1, N, L, C);
        if (logits)
            avs_linear_fwd(logits, ws->k->mt, P(m->head[0]), P(m->head[1]), N, C, m->cfg.classes);
    }
}

static void forward(const struct avs_pvt *m, struct avs_pvt_ws *ws, float *const stage[4],
                    float *logits, const float *image, int N)
{
    AVS_ASSERT(N >= 1 && N <= ws->N);
    const float *in = image;
    for (int s = 0; s < 4; s++) {
        stage_fwd(m, ws, s, N, in, stage[s], logits);
        in = stage[s];
    }
    ws->kept = 0;
}

void avs_pvt_fwd(const struct avs_pvt *m, struct avs_pvt_ws *ws, float *const stage[4],
                 float *logits, const float *image, int N)
{
    forward(m, ws, stage, logits, image, N);
}

/* ---- backward ---- */

/* The heads' backward: dq [N,L,C] and dkv [N,Lk,2C] (overwritten) from dO [N,L,C]; dS and dP
 * [L,Lk] scratch of one head. */
static void heads_bwd(const struct pvt_geo *g, int N, const struct pvt_blk *b, const float *dO,
                      float *dq, float *dkv, float *dS, float *dP)
{
    const struct avs_ops *op = avs_ops();
    int C = g->C, L = g->L, Lk = g->Lk, nh = g->nh, hd = C / nh;
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            const float *q = b->q + (size_t)n * L * C + h * hd;
            const float *k = b->kv + (size_t)n * Lk * 2 * C + h * hd, *v = k + C;
            const float *P = b->P + ((size_t)n * nh + h) * L * Lk;
            const float *dOh = dO + (size_t)n * L * C + h * hd;
            float *dk = dkv + (size_t)n * Lk * 2 * C + h * hd, *dv = dk + C;
            op->gemm(0, 1, L, Lk, hd, 1.0f, dOh, C, v, 2 * C, 0.0f, dP, Lk);
            op->gemm(1, 0, Lk, hd, L, 1.0f, P, Lk, dOh, C, 0.0f, dv, 2 * C);
            op->zero(dS, (size_t)L * Lk);
            op->softmax_bwd(dS, dP, P, L, Lk);
            op->gemm(0, 0, L, hd, Lk, scale, dS, Lk, k, 2 * C, 0.0f, dq + (size_t)n * L * C + h * hd, C);
            op->gemm(1, 0, Lk, hd, L, scale, dS, Lk, q, C, 0.0f, dk, 2 * C);
        }
}

/* MLP part of a block's backward: dx [M,C] at the block output in, at xmid out (added). */
static void mlp_bwd(const struct avs_pvt *m, const struct avs_pvt_block_ix *ix,
                    struct avs_tensor_set *g, const struct pvt_geo *gm, int N, float *dx,
                    const struct pvt_blk *b, const struct pvt_scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int C = gm->C, hid = gm->hid, M = N * gm->L;
    size_t MC = (size_t)M * C, MH = (size_t)M * hid;
    float *dh3 = w->hbuf, *dh2 = w->hbuf + MH;
    op->zero(dh3, MH);
    avs_linear_bwd(dh3, G(ix->fc2[0]), G(ix->fc2[1]), dx, b->h3, P(ix->fc2[0]), M, hid, C);
    op->zero(dh2, MH);
    op->gelu_bwd(dh2, dh3, b->h2, MH);
    op->zero(dh3, MH); /* now dh1 */
    op->dwconv3_bwd_data(dh3, dh2, P(ix->dw[0]), N, gm->H, gm->W, hid, w->dws);
    if (g)
        op->dwconv3_bwd_filter(G(ix->dw[0]), G(ix->dw[1]), dh2, b->h1, N, gm->H, gm->W, hid,
                               w->dws);
    op->zero(w->t1, MC); /* dy2 */
    avs_linear_bwd(w->t1, G(ix->fc1[0]), G(ix->fc1[1]), dh3, b->y2, P(ix->fc1[0]), M, C, hid);
    op->layernorm_bwd(dx, G(ix->norm2[0]), G(ix->norm2[1]), w->t1, b->xmid, b->mean2, b->rstd2,
                      P(ix->norm2[0]), M, C, 1);
}

/* The sr path's backward: dkv [N*Lk,2C] -> dy1 [M,C] (added), through kv, LN, the sr conv. */
static void sr_bwd(const struct avs_pvt *m, const struct avs_pvt_block_ix *ix,
                   struct avs_tensor_set *g, const struct pvt_geo *gm, int N, float *dy1,
                   const float *dkv, float *dq, const struct pvt_blk *b,
                   const struct pvt_scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int C = gm->C, L = gm->L, Lk = gm->Lk;
    size_t MC = (size_t)N * L * C, MH = (size_t)N * L * gm->hid;
    float *dsrtok = dq, *dsrpre = dq + (size_t)N * Lk * C; /* dq consumed: reuse */
    AVS_ASSERT(2 * (size_t)N * Lk * C <= MC);
    op->zero(dsrtok, (size_t)N * Lk * C);
    avs_linear_bwd(dsrtok, G(ix->kv[0]), G(ix->kv[1]), dkv, b->srtok, P(ix->kv[0]), N * Lk, C,
                   2 * C);
    op->zero(dsrpre, (size_t)N * Lk * C);
    op->layernorm_bwd(dsrpre, G(ix->srnorm[0]), G(ix->srnorm[1]), dsrtok, b->srpre, b->srmean,
                      b->srrstd, P(ix->srnorm[0]), N * Lk, C, 1);
    float *dmap = (float *)dkv, *din = w->hbuf + MH; /* [N,C,Lk] over dkv (consumed), [N,C,L] */
    op->transpose(dmap, dsrpre, N, Lk, C);
    op->zero(din, MC);
    op->conv2d_bwd_data(din, dmap, P(ix->sr[0]), &gm->srg, w->conv);
    if (g)
        op->conv2d_bwd_filter(G(ix->sr[0]), G(ix->sr[1]), dmap, b->srin, &gm->srg, w->conv);
    op->transpose(dq, din, N, C, L);
    op->axpy(dy1, 1.0f, dq, MC);
}

/* dx [M,C]: gradient at the block output in, at the block input out. */
static void block_bwd(const struct avs_pvt *m, const struct avs_pvt_block_ix *ix,
                      struct avs_tensor_set *g, const struct pvt_geo *gm, int N, float *dx,
                      const struct pvt_blk *b, const struct pvt_scratch *w)
{
    const struct avs_ops *op = avs_ops();
    int C = gm->C, L = gm->L, Lk = gm->Lk, M = N * L;
    size_t MC = (size_t)M * C, MH = (size_t)M * gm->hid;
    mlp_bwd(m, ix, g, gm, N, dx, b, w);
    /* attention: xmid = xin + proj(attn(LN1(xin))) */
    float *dO = w->t1, *dq = w->t2, *dkv = w->hbuf, *dS = w->hbuf + (size_t)N * Lk * 2 * C,
          *dP = dS + (size_t)L * Lk;
    AVS_ASSERT((size_t)N * Lk * 2 * C + 2 * (size_t)L * Lk <= 2 * MH);
    op->zero(dO, MC);
    avs_linear_bwd(dO, G(ix->proj[0]), G(ix->proj[1]), dx, b->o, P(ix->proj[0]), M, C, C);
    heads_bwd(gm, N, b, dO, dq, dkv, dS, dP);
    float *dy1 = w->t1; /* dO is no longer needed */
    op->zero(dy1, MC);
    avs_linear_bwd(dy1, G(ix->q[0]), G(ix->q[1]), dq, b->y1, P(ix->q[0]), M, C, C);
    if (gm->sr > 1)
        sr_bwd(m, ix, g, gm, N, dy1, dkv, dq, b, w);
    else
        avs_linear_bwd(dy1, G(ix->kv[0]), G(ix->kv[1]), dkv, b->y1, P(ix->kv[0]), M, C, 2 * C);
    op->layernorm_bwd(dx, G(ix->norm1[0]), G(ix->norm1[1]), dy1, b->xin, b->mean1, b->rstd1,
                      P(ix->norm1[0]), M, C, 1);
}

/* dtok [N,L_4,C_4] (overwritten) from dlogits [N,classes] through head(mean token); head
 * gradients into g. */
static void head_bwd(const struct avs_pvt *m, struct avs_pvt_ws *ws, struct avs_tensor_set *g,
                     const float *dlogits, float *dtok, int N, int L)
{
    const struct avs_ops *op = avs_ops();
    int C = m->cfg.dims[3];
    op->zero(ws->k->dmt, (size_t)N * C);
    avs_linear_bwd(ws->k->dmt, G(m->head[0]), G(m->head[1]), dlogits, ws->k->mt, P(m->head[0]), N,
                   C, m->cfg.classes);
    op->tokmean_bwd(dtok, ws->k->dmt, N, L, C);
}

/* The patch embedding's backward of stage s: dx [M,C] at its output in; its parameter
 * gradients; for s > 0, the previous stage's token gradient into dprev [N,L_{s-1},C_{s-1}]. */
static void embed_bwd(const struct avs_pvt *m, struct avs_pvt_ws *ws, struct avs_tensor_set *g,
                      const struct pvt_geo *gm, int N, const float *dx, float *dprev)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_pvt_stage_ix *x = &m->ix[gm->s];
    const struct pvt_stage *k = &ws->k->st[gm->s];
    const struct pvt_scratch *w = &k->w;
    size_t MC = gm->M * gm->C;
    op->zero(w->t1, MC);
    op->layernorm_bwd(w->t1, G(x->pe_norm[0]), G(x->pe_norm[1]), dx, k->pe_pre, k->pe_mean,
                      k->pe_rstd, P(x->pe_norm[0]), (int)gm->M, gm->C, 1);
    op->transpose(w->t2, w->t1, N, gm->L, gm->C);
    const float *in = gm->s ? ws->stage[gm->s - 1] : ws->image;
    if (g)
        op->conv2d_bwd_filter(G(x->pe[0]), G(x->pe[1]), w->t2, in, &gm->pe, w->conv);
    if (gm->s) {
        op->zero(w->dmap, (size_t)N * gm->Cin * gm->Hin * gm->Win);
        op->conv2d_bwd_data(w->dmap, w->t2, P(x->pe[0]), &gm->pe, w->conv);
        op->transpose(dprev, w->dmap, N, gm->Cin, gm->Hin * gm->Win);
    }
}

/* Backward from dlogits [N,classes] (may be NULL) and dstage[s] [N,C_s,H_s,W_s] (NULL or NULL
 * entries: none) through the kept forward (ws->image, ws->stage). g: parameter gradients
 * (added) or NULL; gradcam[s] [N,C_s] (NULL: not wanted); full: also stage 1's blocks and
 * patch embedding (for g). */
static void backward(const struct avs_pvt *m, struct avs_pvt_ws *ws, struct avs_tensor_set *g,
                     const float *dlogits, const float *const *dstage, float *const *gradcam,
                     int full, int N)
{
    const struct avs_ops *op = avs_ops();
    struct avs_pvt_keep *kp = ws->k;
    struct pvt_geo gm;
    pvt_geo(&gm, &m->cfg, N, ws->H, ws->W, 3);
    op->zero(kp->dtok[1], gm.M * gm.C);
    if (dlogits && m->cfg.classes)
        head_bwd(m, ws, g, dlogits, kp->dtok[1], N, gm.L);
    for (int s = 3; s >= 0; s--) {
        const struct avs_pvt_stage_ix *x = &m->ix[s];
        const struct pvt_stage *k = &kp->st[s];
        float *dtok = kp->dtok[s % 2], *dx = kp->dx;
        pvt_geo(&gm, &m->cfg, N, ws->H, ws->W, s);
        size_t MC = gm.M * gm.C;
        if (dstage && dstage[s]) {
            op->transpose(k->w.t1, dstage[s], N, gm.C, gm.L);
            op->axpy(dtok, 1.0f, k->w.t1, MC);
        }
        op->zero(dx, MC);
        op->layernorm_bwd(dx, G(x->norm[0]), G(x->norm[1]), dtok, k->last, k->n_mean, k->n_rstd,
                          P(x->norm[0]), (int)gm.M, gm.C, 1);
        if (gradcam) /* Grad-CAM weight: spatial mean of the gradient */
            op->tokmean_fwd(gradcam[s], dx, N, gm.L, gm.C);
        if (s == 0 && !full)
            break;
        AVS_ASSERT(k->nblk == m->cfg.depths[s]);
        for (int i = m->cfg.depths[s] - 1; i >= 0; i--)
            block_bwd(m, &x->blk[i], g, &gm, N, dx, &k->blk[i], &k->w);
        embed_bwd(m, ws, g, &gm, N, dx, s ? kp->dtok[(s - 1) % 2] : NULL);
    }
}

void avs_pvt_fwd_kept(const struct avs_pvt *m, struct avs_pvt_ws *ws, float *const stage[4],
                      float *logits, const float *image, int N)
{
    AVS_ASSERT(m->cfg.classes > 0 && logits && ws->mode != AVS_PVT_FWD);
    forward(m, ws, stage, logits, image, N);
    for (int s = 0; s < 4; s++)
        ws->stage[s] = stage[s];
    ws->image = image, ws->n = N, ws->kept = 1;
}

void avs_pvt_gradcam_kept(const struct avs_pvt *m, struct avs_pvt_ws *ws, float *const gradcam[4],
                          const int *target)
{
    AVS_ASSERT(ws->kept && ws->onehot);
    int N = ws->n, K = m->cfg.classes;
    /* the one-hot upstream gradient of the target logits, made on the host */
    memset(ws->onehot, 0, (size_t)N * K * sizeof(float));
    for (int n = 0; n < N; n++) {
        AVS_ASSERT(target[n] >= 0 && target[n] < K);
        ws->onehot[(size_t)n * K + target[n]] = 1.0f;
    }
    avs_ops()->upload(ws->k->dl, ws->onehot, (size_t)N * K * sizeof(float));
    backward(m, ws, NULL, ws->k->dl, NULL, gradcam, 0, N);
    ws->kept = 0;
}

void avs_pvt_gradcam(const struct avs_pvt *m, struct avs_pvt_ws *ws, float *const gradcam[4],
                     float *const stage[4], float *logits, const float *image, const int *target,
                     int N)
{
    avs_pvt_fwd_kept(m, ws, stage, logits, image, N);
    avs_pvt_gradcam_kept(m, ws, gradcam, target);
}

void avs_pvt_bwd(const struct avs_pvt *m, struct avs_pvt_ws *ws, struct avs_tensor_set *grads,
                 float *const stage[4], float *logits, const float *image,
                 const float *const dstage[4], const float *dlogits, int N)
{
    AVS_ASSERT(ws->mode == AVS_PVT_TRAIN);
    forward(m, ws, stage, logits, image, N);
    for (int s = 0; s < 4; s++)
        ws->stage[s] = stage[s];
    ws->image = image, ws->n = N;
    backward(m, ws, grads, dlogits, (const float *const *)dstage, NULL, 1, N);
}
