/* eval/eval.h: AVSBench-exact evaluation of segmentation masks (DESIGN §4).
 *
 *   struct avs_eval_set set = {0};                     which frames: GT path, prediction path
 *   avs_eval_list_folder(gt_dir, "test", NULL, &set, &err)   or avs_eval_list_db(db, ...)
 *   avs_eval_attach_pred(&set, pred_dir, &missing);
 *   struct avs_eval_result res = {0};
 *   avs_eval_run(&set, &opt, &res);                    one histogram pass per frame, OpenMP
 *   ... res.all.miou, res.all.fscore, res.classes[i], res.videos[i] ...
 *   avs_eval_result_free(&res); avs_eval_set_free(&set);
 *
 * Metrics (ref: AVSBench avs_scripts/avs_s4/utils/utility.py mask_iou, Eval_Fmeasure, _eval_pr):
 * per frame p = sigmoid(logit) in float32, or v/255 (float32) for an 8-bit PNG value v.
 *   IoU: P = p > 0.5; empty GT: #(P==0)/(H*W); else |P&G| / (|P|G| + 1e-7), all float32.
 *   F:   thresholds t_i = float32 linspace(0, 1-1e-10, 255) computed as torch does
 *        (t_254 == 1.0f); Y_i = p >= t_i; per frame with non-empty GT the float32 curve
 *        f_i = 1.3 prec_i rec_i / (0.3 prec_i + rec_i) (NaN -> 0); a group's score is the max
 *        of its float32 mean curve (0 if the group has no non-empty frame); F = mean of groups.
 * A frame is reduced to two 256-bin histograms of "how many thresholds does p reach", from
 * which every threshold's counts follow by a suffix sum.
 */
#ifndef AVS_EVAL_EVAL_H
#define AVS_EVAL_EVAL_H

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdint.h>

#include "core/common.h"

#define AVS_EVAL_NTH 255 /* F-score thresholds (pr_num in the official code) */

/* ---- mask files ---------------------------------------------------------------------- */

enum avs_eval_role {
    AVS_EVAL_GT,  /* ground truth: foreground = value >= 128 */
    AVS_EVAL_PRED /* prediction: value v means probability v/255 */
};

/* Read one mask PNG as one 8-bit value per pixel (*plane is malloc'd, [h][w]):
 * gray (1/2/4/8-bit, scaled to 0..255 as PNG defines) and gray+alpha: the gray value, alpha
 * ignored; palette: the palette INDEX, as PIL mode 'P' + torchvision ToTensor read the MS3
 * masks (index/255); RGB(A): for GT the ITU-R 601 luma (299R+587G+114B)/1000, for predictions
 * the value when R==G==B everywhere, else an error. 16-bit files are refused. */
int avs_eval_png_read(const char *path, enum avs_eval_role role, uint8_t **plane, int *w, int *h,
                      struct avs_err *err);

/* Float logits written by avs-predict: one frame per file, extension ".logits".
 *
 *   offset size  field
 *   0      8     magic "AVSLOGIT"
 *   8      4     version (uint32 LE) = 1
 *   12     4     header size in bytes (uint32 LE) = 32; data starts here
 *   16     4     width W  (uint32 LE)
 *   20     4     height H (uint32 LE)
 *   24     4     dtype (uint32 LE) = 1: float32 little-endian
 *   28     4     channels C (uint32 LE): 0 or 1 = one binary logit map (files written before
 *                AVSS have 0 here), 71 = AVSS class logits (docs/avss.md)
 *   32     4*C*W*H logits, [C][H][W] row-major; binary: p = sigmoid(logit); classes: argmax
 * The file size must be exactly 32 + 4*C*W*H (C = 1 for 0). A NaN/Inf is refused when writing
 * and when reading (the error names the file, channel and pixel). No checksum: the format is
 * an interchange format others write too, and a flipped bit that stays finite moves one pixel. */
#define AVS_LOGITS_MAGIC "AVSLOGIT"
#define AVS_LOGITS_VERSION 1
#define AVS_LOGITS_HEADER 32
int avs_logits_write(const char *path, const float *x, int w, int h, struct avs_err *err);
int avs_logits_read(const char *path, float **x, int *w, int *h, struct avs_err *err);
/* The same with C channels ([C][H][W]); avs_logits_read accepts only one-channel files. */
int avs_logits_write_c(const char *path, const float *x, int c, int w, int h, struct avs_err *err);
int avs_logits_read_c(const char *path, float **x, int *c, int *w, int *h, struct avs_err *err);

/* ---- which frames ---------------------------------------------------------------------- */

