/* model/swin.h: Swin Transformer (v1; Swin-B is C3N's Swin backbone): the four stage maps, the
 * ImageNet logits and Grad-CAM weights, on the active backend.
 *
 *   struct avs_swin m;
 *   struct avs_swin_cfg cfg;
 *   avs_swin_cfg_variant(&cfg, "swin_b");
 *   if (avs_swin_load(&m, &cfg, "swin_b.safetensors", &err)) ...;
 *   struct avs_swin_ws ws;                          made once for up to N images of H x W
 *   if (avs_swin_ws_init(&ws, &m, N, H, W, AVS_SWIN_GRADCAM, &err)) ...;
 *   avs_swin_fwd(&m, &ws, stage, logits, image, n);  stage[s] [n,C_s,H/2^(s+2),W/2^(s+2)]
 *   avs_swin_gradcam(&m, &ws, gradcam, stage, logits, image, target, n);
 *   avs_swin_ws_free(&ws); avs_swin_free(&m);
 *
 * Parameter names are the official Swin release's `state_dict` keys (microsoft/Swin-Transformer
 * models/swin_transformer.py): patch_embed.proj/norm, layers.<s>.blocks.<i>.norm1/attn.qkv/
 * attn.proj/attn.relative_position_bias_table/norm2/mlp.fc1/mlp.fc2, layers.<s>.downsample.
 * reduction/norm (s < 3), norm, head. The official files' buffers relative_position_index and
 * attn_mask are recomputed here (as the official loader does) and skipped when loading.
 * Facts: patch embedding = 4x4 stride-4 conv + LayerNorm; every LayerNorm eps 1e-5; window
 * attention in ws x ws windows, heads of 32 channels, q scaled by head_dim^-0.5, plus the
 * relative-position bias table [(2ws-1)^2, heads]; odd blocks shift the windows by ws/2
 * (torch.roll by -ws/2, mask -100 between regions that were not neighbours) unless the stage
 * is a single window; exact GELU MLP of ratio 4; patch merging = the 2x2 neighbours
 * concatenated (x0 = (0,0), x1 = (1,0), x2 = (0,1), x3 = (1,1) as (row, col)) -> LayerNorm(4C)
 * -> Linear(4C, 2C, no bias); logits = head(mean of the tokens after `norm`).
 * Stage maps and Grad-CAM (C3N Eq. 5, as its PVT model hooks block<s>[-1]): the output of the
 * last block of each stage, before patch merging; weight w_c = spatial mean of d logit_target /
 * d that output. Every stage side must be a multiple of the window (224 for window 7: the
 * official classification model has no padding).
 */
#ifndef AVS_MODEL_SWIN_H
#define AVS_MODEL_SWIN_H

#include <stdint.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/tensor.h"

struct avs_swin_cfg {
    int embed;     /* C of stage 1 (stage s: embed << s) */
    int depths[4];
    int heads[4];
    int window;    /* ws */
    int classes;   /* head outputs (ImageNet: 1000), 0 = no head */
};

/* "swin_t", "swin_s", "swin_b" (window 7), "swin_b_w12" (window 12, the 384 model), "swin_t_w4"
 * (Swin-T with 4x4 windows: sides multiples of 128, for small stores such as the demo's; no
 * released weights have it, random init only); -1 if unknown. */
int avs_swin_cfg_variant(struct avs_swin_cfg *cfg, const char *name);
/* Channels of stage s. */
static inline int avs_swin_dim(const struct avs_swin_cfg *c, int s) { return c->embed << s; }

/* Size-table indices of one block ([0] weight, [1] bias; rpb the bias table). */
struct avs_swin_block_ix {
    int norm1[2], qkv[2], proj[2], rpb, norm2[2], fc1[2], fc2[2];
};
struct avs_swin_stage_ix {
    struct avs_swin_block_ix *blk; /* [depths[s]] */
    int red, mnorm[2];             /* layers.<s>.downsample.reduction/norm (s < 3; else -1) */
};

struct avs_swin {
    struct avs_swin_cfg cfg;
    struct avs_tensor_spec *spec; /* [np] */
    int np;
    struct avs_spec_list specs;
    struct avs_tensor_set params;
    int pe[2], pe_norm[2], norm[2], head[2]; /* head -1 without a head */
    struct avs_swin_stage_ix ix[4];
};

/* Read every tensor from path (model/params.h: missing, extra or mis-shaped tensors are errors
 * naming the tensor; "module." prefixes accepted; relative_position_index / attn_mask skipped).
 * cfg->classes is taken from head.weight when present. */
