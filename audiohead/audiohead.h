/* audiohead/audiohead.h: training the 527-way AudioSet head that avs-features loads
 * (--audio-head: head.weight [K,E], head.bias [K] on the VGGish embedding, model/vggish.h).
 *
 *   struct avs_ah_data d = {0};                      clips: seconds x D inputs + K labels
 *   avs_ah_data_add_tfrecord(&d, "bal_train/00.tfrecord", &err);   AudioSet's release
 *   avs_ah_data_add_store(&d, &store_src, &pca, &err);              or the store's embeddings
 *   struct avs_ah_head h; avs_ah_head_init(&h, D, K, seed);
 *   struct avs_ah_train_opts o = {.iters = 50000, .batch = 500, .lr = 1e-3f, .seed = 1,
 *                                 .balanced = 1};
 *   avs_ah_train(&h, &d, &o, NULL, &err);
 *   struct avs_ah_metrics m; avs_ah_eval(&h, &eval, &m);            mAP, AUC, d'
 *   avs_ah_save(&h, d.space, &pca, "head.safetensors", meta_kv, &err);  folded when PCA'd
 *
 * The model (ref: Kong, Xu, Wang, Plumbley, "Audio Set classification with attention model: a
 * probabilistic perspective", ICASSP 2018, decision-level single attention), per clip of T
 * seconds with inputs x_t [D]:
 *     p_t = sigmoid(W x_t + b)                 [K] per-second class probabilities (`cla`)
 *     g_t = clamp(sigmoid(V x_t + c), 1e-7, 1 - 1e-7)  [K] attention (`att`)
 *     out = clamp(sum_t g_t p_t / sum_t g_t, 1e-7, 1 - 1e-7)   clip probabilities
 *     loss = mean over clips and classes of BCE(out, y)
 * Kong's network puts three 1024-wide hidden layers before cla/att; this one has none, so that
 * its per-second classifier is exactly the linear head our loader loads: on one second (T = 1)
 * the attention weights are 1 and the clip output is sigmoid(W x + b), i.e. head.weight = W,
 * head.bias = b. The attention only pools AudioSet's 10 weakly labelled seconds in training.
 *
 * Input spaces: AudioSet's TFRecords hold VGGish embeddings after the release's postprocessing
 * (PCA to 128, clip to [-2,2], 8-bit quantisation), read as (u - 128) / 128 (Kong's
 * uint8_to_float32); the store holds the raw embedding. With the PCA parameters (--pca) a head
 * trained in the quantised space is folded into the raw space for the file's head.weight/bias
 * (exact up to the clip and the rounding), and store embeddings are postprocessed into that
 * space before training, so the two sources mix.
 */
#ifndef AVS_AUDIOHEAD_AUDIOHEAD_H
#define AVS_AUDIOHEAD_AUDIOHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/common.h"
#include "core/progress.h"

#define AVS_AH_EMB 128      /* bytes of one released embedding (one second) */
#define AVS_AH_CLASSES 527  /* AudioSet classes */

/* ---- TFRecord framing (tfrecord.c) ----
 *   +-------------------------------------------------------------------------+
 *   | u64 length (LE) | u32 masked_crc32c(length bytes) | data[length] |       |
 *   |                                   u32 masked_crc32c(data)                |
 *   +-------------------------------------------------------------------------+
 * masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. CRC32C (Castagnoli, reflected 0x82F63B78):
 * Computed by Intel ISA-L (Debian's libisal-dev). */
uint32_t avs_ah_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t avs_ah_crc_mask(uint32_t crc);

struct avs_ah_tfr {
    char *path;
    char *data; /* the whole file */
    size_t len, pos;
    int64_t index; /* records returned so far */
};
int avs_ah_tfr_open(struct avs_ah_tfr *r, const char *path, struct avs_err *err);
/* The next record: 1 (rec/len point into r), 0 at the clean end, -1 with err naming the file,
 * the record index and byte offset (short header, length past the end, a CRC mismatch). */
int avs_ah_tfr_next(struct avs_ah_tfr *r, const uint8_t **rec, size_t *len, struct avs_err *err);
void avs_ah_tfr_close(struct avs_ah_tfr *r);

/* ---- one AudioSet clip: a tf.SequenceExample (proto.c) ----
 * context: video_id (bytes), start_time_seconds, end_time_seconds (float), labels (int64 list);
 * feature_lists: audio_embedding, one Feature per second holding one 128-byte value. */
struct avs_ah_clip {
    char id[64];
    double start, end;
    int n_labels;
    int64_t *labels; /* [n_labels] */
    int T;
    uint8_t *emb;    /* [T,128] */
};
/* 0, or -1 with a reason in why (a broken varint, a field past its message, a wrong size). */
int avs_ah_parse_example(const uint8_t *buf, size_t len, struct avs_ah_clip *c, char *why,
                         size_t whylen);
void avs_ah_clip_free(struct avs_ah_clip *c);

