/* model/c3n_ref.h: the reference C3N: CCAM + the C3N head written once, plainly, in the
 * structure of the official modules, on basic primitives only (backend/ops.h: conv2d, gemm,
 * bias, relu, norms, resize, mean, concat, broadcast add/mul, axpy, copy/zero). It is the
 * readable description of the model, the oracle the fused fast path (model/c3n_head.h,
 * model/c3n.h) is tested against, and the first network a new backend runs.
 *
 *   struct avs_c3n_head h; avs_c3n_head_init(&h, &cfg, N);   (or any tensor sets made from a
 *   struct avs_c3n_ref r;                                      table with the same names)
 *   avs_c3n_ref_init(&r, &cfg, N, ccam, &h.params, &grads, &bufs);
 *   avs_c3n_ref_fwd(&r, x, gradcam, audio, train);           logits in r.act.logits
 *   avs_c3n_ref_bwd(&r, dlogits, dx, daudio);                parameter gradients ADDED
 *   avs_c3n_ref_free(&r);                                     into grads
 *
 *   x[s] [B,C_s,H_s,W_s] (B = N*T, a video's T frames adjacent), gradcam[s] [B,C_s] (CCAM
 *   only), audio [B,A] (TPAVI stages only), logits [B,K,4H_0,4W_0] (K = cfg->K); all device memory of the
 *   active backend.
 *
 * In llm.c's form: every intermediate is an activation carved at init from one arena by a
 * size table (struct avs_c3n_ref_acts), and its gradient has the same place in a second arena
 * of the same layout, cleared at the start of the backward; every layer's backward ADDS into
 * the gradients of its inputs and parameters. Nothing is allocated or looked up by name in a
 * forward or backward, and tensor memory is never touched on the host (it runs on "guard").
 *
 *   CCAM   (C3N Eq. 6-7, DESIGN §6)  cs = sigmoid(normalize(w)); x1 = x*cs;
 *                                    xc = x1 * sigmoid(mean_c x1)
 *   ASPP   (DeepLabv3 as in C3N)     cat[ up(conv(pool(x))) | 1x1 | 3x3 d6 | d12 | d18 ]
 *                                    -> 1x1 5D->D; no BN/ReLU
 *   TPAVI  (AVSBench TPAVI.py "dot") af = Linear(audio) repeated over H,W; theta, phi(af map),
 *                                    g 1x1x1 to Ci; y = theta (phi^T g) / (THW) per video
 *                                    (f = theta^T phi never made); z = BN(W_z y) + x; LN over C
 *   fusion (AVSBench PVT_AVSModel.py) RCU(x) = conv2(relu(conv1(relu(x)))) + relu(x);
 *                                    path = up2_ac(RCU2(prev + RCU1(skip))), path4: RCU2(skip)
 *   output (output_conv)             conv3x3 D->O1, bilinear x2, conv3x3 O1->O2, ReLU, 1x1 ->K
 */
#ifndef AVS_MODEL_C3N_REF_H
#define AVS_MODEL_C3N_REF_H

#include "backend/backend.h"
#include "model/c3n_head.h"

/* The activations of one stage s (H, W: its size; its path's output is twice that). NULL where
 * the configuration has no such layer (CCAM off, no TPAVI on s, no RCU1 on path4). */
struct avs_c3n_ref_stage {
    /* CCAM: normalised and squashed weights [B,C] [B,C]; x1 [B,C,HW]; channel mean and its
     * sigmoid [B,HW] [B,HW]; output (the head's input) [B,C,HW] */
    float *cn, *cs, *x1, *m, *sm, *xc;
    /* ASPP: pool [B,C]; its 1x1 conv [B,D]; branches [B,D,HW] (0: image pool, upsampled;
     * 1..4: 1x1, d6, d12, d18); their concat [B,5D,HW]; output [B,D,HW] */
    float *pool, *ip, *br[5], *cat, *a;
    /* TPAVI: af [B,D] and its broadcast map am [B,D,HW]; theta, phi, g [B,Ci,HW];
     * M = phi g^T per video [N,Ci,Ci]; y [B,Ci,HW]; W_z conv [B,D,HW]; BN mean, rstd [D] and
     * output [B,D,HW]; z = BN + a [B,D,HW]; LN mean, rstd [B,HW]; output t [B,D,HW] */
    float *af, *am, *th, *ph, *g, *M, *y, *wz, *bnm, *bnr, *bn, *z, *lnm, *lnr, *t;
    /* fusion path s+1, per residual conv unit u (0: resConfUnit1, 1: resConfUnit2), all
     * [B,D,HW]: relu(x), conv1, relu, conv2, output; sum = prev + RCU1 [B,D,HW]; output up
     * [B,D,2H,2W] */
    float *r0[2], *c1[2], *r1[2], *c2[2], *ro[2], *sum, *up;
};

