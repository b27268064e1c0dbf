/* model/resnet_pass.c: ResNet-50's forward and Grad-CAM backward on backend ops
 * (model/resnet.h; ref: torchvision models/resnet.py Bottleneck.forward, ResNet._forward_impl).
 *
 * Every block keeps r1, r2 (its ReLU outputs) and y (its output): BatchNorm runs in place in
 * eval mode, and a ReLU's backward reads its output (y > 0 exactly where its input was), so the
 * data gradient needs nothing else. The Grad-CAM backward goes block by block from the head to
 * layer2's first block, taking the spatial mean of the gradient at each stage map.
 *
 *   block forward                         block backward (dy -> dx; eval BN: dx = dy w rstd)
 *   r1 = relu(bn1(conv1 x))               gs = dy * (y > 0)
 *   r2 = relu(bn2(conv2 r1))   stride     dx = conv_ds^T bn_ds'(gs)  (or gs itself)
 *   y  = bn3(conv3 r2)                    g  = conv3^T bn3'(gs) * (r2 > 0)
 *   y += bn_ds(conv_ds x)  (or x)         g  = conv2^T bn2'(g) * (r1 > 0)
 *   y  = relu(y)                          dx += conv1^T bn1'(g)
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/nn.h"
#include "model/resnet.h"

#define BN_EPS 1e-5f

struct bn_keep {
    float *mean, *rstd; /* [C] what batchnorm_fwd saved (the running statistics) */
};

struct blk_keep {
    int C, H, W, P, Ho, Wo, stride, K; /* input [C,H,W], planes P, output [K,Ho,Wo] */
    float *r1, *r2, *y;                /* [N,P,H,W], [N,P,Ho,Wo], [N,K,Ho,Wo] */
    struct bn_keep bn[4];              /* bn1..3, downsample */
};

struct avs_resnet_keep {
    int H1, W1, Hp, Wp; /* after conv1, after the max-pool */
    float *stem, *pool; /* [N,width,H1,W1], [N,width,Hp,Wp] */
    struct bn_keep bn1;
    struct blk_keep *b[4];
    float *pooled, *dpool, *dlog; /* [N,dims[3]], [N,dims[3]], [N,classes] */
    float *scr;                   /* [N,K,Ho,Wo] the downsample branch */
    float *g[5];                  /* gradient buffers of the largest block tensor */
    float *cws;                   /* conv workspace */
    size_t gmax, cwmax;
};

static void geom(struct avs_conv2d *g, int n, int C, int H, int W, int K, int k, int stride)
{
    avs_conv2d_geom(g, n, C, H, W, K, k, k, stride, k / 2, 1, 1);
}

/* The block geometry of layer s, block i (input from the previous block). */
static void plan_block(struct blk_keep *b, const struct avs_resnet *m, int s, int i, int C, int H,
                       int W)
{
    b->C = C, b->H = H, b->W = W;
    b->P = m->planes[s], b->K = m->dims[s];
    b->stride = i == 0 && s > 0 ? 2 : 1;
    b->Ho = (H - 1) / b->stride + 1, b->Wo = (W - 1) / b->stride + 1;
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* Conv workspace and largest tensor of a block at N images. */
static void block_sizes(const struct blk_keep *b, int N, size_t *cw, size_t *gm)
{
    struct avs_conv2d g[4];
    geom(&g[0], N, b->C, b->H, b->W, b->P, 1, 1);
    geom(&g[1], N, b->P, b->H, b->W, b->P, 3, b->stride);
    geom(&g[2], N, b->P, b->Ho, b->Wo, b->K, 1, 1);
    geom(&g[3], N, b->C, b->H, b->W, b->K, 1, b->stride);
    for (int k = 0; k < 4; k++) {
        size_t w = avs_conv2d_ws(&g[k]);
        *cw = w > *cw ? w : *cw;
    }
    size_t in = (size_t)N * b->C * b->H * b->W, r1 = (size_t)N * b->P * b->H * b->W;
    size_t y = (size_t)N * b->K * b->Ho * b->Wo;
    *gm = max3(*gm, max3(in, r1, y), 0);
}

static void carve_bn(struct avs_carver *c, struct bn_keep *k, int C)
{
    k->mean = avs_carve(c, (size_t)C);
    k->rstd = avs_carve(c, (size_t)C);
}

/* One function counts (c->a NULL) and carves the workspace. */
static void carve(struct avs_carver *c, struct avs_resnet_keep *k, const struct avs_resnet *m,
                  int N)
{
    k->stem = avs_carve(c, (size_t)N * m->width * k->H1 * k->W1);
    k->pool = avs_carve(c, (size_t)N * m->width * k->Hp * k->Wp);
    carve_bn(c, &k->bn1, m->width);
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < m->depths[s]; i++) {
            struct blk_keep *b = &k->b[s][i];
            b->r1 = avs_carve(c, (size_t)N * b->P * b->H * b->W);
            b->r2 = avs_carve(c, (size_t)N * b->P * b->Ho * b->Wo);
            b->y = avs_carve(c, (size_t)N * b->K * b->Ho * b->Wo);
            carve_bn(c, &b->bn[0], b->P);
            carve_bn(c, &b->bn[1], b->P);
            carve_bn(c, &b->bn[2], b->K);
            carve_bn(c, &b->bn[3], b->K);
        }
    k->pooled = avs_carve(c, (size_t)N * m->dims[3]);
    k->dpool = avs_carve(c, (size_t)N * m->dims[3]);
    k->dlog = avs_carve(c, (size_t)N * (m->classes ? m->classes : 1));
    k->scr = avs_carve(c, k->gmax);
    for (int j = 0; j < 5; j++)
        k->g[j] = avs_carve(c, k->gmax);
    k->cws = avs_carve(c, k->cwmax);
}

