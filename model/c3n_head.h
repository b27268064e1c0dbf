/* model/c3n_head.h: the C3N head after the backbone (DESIGN §6): per stage ASPP -> TPAVI, then
 * the DPT-style decoder path4..path1 and output_conv, giving mask logits at 4x the first
 * stage's size. Parameter names are the official PyTorch state_dict keys.
 *
 *   struct avs_c3n_cfg cfg; avs_c3n_cfg_default(&cfg, 224);  stages 64,128,320,512 @ 56..7
 *   struct avs_c3n_head h; avs_c3n_head_init(&h, &cfg, n_videos);
 *   avs_c3n_head_load(&h, "w.safetensors", &err);            or avs_c3n_head_init_random
 *   avs_c3n_head_fwd(&h, x, audio, train);                    logits in h.logits
 *   avs_c3n_head_bwd(&h, dlogits, dx, daudio);                param grads ADDED into h.grads
 *   avs_c3n_head_adam(&h, lr);
 *   avs_c3n_head_free(&h);
 *
 *   x[s] [N*T, C_s, H_s, W_s] (frames of a video adjacent), audio [N, T, 128],
 *   logits [N*T, K, 4*H_0, 4*W_0] (K = cfg.K: 1, or one map per class).
 *
 * Memory: every tensor (parameters, gradients, activations, h.logits, and the x, audio,
 * dlogits, dx, daudio, mask pointers given to these functions) is device memory of the backend
 * active at avs_c3n_head_init (backend/backend.h): host data goes in with avs_dev_upload and
 * results come back with avs_dev_download / avs_tensor_set_download. Keep that backend active
 * while the head lives. Nothing allocates inside a forward or backward.
 *
 *        x1..x4 ── conv1..4 (ASPP) ── tpavi_1..4 ──┐
 *   path4(t4) ─▶ path3(·, t3) ─▶ path2(·, t2) ─▶ path1(·, t1) ─▶ output_conv ─▶ logits
 */
#ifndef AVS_MODEL_C3N_HEAD_H
#define AVS_MODEL_C3N_HEAD_H

#include "core/common.h"
#include "backend/backend.h"
#include "core/tensor.h"
#include "backend/ops.h"

struct avs_c3n_cfg {
    int T;          /* frames per clip (5) */
    int C[4];       /* stage channels (64, 128, 320, 512 for PVTv2-b5) */
    int H[4], W[4]; /* stage sizes (56, 28, 14, 7 for 224 input); H[s] = 2*H[s+1] */
    int D;          /* head width (256) */
    int Ci;         /* TPAVI inner width (128) */
    int A;          /* audio feature width (128) */
    int O1, O2;     /* output_conv widths (128, 32) */
    int tpavi;      /* bit s set: stage s+1 goes through TPAVI (default all 4) */
    int K;          /* output maps: 1 (S4/MS3: one binary logit map, default) or the number
                       of classes (AVSS: 71, background 0): output_conv.4 is O2 -> K */
    int avsbench;   /* 1: the AVSBench baseline's head (TPAVI, ref: avs_s4/model/
                       ResNet_AVSModel.py Pred_endecoder): its neck conv<s> is Classifier_Module
                       (conv2d_list.0..3: 3x3 convs with dilations 3/6/12/18 and biases, summed)
                       instead of ASPP, its TPAVI modules are tpavi_b<s>, and its loss is BCE
                       alone (model/c3n_neck.c); 0: C3N's (default) */
    int av_match;   /* 1: room for AVSBench's MS3 audio-visual matching loss
                       (avs_c3n_head_avmatch: model/c3n_avmatch.c); 0: none (default) */
};

/* The TPAVI module names of a configuration: "tpavi_" (C3N) or "tpavi_b" (AVSBench). */
const char *avs_c3n_tpavi_prefix(const struct avs_c3n_cfg *cfg);

void avs_c3n_cfg_default(struct avs_c3n_cfg *cfg, int image_size);

/* Indices of one stage's parameters in h->params (a bias is its weight's index + 1) and of
 * its buffers in h->bufs, resolved once at init (-1: not in this configuration). */
struct avs_c3n_idx {
    int pool, br[4], out;            /* ASPP: conv, atrous_block1/6/12/18, conv_1x1_output
                                        (AVSBench neck: br = conv2d_list.0..3, pool = out = -1) */
    int al, phi, th, g, wz, bn, ln;  /* TPAVI: align_channel, phi, theta, g, W_z.0, W_z.1, norm */
    int rmean, rvar;                 /* TPAVI: W_z.1.running_mean / running_var (h->bufs) */
    int rcu[2][2];                   /* path: resConfUnit1/2 . conv1/2 */
};

