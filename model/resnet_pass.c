/* model/resnet_pass.c: ResNet-50's workspace and forward on backend ops (model/resnet.h; ref:
 * torchvision models/resnet.py Bottleneck.forward, ResNet._forward_impl). The backwards
 * (Grad-CAM, parameter gradients) are in model/resnet_bwd.c.
 *
 * Every block keeps r1, r2 (its ReLU outputs) and y (its output): BatchNorm runs in place in
 * eval mode, and a ReLU's backward reads its output (y > 0 exactly where its input was), so the
 * data gradient needs nothing else. A TRAIN workspace also keeps each BatchNorm's input (the
 * conv outputs), which the BatchNorm weight gradients need; the forward then normalises out of
 * place, the same op on the same values (the same bits).
 *
 *   r1 = relu(bn1(conv1 x))
 *   r2 = relu(bn2(conv2 r1))   stride
 *   y  = bn3(conv3 r2)
 *   y += bn_ds(conv_ds x)  (or x)
 *   y  = relu(y)
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/nn.h"
#include "model/resnet_internal.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f /* nn.BatchNorm2d's default */

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
    resnet_geom(&g[0], N, b->C, b->H, b->W, b->P, 1, 1);
    resnet_geom(&g[1], N, b->P, b->H, b->W, b->P, 3, b->stride);
    resnet_geom(&g[2], N, b->P, b->Ho, b->Wo, b->K, 1, 1);
    resnet_geom(&g[3], N, b->C, b->H, b->W, b->K, 1, b->stride);
    for (int k = 0; k < 4; k++) {
        size_t w = avs_conv2d_ws(&g[k]);
        *cw = w > *cw ? w : *cw;
    }
    size_t in = (size_t)N * b->C * b->H * b->W, r1 = (size_t)N * b->P * b->H * b->W;
    size_t y = (size_t)N * b->K * b->Ho * b->Wo;
    *gm = max3(*gm, max3(in, r1, y), 0);
}

static float *carve_if(struct avs_carver *c, int yes, size_t n)
{
    return yes ? avs_carve(c, n) : NULL;
}

static void carve_bn(struct avs_carver *c, struct bn_keep *k, int C)
{
    k->mean = avs_carve(c, (size_t)C);
    k->rstd = avs_carve(c, (size_t)C);
}

