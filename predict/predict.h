/* predict/predict.h: avs-predict: a trained C3N run on the store's videos (masks for avs-eval)
 * or on any clip (an overlay video).
 *
 *   struct avs_predict_opts o = {.root = "avsdata", .run = "s4-b0", .split = "test"};
 *   avs_predict_store(&o, &stats, &err);     PNG + .logits per second, predictions rows
 *   avs_predict_clip(&o, "in.mp4", "out.mp4", "frames/", &files, &err);
 *
 * Videos are cut into windows of T = 5 seconds (1-5, 6-10, ...); a short last window is
 * filled by repeating its last second (those outputs are dropped), so every second gets a
 * mask, as for AVSBench's 5-second clips exactly.
 * Output layout (AVSBench, what avs-eval reads): S4 <out>/<category>/<uid>/<uid>_<k>.png,
 * other subsets <out>/<uid>/<uid>_<k>.png, k = 1..n; each PNG (8-bit gray, v = round(255 p),
 * p = sigmoid(logit)) has its float logits next to it (<uid>_<k>.logits, eval/eval.h format),
 * which avs-eval prefers, so recorded numbers are exact.
 * AVSS runs (K classes): windows of T = 10 (a short video padded with zero frames, whose
 * outputs are dropped), <out>/<uid>/<uid>_<i>.png with i = k - 1 (the official naming): 8-bit
 * class indices (argmax), or RGB in the official palette with color; <uid>_<i>.logits holds
 * the K maps ([K][H][W], header byte 28 = K). Predictions rows as for binary runs (k = i + 1).
 * Runs trained with --mode finetune bring their own backbone (runs/<run>/backbone_best or the
 * `last` step's file): store mode then runs it on the store's frames (first 5 seconds of each
 * video) instead of reading the cache, clip mode loads it over the set's encoder.
 */
#ifndef AVS_PREDICT_PREDICT_H
#define AVS_PREDICT_PREDICT_H

#include "core/common.h"
#include "features/features.h"

struct avs_predict_opts {
    const char *root, *db_path;
    const char *run;
    const char *checkpoint; /* "best" (default) or "last" */
    const char *split;      /* default "test" */
    const char *subset;     /* default: the run's subset */
    const char *out;        /* default ROOT/runs/<run>/pred-<split> */
    const char *record;     /* evaluate and record under this method name (NULL: don't) */
    int color;              /* AVSS runs: RGB PNGs in the official palette instead of indices */
    struct avs_enc_files files; /* encoder weight files of sets not made random-init (clip
                                   mode, and store mode for finetuned runs) */
    int progress;
    int alpha_given, beta_given; /* C3IM exponents asked for: must be the run's feature set's */
    double alpha, beta;
};

struct avs_predict_stats {
    int videos, seconds, skipped; /* skipped: no features in the run's set */
    double miou, fscore;          /* when recorded */
    char out[4096];
};

int avs_predict_store(const struct avs_predict_opts *o, struct avs_predict_stats *st,
                      struct avs_err *err);
int avs_predict_clip(const struct avs_predict_opts *o, const char *clip, const char *out_video,
                     const char *frames_dir, struct avs_err *err);

#endif
