/* model/audioset_head.h: Kong et al.'s AudioSet classifier on VGGish embeddings,
 * FeatureLevelSingleAttention (qiuqiangkong/audioset_classification pytorch/main.py; the
 * `md_50000_iters` checkpoint that C3N's audio branch loads to label the audio's classes).
 *
 *   struct avs_ash m;
 *   avs_ash_init(&m, 128, 1024, 527, 0.5f, seed);           or avs_ash_load(&m, path, NULL, &err)
 *   struct avs_ash_ws w; avs_ash_ws_init(&w, &m, R, N);      R rows (seconds), N clips at most
 *   avs_ash_fwd(&m, &w, x, R, off, N, 1, seed);              x [R,D] device; w.z [N,K] logits
 *   loss = avs_ash_bwd(&m, &w, &grads, x, y, R, off, N);     y [N,K] targets; grads += dL/dp
 *   avs_ash_postprocess(&m, q, emb, R);                       raw VGGish emb -> Kong's inputs
 *
 * The network, per clip of T seconds with inputs x_t [D] (AudioSet's PCA'd, quantised
 * embeddings read as (byte - 128) / 128):
 *   emb       bn0 (BatchNorm over the D inputs), then three times: conv (a 1x1 Conv2d without
 *             bias, i.e. a per-second fully connected layer) -> bn -> ReLU -> dropout
 *             (emb.conv1..3, emb.bn0..3; hidden width H, Kong: 1024)
 *   attention att = sigmoid(att conv) clamped to [1e-7, 1 - 1e-7], cla = cla conv (linear:
 *             FeatureLevelSingleAttention's cla_activation), pooled over time:
 *             b = sum_t att_t cla_t / sum_t att_t  [H]  (attention.att, attention.cla)
 *   head      bn_attention (BatchNorm1d) -> ReLU -> dropout -> fc_final [K] -> sigmoid
 *   loss      mean binary cross-entropy (Kong's F.binary_cross_entropy on the sigmoid)
 * Dropout is Kong's rate (0.5) in training, off in eval. BatchNorms: eps 1e-5, momentum 0.1;
 * training uses batch statistics over all rows (seconds) of the batch, as Kong's BatchNorm2d.
 * Parameter names are the official state_dict's (emb.conv1.weight [H,D,1,1], ...,
 * attention.att.weight [H,H,1,1], attention.att.bias, fc_final.weight [K,H], bn_attention.*),
 * so a converted md_50000_iters.tar (tools/convert_checkpoint.py) loads; num_batches_tracked is
 * ignored. A head file may carry the VGGish PCA (pca_eigen_vectors [128,128], pca_means [128])
 * that turns raw embeddings into the network's inputs (VGGish's Postprocessor, as C3N applies
 * it before the classifier).
 */
#ifndef AVS_MODEL_AUDIOSET_HEAD_H
#define AVS_MODEL_AUDIOSET_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/safetensors.h"
#include "core/tensor.h"

#define AVS_ASH_PCA 128 /* the VGGish embedding and its PCA */

/* indices into params (the official state_dict order, parameters only) */
enum {
    AVS_ASH_CONV1, AVS_ASH_CONV2, AVS_ASH_CONV3,
    AVS_ASH_BN0_W, AVS_ASH_BN0_B, /* bn l: weight 3 + 2l, bias 4 + 2l */
    AVS_ASH_ATT_W = 11, AVS_ASH_ATT_B, AVS_ASH_CLA_W, AVS_ASH_CLA_B,
    AVS_ASH_FC_W, AVS_ASH_FC_B, AVS_ASH_BNA_W, AVS_ASH_BNA_B, AVS_ASH_NPARAMS
};
#define AVS_ASH_NBN 5 /* bn0..bn3, bn_attention: bufs 2b (running_mean), 2b + 1 (running_var) */

struct avs_ash {
    int D, H, K;     /* inputs (128), hidden width (1024), classes (527) */
    float drop;      /* dropout rate in training */
    struct avs_spec_list specs, bspecs;
    struct avs_tensor_set params; /* trainable, AVS_ASH_* order */
    struct avs_tensor_set bufs;   /* BatchNorm running statistics */
    int have_pca;
    float *pca_E, *pca_mu, *pca_b; /* device: [128,128], [128], -E mu [128] */
};