void avs_resnet_ws_init(struct avs_resnet_ws *w, const struct avs_resnet *m, int N, int H, int W)
{
    AVS_ASSERT(N >= 1 && H >= 32 && W >= 32);
    memset(w, 0, sizeof *w);
    w->N = N, w->H = H, w->W = W;
    struct avs_resnet_keep *k = w->k = avs_calloc(1, sizeof *k);
    k->H1 = (H - 1) / 2 + 1, k->W1 = (W - 1) / 2 + 1;
    k->Hp = (k->H1 - 1) / 2 + 1, k->Wp = (k->W1 - 1) / 2 + 1;
    struct avs_conv2d g1;
    geom(&g1, N, 3, H, W, m->width, 7, 2);
    k->cwmax = avs_conv2d_ws(&g1);
    int C = m->width, h = k->Hp, wd = k->Wp;
    for (int s = 0; s < 4; s++) {
        k->b[s] = avs_calloc((size_t)m->depths[s], sizeof *k->b[s]);
        for (int i = 0; i < m->depths[s]; i++) {
            struct blk_keep *b = &k->b[s][i];
            plan_block(b, m, s, i, C, h, wd);
            block_sizes(b, N, &k->cwmax, &k->gmax);
            C = b->K, h = b->Ho, wd = b->Wo;
        }
    }
    struct avs_carver c = {0};
    carve(&c, k, m, N);
    avs_arena_init_lazy(&w->mem, c.total);
    c.a = &w->mem;
    carve(&c, k, m, N);
    w->onehot = avs_calloc((size_t)N * (m->classes ? m->classes : 1), sizeof(float));
}

void avs_resnet_ws_free(struct avs_resnet_ws *w)
{
    if (!w)
        return;
    if (w->k)
        for (int s = 0; s < 4; s++)
            free(w->k->b[s]);
    free(w->k);
    if (w->mem.base)
        avs_arena_free(&w->mem);
    free(w->onehot);
    memset(w, 0, sizeof *w);
}

size_t avs_resnet_ws_floats(const struct avs_resnet_ws *w)
{
    return w->mem.cap;
}

/* y = BN(y) in place with the running statistics of BN b */
static void bn_eval(const struct avs_resnet *m, const struct avs_resnet_bn_ix *b,
                    const struct bn_keep *k, float *y, int n, int C, int HW)
{
    const struct avs_tensor *p = m->params.t;
    avs_ops()->batchnorm_fwd(y, k->mean, k->rstd, y, p[b->w].data, p[b->b].data, p[b->mean].data,
                             p[b->var].data, n, C, HW, BN_EPS, 0.0f, 0);
}

