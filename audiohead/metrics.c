/* audiohead/metrics.c: per-class average precision and ROC AUC as sklearn computes them
 * (average_precision_score: sum over distinct thresholds, high to low, of
 * (R_n - R_{n-1}) P_n; roc_auc_score: trapezoids between distinct thresholds, so tied scores
 * count one half), the AudioSet convention of Kong et al. / Gemmeke et al. (audiohead.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audiohead/audiohead.h"

struct pair {
    float s;
    uint8_t y;
};

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const struct pair *)a)->s, y = ((const struct pair *)b)->s;
    return x > y ? -1 : x < y;
}

static struct pair *sorted(const float *score, const uint8_t *y, int n, int stride, int *P)
{
    struct pair *v = avs_malloc((size_t)n * sizeof *v + 1);
    *P = 0;
    for (int i = 0; i < n; i++) {
        v[i].s = score[(size_t)i * stride], v[i].y = y[(size_t)i * stride] != 0;
        *P += v[i].y;
    }
    qsort(v, (size_t)n, sizeof *v, by_score_desc);
    return v;
}

double avs_ah_ap(const float *score, const uint8_t *y, int n, int stride)
{
    int P;
    struct pair *v = sorted(score, y, n, stride, &P);
    double ap = 0;
    int tp = 0, i = 0, tp_prev = 0;
    while (P && i < n) {
        int j = i;
        for (; j < n && v[j].s == v[i].s; j++)
            tp += v[j].y;
        ap += (double)(tp - tp_prev) / P * ((double)tp / j);
        tp_prev = tp, i = j;
    }
    free(v);
    return P ? ap : NAN;
}

double avs_ah_auc(const float *score, const uint8_t *y, int n, int stride)
{
    int P;
    struct pair *v = sorted(score, y, n, stride, &P);
    int N = n - P, tp = 0, i = 0;
    double area = 0;
    while (P && N && i < n) {
        int j = i, gtp = 0, gfp = 0;
        for (; j < n && v[j].s == v[i].s; j++)
            v[j].y ? gtp++ : gfp++;
        area += gfp * (tp + gtp / 2.0);
        tp += gtp, i = j;
    }
    free(v);
    return P && N ? area / ((double)P * N) : NAN;
}

/* sqrt(2) * Phi^-1(auc), Phi^-1 by Newton on 0.5 erfc(-x / sqrt 2) */
double avs_ah_dprime(double auc)
{
    if (!(auc > 0 && auc < 1))
        return NAN;
    double x = 0;
    for (int it = 0; it < 100; it++) {
        double f = 0.5 * erfc(-x / sqrt(2.0)) - auc, pdf = exp(-0.5 * x * x) / sqrt(2 * M_PI);
        double dx = f / pdf;
        x -= dx;
        if (fabs(dx) < 1e-13)
            break;
    }
    return sqrt(2.0) * x;
}

void avs_ah_metrics_compute(const float *score, const uint8_t *y, int n, int K,
                            struct avs_ah_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->K = K;
    m->ap = avs_malloc((size_t)K * sizeof *m->ap);
    m->auc = avs_malloc((size_t)K * sizeof *m->auc);
    int na = 0;
    for (int k = 0; k < K; k++) {
        m->ap[k] = avs_ah_ap(score + k, y + k, n, K);
        m->auc[k] = avs_ah_auc(score + k, y + k, n, K);
        if (!isnan(m->ap[k]))
            m->map += m->ap[k], m->classes_with_pos++;
        if (!isnan(m->auc[k]))
            m->mauc += m->auc[k], na++;
    }
    m->map = m->classes_with_pos ? m->map / m->classes_with_pos : NAN;
    m->mauc = na ? m->mauc / na : NAN;
    m->dprime = avs_ah_dprime(m->mauc);
}

void avs_ah_metrics_free(struct avs_ah_metrics *m)
{
    free(m->ap);
    free(m->auc);
    m->ap = m->auc = NULL;
}