/* Kong's init (init_layer: U(+-sqrt(6/fan_in)) weights, zero biases; init_bn: weight 1, bias
 * 0; running mean 0, var 1), from seed. */
void avs_ash_init(struct avs_ash *m, int D, int H, int K, float drop, uint64_t seed);
void avs_ash_free(struct avs_ash *m);
/* 1 if f holds an attention head (fc_final.weight + attention.att.weight). */
int avs_ash_is_head(const struct avs_st_file *f);
/* The head of path (official names; widths from the shapes). The PCA comes from path, else from
 * pca_path (the VGGish file; NULL: none), else m->have_pca = 0. -1 with err naming the file and
 * the tensor. */
int avs_ash_load(struct avs_ash *m, const char *path, const char *pca_path, struct avs_err *err);
/* The PCA tensors (pca_eigen_vectors + pca_means, or torchvggish's pproc._pca_matrix +
 * pproc._pca_means) from host arrays: E [128,128] (rows: eigenvectors), mu [128]. */
void avs_ash_set_pca(struct avs_ash *m, const float *E, const float *mu);
/* Every parameter and buffer by its official name (+ the PCA when the model has it) and
 * meta_kv (NULL-ended key, value pairs), atomically. */
int avs_ash_save(const struct avs_ash *m, const char *path, const char *const *meta_kv,
                 struct avs_err *err);

/* Activations and scratch of a batch of at most R rows and N clips (device memory). */
struct avs_ash_ws {
    int R, N;
    float *base;
    float *a0, *m0, *r0;                    /* bn0: [R,D], mean, rstd [D] */
    float *h[3], *b[3], *d[3], *mask[3];    /* per layer [R,H]: conv, bn, ReLU+dropout, mask */
    float *mean[3], *rstd[3];               /* [H] */
    float *A, *V, *S;                       /* [R,H]: att logits, cla, sigmoid(att) */
    float *p, *q, *e, *emask, *ma, *ra;     /* [N,H]: pooled, bn_attention, ReLU+dropout, mask; [H] */
    float *z, *dz;                          /* [N,K]: logits, dloss/dz */
    float *gR1, *gR2, *gA, *gV, *gN1, *gN2; /* backward scratch ([R,max(D,H)] for gR*) */
    int train;                              /* the last forward's mode (dropout masks valid) */
};
void avs_ash_ws_init(struct avs_ash_ws *w, const struct avs_ash *m, int R, int N);
/* The same laid out in base (avs_ash_ws_floats floats of device memory owned by the caller:
 * a network that runs the head inside its own scratch); w->base stays NULL. */
size_t avs_ash_ws_floats(const struct avs_ash *m, int R, int N);
void avs_ash_ws_carve(struct avs_ash_ws *w, const struct avs_ash *m, int R, int N, float *base);
void avs_ash_ws_free(struct avs_ash_ws *w);

/* w->z [N,K] = logits of N clips; x [R,D] their rows, clip n rows off[n]..off[n+1] (int32 device,
 * or NULL: R/N rows each). train: batch statistics (running statistics updated) and dropout
 * drawn from seed; else running statistics, no dropout. */
void avs_ash_fwd(struct avs_ash *m, struct avs_ash_ws *w, const float *x, int R, const int *off,
                 int N, int train, unsigned long long seed);
/* After a training forward: the mean BCE against y [N,K] (device, 0/1) and its gradients added
 * into g (a tensor set of m->specs' layout). */
double avs_ash_bwd(const struct avs_ash *m, struct avs_ash_ws *w, struct avs_tensor_set *g,
                   const float *x, const float *y, int R, const int *off, int N);
/* q [R,128] = VGGish postprocessing of raw embeddings x [R,128]: quant8(E (x - mu)) (needs the
 * PCA; q may not alias x). */
void avs_ash_postprocess(const struct avs_ash *m, float *q, const float *x, int R);

#endif
