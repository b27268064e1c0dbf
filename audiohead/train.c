/* audiohead/train.c: Adam over class-balanced batches (audiohead.h).
 * The recipe of Kong et al.'s audioset_classification (the md_50000_iters checkpoint): Adam,
 * lr 1e-3, batch 500, 50,000 iterations, batches balanced over classes. Balanced batches here:
 * the classes with positives are visited in a shuffled cycle (reshuffled each cycle), and each
 * visit takes that class's next clip from its own shuffled list (reshuffled when used up), so
 * rare classes are seen as often as common ones. Everything is a function of the seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"
#include "core/progress.h"

static uint64_t next_u64(struct avs_ah_rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void shuffle(int *v, int n, struct avs_ah_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_u64(r) % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

void avs_ah_sampler_init(struct avs_ah_sampler *s, const struct avs_ah_data *d, int balanced,
                         uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->balanced = balanced, s->n = d->n, s->rng.s = seed ^ 0x5eed0a0d10ull;
    if (!balanced) {
        s->order = avs_malloc((size_t)d->n * sizeof *s->order);
        for (int i = 0; i < d->n; i++)
            s->order[i] = i;
        s->pos = d->n;
        return;
    }
    s->lists = avs_calloc((size_t)d->K, sizeof *s->lists);
    s->len = avs_calloc((size_t)d->K, sizeof *s->len);
    s->at = avs_calloc((size_t)d->K, sizeof *s->at);
    s->cls = avs_malloc((size_t)d->K * sizeof *s->cls);
    for (int k = 0; k < d->K; k++) {
        for (int i = 0; i < d->n; i++)
            if (d->y[(size_t)i * d->K + k]) {
                s->lists[k] = avs_realloc(s->lists[k], ((size_t)s->len[k] + 1) * sizeof(int));
                s->lists[k][s->len[k]++] = i;
            }
        if (s->len[k]) {
            s->cls[s->nc++] = k;
            shuffle(s->lists[k], s->len[k], &s->rng);
        }
    }
    s->pos = s->nc;
}

int avs_ah_sampler_next(struct avs_ah_sampler *s)
{
    if (!s->balanced) {
        if (s->pos == s->n)
            shuffle(s->order, s->n, &s->rng), s->pos = 0;
        return s->order[s->pos++];
    }
    if (s->pos == s->nc)
        shuffle(s->cls, s->nc, &s->rng), s->pos = 0;
    int k = s->cls[s->pos++];
    if (s->at[k] == s->len[k])
        shuffle(s->lists[k], s->len[k], &s->rng), s->at[k] = 0;
    return s->lists[k][s->at[k]++];
}

void avs_ah_sampler_free(struct avs_ah_sampler *s, int K)
{
    for (int k = 0; s->lists && k < K; k++)
        free(s->lists[k]);
    free(s->lists), free(s->len), free(s->at), free(s->cls), free(s->order);
}

/* PyTorch's Adam (betas 0.9, 0.999, eps 1e-8, no weight decay), step t from 1 */
static void adam(float *p, const float *g, float *m, float *v, size_t n, float lr, int t)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

int64_t avs_ah_max_rows(const struct avs_ah_data *d)
{
    int64_t m = 0;
    for (int i = 0; i < d->n; i++)
        m = d->off[i + 1] - d->off[i] > m ? d->off[i + 1] - d->off[i] : m;
    return m;
}

int avs_ah_loop_init(struct avs_ah_loop *l, const struct avs_ah_data *d,
                     const struct avs_ah_train_opts *o, struct avs_err *err)
{
    memset(l, 0, sizeof *l);
    l->o = o;
    l->trace = o->trace ? fopen(o->trace, "w") : NULL;
    if (o->trace && !l->trace)
        return avs_err_set(err, "%s: cannot write the trace", o->trace);
    avs_ah_sampler_init(&l->s, d, o->balanced, o->seed);
    l->K = d->K;
    l->idx = avs_malloc((size_t)o->batch * sizeof *l->idx);
    if (o->progress)
        avs_progress_init(&l->bar, "train", "steps", o->iters);
    return 0;
}

void avs_ah_loop_draw(struct avs_ah_loop *l)
{
    for (int i = 0; i < l->o->batch; i++)
        l->idx[i] = avs_ah_sampler_next(&l->s);
}

