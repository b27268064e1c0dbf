/* model/audioset_head_pass.c: the AudioSet attention head's forward and backward passes and
 * the VGGish postprocessing, from backend primitives only (audioset_head.h; ref:
 * audioset_classification pytorch/main.py EmbeddingLayers, Attention, FeatureLevelSingleAttention).
 * Rows are seconds: the 1x1 convs of Kong's [N,C,T,1] maps are GEMMs over the [R,C] rows, and
 * his BatchNorm2d's statistics over N*T are those over the R rows. */
#include <string.h>

#include "model/audioset_head.h"
#include "model/nn.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define ATT_EPS 1e-7f /* Attention.forward's clamp */

struct cut {
    float *base; /* NULL: sizing only */
    size_t used;
};

static float *take(struct cut *c, size_t n)
{
    float *r = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) / 16 * 16;
    return r;
}

/* the layout of the scratch; base NULL: only the size */
static size_t carve(struct avs_ash_ws *w, const struct avs_ash *m, int R, int N, float *base)
{
    size_t D = (size_t)m->D, H = (size_t)m->H, K = (size_t)m->K, RH = (size_t)R * H;
    size_t RW = (size_t)R * (D > H ? D : H);
    struct cut cc = {base, 0}, *p = &cc;
    w->a0 = take(p, (size_t)R * D), w->m0 = take(p, D), w->r0 = take(p, D);
    for (int l = 0; l < 3; l++) {
        w->h[l] = take(p, RH), w->b[l] = take(p, RH), w->d[l] = take(p, RH);
        w->mask[l] = take(p, RH), w->mean[l] = take(p, H), w->rstd[l] = take(p, H);
    }
    w->A = take(p, RH), w->V = take(p, RH), w->S = take(p, RH);
    w->p = take(p, N * H), w->q = take(p, N * H), w->e = take(p, N * H);
    w->emask = take(p, N * H), w->ma = take(p, H), w->ra = take(p, H);
    w->z = take(p, N * K), w->dz = take(p, N * K);
    w->gR1 = take(p, RW), w->gR2 = take(p, RW), w->gA = take(p, RH), w->gV = take(p, RH);
    w->gN1 = take(p, N * H), w->gN2 = take(p, N * H);
    return cc.used;
}

size_t avs_ash_ws_floats(const struct avs_ash *m, int R, int N)
{
    struct avs_ash_ws probe;
    return carve(&probe, m, R, N, NULL);
}

void avs_ash_ws_carve(struct avs_ash_ws *w, const struct avs_ash *m, int R, int N, float *base)
{
    memset(w, 0, sizeof *w);
    carve(w, m, R, N, base);
    w->R = R, w->N = N;
}

void avs_ash_ws_init(struct avs_ash_ws *w, const struct avs_ash *m, int R, int N)
{
    float *base = avs_dev_alloc(avs_ash_ws_floats(m, R, N), "AudioSet head activations");
    avs_ash_ws_carve(w, m, R, N, base);
    w->base = base;
}

void avs_ash_ws_free(struct avs_ash_ws *w)
{
    avs_dev_free(&w->base);
    memset(w, 0, sizeof *w);
}

static const float *P(const struct avs_ash *m, int i)
{
    return m->params.t[i].data;
}

/* BatchNorm b (0..4) of m over [rows, C] */
static void bn_fwd(struct avs_ash *m, int b, float *y, float *mean, float *rstd, const float *x,
                   int rows, int C, int train)
{
    int wi = b < 4 ? AVS_ASH_BN0_W + 2 * b : AVS_ASH_BNA_W;
    avs_ops()->batchnorm_fwd(y, mean, rstd, x, P(m, wi), P(m, wi + 1), m->bufs.t[2 * b].data,
                             m->bufs.t[2 * b + 1].data, rows, C, 1, BN_EPS, BN_MOMENTUM, train);
}

void avs_ash_fwd(struct avs_ash *m, struct avs_ash_ws *w, const float *x, int R, const int *off,
                 int N, int train, unsigned long long seed)
{
    const struct avs_ops *op = avs_ops();
    int H = m->H, T = off ? 0 : R / N, drop = train && m->drop > 0;
    AVS_ASSERT(R <= w->R && N <= w->N);
    w->train = train;
    bn_fwd(m, 0, w->a0, w->m0, w->r0, x, R, m->D, train);
    const float *in = w->a0;
    int I = m->D;
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)R * H;
        avs_linear_fwd(w->h[l], in, P(m, AVS_ASH_CONV1 + l), NULL, R, I, H);
        bn_fwd(m, l + 1, w->b[l], w->mean[l], w->rstd[l], w->h[l], R, H, train);
        op->relu_fwd(w->d[l], w->b[l], n);
        if (drop)
            op->dropout_fwd(w->d[l], w->mask[l], w->d[l], n, m->drop, seed * 8 + (unsigned)l);
        in = w->d[l], I = H;
    }
    avs_linear_fwd(w->A, in, P(m, AVS_ASH_ATT_W), P(m, AVS_ASH_ATT_B), R, H, H);
    avs_linear_fwd(w->V, in, P(m, AVS_ASH_CLA_W), P(m, AVS_ASH_CLA_B), R, H, H);
    op->attpool_fwd(w->p, w->S, w->A, w->V, off, N, T, H, ATT_EPS);
    bn_fwd(m, 4, w->q, w->ma, w->ra, w->p, N, H, train);
    op->relu_fwd(w->e, w->q, (size_t)N * H);
    if (drop)
        op->dropout_fwd(w->e, w->emask, w->e, (size_t)N * H, m->drop, seed * 8 + 3);
    avs_linear_fwd(w->z, w->e, P(m, AVS_ASH_FC_W), P(m, AVS_ASH_FC_B), N, H, m->K);
}

