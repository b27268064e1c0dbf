/* eval/avss.h: AVSBench-semantic (AVSS) evaluation, the official protocol and its labelled
 * variants (docs/avss.md "AVSS metrics").
 *
 *   struct avs_avss_set set = {0};
 *   avs_avss_list_release(dir, "test", &set, &err)   or avs_avss_list_db(db, root, ...)
 *   avs_avss_attach_pred(&set, pred_dir);            official <uid>/<uid>_<i>.* or <uid>/<k>.*
 *   struct avs_avss_options opt = {.jobs = 4};
 *   struct avs_avss_result res = {0};
 *   avs_avss_run(&set, &opt, &res, &err);            per-frame class counts (OpenMP), then the
 *   ... res.miou, res.fscore, res.variants[..], res.classes[c] ...   serial aggregation
 *   avs_avss_result_free(&res); avs_avss_set_free(&set);
 *
 * Every frame is evaluated at 224x224: labels and PNG predictions of other sizes are resized
 * NEAREST as PIL does it (source pixel floor((x + 0.5) * src / 224), accumulated in double as
 * Pillow's ImagingScaleAffine), then colours are mapped through the palette (core/avss.h).
 * ref: AVSBench avs_scripts/avss/utils/compute_color_metrics.py _batch_miou_fscore and test.py
 * (float32 arithmetic, per-class sums over frames, counts of frames with union > 0, mean over
 * all 71 classes); color_dataloader.py (10 frames per video, v1s/v1m padded with 5 frames whose
 * label is all background; unknown label colours become class 0).
 */
#ifndef AVS_EVAL_AVSS_H
#define AVS_EVAL_AVSS_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdint.h>

#include "core/avss.h"
#include "core/common.h"
#include "eval/eval.h"

#define AVS_AVSS_T 10      /* frames per video, officially (v1s/v1m: 5 real + 5 padded) */
#define AVS_AVSS_SIZE 224  /* evaluation size, both axes */
#define AVS_AVSS_BATCH 4   /* videos per float32 partial sum (official test_batch_size) */

enum avs_avss_gt_kind {
    AVS_AVSS_GT_NONE,   /* no label file: all background (padded frames) */
    AVS_AVSS_GT_COLOUR, /* release labels_rgb PNG: palette colours, unknown -> 0 */
    AVS_AVSS_GT_INDEX   /* store class-index PNG: 255 = unknown -> 0 */
};

struct avs_avss_frame {
    char *gt;     /* label path, NULL for GT_NONE */
    char *pred;   /* prediction (.png or .logits), NULL when not found */
    char *want;   /* where a missing prediction was expected */
    char *image;  /* release frame JPEG (its size is checked against the label), or NULL */
    int gt_kind;  /* enum avs_avss_gt_kind */
    int video, i; /* video index; frame index 0..9 (store k = i + 1) */
    int padded;   /* a padded frame (v1s/v1m i >= 5): black image, label all background */
    int exp_w, exp_h; /* the released frame size when known from the store (0: unknown) */
};

struct avs_avss_video {
    char *name; /* uid */
    char *set;  /* v1s, v1m, v2 (NULL when unknown) */
    int first, n;
};

struct avs_avss_set {
    struct avs_avss_video *videos;
    int n_videos;
    struct avs_avss_frame *frames;
    int n_frames;
    char *names[AVS_AVSS_MAX_CLASSES]; /* class names by index (label2idx.json / classes table) */
    int n_classes;                     /* classes of the table (the release: 71) */
    char *split;                   /* NULL: all splits */
    int from_db;
};

/* 1 when dir looks like an AVSS release (metadata.csv and label2idx.json). */
int avs_avss_is_release(const char *dir);
/* Videos of `split` (NULL = all) in metadata.csv order, 10 frames each. */
int avs_avss_list_release(const char *dir, const char *split, struct avs_avss_set *set,
                          struct avs_err *err);
/* Videos of subset avss (status ok) with their kind='class' masks (masks.released, else
 * masks.path), ordered by video id; class names from the classes table (dataset 'avss'). */
int avs_avss_list_db(sqlite3 *db, const char *root, const char *split, struct avs_avss_set *set,
                     struct avs_err *err);
/* How many videos of subset avss the index has (0 when none, or on error). */
int avs_avss_db_count(sqlite3 *db);
/* Find each frame's prediction under dir/<uid>/ as <uid>_<i> (official save_color_mask) or
 * <k> (store layout), ".logits" before ".png". Returns the number of real (not padded)
 * frames without one. */