/* Saved activations of one stage (pointers into the activation arena). */
struct avs_c3n_stage {
    struct avs_c3n_idx k;                      /* its parameters */
    float *pool, *ip, *pt, *a;                 /* ASPP: [B,C] [B,D] [B,D] [B,D,HW] */
    float *wc, *bc;                            /* ASPP composed: [D,taps,C] [D] (c3n_aspp.c) */
    struct avs_tapconv tc;                     /* ASPP's taps on this stage */
    signed char tap_of[4][9];                  /* branch tap -> tap of tc (-1: never live) */
    float *af, *phi, *th, *G, *M, *y, *wz;     /* TPAVI: [B,D] [B,Ci] [B,Ci,HW] [B,Ci] [N,Ci,Ci] [B,Ci,HW] [B,D,HW]
                                                  (G: g's spatial mean, M = phi^T G per video) */
    float *am;                                 /* TPAVI: mean of a over HW [B,D] */
    float *bnm, *bnr, *z, *lnm, *lnr, *t;      /* [D] [D] [B,D,HW] [B,HW] [B,HW] [B,D,HW] */
    float *r0a, *r1a, *sum, *r0b, *r1b, *up;   /* path: RCU1 relus, sum, RCU2 relus, out [B,D,4HW] */
    float *avm_m, *avm_u, *avm_dv, *avm_daf;   /* matching loss (cfg.av_match): pooled mask
                                                  [B,HW], masked feature [B,D], gradients of
                                                  the stage map [B,D,HW] and of af [B,D] */
};

/* SyncBN for data-parallel training (train/syncbn.h): when set on a head, TPAVI's W_z.1 in
 * training calls these instead of the backend's batchnorm_fwd/bwd (same arguments, ctx
 * first), which take the batch statistics over every rank's frames. NULL: the backend's. */
struct avs_bn_sync {
    void (*fwd)(void *ctx, float *y, float *mean, float *rstd, const float *x, const float *w,
                const float *b, float *run_mean, float *run_var, int N, int C, int HW, float eps,
                float momentum);
    void (*bwd)(void *ctx, float *dx, float *dw, float *db, const float *dy, const float *x,
                const float *mean, const float *rstd, const float *w, int N, int C, int HW);
    void *ctx;
};

struct avs_c3n_head {
    struct avs_c3n_cfg cfg;
    const struct avs_bn_sync *bn_sync; /* NULL, or SyncBN across ranks (borrowed) */
    int N, B; /* videos, frames = N*T */
    struct avs_tensor_spec *pspec, *bspec;     /* parameters, buffers (BN running stats) */
    int np, nb;
    struct avs_tensor_set params, grads, m, v, bufs;
    long adam_step;
    int grads_zero; /* 1: avs_c3n_head_adam left the grads zero, the next zero_grad skips */
    long bn_batches[4]; /* W_z.1.num_batches_tracked per stage */
    struct avs_arena acts;    /* saved activations and the conv scratch, carved once */
    struct avs_arena scratch; /* backward temporaries (lazy: only touched pages count) */
    float *ws;                /* conv scratch [ws_n] (in acts) */
    size_t ws_n;
    struct avs_c3n_stage st[4];
    int kout[3];             /* indices of output_conv.0/.2/.4 weights in params */
    float *hp, *h3, *logits; /* output_conv: [B,O1,2H0+2,2W0+2] [B,O2,4H0,4W0] [B,K,..] */
    float *avm_p;            /* matching loss: sigmoid(logits) [B,1,4H0,4W0] */
    int avm_live;            /* 1: avs_c3n_head_avmatch's gradients wait for the next backward */
    float *kc, *kcb;         /* output_conv.2 composed with the x2 upsampling (c3n_output.c) */
    float *ringcol;          /* and its ring of border outputs: their im2col columns */
    const float *x[4];            /* inputs of the last forward (borrowed) */
    const float *audio;
    int train;
    double flops_fwd; /* multiply-add FLOPs of one forward (for reports) */
};

void avs_c3n_head_init(struct avs_c3n_head *h, const struct avs_c3n_cfg *cfg, int n_videos);
void avs_c3n_head_free(struct avs_c3n_head *h);
/* PyTorch-like default initialisation from a seed (kaiming-uniform convs, BN weight 1). */
void avs_c3n_head_init_random(struct avs_c3n_head *h, unsigned long long seed);
/* Load parameters and buffers by name (model/params.h: read on the host, uploaded). Missing,
 * unknown and mis-shaped tensors are errors that name the tensor; "module." prefixes
 * (DataParallel) are stripped. */