static float *G(struct avs_tensor_set *g, int i)
{
    return g->t[i].data;
}

/* dropout (when the forward drew masks), ReLU and BatchNorm b backwards from *cur, ping-ponging
 * between the two scratch buffers; *cur ends as the gradient of the BatchNorm's input */
static void bn_relu_drop_bwd(const struct avs_ash *m, struct avs_ash_ws *w,
                             struct avs_tensor_set *g, int b, float **cur, float *s1, float *s2,
                             const float *mask, const float *bn_out, const float *bn_in,
                             const float *mean, const float *rstd, int rows)
{
    const struct avs_ops *op = avs_ops();
    size_t n = (size_t)rows * m->H;
    int wi = b < 4 ? AVS_ASH_BN0_W + 2 * b : AVS_ASH_BNA_W;
    float *other = *cur == s1 ? s2 : s1;
    if (w->train && m->drop > 0) {
        op->zero(other, n);
        op->dropout_bwd(other, *cur, mask, n);
        float *t = *cur;
        *cur = other, other = t;
    }
    op->zero(other, n);
    op->relu_bwd(other, *cur, bn_out, n);
    float *t = *cur;
    *cur = other, other = t;
    op->zero(other, n);
    op->batchnorm_bwd(other, G(g, wi), G(g, wi + 1), *cur, bn_in, mean, rstd, P(m, wi), rows,
                      m->H, 1, 1);
    *cur = other;
}

double avs_ash_bwd(const struct avs_ash *m, struct avs_ash_ws *w, struct avs_tensor_set *g,
                   const float *x, const float *y, int R, const int *off, int N)
{
    const struct avs_ops *op = avs_ops();
    int H = m->H, T = off ? 0 : R / N;
    double loss = op->bce_logits(w->dz, w->z, y, N, m->K, 1.0f);
    float *cur = w->gN1;
    op->zero(cur, (size_t)N * H);
    avs_linear_bwd(cur, G(g, AVS_ASH_FC_W), G(g, AVS_ASH_FC_B), w->dz, w->e, P(m, AVS_ASH_FC_W),
                   N, H, m->K);
    bn_relu_drop_bwd(m, w, g, 4, &cur, w->gN1, w->gN2, w->emask, w->q, w->p, w->ma, w->ra, N);
    op->zero(w->gA, (size_t)R * H), op->zero(w->gV, (size_t)R * H);
    op->attpool_bwd(w->gA, w->gV, cur, w->S, w->V, w->p, off, N, T, H, ATT_EPS);
    cur = w->gR1;
    op->zero(cur, (size_t)R * H);
    avs_linear_bwd(cur, G(g, AVS_ASH_ATT_W), G(g, AVS_ASH_ATT_B), w->gA, w->d[2],
                   P(m, AVS_ASH_ATT_W), R, H, H);
    avs_linear_bwd(cur, G(g, AVS_ASH_CLA_W), G(g, AVS_ASH_CLA_B), w->gV, w->d[2],
                   P(m, AVS_ASH_CLA_W), R, H, H);
    for (int l = 2; l >= 0; l--) {
        bn_relu_drop_bwd(m, w, g, l + 1, &cur, w->gR1, w->gR2, w->mask[l], w->b[l], w->h[l],
                         w->mean[l], w->rstd[l], R);
        const float *in = l ? w->d[l - 1] : w->a0;
        int I = l ? H : m->D;
        float *other = cur == w->gR1 ? w->gR2 : w->gR1;
        op->zero(other, (size_t)R * I);
        avs_linear_bwd(other, G(g, AVS_ASH_CONV1 + l), NULL, cur, in, P(m, AVS_ASH_CONV1 + l), R,
                       I, H);
        cur = other;
    }
    op->batchnorm_bwd(NULL, G(g, AVS_ASH_BN0_W), G(g, AVS_ASH_BN0_B), cur, x, w->m0, w->r0,
                      P(m, AVS_ASH_BN0_W), R, m->D, 1, 1);
    return loss;
}

void avs_ash_postprocess(const struct avs_ash *m, float *q, const float *x, int R)
{
    AVS_ASSERT(m->have_pca);
    avs_linear_fwd(q, x, m->pca_E, m->pca_b, R, AVS_ASH_PCA, AVS_ASH_PCA);
    avs_ops()->quant8_fwd(q, q, (size_t)R * AVS_ASH_PCA);
}
