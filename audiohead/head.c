/* audiohead/head.c: the decision-level single-attention head, forward and backward over a
 * batch of clips (audiohead.h). Rows of all the batch's seconds are stacked into X [R,D], so
 * the four products are single GEMMs (the CPU backend's OpenBLAS); the pooling is per clip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "backend/backend.h"
#include "model/randinit.h"

#define EPS 1e-7f

void avs_ah_head_init(struct avs_ah_head *h, int D, int K, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->D = D, h->K = K;
    h->n = 2 * ((size_t)K * D + K);
    h->p = avs_calloc(h->n, sizeof *h->p);
    h->W = h->p, h->b = h->W + (size_t)K * D, h->V = h->b + K, h->c = h->V + (size_t)K * D;
    float bound = sqrtf(6.0f / (float)D); /* Kong's init_layer: std sqrt(2/n), times sqrt(3) */
    avs_randinit_uniform(h->W, (size_t)K * D, bound, seed, 0);
    avs_randinit_uniform(h->V, (size_t)K * D, bound, seed, 2);
}

void avs_ah_head_free(struct avs_ah_head *h)
{
    free(h->p);
    memset(h, 0, sizeof *h);
}

void avs_ah_ws_init(struct avs_ah_ws *w, int64_t R, int B, int K, int D)
{
    memset(w, 0, sizeof *w);
    w->R = R, w->B = B;
    w->x = avs_malloc((size_t)R * D * sizeof *w->x);
    w->z = avs_malloc((size_t)R * K * sizeof *w->z);
    w->a = avs_malloc((size_t)R * K * sizeof *w->a);
    w->dz = avs_malloc((size_t)R * K * sizeof *w->dz);
    w->da = avs_malloc((size_t)R * K * sizeof *w->da);
    w->out = avs_malloc((size_t)B * K * sizeof *w->out);
    w->raw = avs_malloc((size_t)B * K * sizeof *w->raw);
    w->gsum = avs_malloc((size_t)B * K * sizeof *w->gsum);
}

void avs_ah_ws_free(struct avs_ah_ws *w)
{
    free(w->x), free(w->z), free(w->a), free(w->dz), free(w->da);
    free(w->out), free(w->raw), free(w->gsum);
    memset(w, 0, sizeof *w);
}

/* y [R,K] = X [R,D] M^T + bias */
static void affine(float *y, const float *x, const float *m, const float *bias, int64_t R, int D,
                   int K)
{
    const struct avs_ops *op = avs_backend_find("cpu");
    for (int64_t r = 0; r < R; r++)
        memcpy(y + r * K, bias, (size_t)K * sizeof *y);
    op->gemm(0, 1, (int)R, K, D, 1.0f, x, D, m, D, 1.0f, y, K);
}

static float sigmoidf(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

int64_t avs_ah_batch_rows(const struct avs_ah_data *d, const int *idx, int B)
{
    int64_t R = 0;
    for (int i = 0; i < B; i++)
        R += d->off[idx[i] + 1] - d->off[idx[i]];
    return R;
}

void avs_ah_head_fwd(const struct avs_ah_head *h, const struct avs_ah_data *d, const int *idx,
                     int B, struct avs_ah_ws *w)
{
    int D = h->D, K = h->K;
    int64_t R = 0;
    for (int i = 0; i < B; i++) {
        int64_t T = d->off[idx[i] + 1] - d->off[idx[i]];
        memcpy(w->x + R * D, d->x + d->off[idx[i]] * D, (size_t)(T * D) * sizeof *w->x);
        R += T;
    }
    AVS_ASSERT(R <= w->R && B <= w->B);
    affine(w->z, w->x, h->W, h->b, R, D, K);
    affine(w->a, w->x, h->V, h->c, R, D, K);
    for (int64_t i = 0; i < R * K; i++) {
        float g = sigmoidf(w->a[i]);
        w->z[i] = sigmoidf(w->z[i]);                      /* p */
        w->a[i] = g < EPS ? EPS : g > 1 - EPS ? 1 - EPS : g; /* attention */
    }
    R = 0;
    for (int i = 0; i < B; i++) {
        int64_t T = d->off[idx[i] + 1] - d->off[idx[i]];
        for (int k = 0; k < K; k++) {
            float G = 0, S = 0;
            for (int64_t t = 0; t < T; t++) {
                G += w->a[(R + t) * K + k];
                S += w->a[(R + t) * K + k] * w->z[(R + t) * K + k];
            }
            float o = S / G;
            w->gsum[i * K + k] = G, w->raw[i * K + k] = o;
            w->out[i * K + k] = o < EPS ? EPS : o > 1 - EPS ? 1 - EPS : o;
        }
        R += T;
    }
}

/* dL/d raw output of clip i class k (mean BCE over B*K), zero where the clamp cut it */
static float dout_of(const struct avs_ah_ws *w, const uint8_t *y, int i, int k, int K, int B,
                     double *loss)
{
    float o = w->out[i * K + k], r = w->raw[i * K + k];
    int t = y[k];
    *loss -= t ? log((double)o) : log1p(-(double)o);
    if (r < EPS || r > 1 - EPS)
        return 0;
    return (o - (float)t) / (o * (1 - o)) / (float)((int64_t)B * K);
}

double avs_ah_head_bwd(const struct avs_ah_head *h, const struct avs_ah_data *d, const int *idx,
                       int B, struct avs_ah_ws *w, float *g)
{
    int D = h->D, K = h->K;
    int64_t R = 0;
    double loss = 0;
    for (int i = 0; i < B; i++) {
        int64_t T = d->off[idx[i] + 1] - d->off[idx[i]];
        const uint8_t *y = d->y + (size_t)idx[i] * K;
        for (int k = 0; k < K; k++) {
            float dout = dout_of(w, y, i, k, K, B, &loss), G = w->gsum[i * K + k];
            float o = w->raw[i * K + k];
            for (int64_t t = 0; t < T; t++) {
                size_t j = (size_t)(R + t) * K + k;
                float p = w->z[j], a = w->a[j];
                w->dz[j] = dout * a / G * p * (1 - p);
                /* the attention's clamp passes the gradient only strictly inside */
                w->da[j] = a <= EPS || a >= 1 - EPS ? 0 : dout * (p - o) / G * a * (1 - a);
            }
        }
        R += T;
    }
    const struct avs_ops *op = avs_backend_find("cpu");
    float *gW = g, *gb = gW + (size_t)K * D, *gV = gb + K, *gc = gV + (size_t)K * D;
    op->gemm(1, 0, K, D, (int)R, 1.0f, w->dz, K, w->x, D, 0.0f, gW, D);
    op->gemm(1, 0, K, D, (int)R, 1.0f, w->da, K, w->x, D, 0.0f, gV, D);
    memset(gb, 0, (size_t)K * sizeof *gb);
    memset(gc, 0, (size_t)K * sizeof *gc);
    for (int64_t r = 0; r < R; r++)
        for (int k = 0; k < K; k++)
            gb[k] += w->dz[r * K + k], gc[k] += w->da[r * K + k];
    return loss / ((double)B * K);
}
