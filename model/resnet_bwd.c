/* model/resnet_bwd.c: ResNet-50's backwards (model/resnet.h): the Grad-CAM pass (input
 * gradients from the one-hot of the target logits, block by block from the head to layer2's
 * first block, the spatial mean taken at each stage map) and the full backward (every
 * parameter's gradient from upstream gradients of the stage maps and logits, down to conv1),
 * the forward's steps in reverse on the activations kept in the workspace
 * (model/resnet_pass.c). Every gradient is ADDED into its tensor (the llm.c contract);
 * g == NULL: input gradients only.
 *
 * BatchNorm in eval mode is the affine map y = (x - mean) rstd w + b with the running
 * statistics fixed: dx = dy w rstd, dw = sum dy (x - mean) rstd, db = sum dy (batchnorm_bwd,
 * train 0). The max-pool's backward routes each gradient to its window's first maximum
 * (maxpool3s2_bwd), as PyTorch does.
 *
 *   block backward (dy -> dx)
 *   gs = dy * (y > 0)
 *   dx = conv_ds^T bn_ds'(gs)  (or gs itself)    dw_ds += bn_ds'(gs) (x) x
 *   g  = conv3^T bn3'(gs) * (r2 > 0)             dw3   += bn3'(gs) (x) r2
 *   g  = conv2^T bn2'(g) * (r1 > 0)              dw2   += bn2'(g) (x) r1
 *   dx += conv1^T bn1'(g)                        dw1   += bn1'(g) (x) x
 */
#include <string.h>

#include "model/nn.h"
#include "model/resnet_internal.h"

#define P(i) ((const float *)m->params.t[(i)].data)
#define G(i) (g ? g->t[(i)].data : NULL)

/* out = BN'(dy) (eval: dy w rstd; train: through the batch statistics), out zeroed first; with
 * g, the weight and bias gradients from the BatchNorm's input x (TRAIN); without (Grad-CAM,
 * eval only), dy is passed as the op's x (its sums unused). */
static void bn_back(const struct avs_resnet *m, struct avs_tensor_set *g,
                    const struct avs_resnet_bn_ix *b, const struct bn_keep *k, float *out,
                    const float *dy, const float *x, int n, int C, int HW, int train)
{
    AVS_ASSERT(!train || g);
    const struct avs_ops *op = avs_ops();
    op->zero(out, (size_t)n * C * HW);
    op->batchnorm_bwd(out, G(b->w), G(b->b), dy, g ? x : dy, k->mean, k->rstd, P(b->w), n, C, HW,
                      train);
}

/* out = dy where y > 0 (zeroed first) */
static void relu_back(float *out, const float *dy, const float *y, size_t len)
{
    const struct avs_ops *op = avs_ops();
    op->zero(out, len);
    op->relu_bwd(out, dy, y, len);
}

/* dw += the filter gradient of conv `conv` from dout and its input x, when g is given */
static void filter_back(const struct avs_resnet *m, struct avs_tensor_set *g, int conv,
                        const float *dout, const float *x, const struct avs_conv2d *geo,
                        float *cws)
{
    (void)m;
    if (g)
        avs_ops()->conv2d_bwd_filter(g->t[conv].data, NULL, dout, x, geo, cws);
}

/* dx [n,C,H,W] = d(block output)/d(input) applied to dy [n,K,Ho,Wo]; x the block's input. */
static void block_bwd(const struct avs_resnet *m, struct avs_tensor_set *g,
                      const struct avs_resnet_block_ix *ix, const struct blk_keep *b,
                      struct avs_resnet_keep *k, float *dx, const float *dy, const float *x,
                      int n)
{
    const struct avs_ops *op = avs_ops();
    float *gs = k->g[2], *g1 = k->g[3], *g2 = k->g[4];
    struct avs_conv2d geo;
    int HW = b->H * b->W, HWo = b->Ho * b->Wo;
    size_t out = (size_t)n * b->K * HWo, mid = (size_t)n * b->P * HWo, in = (size_t)n * b->P * HW;
    relu_back(gs, dy, b->y, out);
    if (ix->ds_conv >= 0) {
        bn_back(m, g, &ix->ds_bn, &b->bn[3], g1, gs, b->c[3], n, b->K, HWo, k->bn_train);
        resnet_geom(&geo, n, b->C, b->H, b->W, b->K, 1, b->stride);
        filter_back(m, g, ix->ds_conv, g1, x, &geo, k->cws);
        op->conv2d_bwd_data_set(dx, g1, P(ix->ds_conv), &geo, k->cws);
    } else
        op->copy(dx, gs, out * sizeof(float));
    bn_back(m, g, &ix->bn[2], &b->bn[2], g1, gs, b->c[2], n, b->K, HWo, k->bn_train);
    resnet_geom(&geo, n, b->P, b->Ho, b->Wo, b->K, 1, 1);
    filter_back(m, g, ix->conv[2], g1, b->r2, &geo, k->cws);
    op->conv2d_bwd_data_set(g2, g1, P(ix->conv[2]), &geo, k->cws);
    relu_back(g1, g2, b->r2, mid);
    bn_back(m, g, &ix->bn[1], &b->bn[1], g2, g1, b->c[1], n, b->P, HWo, k->bn_train);
    resnet_geom(&geo, n, b->P, b->H, b->W, b->P, 3, b->stride);
    filter_back(m, g, ix->conv[1], g2, b->r1, &geo, k->cws);
    op->conv2d_bwd_data_set(g1, g2, P(ix->conv[1]), &geo, k->cws);
    relu_back(g2, g1, b->r1, in);
    bn_back(m, g, &ix->bn[0], &b->bn[0], g1, g2, b->c[0], n, b->P, HW, k->bn_train);
    resnet_geom(&geo, n, b->C, b->H, b->W, b->P, 1, 1);
    filter_back(m, g, ix->conv[0], g1, x, &geo, k->cws);
    op->conv2d_bwd_data(dx, g1, P(ix->conv[0]), &geo, k->cws);
}