int avs_ah_loop_done(struct avs_ah_loop *l, int t, double loss)
{
    const struct avs_ah_train_opts *o = l->o;
    if (l->trace) { /* a --trace line: "step loss idx..." */
        fprintf(l->trace, "%d %.17g", t, loss);
        for (int i = 0; i < o->batch; i++)
            fprintf(l->trace, " %d", l->idx[i]);
        fputc('\n', l->trace);
    }
    if (o->progress)
        avs_progress_add(&l->bar, 1);
    return o->eval && o->eval_every && t % o->eval_every == 0;
}

void avs_ah_loop_report(struct avs_ah_loop *l, float *scores, int t, double loss)
{
    const struct avs_ah_train_opts *o = l->o;
    struct avs_ah_metrics m;
    avs_ah_metrics_compute(scores, o->eval->y, o->eval->n, o->eval->K, &m);
    if (o->progress)
        printf("\rstep %d: loss %.5f, eval mAP %.4f (%d classes), AUC %.4f, d' %.3f\n", t, loss,
               m.map, m.classes_with_pos, m.mauc, m.dprime);
    else
        avs_log_info("step %d: loss %.5f, eval mAP %.4f (%d classes), AUC %.4f, d' %.3f", t,
                     loss, m.map, m.classes_with_pos, m.mauc, m.dprime);
    avs_ah_metrics_free(&m);
    free(scores);
}

int avs_ah_loop_end(struct avs_ah_loop *l, struct avs_err *err)
{
    if (l->o->progress)
        avs_progress_end(&l->bar);
    int rc = 0;
    if (l->trace && fclose(l->trace))
        rc = avs_err_set(err, "%s: cannot write the trace", l->o->trace);
    free(l->idx);
    avs_ah_sampler_free(&l->s, l->K);
    return rc;
}

int avs_ah_train(struct avs_ah_head *h, const struct avs_ah_data *d,
                 const struct avs_ah_train_opts *o, double *final_loss, struct avs_err *err)
{
    if (d->n < 1)
        return avs_err_set(err, "no training clips");
    if (d->D != h->D || d->K != h->K)
        return avs_err_set(err, "the head takes %d inputs and %d classes, the data has %d and %d",
                           h->D, h->K, d->D, d->K);
    struct avs_ah_loop l;
    if (avs_ah_loop_init(&l, d, o, err))
        return -1;
    struct avs_ah_ws w;
    avs_ah_ws_init(&w, avs_ah_max_rows(d) * o->batch, o->batch, h->K, h->D);
    float *g = avs_malloc(h->n * sizeof *g), *m = avs_calloc(h->n, sizeof *m);
    float *v = avs_calloc(h->n, sizeof *v);
    double loss = NAN;
    for (int t = 1; t <= o->iters; t++) {
        avs_ah_loop_draw(&l);
        avs_ah_head_fwd(h, d, l.idx, o->batch, &w);
        loss = avs_ah_head_bwd(h, d, l.idx, o->batch, &w, g);
        adam(h->p, g, m, v, h->n, o->lr, t);
        if (avs_ah_loop_done(&l, t, loss))
            avs_ah_loop_report(&l, avs_ah_predict(h, o->eval), t, loss);
    }
    if (final_loss)
        *final_loss = loss;
    free(g), free(m), free(v);
    avs_ah_ws_free(&w);
    return avs_ah_loop_end(&l, err);
}

float *avs_ah_predict(const struct avs_ah_head *h, const struct avs_ah_data *d)
{
    enum { CHUNK = 256 };
    float *out = avs_malloc((size_t)d->n * h->K * sizeof *out + 1);
    struct avs_ah_ws w;
    avs_ah_ws_init(&w, avs_ah_max_rows(d) * CHUNK, CHUNK, h->K, h->D);
    int idx[CHUNK];
    for (int i0 = 0; i0 < d->n; i0 += CHUNK) {
        int B = d->n - i0 < CHUNK ? d->n - i0 : CHUNK;
        for (int i = 0; i < B; i++)
            idx[i] = i0 + i;
        avs_ah_head_fwd(h, d, idx, B, &w);
        memcpy(out + (size_t)i0 * h->K, w.out, (size_t)B * h->K * sizeof *out);
    }
    avs_ah_ws_free(&w);
    return out;
}

void avs_ah_eval(const struct avs_ah_head *h, const struct avs_ah_data *d, struct avs_ah_metrics *m)
{
    float *s = avs_ah_predict(h, d);
    avs_ah_metrics_compute(s, d->y, d->n, d->K, m);
    free(s);
}