static void block_fwd(const struct avs_resnet *m, const struct avs_resnet_block_ix *ix,
                      const struct blk_keep *b, struct avs_resnet_keep *k, const float *x, int n)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_tensor *p = m->params.t;
    struct avs_conv2d g;
    int HW = b->H * b->W, HWo = b->Ho * b->Wo;
    geom(&g, n, b->C, b->H, b->W, b->P, 1, 1);
    op->conv2d_fwd(b->r1, x, p[ix->conv[0]].data, NULL, &g, k->cws);
    bn_eval(m, &ix->bn[0], &b->bn[0], b->r1, n, b->P, HW);
    op->relu_fwd(b->r1, b->r1, (size_t)n * b->P * HW);
    geom(&g, n, b->P, b->H, b->W, b->P, 3, b->stride);
    op->conv2d_fwd(b->r2, b->r1, p[ix->conv[1]].data, NULL, &g, k->cws);
    bn_eval(m, &ix->bn[1], &b->bn[1], b->r2, n, b->P, HWo);
    op->relu_fwd(b->r2, b->r2, (size_t)n * b->P * HWo);
    geom(&g, n, b->P, b->Ho, b->Wo, b->K, 1, 1);
    op->conv2d_fwd(b->y, b->r2, p[ix->conv[2]].data, NULL, &g, k->cws);
    bn_eval(m, &ix->bn[2], &b->bn[2], b->y, n, b->K, HWo);
    const float *skip = x;
    if (ix->ds_conv >= 0) {
        geom(&g, n, b->C, b->H, b->W, b->K, 1, b->stride);
        op->conv2d_fwd(k->scr, x, p[ix->ds_conv].data, NULL, &g, k->cws);
        bn_eval(m, &ix->ds_bn, &b->bn[3], k->scr, n, b->K, HWo);
        skip = k->scr;
    }
    struct avs_bcast bc = {n, b->K, HWo, 1, 1, 1};
    op->add_fwd(b->y, b->y, skip, &bc);
    op->relu_fwd(b->y, b->y, (size_t)n * b->K * HWo);
}

static void fwd(const struct avs_resnet *m, struct avs_resnet_ws *w, float *const stage[4],
                float *logits, const float *image, int n)
{
    AVS_ASSERT(n >= 1 && n <= w->N);
    const struct avs_ops *op = avs_ops();
    struct avs_resnet_keep *k = w->k;
    struct avs_conv2d g;
    geom(&g, n, 3, w->H, w->W, m->width, 7, 2);
    op->conv2d_fwd(k->stem, image, m->params.t[m->conv1].data, NULL, &g, k->cws);
    bn_eval(m, &m->bn1, &k->bn1, k->stem, n, m->width, k->H1 * k->W1);
    op->relu_fwd(k->stem, k->stem, (size_t)n * m->width * k->H1 * k->W1);
    op->maxpool3s2_fwd(k->pool, k->stem, n * m->width, k->H1, k->W1);
    const float *x = k->pool;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < m->depths[s]; i++) {
            block_fwd(m, &m->blk[s][i], &k->b[s][i], k, x, n);
            x = k->b[s][i].y;
        }
        const struct blk_keep *last = &k->b[s][m->depths[s] - 1];
        if (stage && stage[s])
            op->copy(stage[s], x, (size_t)n * last->K * last->Ho * last->Wo * sizeof(float));
    }
    const struct blk_keep *b4 = &k->b[3][m->depths[3] - 1];
    op->mean_fwd(k->pooled, x, n * b4->K, b4->Ho * b4->Wo);
    if (logits && m->classes)
        avs_linear_fwd(logits, k->pooled, m->params.t[m->fc[0]].data, m->params.t[m->fc[1]].data,
                       n, b4->K, m->classes);
    w->n = n;
}

void avs_resnet_fwd(const struct avs_resnet *m, struct avs_resnet_ws *w, float *const stage[4],
                    float *logits, const float *image, int N)
{
    fwd(m, w, stage, logits, image, N);
    w->kept = 0;
}

void avs_resnet_fwd_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                         float *const stage[4], float *logits, const float *image, int N)
{
    fwd(m, w, stage, logits, image, N);
    w->kept = 1;
}

/* out = BN'(dy) (eval: dy w rstd), out zeroed first; dy also passed as the op's x (read only
 * for the parameter sums, which are not asked for) */
static void bn_back(const struct avs_resnet *m, const struct avs_resnet_bn_ix *b,
                    const struct bn_keep *k, float *out, const float *dy, int n, int C, int HW)
{
    const struct avs_ops *op = avs_ops();
    op->zero(out, (size_t)n * C * HW);
    op->batchnorm_bwd(out, NULL, NULL, dy, dy, k->mean, k->rstd, m->params.t[b->w].data, n, C, HW,
                      0);
}

/* out = dy where y > 0 (zeroed first) */
static void relu_back(float *out, const float *dy, const float *y, size_t len)
{
    const struct avs_ops *op = avs_ops();
    op->zero(out, len);
    op->relu_bwd(out, dy, y, len);
}