int avs_c3n_head_load(struct avs_c3n_head *h, const char *path, struct avs_err *err);

struct avs_st_file;
struct avs_st_tensor;
/* For tensors of a file that are not the head's: 1 taken, 0 not ours, -1 error (err set). */
typedef int (*avs_c3n_extra_fn)(void *ctx, const struct avs_st_tensor *t, struct avs_err *err);
/* avs_c3n_head_load on an open file (checkpoints with more than the head): a tensor the head
 * does not have goes to extra (may be NULL), then is counted in *ignored when ignored is
 * non-NULL, else is an error. Every head tensor must be there. */
int avs_c3n_head_load_from(struct avs_c3n_head *h, const struct avs_st_file *f,
                           avs_c3n_extra_fn extra, void *ctx, int *ignored, struct avs_err *err);
/* Saved forward state needs x and audio alive until the backward. */
void avs_c3n_head_fwd(struct avs_c3n_head *h, const float *const x[4], const float *audio,
                      int train);
/* dlogits [B,K,4H0,4W0]; dx[s] and daudio may be NULL (not wanted: skips that work) and are
 * ADDED into. Parameter gradients are added into h->grads. */
void avs_c3n_head_bwd(struct avs_c3n_head *h, const float *dlogits, float *const dx[4],
                      float *daudio);
void avs_c3n_head_zero_grad(struct avs_c3n_head *h);
/* One Adam step over all parameters; leaves the gradients zeroed (one pass over memory for
 * both), so the next avs_c3n_head_zero_grad costs nothing. Gradients added between the two
 * (a backward) must clear h->grads_zero first. */
void avs_c3n_head_adam(struct avs_c3n_head *h, double lr);
/* BCE + Dice (DESIGN §6; BCE alone for cfg.avsbench, as AVSBench's F1_IoU_BCELoss) of the logits against masks [B,1,4H0,4W0] in [0,1], over the frames
 * with frame_mask[b] != 0 (host memory; NULL: all); writes dlogits (all frames). Returns the
 * loss. mask, dlogits and the two scratch buffers are device memory. */
double avs_c3n_head_loss(const struct avs_c3n_head *h, const float *mask, const int *frame_mask,
                         float *dlogits, float *scratch_logits /* [2*B*n] */,
                         float *scratch_mask /* [B*n] */);
/* Pixel-wise cross-entropy over the K classes (AVSS; backend softmax_ce) of the logits
 * against class indices labels [B,4H0*4W0] (floats; outside 0..K-1 counts as 0), mean over
 * the pixels of the frames with frame_mask[b] != 0 (host; NULL: all); writes dlogits [B,K,..]
 * (zero for the other frames). Returns the loss (0 when no frame counts). scratch_logits
 * [2*B*K*n] and scratch_labels [B*n] are device memory, as are labels and dlogits. */
double avs_c3n_head_loss_ce(const struct avs_c3n_head *h, const float *labels,
                            const int *frame_mask, float *dlogits, float *scratch_logits,
                            float *scratch_labels);
/* AVSBench's MS3 audio-visual matching loss (ref: avs_ms3/loss.py A_MaskedV_SimmLoss as its
 * MS3 train.sh runs it: --masked_av_stages 0 1 2 3 --kl_flag, mask_pooling_type 'avg',
 * norm_fea_flag and threshold_flag off), on the last forward, every frame (it needs no ground
 * truth), every TPAVI stage s (needs cfg.av_match, K = 1):
 *   m_s = sigmoid(adaptive_avg_pool(sigmoid(logits), H_s x W_s))   (the official sigmoid twice)
 *   u_s = mean_HW(v_s * m_s), v_s = relu(TPAVI output of stage s) [B,D,H_s,W_s]: the
 *         official model returns its stage maps, and the decoder's in-place ReLU
 *         (ResidualConvUnit) has rectified them by the time the loss reads them
 *   L_s = sum over frames of KL(softmax(af_s) || softmax(u_s)), af_s = align_channel(audio)
 *   L = mean over the stages of L_s.
 * Returns L; ADDS lambda * dL/dlogits into dlogits and keeps lambda * dL/dv_s and dL/daf_s for
 * the next avs_c3n_head_bwd, which adds them in (into the TPAVI outputs through the ReLU, and
 * into align_channel). dlogits is device memory. */
double avs_c3n_head_avmatch(struct avs_c3n_head *h, float lambda, float *dlogits);
/* Bytes held by the model (parameters, optimiser, activations, peak scratch). */
size_t avs_c3n_head_bytes(const struct avs_c3n_head *h);

#endif