/* ---- the PCA postprocessing of the release (pca.c; ref: torchvggish Postprocessor) ---- */
struct avs_ah_pca {
    int have;
    float E[AVS_AH_EMB * AVS_AH_EMB]; /* eigenvectors as rows: pca = E (x - mu) */
    float mu[AVS_AH_EMB];
};
/* From a safetensors file holding pca_eigen_vectors [128,128] + pca_means [128] (or [128,1]),
 * or torchvggish's pproc._pca_matrix + pproc._pca_means. */
int avs_ah_pca_load(struct avs_ah_pca *p, const char *path, struct avs_err *err);
/* x [128] raw embedding -> q [128] = (quantised byte - 128) / 128, as the release. */
void avs_ah_pca_apply(const struct avs_ah_pca *p, const float *x, float *q);

/* ---- data (data.c, store.c) ---- */
struct avs_ah_data {
    int n, cap;      /* clips */
    int D, K;        /* input width, classes */
    int64_t rows, rows_cap;
    int64_t *off;    /* [n+1] first row of clip i */
    float *x;        /* [rows, D] */
    uint8_t *y;      /* [n, K] 0/1 */
    char (*id)[64];  /* [n] YouTube id / store uid */
    const char *space; /* "audioset-pca-uint8" or "raw" */
};
/* Every record of a TFRecord file (clips with no seconds are skipped and counted in *skipped).
 * A label index outside 0..K-1 is an error naming the file and record. */
int avs_ah_data_add_tfrecord(struct avs_ah_data *d, const char *path, int *skipped,
                             struct avs_err *err);
/* Every *.tfrecord of a folder (sorted by name), or the one file. */
int avs_ah_data_add_path(struct avs_ah_data *d, const char *path, int *skipped,
                         struct avs_err *err);
struct avs_ah_store_src {
    const char *root, *db_path; /* db_path NULL: root/avs.db */
    const char *set;            /* feature set holding audio_emb */
    const char *labels_csv;     /* AudioSet segment CSV: YTID, start_seconds, end_seconds,
                                   "positive_labels" (store uid as YTID, clip-relative seconds) */
    const char *classes_csv;    /* index,mid,display_name */
    int unmatched;              /* out: CSV rows naming no store video / no seconds */
};
int avs_ah_data_add_store(struct avs_ah_data *d, struct avs_ah_store_src *s,
                          const struct avs_ah_pca *pca, struct avs_err *err);
/* One clip: T rows of x, labels (indices, checked by the caller). */
void avs_ah_data_push(struct avs_ah_data *d, const char *id, const float *x, int T,
                      const int64_t *labels, int n_labels);
int avs_ah_data_positives(const struct avs_ah_data *d, int k);
void avs_ah_data_free(struct avs_ah_data *d);

/* AudioSet class list (index,mid,display_name): the mids in index order. */
int avs_ah_classes_read(const char *path, char ***mids, int *n, struct avs_err *err);
void avs_ah_classes_free(char ***mids, int n);

/* ---- the head (head.c) ---- */
struct avs_ah_head {
    int D, K;
    float *p;      /* one block: W [K,D], b [K], V [K,D], c [K] */
    float *W, *b, *V, *c;
    size_t n;      /* floats in p */
};
/* Kong's init_layer: weights U(-sqrt(6/D), sqrt(6/D)) (avs_randinit streams 0 and 2), biases 0. */
void avs_ah_head_init(struct avs_ah_head *h, int D, int K, uint64_t seed);
void avs_ah_head_free(struct avs_ah_head *h);
/* Scratch of a batch of at most R rows (seconds) and B clips. */
struct avs_ah_ws {
    int64_t R, B;
    float *x;              /* [R,D] the batch's inputs */
    float *z, *a;          /* [R,K] after forward: p_t and g_t */
    float *dz, *da;        /* [R,K] */
    float *out, *raw, *gsum; /* [B,K] clamped and unclamped clip outputs, sum_t g_t */
};
void avs_ah_ws_init(struct avs_ah_ws *w, int64_t R, int B, int K, int D);
void avs_ah_ws_free(struct avs_ah_ws *w);
/* Rows (seconds) of clips idx[0..B). */
int64_t avs_ah_batch_rows(const struct avs_ah_data *d, const int *idx, int B);
/* w->out [B,K]: clip probabilities of clips idx[0..B) of d. */
void avs_ah_head_fwd(const struct avs_ah_head *h, const struct avs_ah_data *d, const int *idx,
                     int B, struct avs_ah_ws *w);
/* The mean BCE of the last forward; gradients into g (h->p's layout, overwritten). */
double avs_ah_head_bwd(const struct avs_ah_head *h, const struct avs_ah_data *d, const int *idx,
                       int B, struct avs_ah_ws *w, float *g);