/* dx [n,C,H,W] = d(block output)/d(input) applied to dy [n,K,Ho,Wo] (overwritten). */
static void block_bwd(const struct avs_resnet *m, const struct avs_resnet_block_ix *ix,
                      const struct blk_keep *b, struct avs_resnet_keep *k, float *dx,
                      const float *dy, int n)
{
    const struct avs_ops *op = avs_ops();
    const struct avs_tensor *p = m->params.t;
    float *gs = k->g[2], *g1 = k->g[3], *g2 = k->g[4];
    struct avs_conv2d g;
    int HW = b->H * b->W, HWo = b->Ho * b->Wo;
    size_t out = (size_t)n * b->K * HWo, mid = (size_t)n * b->P * HWo, in = (size_t)n * b->P * HW;
    relu_back(gs, dy, b->y, out);
    if (ix->ds_conv >= 0) {
        bn_back(m, &ix->ds_bn, &b->bn[3], g1, gs, n, b->K, HWo);
        geom(&g, n, b->C, b->H, b->W, b->K, 1, b->stride);
        op->conv2d_bwd_data_set(dx, g1, p[ix->ds_conv].data, &g, k->cws);
    } else
        op->copy(dx, gs, out * sizeof(float));
    bn_back(m, &ix->bn[2], &b->bn[2], g1, gs, n, b->K, HWo);
    geom(&g, n, b->P, b->Ho, b->Wo, b->K, 1, 1);
    op->conv2d_bwd_data_set(g2, g1, p[ix->conv[2]].data, &g, k->cws);
    relu_back(g1, g2, b->r2, mid);
    bn_back(m, &ix->bn[1], &b->bn[1], g2, g1, n, b->P, HWo);
    geom(&g, n, b->P, b->H, b->W, b->P, 3, b->stride);
    op->conv2d_bwd_data_set(g1, g2, p[ix->conv[1]].data, &g, k->cws);
    relu_back(g2, g1, b->r1, in);
    bn_back(m, &ix->bn[0], &b->bn[0], g1, g2, n, b->P, HW);
    geom(&g, n, b->C, b->H, b->W, b->P, 1, 1);
    op->conv2d_bwd_data(dx, g1, p[ix->conv[0]].data, &g, k->cws);
}

void avs_resnet_gradcam_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                             float *const gradcam[4], const int *target)
{
    AVS_ASSERT(w->kept && m->classes > 0);
    const struct avs_ops *op = avs_ops();
    struct avs_resnet_keep *k = w->k;
    int n = w->n, C4 = m->dims[3];
    memset(w->onehot, 0, (size_t)n * m->classes * sizeof(float));
    for (int i = 0; i < n; i++) {
        AVS_ASSERT(target[i] >= 0 && target[i] < m->classes);
        w->onehot[(size_t)i * m->classes + target[i]] = 1.0f;
    }
    op->upload(k->dlog, w->onehot, (size_t)n * m->classes * sizeof(float));
    op->zero(k->dpool, (size_t)n * C4);
    avs_linear_bwd(k->dpool, NULL, NULL, k->dlog, k->pooled, m->params.t[m->fc[0]].data, n, C4,
                   m->classes);
    const struct blk_keep *b4 = &k->b[3][m->depths[3] - 1];
    float *cur = k->g[0], *nxt = k->g[1];
    op->zero(cur, (size_t)n * C4 * b4->Ho * b4->Wo);
    op->mean_bwd(cur, k->dpool, n * C4, b4->Ho * b4->Wo);
    for (int s = 3; s >= 0; s--) {
        const struct blk_keep *last = &k->b[s][m->depths[s] - 1];
        op->mean_fwd(gradcam[s], cur, n * last->K, last->Ho * last->Wo);
        if (s == 0)
            break;
        for (int i = m->depths[s] - 1; i >= 0; i--) {
            block_bwd(m, &m->blk[s][i], &k->b[s][i], k, nxt, cur, n);
            float *t = cur;
            cur = nxt, nxt = t;
        }
    }
    w->kept = 0;
}

void avs_resnet_gradcam(const struct avs_resnet *m, struct avs_resnet_ws *w,
                        float *const gradcam[4], float *const stage[4], float *logits,
                        const float *image, const int *target, int N)
{
    avs_resnet_fwd_kept(m, w, stage, logits, image, N);
    avs_resnet_gradcam_kept(m, w, gradcam, target);
}
