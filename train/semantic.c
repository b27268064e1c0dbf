/* train/semantic.c: see semantic.h. ref: AVSBench avs_scripts/avss/utils/compute_color_metrics.py
 * (per-frame, per-class IoU and F in float32, summed over frames where the class's union is
 * non-empty, NaN -> 0), as docs/avss.md defines them. */
#include "train/semantic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void avs_semantic_argmax(uint8_t *cls, const float *logits, int K, size_t HW)
{
    for (size_t i = 0; i < HW; i++)
        cls[i] = 0;
    if (K < 2)
        return;
    float *best = avs_malloc(HW * sizeof(float));
    memcpy(best, logits, HW * sizeof(float));
    for (int k = 1; k < K; k++) {
        const float *x = logits + (size_t)k * HW;
        for (size_t i = 0; i < HW; i++)
            if (x[i] > best[i])
                best[i] = x[i], cls[i] = (uint8_t)k;
    }
    free(best);
}

void avs_semantic_acc_init(struct avs_semantic_acc *a, int K)
{
    memset(a, 0, sizeof *a);
    a->K = K;
    a->iou = avs_calloc((size_t)K, sizeof *a->iou);
    a->f = avs_calloc((size_t)K, sizeof *a->f);
    a->count = avs_calloc((size_t)K, sizeof *a->count);
    a->scratch = avs_calloc((size_t)3 * K, sizeof *a->scratch);
}

void avs_semantic_acc_free(struct avs_semantic_acc *a)
{
    free(a->iou), free(a->f), free(a->count), free(a->scratch), free(a->cls);
    memset(a, 0, sizeof *a);
}

void avs_semantic_frame(struct avs_semantic_acc *a, const float *logits, const uint8_t *labels,
                        size_t HW)
{
    int K = a->K;
    if (a->cls_n < HW) {
        free(a->cls);
        a->cls = avs_malloc(HW);
        a->cls_n = HW;
    }
    avs_semantic_argmax(a->cls, logits, K, HW);
    int64_t *inter = a->scratch, *pred = inter + K, *lab = pred + K;
    memset(a->scratch, 0, (size_t)3 * K * sizeof *a->scratch);
    for (size_t i = 0; i < HW; i++) {
        int p = a->cls[i], l = labels[i] < K ? labels[i] : 0;
        pred[p]++, lab[l]++;
        inter[p] += p == l;
    }
    for (int c = 0; c < K; c++) {
        int64_t uni = pred[c] + lab[c] - inter[c];
        float iou = (float)inter[c] / (2.220446049250313e-16f + (float)uni);
        float prec = (float)inter[c] / (float)pred[c], rec = (float)inter[c] / (float)lab[c];
        float f = 1.3f * prec * rec / (0.3f * prec + rec); /* NaN -> 0 below */
        a->iou[c] += isnan(iou) ? 0 : iou;
        a->f[c] += isnan(f) ? 0 : f;
        a->count[c] += uni > 0;
    }
    a->frames++;
}

void avs_semantic_result(const struct avs_semantic_acc *a, double *miou, double *fscore)
{
    double si = 0, sf = 0;
    for (int c = 0; c < a->K; c++)
        if (a->count[c])
            si += a->iou[c] / a->count[c], sf += a->f[c] / a->count[c];
    *miou = a->K ? si / a->K : 0;
    *fscore = a->K ? sf / a->K : 0;
}