/* ---- training (train.c) ---- */
struct avs_ah_train_opts {
    int iters;       /* Adam steps (default 50000: md_50000_iters) */
    int batch;       /* clips per step (500) */
    float lr;        /* 1e-3 */
    uint64_t seed;
    int balanced;    /* 1: Kong's class-balanced batches; 0: shuffled epochs */
    int eval_every;  /* 0: never */
    const struct avs_ah_data *eval;
    int progress;
    const char *trace; /* file: per step "step loss idx..." lines (tests) */
};
struct avs_ah_metrics {
    int K, classes_with_pos;
    double map, mauc, dprime;
    double *ap, *auc; /* [K], NaN where a class has no positive (or no negative, for AUC) */
};
/* The batch order (train.c; the recipe there): class-balanced or shuffled epochs, from seed. */
struct avs_ah_rng {
    uint64_t s;
};
struct avs_ah_sampler {
    int balanced, n, nc;
    int *order, pos;        /* shuffled epoch order (plain) or class cycle (balanced) */
    int **lists, *len, *at; /* balanced: per class its clips, shuffled, and the next one */
    int *cls;               /* balanced: classes with positives */
    struct avs_ah_rng rng;
};
void avs_ah_sampler_init(struct avs_ah_sampler *s, const struct avs_ah_data *d, int balanced,
                         uint64_t seed);
int avs_ah_sampler_next(struct avs_ah_sampler *s);
void avs_ah_sampler_free(struct avs_ah_sampler *s, int K);
/* The most seconds of one clip of d. */
int64_t avs_ah_max_rows(const struct avs_ah_data *d);
/* What both heads' training loops share: the --trace file, the clip sampler, the step's clips,
 * the progress bar and the periodic evaluation on o->eval.
 *   avs_ah_loop_init; per step t: avs_ah_loop_draw (l.idx), the step, then
 *   if (avs_ah_loop_done(&l, t, loss)) avs_ah_loop_report(&l, scores of o->eval, t, loss);
 *   avs_ah_loop_end. */
struct avs_ah_loop {
    const struct avs_ah_train_opts *o;
    FILE *trace;
    struct avs_ah_sampler s;
    int K;
    int *idx; /* the step's o->batch clips */
    struct avs_progress bar;
};
/* -1 with err when the trace file cannot be made (nothing to free then). */
int avs_ah_loop_init(struct avs_ah_loop *l, const struct avs_ah_data *d,
                     const struct avs_ah_train_opts *o, struct avs_err *err);
void avs_ah_loop_draw(struct avs_ah_loop *l);
/* After step t: its --trace line and the progress bar; 1 when o->eval is due this step. */
int avs_ah_loop_done(struct avs_ah_loop *l, int t, double loss);
/* Logs step t's loss and the metrics of scores [eval n, K] on o->eval; frees scores. */
void avs_ah_loop_report(struct avs_ah_loop *l, float *scores, int t, double loss);
/* Ends the bar, frees; 0, or -1 (err) when the trace could not be written. */
int avs_ah_loop_end(struct avs_ah_loop *l, struct avs_err *err);
int avs_ah_train(struct avs_ah_head *h, const struct avs_ah_data *d,
                 const struct avs_ah_train_opts *o, double *final_loss, struct avs_err *err);
/* Clip probabilities [n,K] of every clip of d (caller frees). */
float *avs_ah_predict(const struct avs_ah_head *h, const struct avs_ah_data *d);
void avs_ah_eval(const struct avs_ah_head *h, const struct avs_ah_data *d, struct avs_ah_metrics *m);

/* ---- Kong's attention network (attn.c; the model: model/audioset_head.h): the same batches
 * and Adam recipe on the active backend, dropout and BatchNorm in training, eval statistics
 * in predictions. Inputs in the released space (PCA'd, quantised). ---- */
struct avs_ash;
int avs_ah_attn_train(struct avs_ash *h, const struct avs_ah_data *d,
                      const struct avs_ah_train_opts *o, double *final_loss, struct avs_err *err);
float *avs_ah_attn_predict(struct avs_ash *h, const struct avs_ah_data *d);
void avs_ah_attn_eval(struct avs_ash *h, const struct avs_ah_data *d, struct avs_ah_metrics *m);

/* ---- metrics (metrics.c; ref: sklearn average_precision_score / roc_auc_score, as the
 * AudioSet papers compute them): per class over clips; mAP = mean over classes with >= 1
 * positive; AUC over classes with both; d' = sqrt(2) * Phi^-1(mean AUC). ---- */
double avs_ah_ap(const float *score, const uint8_t *y, int n, int stride);
double avs_ah_auc(const float *score, const uint8_t *y, int n, int stride);
double avs_ah_dprime(double auc);
void avs_ah_metrics_compute(const float *score, const uint8_t *y, int n, int K,
                            struct avs_ah_metrics *m);
void avs_ah_metrics_free(struct avs_ah_metrics *m);

/* ---- files (io.c) ----
 * head file (safetensors, atomic): head.weight [K,E], head.bias [K] (what avs-features loads:
 * the raw-embedding space, folded through the PCA when the head was trained in the released
 * space) plus the training-space tensors audiohead.cla.weight/bias and audiohead.att.weight/bias
 * and metadata (space, folded, iters, seed, ...), which `eval` and `train --init` read. */
int avs_ah_save(const struct avs_ah_head *h, const char *space, const struct avs_ah_pca *pca,
                const char *path, const char *const *meta_kv, struct avs_err *err);
/* The training-space head of a file written by avs_ah_save; *space from its metadata. */
int avs_ah_load(struct avs_ah_head *h, const char *path, char *space, size_t spacelen,
                struct avs_err *err);

#endif
