/* model/pvt.h: PVTv2 (b0..b5): the four stage maps, the ImageNet logits, Grad-CAM weights and
 * parameter gradients, on the active backend.
 *
 *   struct avs_pvt m;
 *   struct avs_pvt_cfg cfg;
 *   avs_pvt_cfg_variant(&cfg, "pvt_v2_b0");
 *   if (avs_pvt_load(&m, &cfg, "pvt_v2_b0.safetensors", &err)) ...;
 *   struct avs_pvt_ws ws;                               made once for up to N images of H x W
 *   avs_pvt_ws_init(&ws, &m, N, H, W, AVS_PVT_GRADCAM);
 *   avs_pvt_fwd(&m, &ws, stage, logits, image, n);      stage[s] [n,C_s,H/2^(s+2),W/2^(s+2)]
 *   avs_pvt_gradcam(&m, &ws, gradcam, stage, logits, image, target, n);
 *   avs_pvt_ws_free(&ws); avs_pvt_free(&m);
 *
 * Tensors (image, stage maps, logits, Grad-CAM weights, upstream gradients) are device memory
 * of the backend active at init (backend/backend.h); targets are host ints. Every pass works in
 * the workspace made at init (struct avs_pvt_ws: kept activations, scratch, conv workspaces),
 * so nothing allocates inside a forward or backward, and parameter indices are resolved once
 * when the size table is built (struct avs_pvt_stage_ix), never by name in a pass.
 *
 * Parameter names are the official pvt_v2.py `state_dict` keys (patch_embed1..4.proj/norm,
 * block1..4.<i>.norm1/attn.q/attn.kv/attn.sr/attn.norm/attn.proj/norm2/mlp.fc1/
 * mlp.dwconv.dwconv/mlp.fc2, norm1..4, head), so official checkpoints convert 1:1.
 * Facts that matter (DESIGN §5): LayerNorm eps 1e-6 in blocks and stage norms, 1e-5 in the
 * patch embeddings and in attention's spatial-reduction norm; exact GELU; scale head_dim^-0.5;
 * MLP = fc1 -> 3x3 depthwise conv on the token grid -> GELU -> fc2; patch embeddings are convs
 * (7x7 stride 4, then 3x3 stride 2, padding k/2) + LayerNorm; stage maps are taken after the
 * stage norm; logits = head(mean of the stage-4 tokens after norm4).
 * ref: whai362/PVT classification/pvt_v2.py (PyramidVisionTransformerV2.forward_features).
 * Grad-CAM (DESIGN §5, C3N Eq. 5): the logit of the target class is backpropagated to the output
 * of the last block of each stage (before the stage norm); weight w_c = spatial mean of that
 * gradient. avs_pvt_bwd gives every parameter's gradient (fine-tuning) from upstream gradients
 * of the stage maps and logits.
 */
#ifndef AVS_MODEL_PVT_H
#define AVS_MODEL_PVT_H

#include <stdint.h>

#include "core/common.h"
#include "backend/backend.h"
#include "core/tensor.h"

struct avs_pvt_cfg {
    int dims[4];   /* embed_dims */
    int heads[4];  /* num_heads */
    int mlp[4];    /* mlp_ratios */
    int depths[4];
    int sr[4];     /* sr_ratios */
    int classes;   /* head outputs (ImageNet: 1000), 0 = no head */
};

/* "pvt_v2_b0".."pvt_v2_b5" (also "b0".."b5"): the official configurations; -1 if unknown. */
int avs_pvt_cfg_variant(struct avs_pvt_cfg *cfg, const char *name);

/* Indices in the size table (and so in params and any set over the same table) of one block's
 * parameters, [0] the weight, [1] the bias; sr and srnorm are -1 when the stage has sr = 1. */
struct avs_pvt_block_ix {
    int norm1[2], q[2], kv[2], proj[2], sr[2], srnorm[2], norm2[2], fc1[2], dw[2], fc2[2];
};
struct avs_pvt_stage_ix {
    int pe[2], pe_norm[2], norm[2];   /* patch_embed<s>.proj, patch_embed<s>.norm, norm<s> */
    struct avs_pvt_block_ix *blk;     /* [depths[s]] */
};

struct avs_pvt {
    struct avs_pvt_cfg cfg;
    struct avs_tensor_spec *spec; /* [np]: the size table (specs.v) */
    int np;
    struct avs_spec_list specs;
    struct avs_tensor_set params;
    struct avs_pvt_stage_ix ix[4];
    int head[2];                  /* head.weight, head.bias; -1 without a head */
};

/* Build the size table for cfg and read every tensor from path (model/params.h: missing, extra
 * or mis-shaped tensors are errors naming the tensor; a "module." prefix is accepted).
 * cfg->classes is taken from head.weight when present. */
int avs_pvt_load(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, const char *path,
                 struct avs_err *err);