struct avs_eval_frame {
    char *gt;    /* GT mask path */
    char *pred;  /* prediction path (.png or .logits); NULL = missing */
    char *want;  /* when missing: the path where it was expected */
    char *image; /* RGB frame path if known (report gallery), else NULL */
    int video;   /* index into set->videos */
    int k;       /* second index as named in the GT (AVSBench: 1-based) */
};

struct avs_eval_video {
    char *name;     /* AVSBench video name or store uid */
    char *category; /* NULL when unknown (MS3 folders) */
    int first, n;   /* its frames: set->frames[first .. first+n) */
};

struct avs_eval_set {
    struct avs_eval_video *videos;
    int n_videos;
    struct avs_eval_frame *frames;
    int n_frames;
    char *subset; /* "s4", "ms3" or "other" */
    char *split;  /* may be NULL (all splits) */
    int from_db;  /* 1: listed from the store index (store-layout predictions expected) */
};

/* AVSBench GT tree: S4 <dir>[/<split>]/<category>/<video>/<video>_<k>.png, MS3
 * <dir>[/<split>]/<video>/<video>_<k>.png. subset NULL = detect from the depth. Videos are
 * ordered by category then name (bytewise), frames by k. */
int avs_eval_list_folder(const char *dir, const char *split, const char *subset,
                         struct avs_eval_set *set, struct avs_err *err);
/* Ground truth from the store index: masks joined with videos (status ok), filtered by split
 * and subset when given (NULL = all), ordered by video id then k. Paths are made absolute
 * with `root` (the folder holding avs.db). */
int avs_eval_list_db(sqlite3 *db, const char *root, const char *split, const char *subset,
                     struct avs_eval_set *set, struct avs_err *err);
/* Keep the videos whose names are listed in a metadata CSV (first column or the column named
 * "name"/"uid"/"vid"), in the CSV's row order; others are dropped (count in *dropped). */
int avs_eval_order_by_csv(struct avs_eval_set *set, const char *csv, int *dropped,
                          struct avs_err *err);
/* Find each frame's prediction under `dir`. Per video the first folder that exists of
 *   dir/<name>/<k>.*                         (store layout, as avs-predict writes)
 *   dir/<split>/<category>/<name>/<name>_<k>.*, dir/<category>/<name>/<name>_<k>.*,
 *   dir/<split>/<name>/<name>_<k>.*, dir/<name>/<name>_<k>.*     (AVSBench layouts)
 * with ".logits" preferred over ".png". Predictions numbered from 0 (the official save_mask)
 * are detected per video and shifted. Returns the number of frames without a prediction. */
int avs_eval_attach_pred(struct avs_eval_set *set, const char *dir);
/* Folder mode: find the RGB frames for the report gallery under an AVSBench visual_frames
 * tree: dir[/<split>]/<category>/<video>/<video>_<k>.png (S4) or
 * dir/<video>/<video>.mp4_<k>.png (MS3). Returns how many frames were found. */
int avs_eval_attach_frames(struct avs_eval_set *set, const char *dir);
void avs_eval_set_free(struct avs_eval_set *set);

/* ---- metrics --------------------------------------------------------------------------- */

/* torch's float32 sigmoid: 1 / (1 + exp(-x)), each step rounded to float. */
static inline float avs_eval_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* t[i] exactly as torch.linspace(0, 1 - 1e-10, 255) (float32) computes it. */
void avs_eval_thresholds(float t[AVS_EVAL_NTH]);

/* Per-frame numbers: everything the aggregates need. */
struct avs_eval_counts {
    int64_t pixels, gt, pred, inter, uni; /* H*W, |G|, |P|, |P&G|, |P|G| */
    float iou;                            /* the official per-frame IoU (float32) */
    float f[AVS_EVAL_NTH];                /* F curve; valid when gt > 0 */
    int64_t tp[AVS_EVAL_NTH], ps[AVS_EVAL_NTH]; /* per threshold: |Y&G|, |Y| (pooled F) */
};

/* fg: GT foreground 0/1 per pixel. v: 8-bit probability values. x: logits. */
void avs_eval_score_u8(const uint8_t *fg, const uint8_t *v, int64_t n, struct avs_eval_counts *c);
void avs_eval_score_logits(const uint8_t *fg, const float *x, int64_t n,
                           struct avs_eval_counts *c);

/* The S4/MS3 protocols (docs/avss.md). Every number printed or stored names its protocol. */
enum avs_eval_protocol {
    AVS_EVAL_OFFICIAL,  /* per-frame IoU mean; F = mean over groups of max of the mean curve */
    AVS_EVAL_PER_FRAME, /* per-frame IoU mean; F = mean over non-empty frames of each max */
    AVS_EVAL_POOLED,    /* IoU and F from counts summed over all frames */
    AVS_EVAL_NPROTOCOLS
};
const char *avs_eval_protocol_name(enum avs_eval_protocol p);
/* -1 when the name is none of "official", "per-frame", "pooled". */
int avs_eval_protocol_parse(const char *name);

