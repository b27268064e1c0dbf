/* train/data.h: the videos of one subset/split with their cached features and masks, and
 * batch assembly for the C3N model (internal to train/ and predict/).
 *
 *   struct avs_tset set;
 *   avs_tset_open_cache(&set, db, root, "demo-b0-random1", &err);   the set's cache + fields
 *   avs_tset_load(&set, db, root, "s4", "train", AVS_TSET_LOSS_FIRST, &err);
 *   avs_tset_batch(&set, idx, flip, nb, &b, use_ccv, &err);         stage maps, weights, audio, masks
 *   avs_tset_free(&set);
 *
 * S4/MS3: a video takes its first T = 5 seconds (AVSBench clips are 5 s); shorter videos are
 * skipped (counted in n_short). Masks are read through store/store.h (the evaluator's reader,
 * foreground = value >= 128) and must have the model's output size.
 * AVSS (subset "avss"): T = 10, as the official AVSS loader: a video's seconds 1..n (n <= 10:
 * v1s/v1m have 5, v2 10) are followed by padded frames (zero stage maps, Grad-CAM weights and
 * audio; no labels), which never enter the loss, the metric or the predictions. Masks are
 * class-index PNGs (masks.kind 'class'); an index outside 0..K-1 (255: unknown colour) reads
 * as 0, as the official loader has it. Only frames with a mask row have labels (v1s train:
 * frame 1 only). K = the rows of the store's classes table for dataset 'avss'.
 */
#ifndef AVS_TRAIN_DATA_H
#define AVS_TRAIN_DATA_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"
#include "features/cache.h"
#include "model/c3n_head.h"

#define AVS_T 5       /* S4/MS3 frames per clip */
#define AVS_T_AVSS 10 /* AVSS frames per clip (official) */
#define AVS_T_MAX 10

enum avs_tset_loss {
    AVS_TSET_LOSS_FIRST, /* S4 training: frame 1 only */
    AVS_TSET_LOSS_ALL,   /* MS3 training and all validation: every frame with a mask */
    AVS_TSET_LOSS_NONE   /* prediction: no mask read (the batch's frame masks are all off) */
};

struct avs_tvideo {
    int64_t id;
    char *uid, *category;
    int64_t off[2][AVS_T_MAX];  /* record offsets, [flipped][k-1]; -1 = missing (AVSS: padded) */
    int has_flip;
    int n;                      /* real seconds (T for S4/MS3; AVSS: 1..T, the rest padded) */
    uint8_t *mask[AVS_T_MAX];   /* [H*W] at the output size: 0/1, or AVSS class indices;
                                   NULL: no mask used for this frame */
    char *mask_path[AVS_T_MAX]; /* absolute paths (for the evaluator) */
};

struct avs_tset {
    int64_t set_id;
    char *set_name, *set_config, *visual;   /* feature set name, its config JSON, encoder */
    int random_init;
    struct avs_cache *cache;
    int f_stage[4], f_gc[4], f_gcv[4], f_audio; /* cache field indices */
    int C[4], Hs[4], Ws[4], A;                  /* stage shapes, audio width */
    int H, W;                                   /* output (mask) size = 4 * stage-1 size */
    int T;                                      /* frames per clip: AVS_T, AVSS AVS_T_AVSS */
    int K;                                      /* output maps: 1, AVSS the classes */
    int avss;                                   /* class-index masks, padded clips */
    struct avs_tvideo *v;
    int n, n_short, n_nofeat;
};

/* AVSS: the number of classes of the store's classes table (dataset 'avss'); 0 when none. */
int avs_tset_avss_classes(sqlite3 *db, int *K, struct avs_err *err);
/* Set the clip form of a subset: T, K and the mask kind (s4/ms3: T 5, K 1; avss: T 10, K).
 * avs_tset_load does it; a model made from a recorded run calls it before avs_tset_cfg. */
void avs_tset_set_subset(struct avs_tset *t, const char *subset, int K);

/* The videos of a subset and split that training and prediction use, in the one order they
 * are taken (uid: row ids follow ingest's finishing order): a statement yielding id, uid,
 * category, n_seconds. */
int avs_tset_videos(sqlite3 *db, const char *subset, const char *split, sqlite3_stmt **st,
                    struct avs_err *err);
int avs_tset_open_cache(struct avs_tset *t, sqlite3 *db, const char *root, const char *set,
                        struct avs_err *err);
/* Videos of subset/split (status ok) that have features in the set, ordered by uid (not by
 * row id, which follows the order parallel ingest workers finished in). Every cache record
 * they use is verified here (checksum, NaN/Inf); a damaged one fails the load, the error
 * naming the set, the video, the second, the file and avs-features --rebuild. */
int avs_tset_load(struct avs_tset *t, sqlite3 *db, const char *root, const char *subset,
                  const char *split, enum avs_tset_loss loss, struct avs_err *err);
void avs_tset_free(struct avs_tset *t);
/* The model configuration these features give (official widths scaled by `width`). */
void avs_tset_cfg(const struct avs_tset *t, int width, struct avs_c3n_cfg *cfg);

/* One batch of nb videos (the model's B = nb * T frames). The tensors are device memory of the
 * backend active at init (one arena), filled a frame at a time from host memory (the mmap'd
 * cache, the store's files) through the staging buffer; frame_mask stays on the host (the loss
 * picks frames by it). */
struct avs_tbatch {
    float *stage[4];   /* device [B,C_s,H_s,W_s] */
    float *gc[4];      /* device [B,C_s] */
    float *audio;      /* device [B,A] */
    float *mask;       /* device [B,H*W] 0/1, or AVSS class indices (mirrored with the frame
                          when flipped) */
    int *frame_mask;   /* host [B] 1: the frame has a mask used by the loss */
    float *staging;    /* host: the largest of one frame's fields */
    struct avs_arena mem;
    int nb;
};

void avs_tbatch_init(struct avs_tbatch *b, const struct avs_tset *t, int nb);
void avs_tbatch_free(struct avs_tbatch *b);
/* Frame j of the batch (0 <= j < B): its stage maps, Grad-CAM weights and audio embedding
 * from host arrays (any may be NULL: left as they are). */
void avs_tbatch_put(struct avs_tbatch *b, const struct avs_tset *t, int j,
                    const float *const stage[4], const float *const gc[4], const float *audio);
/* Frame j as a padded frame: zero maps, weights and audio, no mask (AVSS). */
void avs_tbatch_put_zeros(struct avs_tbatch *b, const struct avs_tset *t, int j);
/* Frame j's mask (host [H*W] 0/1 or class indices, NULL: none: zeros), mirrored when flip;
 * sets frame_mask. */
void avs_tbatch_put_mask(struct avs_tbatch *b, const struct avs_tset *t, int j,
                         const uint8_t *mask, int flip);
/* Videos idx[0..nb) (flip[i]: use the flipped records; NULL: none); use_ccv: the CC-V weights
 * instead of CC. AVSS padded frames are zeros without a mask. */
int avs_tset_batch(const struct avs_tset *t, const int *idx, const int *flip,
                   struct avs_tbatch *b, int use_ccv, struct avs_err *err);

#endif