int avs_avss_attach_pred(struct avs_avss_set *set, const char *dir);
void avs_avss_set_free(struct avs_avss_set *set);

/* ---- per frame -------------------------------------------------------------------------- */

struct avs_avss_counts {
    int32_t inter[AVS_AVSS_MAX_CLASSES], pred[AVS_AVSS_MAX_CLASSES], lab[AVS_AVSS_MAX_CLASSES];
    int64_t unknown; /* label pixels of no class colour (counted as background) */
};

/* Read an 8-bit PNG as 1 (gray; gray+alpha: gray) or 3 channels (RGB; palettes expanded,
 * alpha dropped), as PIL's convert('RGB') sees the colours. *px is malloc'd [h][w][c]. */
int avs_avss_png_read(const char *path, uint8_t **px, int *w, int *h, int *c, struct avs_err *err);
/* The 224x224 class map of a frame's label / prediction (docs/avss.md), into out. */
int avs_avss_read_label(const struct avs_avss_frame *fr, int n_classes, uint8_t *out, int64_t *unknown,
                        struct avs_err *err);
int avs_avss_read_pred(const char *path, int n_classes, uint8_t *out, struct avs_err *err);
/* Class counts of one frame from its two class maps (n pixels). */
void avs_avss_count(const uint8_t *pred, const uint8_t *lab, int64_t n, struct avs_avss_counts *c);

/* ---- aggregation ------------------------------------------------------------------------ */

enum avs_avss_frame_status {
    AVS_AVSS_OK, AVS_AVSS_PADDED_GIVEN, AVS_AVSS_PADDED_ASSUMED, AVS_AVSS_MISSING, AVS_AVSS_FAILED
};

enum avs_avss_variant { AVS_AVSS_NO_BG, AVS_AVSS_OFFICIAL_NO_BG, AVS_AVSS_PRESENT, AVS_AVSS_POOLED,
                        AVS_AVSS_NVARIANTS };
const char *avs_avss_variant_name(enum avs_avss_variant v);

struct avs_avss_options {
    int padded_skip;   /* 1: real frames only (protocol avss-official-real-frames) */
    int allow_missing; /* missing real predictions count as all background */
    int jobs;
};

struct avs_avss_class {
    double iou, fscore;   /* official: float32 sum over frames / frames, NaN -> 0 */
    int frames;           /* frames with union > 0 */
    int64_t inter, uni, pred, lab; /* summed over the frames (pooled) */
};

struct avs_avss_vstat {
    double miou;          /* official vid_miou: mean over frames of sum(iou) / #(iou != 0) */
    int frames, padded;
};

struct avs_avss_result {
    double miou, fscore;  /* the protocol's headline: mean over all classes (71) */
    int n_classes;
    double variant[AVS_AVSS_NVARIANTS][2]; /* [v][0] mIoU, [v][1] F */
    struct avs_avss_class classes[AVS_AVSS_MAX_CLASSES];
    struct avs_avss_vstat *videos;   /* [set->n_videos] */
    struct avs_avss_counts *counts;  /* [set->n_frames] */
    uint8_t *status;                 /* [set->n_frames] enum avs_avss_frame_status */
    char **errors;                   /* [set->n_frames] */
    int n_frames, frames, n_failed, n_missing, padded_given, padded_assumed, padded_skip;
    int64_t unknown_pixels;
};

int avs_avss_run(const struct avs_avss_set *set, const struct avs_avss_options *opt,
                 struct avs_avss_result *res, struct avs_err *err);
/* The official aggregation over the frames marked in use[] (in set order). */
void avs_avss_aggregate(const struct avs_avss_set *set, const struct avs_avss_counts *c,
                        const uint8_t *use, struct avs_avss_result *res);
void avs_avss_result_free(struct avs_avss_result *res);
/* "avss-official" or "avss-official-real-frames". */
const char *avs_avss_protocol(const struct avs_avss_result *res);

/* ---- output (eval/avss_output.c) -------------------------------------------------------- */
char *avs_avss_json(const struct avs_avss_set *set, const struct avs_avss_result *res,
                    const struct avs_eval_meta *meta);
void avs_avss_print(FILE *f, const struct avs_avss_set *set, const struct avs_avss_result *res);
int avs_avss_record(sqlite3 *db, const struct avs_avss_set *set, const struct avs_avss_result *res,
                    const struct avs_eval_meta *meta, int64_t *row_id, struct avs_err *err);

#endif