struct avs_eval_summary {
    double miou, fscore, dataset_iou; /* official mIoU and F; dataset_iou = pooled IoU */
    double f_per_frame, f_pooled;     /* the other protocols' F */
    int frames, videos, groups, empty_gt;
};
/* The (mIoU, F) pair of a summary under a protocol. */
void avs_eval_protocol_numbers(const struct avs_eval_summary *s, enum avs_eval_protocol p,
                               double *miou, double *fscore);
/* Per-frame and pooled F over frames idx[0..n) (eval/protocols.c). */
void avs_eval_protocol_f(const struct avs_eval_counts *c, const int *idx, int n,
                         double *f_per_frame, double *f_pooled);

/* Aggregate the frames idx[0..n) (in this order). group_frames 0: one group per video. */
void avs_eval_aggregate(const struct avs_eval_set *set, const struct avs_eval_counts *c,
                        const int *idx, int n, int group_frames, struct avs_eval_summary *out);

enum avs_eval_status { AVS_EVAL_FRAME_OK, AVS_EVAL_FRAME_MISSING, AVS_EVAL_FRAME_FAILED };

struct avs_eval_options {
    int group_frames;  /* 0 = one video per F group */
    int allow_missing; /* evaluate missing predictions as all-zero maps */
    int jobs;          /* OpenMP threads */
};

struct avs_eval_class {
    char *name; /* category; "(none)" when unknown */
    struct avs_eval_summary s;
};

struct avs_eval_result {
    struct avs_eval_summary all;
    struct avs_eval_class *classes; /* sorted by name */
    int n_classes;
    struct avs_eval_summary *videos; /* [set->n_videos], grouping one video */
    struct avs_eval_counts *counts;  /* [set->n_frames] */
    uint8_t *status;                 /* [set->n_frames] enum avs_eval_status */
    char **errors;                   /* [set->n_frames] message of failed frames, else NULL */
    int n_frames, n_missing, n_failed;
    int group_frames;
    enum avs_eval_protocol protocol; /* the headline numbers (every protocol is computed; */
    int all_protocols;               /* set these after avs_eval_run: official, one) */
};

/* Score every frame (failed frames are excluded from all numbers and listed in errors;
 * missing ones count as all-zero predictions when allowed, else as failed). 0, or -1 when
 * no frame could be evaluated. */
int avs_eval_run(const struct avs_eval_set *set, const struct avs_eval_options *opt,
                 struct avs_eval_result *res, struct avs_err *err);
void avs_eval_result_free(struct avs_eval_result *res);

/* ---- output ---------------------------------------------------------------------------- */

/* "one video per group" or "20 frames per group". */
const char *avs_eval_grouping_text(int group_frames, char *buf, size_t len);

struct avs_eval_meta {
    const char *method;   /* --record name, may be NULL */
    const char *source;   /* prediction folder */
    const char *gt;       /* GT folder or index path */
    const char *switches; /* "AF,CC" or NULL */
    const char *backbone; /* or NULL */
};

struct cJSON;
/* o[k] = v as UTF-8 text (names and paths come from the user's folders: a byte of no UTF-8
 * character is written %XX, core/names.h avs_name_text), or null when v is NULL. */
void avs_eval_json_text(struct cJSON *o, const char *k, const char *v);
/* The JSON document (schema in README "Evaluating masks"); free with free(). */
char *avs_eval_json(const struct avs_eval_set *set, const struct avs_eval_result *res,
                    const struct avs_eval_meta *meta, int with_videos);
/* The human-readable report. */
void avs_eval_print(FILE *f, const struct avs_eval_set *set, const struct avs_eval_result *res);
/* One metrics row (S4/MS3 and AVSS alike); group_frames <= 0 is stored as NULL. The row is
 * linked to runs.name == method when such a run exists. */
struct avs_eval_row {
    const char *method, *subset, *split, *source, *details, *protocol;
    int group_frames, frames;
    double miou, fscore, dataset_iou;
};
int avs_eval_insert_row(sqlite3 *db, const struct avs_eval_row *r, int64_t *row_id,
                        struct avs_err *err);
/* Insert one row into metrics per protocol reported (the headline one, or all three with
 * all_protocols), linking runs.name == method when such a run exists; *row_id: the last. */
int avs_eval_record(sqlite3 *db, const struct avs_eval_set *set, const struct avs_eval_result *res,
                    const struct avs_eval_meta *meta, int64_t *row_id, struct avs_err *err);

#endif
