/* train/syncbn.c: see syncbn.h. */
#include "train/syncbn.h"

#include <math.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "dist/ranks.h"

struct avs_syncbn {
    struct avs_bn_sync hook;
    struct avs_c3n_head *h;
    int C;
    float *gm, *gv, *one, *wp, *bp, *tm, *tr, *tdw, *tdb; /* device [C] */
    float *aff;                                           /* device [largest B*C*HW] */
    float *hm, *hr, *hw, *ha, *hb;                        /* host [C] */
    double *acc;                                          /* host [2C+1] */
};

static void sync_fwd(void *ctx, float *y, float *mean, float *rstd, const float *x, const float *w,
                     const float *b, float *run_mean, float *run_var, int N, int C, int HW,
                     float eps, float momentum)
{
    struct avs_syncbn *s = ctx;
    const struct avs_ops *op = avs_ops();
    AVS_ASSERT(C <= s->C);
    op->batchnorm_fwd(y, mean, rstd, x, w, b, NULL, NULL, N, C, HW, eps, momentum, 1);
    avs_dev_download(s->hm, mean, (size_t)C);
    avs_dev_download(s->hr, rstd, (size_t)C);
    double n = (double)N * HW, *a = s->acc;
    for (int c = 0; c < C; c++) {
        double m = s->hm[c], r = s->hr[c], var = 1.0 / (r * r) - eps;
        a[c] = n * m;
        a[C + c] = n * ((var > 0 ? var : 0) + m * m);
    }
    a[2 * C] = n;
    avs_ranks_sum_f64(a, (size_t)2 * C + 1);
    double ng = a[2 * C];
    avs_dev_download(s->ha, run_mean, (size_t)C);
    avs_dev_download(s->hb, run_var, (size_t)C);
    for (int c = 0; c < C; c++) {
        double m = a[c] / ng, var = a[C + c] / ng - m * m;
        var = var > 0 ? var : 0;
        s->hm[c] = (float)m, s->hr[c] = (float)var;
        s->ha[c] = (1.0f - momentum) * s->ha[c] + momentum * (float)m;
        s->hb[c] = (1.0f - momentum) * s->hb[c] + momentum * (float)(ng > 1 ? var * ng / (ng - 1) : var);
    }
    avs_dev_upload(run_mean, s->ha, (size_t)C);
    avs_dev_upload(run_var, s->hb, (size_t)C);
    avs_dev_upload(s->gm, s->hm, (size_t)C);
    avs_dev_upload(s->gv, s->hr, (size_t)C);
    op->batchnorm_fwd(y, mean, rstd, x, w, b, s->gm, s->gv, N, C, HW, eps, momentum, 0);
}

static void sync_bwd(void *ctx, float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *mean, const float *rstd, const float *w, int N, int C, int HW)
{
    struct avs_syncbn *s = ctx;
    const struct avs_ops *op = avs_ops();
    op->zero(s->tdw, (size_t)C);
    op->zero(s->tdb, (size_t)C);
    op->batchnorm_bwd(dx, s->tdw, s->tdb, dy, x, mean, rstd, w, N, C, HW, 0);
    if (dw)
        op->axpy(dw, 1.0f, s->tdw, (size_t)C);
    if (db)
        op->axpy(db, 1.0f, s->tdb, (size_t)C);
    if (!dx)
        return;
    double *a = s->acc;
    avs_dev_download(s->ha, s->tdb, (size_t)C);
    avs_dev_download(s->hb, s->tdw, (size_t)C);
    for (int c = 0; c < C; c++)
        a[c] = s->ha[c], a[C + c] = s->hb[c];
    avs_ranks_sum_f64(a, (size_t)2 * C);
    double n = (double)N * HW * avs_ranks_size();
    avs_dev_download(s->hm, mean, (size_t)C);
    avs_dev_download(s->hr, rstd, (size_t)C);
    if (w)
        avs_dev_download(s->hw, w, (size_t)C);
    for (int c = 0; c < C; c++) {
        double r = s->hr[c], k = (w ? s->hw[c] : 1.0) * r;
        s->ha[c] = (float)(-k * r * a[C + c] / n); /* times (x - mean) */
        s->hb[c] = (float)(-k * a[c] / n);
    }
    avs_dev_upload(s->gm, s->hm, (size_t)C);
    avs_dev_upload(s->wp, s->ha, (size_t)C);
    avs_dev_upload(s->bp, s->hb, (size_t)C);
    /* eval form with running var 1 and eps 0: aff = (x - mean) * wp + bp */
    op->batchnorm_fwd(s->aff, s->tm, s->tr, x, s->wp, s->bp, s->gm, s->one, N, C, HW, 0.0f, 0.0f, 0);
    op->axpy(dx, 1.0f, s->aff, (size_t)N * C * HW);
}

struct avs_syncbn *avs_syncbn_new(struct avs_c3n_head *h)
{
    struct avs_syncbn *s = avs_calloc(1, sizeof *s);
    int C = h->cfg.D;
    size_t big = 0;
    for (int i = 0; i < 4; i++) {
        size_t m = (size_t)h->B * C * h->cfg.H[i] * h->cfg.W[i];
        big = m > big ? m : big;
    }
    s->h = h, s->C = C;
    float **dev[] = {&s->gm, &s->gv, &s->one, &s->wp, &s->bp, &s->tm, &s->tr, &s->tdw, &s->tdb};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        *dev[i] = avs_dev_alloc((size_t)C, "SyncBN statistics");
    s->aff = avs_dev_alloc(big, "SyncBN backward");
    float **host[] = {&s->hm, &s->hr, &s->hw, &s->ha, &s->hb};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++)
        *host[i] = avs_calloc((size_t)C, sizeof(float));
    s->acc = avs_calloc((size_t)2 * C + 1, sizeof(double));
    for (int c = 0; c < C; c++)
        s->ha[c] = 1.0f;
    avs_dev_upload(s->one, s->ha, (size_t)C);
    s->hook = (struct avs_bn_sync){sync_fwd, sync_bwd, s};
    h->bn_sync = &s->hook;
    return s;
}

void avs_syncbn_free(struct avs_syncbn **sp)
{
    struct avs_syncbn *s = *sp;
    if (!s)
        return;
    s->h->bn_sync = NULL;
    float **dev[] = {&s->gm, &s->gv, &s->one, &s->wp, &s->bp, &s->tm, &s->tr, &s->tdw, &s->tdb,
                     &s->aff};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        avs_dev_free(dev[i]);
    free(s->hm), free(s->hr), free(s->hw), free(s->ha), free(s->hb), free(s->acc);
    free(s);
    *sp = NULL;
}