/* One function counts (c->a NULL) and carves the workspace; tr: a TRAIN one. */
static void carve(struct avs_carver *c, struct avs_resnet_keep *k, const struct avs_resnet *m,
                  int N, int tr)
{
    k->stem = avs_carve(c, (size_t)N * m->width * k->H1 * k->W1);
    k->stem_c = carve_if(c, tr, (size_t)N * m->width * k->H1 * k->W1);
    k->pool = avs_carve(c, (size_t)N * m->width * k->Hp * k->Wp);
    carve_bn(c, &k->bn1, m->width);
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < m->depths[s]; i++) {
            struct blk_keep *b = &k->b[s][i];
            b->r1 = avs_carve(c, (size_t)N * b->P * b->H * b->W);
            b->r2 = avs_carve(c, (size_t)N * b->P * b->Ho * b->Wo);
            b->y = avs_carve(c, (size_t)N * b->K * b->Ho * b->Wo);
            b->c[0] = carve_if(c, tr, (size_t)N * b->P * b->H * b->W);
            b->c[1] = carve_if(c, tr, (size_t)N * b->P * b->Ho * b->Wo);
            b->c[2] = carve_if(c, tr, (size_t)N * b->K * b->Ho * b->Wo);
            b->c[3] = carve_if(c, tr && i == 0, (size_t)N * b->K * b->Ho * b->Wo);
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

void avs_resnet_ws_init_mode(struct avs_resnet_ws *w, const struct avs_resnet *m, int N, int H,
                             int W, enum avs_resnet_mode mode)
{
    AVS_ASSERT(N >= 1 && H >= 32 && W >= 32);
    memset(w, 0, sizeof *w);
    w->N = N, w->H = H, w->W = W, w->mode = mode;
    struct avs_resnet_keep *k = w->k = avs_calloc(1, sizeof *k);
    k->H1 = (H - 1) / 2 + 1, k->W1 = (W - 1) / 2 + 1;
    k->Hp = (k->H1 - 1) / 2 + 1, k->Wp = (k->W1 - 1) / 2 + 1;
    struct avs_conv2d g1;
    resnet_geom(&g1, N, 3, H, W, m->width, 7, 2);
    k->cwmax = avs_conv2d_ws(&g1);
    k->gmax = (size_t)N * m->width * k->H1 * k->W1; /* the stem's gradient */
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
    int tr = mode >= AVS_RESNET_TRAIN;
    k->bn_train = mode == AVS_RESNET_TRAIN_BATCHSTATS;
    carve(&c, k, m, N, tr);
    avs_arena_init_lazy(&w->mem, c.total);
    c.a = &w->mem;
    carve(&c, k, m, N, tr);
    w->onehot = avs_calloc((size_t)N * (m->classes ? m->classes : 1), sizeof(float));
}

void avs_resnet_ws_init(struct avs_resnet_ws *w, const struct avs_resnet *m, int N, int H, int W)
{
    avs_resnet_ws_init_mode(w, m, N, H, W, AVS_RESNET_GRADCAM);
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

/* y = BN(x) (x == y: in place) with the running statistics of BN b, or with the batch's when
 * train (the running ones then updated, as PyTorch's train mode) */
static void bn_fwd(const struct avs_resnet *m, const struct avs_resnet_bn_ix *b,
                   const struct bn_keep *k, float *y, const float *x, int n, int C, int HW,
                   int train)
{
    const struct avs_tensor *p = m->params.t;
    avs_ops()->batchnorm_fwd(y, k->mean, k->rstd, x, p[b->w].data, p[b->b].data, p[b->mean].data,
                             p[b->var].data, n, C, HW, BN_EPS, train ? BN_MOMENTUM : 0.0f, train);
}

/* out = BN(conv(x)): through pre (the conv output kept, TRAIN) or in place in out */
static void conv_bn(const struct avs_resnet *m, int conv, const struct avs_resnet_bn_ix *b,
                    const struct bn_keep *k, float *out, float *pre, const float *x,
                    const struct avs_conv2d *g, const struct avs_resnet_keep *K)
{
    float *c = pre ? pre : out;
    avs_ops()->conv2d_fwd(c, x, m->params.t[conv].data, NULL, g, K->cws);
    bn_fwd(m, b, k, out, c, g->N, g->K, g->P * g->Q, K->bn_train);
}

static void block_fwd(const struct avs_resnet *m, const struct avs_resnet_block_ix *ix,
                      const struct blk_keep *b, struct avs_resnet_keep *k, const float *x, int n)
{
    const struct avs_ops *op = avs_ops();
    struct avs_conv2d g;
    int HW = b->H * b->W, HWo = b->Ho * b->Wo;
    resnet_geom(&g, n, b->C, b->H, b->W, b->P, 1, 1);
    conv_bn(m, ix->conv[0], &ix->bn[0], &b->bn[0], b->r1, b->c[0], x, &g, k);
    op->relu_fwd(b->r1, b->r1, (size_t)n * b->P * HW);
    resnet_geom(&g, n, b->P, b->H, b->W, b->P, 3, b->stride);
    conv_bn(m, ix->conv[1], &ix->bn[1], &b->bn[1], b->r2, b->c[1], b->r1, &g, k);
    op->relu_fwd(b->r2, b->r2, (size_t)n * b->P * HWo);
    resnet_geom(&g, n, b->P, b->Ho, b->Wo, b->K, 1, 1);
    conv_bn(m, ix->conv[2], &ix->bn[2], &b->bn[2], b->y, b->c[2], b->r2, &g, k);
    const float *skip = x;
    if (ix->ds_conv >= 0) {
        resnet_geom(&g, n, b->C, b->H, b->W, b->K, 1, b->stride);
        conv_bn(m, ix->ds_conv, &ix->ds_bn, &b->bn[3], k->scr, b->c[3], x, &g, k);
        skip = k->scr;
    }
    struct avs_bcast bc = {n, b->K, HWo, 1, 1, 1};
    op->add_fwd(b->y, b->y, skip, &bc);
    op->relu_fwd(b->y, b->y, (size_t)n * b->K * HWo);
}

void resnet_forward(const struct avs_resnet *m, struct avs_resnet_ws *w, float *const stage[4],
                    float *logits, const float *image, int n)
{
    AVS_ASSERT(n >= 1 && n <= w->N);
    const struct avs_ops *op = avs_ops();
    struct avs_resnet_keep *k = w->k;
    struct avs_conv2d g;
    resnet_geom(&g, n, 3, w->H, w->W, m->width, 7, 2);
    conv_bn(m, m->conv1, &m->bn1, &k->bn1, k->stem, k->stem_c, image, &g, k);
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
    resnet_forward(m, w, stage, logits, image, N);
    w->kept = 0;
}

void avs_resnet_fwd_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                         float *const stage[4], float *logits, const float *image, int N)
{
    resnet_forward(m, w, stage, logits, image, N);
    w->kept = 1;
}