void avs_pvt_free(struct avs_pvt *m);
/* Random parameters instead of a file (`--random-init SEED`), as pvt_v2.py's _init_weights:
 * Linear weights trunc-normal std 0.02, biases 0; LayerNorm 1 and 0; convs normal with std
 * sqrt(2 / fan_out), fan_out = k*k*out/groups. cfg->classes (0 = no head) is kept. Made on the
 * host (model/randinit.h), then uploaded. */
void avs_pvt_init_random(struct avs_pvt *m, const struct avs_pvt_cfg *cfg, uint64_t seed);

/* What a workspace is made for: each mode also serves the ones above it. */
enum avs_pvt_mode {
    AVS_PVT_FWD,     /* forward only (one block's activations per stage, reused) */
    AVS_PVT_GRADCAM, /* + the Grad-CAM backward (the blocks of stages 2..4 kept) */
    AVS_PVT_TRAIN,   /* + the full backward into parameter gradients (every block kept) */
};

struct avs_pvt_keep; /* internal: where each stage's tensors are (model/pvt_ws.c) */

/* Memory of PVTv2 passes on up to N images of H x W (multiples of 32), in the backend's
 * memory: activations kept for a backward, scratch (stage by stage, mark/rewind), conv and
 * depthwise-conv workspaces, the backward's gradient buffers; on the host, the staged one-hot
 * Grad-CAM gradient. Passes of a workspace run one after the other (one per workspace at a
 * time); a kept forward's image and stage maps must stay unchanged until its backward. */
struct avs_pvt_ws {
    int N, H, W;
    enum avs_pvt_mode mode;
    struct avs_arena keep, scratch;
    struct avs_pvt_keep *k;
    float *onehot;               /* host [N,classes] */
    /* the last kept forward (avs_pvt_fwd_kept): batch, input and outputs (device) */
    int n, kept;
    const float *image;
    float *stage[4];
};

void avs_pvt_ws_init(struct avs_pvt_ws *w, const struct avs_pvt *m, int N, int H, int W,
                     enum avs_pvt_mode mode);
void avs_pvt_ws_free(struct avs_pvt_ws *w); /* NULL-safe, any state of a zeroed struct */
/* Device floats the workspace holds (reports). */
size_t avs_pvt_ws_floats(const struct avs_pvt_ws *w);

/* image [N,3,H,W] -> stage[s] [N,dims[s],H_s,W_s] (H_1 = H/4, then halves), logits [N,classes]
 * (NULL: not wanted); N <= w->N, H, W as w's. */
void avs_pvt_fwd(const struct avs_pvt *m, struct avs_pvt_ws *w, float *const stage[4],
                 float *logits, const float *image, int N);
/* Forward as avs_pvt_fwd, then gradcam[s] [N,dims[s]] for the class target[n] (host ints) of
 * each image (needs the head and a GRADCAM or TRAIN workspace). */
void avs_pvt_gradcam(const struct avs_pvt *m, struct avs_pvt_ws *w, float *const gradcam[4],
                     float *const stage[4], float *logits, const float *image, const int *target,
                     int N);
/* The same in two calls, for targets that depend on the logits (C3IM): the forward (stage,
 * logits as avs_pvt_fwd; logits required), its activations kept in w; then the Grad-CAM
 * backward from it. stage and image must stay unchanged in between. */
void avs_pvt_fwd_kept(const struct avs_pvt *m, struct avs_pvt_ws *w, float *const stage[4],
                      float *logits, const float *image, int N);
void avs_pvt_gradcam_kept(const struct avs_pvt *m, struct avs_pvt_ws *w, float *const gradcam[4],
                          const int *target);
/* Forward (stage, logits written as avs_pvt_fwd), then backward from dstage[s] (gradients of the
 * stage maps; NULL or NULL entries: zero) and dlogits [N,classes] (NULL: zero): parameter
 * gradients ADDED into grads (a tensor set over m->spec, e.g. avs_tensor_set_init(&g, m->spec,
 * m->np), zeroed by the caller). Needs a TRAIN workspace. */
void avs_pvt_bwd(const struct avs_pvt *m, struct avs_pvt_ws *w, struct avs_tensor_set *grads,
                 float *const stage[4], float *logits, const float *image,
                 const float *const dstage[4], const float *dlogits, int N);
/* Side of stage s (0-based) for an input side: 4x, then 2x reductions (conv arithmetic). */
int avs_pvt_side(int side, int s);

/* PVTv2 on safetensors files (avs-model run pvt_v2_bX, model/pvt_files.c): image [N,3,H,W]
 * (H, W multiples of 32) from `inputs` -> stage1..4 and logits in `out`; with `target` (tensor
 * target [N], class indices) also gradcam1..4 [N,C_s]; with `grad_out` (any of dstage1..4,
 * dlogits: upstream gradients) also grad.<param>. Weights from `weights`, or random from
 * init_seed when random_init. -1 with err naming the file on any error. */
struct avs_pvt_files {
    const char *variant, *weights, *inputs, *target, *grad_out, *out;
    int random_init;
    uint64_t init_seed;
};
int avs_pvt_run_files(const struct avs_pvt_files *f, struct avs_err *err);

#endif
