/* train/semantic.h: AVSS (AVSBench-semantic) helpers of training and prediction: the class
 * map of K-class logits, the official colour palette, and the official AVSS mIoU / F used for
 * validation (docs/avss.md "AVSS metrics", protocol avss-official over the frames given).
 *
 *   struct avs_semantic_acc a; avs_semantic_acc_init(&a, K);
 *   avs_semantic_frame(&a, logits, labels, HW);     per labelled frame: logits [K,HW]
 *   avs_semantic_result(&a, &miou, &f); avs_semantic_acc_free(&a);
 *
 * Validation here scores the real labelled frames only (the official numbers also count the
 * padded frames of v1 videos: avs-eval --semantic reports both; this is a training signal).
 */
#ifndef AVS_TRAIN_SEMANTIC_H
#define AVS_TRAIN_SEMANTIC_H

#include <stddef.h>
#include <stdint.h>

/* cls[i] = argmax over k of logits [K,HW] at pixel i (the first index on ties, as
 * torch.argmax). */
void avs_semantic_argmax(uint8_t *cls, const float *logits, int K, size_t HW);

struct avs_semantic_acc {
    int K;
    double *iou, *f;  /* [K] sums over frames of the per-frame float32 IoU and F */
    long *count;      /* [K] frames where the class's union is non-empty */
    int64_t *scratch; /* [3K] per-frame counts */
    uint8_t *cls;     /* [HW] of the last frame (grown as needed) */
    size_t cls_n;
    long frames;
};

void avs_semantic_acc_init(struct avs_semantic_acc *a, int K);
void avs_semantic_acc_free(struct avs_semantic_acc *a);
/* One frame: logits [K,HW] (host), labels [HW] class indices (an index >= K counts as 0). */
void avs_semantic_frame(struct avs_semantic_acc *a, const float *logits, const uint8_t *labels,
                        size_t HW);
/* mIoU and F: per class sum / count (0 when the class never occurs), mean over all K. */
void avs_semantic_result(const struct avs_semantic_acc *a, double *miou, double *fscore);

#endif