struct avs_c3n_ref_acts {
    struct avs_c3n_ref_stage st[4];
    /* output_conv: conv 3x3 [B,O1,2H0,2W0]; x2 [B,O1,4H0,4W0]; conv 3x3 and its ReLU
     * [B,O2,4H0,4W0]; logits [B,K,4H0,4W0] */
    float *h1, *hu, *h2, *h3, *logits;
};

/* Indices of the parameters in the tensor sets (a weight's bias is the entry after it),
 * resolved once at init. -1: the configuration has no such layer. */
struct avs_c3n_ref_idx {
    int pool[4], br[4][4], out[4]; /* conv<s+1>: .conv, .atrous_block1..18, .conv_1x1_output */
    int align[4], theta[4], phi[4], g[4], wz[4], bn[4], ln[4]; /* tpavi_<s+1> */
    int rmean[4], rvar[4];         /* in bufs: tpavi_<s+1>.W_z.1 running stats */
    int rcu[4][2][2];              /* path<s+1>.resConfUnit<u+1>.conv<c+1> */
    int oc[3];                     /* output_conv.0, .2, .4 */
};

/* Geometries of every conv, made once at init. */
struct avs_c3n_ref_geom {
    struct avs_conv2d pool[4], br[4][4], out[4]; /* ASPP */
    struct avs_conv2d tin[4], tout[4];           /* TPAVI 1x1x1: D->Ci, Ci->D */
    struct avs_conv2d rcu[4];                    /* fusion 3x3 D->D */
    struct avs_conv2d oc[3];                     /* output_conv */
};

struct avs_c3n_ref {
    struct avs_c3n_cfg cfg;
    int N, B, ccam;
    const struct avs_tensor_set *params; /* borrowed: parameters, their gradients (NULL: */
    struct avs_tensor_set *grads, *bufs; /* forward only) and the BN running stats */
    struct avs_c3n_ref_idx k;
    struct avs_c3n_ref_geom g;
    struct avs_c3n_ref_acts act, dact;   /* activations and their gradients (same layout) */
    struct avs_arena acts, dacts, scratch; /* scratch: the convs' workspace */
    float *ws;
    const float *x[4], *gradcam[4], *audio; /* the last forward's inputs (borrowed) */
    int train;
    long bn_batches[4]; /* tpavi_<s+1>.W_z.1.num_batches_tracked */
};

/* The sets must hold the head's tensors for cfg (names as model/c3n_head.c's table: a missing
 * or mis-sized tensor is a bug, AVS_ASSERT) in the active backend's memory; they are borrowed
 * and must outlive r. ccam: CCAM on every stage (the CC and CC-V switches). */
void avs_c3n_ref_init(struct avs_c3n_ref *r, const struct avs_c3n_cfg *cfg, int n_videos,
                      int ccam, const struct avs_tensor_set *params, struct avs_tensor_set *grads,
                      struct avs_tensor_set *bufs);
void avs_c3n_ref_free(struct avs_c3n_ref *r);
/* gradcam NULL without CCAM; audio NULL without TPAVI stages. Inputs must stay alive until
 * the backward. train: BatchNorm on batch statistics, running stats updated. */
void avs_c3n_ref_fwd(struct avs_c3n_ref *r, const float *const x[4], const float *const gradcam[4],
                     const float *audio, int train);
/* dlogits [B,K,4H0,4W0]. dx (or dx[s]) and daudio may be NULL (not wanted); what is given is
 * ADDED into, and so are the parameter gradients (r->grads). */
void avs_c3n_ref_bwd(struct avs_c3n_ref *r, const float *dlogits, float *const dx[4],
                     float *daudio);

#endif