/* The input of layer s, block i: the previous block's output, or the max-pool's. */
static const float *block_in(const struct avs_resnet *m, const struct avs_resnet_keep *k, int s,
                             int i)
{
    if (i > 0)
        return k->b[s][i - 1].y;
    return s > 0 ? k->b[s - 1][m->depths[s - 1] - 1].y : k->pool;
}

/* k->g[0] = the gradient at layer4's output from k->dlog through fc and the average pool
 * (with g, fc's gradients too). */
static void head_bwd(const struct avs_resnet *m, struct avs_tensor_set *g, struct avs_resnet_keep *k,
                     int n)
{
    const struct avs_ops *op = avs_ops();
    const struct blk_keep *b4 = &k->b[3][m->depths[3] - 1];
    int C4 = m->dims[3];
    op->zero(k->dpool, (size_t)n * C4);
    avs_linear_bwd(k->dpool, G(m->fc[0]), G(m->fc[1]), k->dlog, k->pooled, P(m->fc[0]), n, C4,
                   m->classes);
    op->zero(k->g[0], (size_t)n * C4 * b4->Ho * b4->Wo);
    op->mean_bwd(k->g[0], k->dpool, n * C4, b4->Ho * b4->Wo);
}

void avs_resnet_gradcam_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                             float *const gradcam[4], const int *target)
{
    AVS_ASSERT(w->kept && m->classes > 0 && !w->k->bn_train); /* eval-mode Grad-CAM only */
    struct avs_resnet_keep *k = w->k;
    int n = w->n;
    memset(w->onehot, 0, (size_t)n * m->classes * sizeof(float));
    for (int i = 0; i < n; i++) {
        AVS_ASSERT(target[i] >= 0 && target[i] < m->classes);
        w->onehot[(size_t)i * m->classes + target[i]] = 1.0f;
    }
    avs_ops()->upload(k->dlog, w->onehot, (size_t)n * m->classes * sizeof(float));
    head_bwd(m, NULL, k, n);
    float *cur = k->g[0], *nxt = k->g[1];
    for (int s = 3; s >= 0; s--) {
        const struct blk_keep *last = &k->b[s][m->depths[s] - 1];
        avs_ops()->mean_fwd(gradcam[s], cur, n * last->K, last->Ho * last->Wo);
        if (s == 0) /* layer1's blocks are not on the path to its own output */
            break;
        for (int i = m->depths[s] - 1; i >= 0; i--) {
            block_bwd(m, NULL, &m->blk[s][i], &k->b[s][i], k, nxt, cur, block_in(m, k, s, i), n);
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

/* conv1 and bn1's gradients from dpool (the max-pool output's gradient [n,width,Hp,Wp]). */
static void stem_bwd(const struct avs_resnet *m, struct avs_tensor_set *g,
                     const struct avs_resnet_ws *w, const float *dpool, const float *image, int n)
{
    const struct avs_ops *op = avs_ops();
    struct avs_resnet_keep *k = w->k;
    float *a = k->g[2], *b = k->g[3];
    int HW = k->H1 * k->W1;
    size_t len = (size_t)n * m->width * HW;
    op->zero(a, len);
    op->maxpool3s2_bwd(a, dpool, k->stem, n * m->width, k->H1, k->W1);
    relu_back(b, a, k->stem, len);
    bn_back(m, g, &m->bn1, &k->bn1, a, b, k->stem_c, n, m->width, HW, k->bn_train);
    struct avs_conv2d geo;
    resnet_geom(&geo, n, 3, w->H, w->W, m->width, 7, 2);
    filter_back(m, g, m->conv1, a, image, &geo, k->cws);
}

void avs_resnet_bwd(const struct avs_resnet *m, struct avs_resnet_ws *w,
                    struct avs_tensor_set *g, float *const stage[4], float *logits,
                    const float *image, const float *const dstage[4], const float *dlogits, int N)
{
    AVS_ASSERT(w->mode >= AVS_RESNET_TRAIN && g && (logits || !dlogits));
    AVS_ASSERT(!logits || m->classes > 0);
    const struct avs_ops *op = avs_ops();
    struct avs_resnet_keep *k = w->k;
    resnet_forward(m, w, stage, logits, image, N);
    const struct blk_keep *b4 = &k->b[3][m->depths[3] - 1];
    if (logits) {
        if (dlogits)
            op->copy(k->dlog, dlogits, (size_t)N * m->classes * sizeof(float));
        else
            op->zero(k->dlog, (size_t)N * m->classes);
        head_bwd(m, g, k, N);
    } else /* no head run: fc's gradients stay as they are */
        op->zero(k->g[0], (size_t)N * b4->K * b4->Ho * b4->Wo);
    float *cur = k->g[0], *nxt = k->g[1];
    for (int s = 3; s >= 0; s--) {
        const struct blk_keep *last = &k->b[s][m->depths[s] - 1];
        if (dstage && dstage[s])
            op->axpy(cur, 1.0f, dstage[s], (size_t)N * last->K * last->Ho * last->Wo);
        for (int i = m->depths[s] - 1; i >= 0; i--) {
            block_bwd(m, g, &m->blk[s][i], &k->b[s][i], k, nxt, cur, block_in(m, k, s, i), N);
            float *t = cur;
            cur = nxt, nxt = t;
        }
    }
    stem_bwd(m, g, w, cur, image, N);
    w->kept = 0;
}
