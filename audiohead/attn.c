/* audiohead/attn.c: training and evaluating Kong et al.'s attention head
 * (model/audioset_head.h) on AudioSet clips (audiohead.h): the batches of train.c's sampler,
 * the head's passes on the active backend, Adam over all its parameters (PyTorch's, as Kong's
 * optimizer). A batch's seconds are gathered on the host and uploaded with the clips' row
 * offsets, so clips of any length share a batch (BatchNorm statistics over all its seconds). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "backend/ops.h"
#include "core/progress.h"
#include "model/audioset_head.h"

/* Device inputs of one batch. */
struct batch {
    int maxR, maxB;
    float *hx, *hy;  /* host staging: [maxR,D], [maxB,K] */
    int *hoff;       /* [maxB+1] */
    float *x, *y;    /* device */
    int *off;
};

static void batch_init(struct batch *b, const struct avs_ah_data *d, int B)
{
    memset(b, 0, sizeof *b);
    b->maxB = B, b->maxR = (int)(avs_ah_max_rows(d) * B);
    b->hx = avs_malloc((size_t)b->maxR * d->D * sizeof *b->hx + 1);
    b->hy = avs_malloc((size_t)B * d->K * sizeof *b->hy + 1);
    b->hoff = avs_malloc(((size_t)B + 1) * sizeof *b->hoff);
    b->x = avs_dev_alloc((size_t)b->maxR * d->D, "audio head batch");
    b->y = avs_dev_alloc((size_t)B * d->K, "audio head targets");
    b->off = (int *)avs_dev_alloc((size_t)B + 1, "audio head offsets");
}

static void batch_free(struct batch *b)
{
    free(b->hx), free(b->hy), free(b->hoff);
    avs_dev_free(&b->x), avs_dev_free(&b->y), avs_dev_free((float **)&b->off);
}

/* clips idx[0..B) up to the device; returns the rows */
static int batch_load(struct batch *b, const struct avs_ah_data *d, const int *idx, int B)
{
    int R = 0;
    for (int i = 0; i < B; i++) {
        int64_t r0 = d->off[idx[i]], T = d->off[idx[i] + 1] - r0;
        b->hoff[i] = R;
        memcpy(b->hx + (size_t)R * d->D, d->x + r0 * d->D, (size_t)(T * d->D) * sizeof *b->hx);
        for (int k = 0; k < d->K; k++)
            b->hy[(size_t)i * d->K + k] = d->y[(size_t)idx[i] * d->K + k];
        R += (int)T;
    }
    b->hoff[B] = R;
    avs_dev_upload(b->x, b->hx, (size_t)R * d->D);
    avs_dev_upload(b->y, b->hy, (size_t)B * d->K);
    avs_ops()->upload(b->off, b->hoff, ((size_t)B + 1) * sizeof *b->hoff);
    return R;
}

float *avs_ah_attn_predict(struct avs_ash *m, const struct avs_ah_data *d)
{
    enum { CHUNK = 256 };
    const struct avs_ops *op = avs_ops();
    float *out = avs_malloc((size_t)d->n * m->K * sizeof *out + 1);
    int B = d->n < CHUNK ? (d->n ? d->n : 1) : CHUNK, idx[CHUNK];
    struct batch b;
    struct avs_ash_ws w;
    batch_init(&b, d, B);
    avs_ash_ws_init(&w, m, b.maxR, B);
    for (int i0 = 0; i0 < d->n; i0 += B) {
        int n = d->n - i0 < B ? d->n - i0 : B;
        for (int i = 0; i < n; i++)
            idx[i] = i0 + i;
        int R = batch_load(&b, d, idx, n);
        avs_ash_fwd(m, &w, b.x, R, b.off, n, 0, 0);
        op->sigmoid_fwd(w.z, w.z, (size_t)n * m->K);
        avs_dev_download(out + (size_t)i0 * m->K, w.z, (size_t)n * m->K);
    }
    avs_ash_ws_free(&w);
    batch_free(&b);
    return out;
}

void avs_ah_attn_eval(struct avs_ash *m, const struct avs_ah_data *d, struct avs_ah_metrics *mt)
{
    float *s = avs_ah_attn_predict(m, d);
    avs_ah_metrics_compute(s, d->y, d->n, d->K, mt);
    free(s);
}

/* Adam's state: moments of the whole parameter arena (one primitive call per step) */
struct adam {
    struct avs_tensor_set g;
    float *m, *v;
    size_t n;
};

static void adam_init(struct adam *a, const struct avs_ash *h)
{
    avs_tensor_set_init(&a->g, h->specs.v, h->specs.n);
    a->n = h->params.arena.used;
    AVS_ASSERT(a->g.arena.used == a->n);
    a->m = avs_dev_alloc(a->n, "Adam m"), a->v = avs_dev_alloc(a->n, "Adam v");
}

static void adam_free(struct adam *a)
{
    avs_tensor_set_free(&a->g);
    avs_dev_free(&a->m), avs_dev_free(&a->v);
}

int avs_ah_attn_train(struct avs_ash *h, const struct avs_ah_data *d,
                      const struct avs_ah_train_opts *o, double *final_loss, struct avs_err *err)
{
    if (d->n < 1)
        return avs_err_set(err, "no training clips");
    if (d->D != h->D || d->K != h->K)
        return avs_err_set(err, "the head takes %d inputs and %d classes, the data has %d and %d",
                           h->D, h->K, d->D, d->K);
    if (o->batch < 2 && o->iters > 0) /* bn_attention's batch statistics need two clips */
        return avs_err_set(err, "--batch %d: the attention head's BatchNorm over clips needs at "
                           "least 2 clips per step (PyTorch refuses 1 too)", o->batch);
    struct avs_ah_loop l;
    if (avs_ah_loop_init(&l, d, o, err))
        return -1;
    const struct avs_ops *op = avs_ops();
    struct batch b;
    struct avs_ash_ws w;
    struct adam a;
    batch_init(&b, d, o->batch);
    avs_ash_ws_init(&w, h, b.maxR, o->batch);
    adam_init(&a, h);
    double loss = NAN;
    for (int t = 1; t <= o->iters; t++) {
        avs_ah_loop_draw(&l);
        int R = batch_load(&b, d, l.idx, o->batch);
        /* the step's dropout masks: a function of the seed and the step */
        avs_ash_fwd(h, &w, b.x, R, b.off, o->batch, 1, o->seed * 1000003ull + (uint64_t)t);
        loss = avs_ash_bwd(h, &w, &a.g, b.x, b.y, R, b.off, o->batch);
        op->adam_zero(h->params.arena.base, a.g.arena.base, a.m, a.v, a.n, o->lr, 0.9, 0.999,
                      1e-8, 0.0, t);
        if (avs_ah_loop_done(&l, t, loss))
            avs_ah_loop_report(&l, avs_ah_attn_predict(h, o->eval), t, loss);
    }
    if (final_loss)
        *final_loss = loss;
    adam_free(&a);
    avs_ash_ws_free(&w);
    batch_free(&b);
    return avs_ah_loop_end(&l, err);
}