int avs_swin_load(struct avs_swin *m, const struct avs_swin_cfg *cfg, const char *path,
                  struct avs_err *err);
/* Random parameters (`--random-init SEED`) as the official _init_weights: Linear weights and
 * the bias tables trunc-normal std 0.02, biases 0, LayerNorm 1 and 0; the patch-embedding conv
 * (PyTorch's default there) U(+-1/sqrt(fan_in)) for weight and bias. */
void avs_swin_init_random(struct avs_swin *m, const struct avs_swin_cfg *cfg, uint64_t seed);
void avs_swin_free(struct avs_swin *m);
/* 1 for the names of the official files' buffers that are recomputed here (relative_position_
 * index, attn_mask): skipped when loading. */
int avs_swin_is_buffer(const char *name);

enum avs_swin_mode {
    AVS_SWIN_FWD,     /* forward only */
    AVS_SWIN_GRADCAM, /* + the Grad-CAM backward (every block's activations kept) */
    AVS_SWIN_TRAIN,   /* + every parameter's gradient (and the Linear inputs kept) */
};

struct avs_swin_keep; /* internal (model/swin_internal.h) */

/* Memory of Swin passes on up to N images of H x W: kept activations, scratch, index maps. */
struct avs_swin_ws {
    int N, H, W;
    enum avs_swin_mode mode;
    struct avs_arena keep;
    struct avs_swin_keep *k;
    float *onehot; /* host [N,classes] */
    int n, kept;   /* the last kept forward's batch */
};

/* -1 with err when H or W does not fit the windows (each stage side a multiple of ws). */
int avs_swin_ws_init(struct avs_swin_ws *w, const struct avs_swin *m, int N, int H, int W,
                     enum avs_swin_mode mode, struct avs_err *err);
void avs_swin_ws_free(struct avs_swin_ws *w); /* NULL-safe */
size_t avs_swin_ws_floats(const struct avs_swin_ws *w);
/* Side of stage s for an input side (4x, then 2x reductions). */
int avs_swin_side(int side, int s);
/* 0 when an H x W input fits cfg's windows, else -1 with err saying which sizes do. */
int avs_swin_check_size(const struct avs_swin_cfg *c, int H, int W, struct avs_err *err);

/* image [N,3,H,W] -> stage[s] [N,C_s,H_s,W_s], logits [N,classes] (NULL: not wanted). */
void avs_swin_fwd(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                  float *logits, const float *image, int N);
/* Forward, then gradcam[s] [N,C_s] for the class target[n] (host ints); GRADCAM workspace. */
void avs_swin_gradcam(const struct avs_swin *m, struct avs_swin_ws *w, float *const gradcam[4],
                      float *const stage[4], float *logits, const float *image, const int *target,
                      int N);
/* Forward (stage, logits written as avs_swin_fwd), then backward from dstage[s] (gradients of
 * the stage maps; NULL entries: zero) and dlogits [N,classes] (NULL: zero; logits NULL: the head
 * is not run and needs no dlogits): parameter gradients ADDED into grads (a tensor set over
 * m->spec, zeroed by the caller). TRAIN workspace. */
void avs_swin_bwd(const struct avs_swin *m, struct avs_swin_ws *w, struct avs_tensor_set *grads,
                  float *const stage[4], float *logits, const float *image,
                  const float *const dstage[4], const float *dlogits, int N);
/* The same in two calls (targets from the logits, C3IM): forward with activations kept (logits
 * required), then the Grad-CAM backward from it. */
void avs_swin_fwd_kept(const struct avs_swin *m, struct avs_swin_ws *w, float *const stage[4],
                       float *logits, const float *image, int N);
void avs_swin_gradcam_kept(const struct avs_swin *m, struct avs_swin_ws *w,
                           float *const gradcam[4], const int *target);

/* Swin on safetensors files (avs-model run swin_*, model/swin_files.c): image [N,3,H,W] from
 * `inputs` -> stage1..4 and logits in `out`; with `target` (tensor target [N]) also
 * gradcam1..4 [N,C_s]. Weights from `weights`, or random from init_seed when random_init. -1
 * with err naming the file on any error. */
struct avs_swin_files {
    const char *variant, *weights, *inputs, *target, *out;
    int random_init;
    uint64_t init_seed;
};
int avs_swin_run_files(const struct avs_swin_files *f, struct avs_err *err);

#endif
