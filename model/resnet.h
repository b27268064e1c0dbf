/* model/resnet.h: ResNet-50 (torchvision's, v1.5: the stride on the 3x3 conv): the four stage
 * maps as AVSBench's B2_ResNet gives them to its decoder, the ImageNet logits and Grad-CAM
 * weights, on the active backend.
 *
 *   struct avs_resnet m;
 *   if (avs_resnet_load(&m, "resnet50.safetensors", &err)) ...;   (or avs_resnet_init_random)
 *   struct avs_resnet_ws ws;                            made once for up to N images of H x W
 *   avs_resnet_ws_init(&ws, &m, N, H, W);
 *   avs_resnet_fwd(&m, &ws, stage, logits, image, n);   stage[s] [n,dims[s],H/2^(s+2),W/2^(s+2)]
 *   avs_resnet_gradcam(&m, &ws, gradcam, stage, logits, image, target, n);
 *   fine-tuning: avs_resnet_ws_init_mode(&ws, &m, N, H, W, AVS_RESNET_TRAIN), then per batch
 *   avs_resnet_bwd(&m, &ws, &grads, stage, logits, image, dstage, dlogits, n);
 *   avs_resnet_ws_free(&ws); avs_resnet_free(&m);
 *
 * Parameter names are torchvision's `state_dict` keys (conv1, bn1, layer1.0.conv1 ...
 * layer4.2.bn3, layer<s>.0.downsample.0/.1, fc), so torchvision's and AVSBench's ImageNet
 * checkpoints (its `resnet50-19c8e357.pth`) convert 1:1; `num_batches_tracked` tensors are
 * accepted and ignored. Widths and depths are read from the shapes (the official ones are
 * width 64, planes 64/128/256/512, depths 3/4/6/3, stage outputs 4 x planes = 256/512/1024/2048;
 * the reduced test model has the same structure at other widths).
 * BatchNorm runs in eval mode (running statistics, eps 1e-5), as a frozen encoder.
 *   stem     conv1 7x7/2 pad 3 (no bias), bn1, ReLU, max-pool 3x3/2 pad 1
 *   layer<s> Bottleneck blocks: conv1 1x1, bn1, ReLU, conv2 3x3 (stride 2 in block 0 of layers
 *            2..4), bn2, ReLU, conv3 1x1 (4 x planes), bn3, + identity (block 0: downsample
 *            = 1x1 conv with the stride + BN), ReLU
 *   head     global average pool, fc -> logits [N,classes] (ImageNet: 1000)
 * Stage maps: the outputs of layer1..layer4 (ref: AVSBench avs_s4/model/ResNet_AVSModel.py
 * Pred_endecoder.forward x1..x4, whose B2_ResNet layer3_1/layer4_1 are torchvision's layer3/4).
 * Grad-CAM (DESIGN §5, C3N Eq. 5): the target class's logit is backpropagated to each stage
 * map (the output of the last block of each layer, where PVTv2's hook sits before its stage
 * norm: ResNet has none); w_c = spatial mean of that gradient.
 * Fine-tuning (model/resnet_bwd.c): avs_resnet_bwd gives every parameter's gradient from
 * upstream gradients of the stage maps and logits, with BatchNorm in eval mode (the running
 * statistics fixed, as a constant affine map: weight and bias get gradients, the statistics do
 * not), as torchvision's model in eval() mode: AVS_RESNET_TRAIN. AVSBench's train.py puts the
 * whole model, ResNet included, in train() mode, so its BatchNorms normalise with the batch's
 * statistics and update the running ones: AVS_RESNET_TRAIN_BATCHSTATS does that (the running
 * statistics in m->params change with every forward on such a workspace).
 */
#ifndef AVS_MODEL_RESNET_H
#define AVS_MODEL_RESNET_H

#include <stdint.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/tensor.h"

#define AVS_RESNET_MAXDEPTH 64

/* Indices in the size table of one BatchNorm's weight, bias, running_mean, running_var. */
struct avs_resnet_bn_ix {
    int w, b, mean, var;
};
struct avs_resnet_block_ix {
    int conv[3];                  /* conv1..3.weight */
    struct avs_resnet_bn_ix bn[3];
    int ds_conv;                  /* downsample.0.weight; -1 without a downsample */
    struct avs_resnet_bn_ix ds_bn;
};

struct avs_resnet {
    int width;     /* conv1 output channels (64) */
    int planes[4]; /* bottleneck widths (64, 128, 256, 512) */
    int depths[4]; /* blocks per layer (3, 4, 6, 3) */
    int dims[4];   /* stage map channels: 4 x planes */
    int classes;   /* fc outputs (ImageNet: 1000); 0 = no head */
    struct avs_spec_list specs;
    struct avs_tensor_set params; /* weights and the BatchNorm running statistics */
    int conv1;
    struct avs_resnet_bn_ix bn1;
    struct avs_resnet_block_ix blk[4][AVS_RESNET_MAXDEPTH];
    int fc[2];     /* fc.weight, fc.bias; -1 without a head */
};

/* Shapes from the file (torchvision names; a "module." prefix is accepted), every tensor read.
 * -1 with err naming the file and the tensor (missing, unknown or mis-shaped). */
int avs_resnet_load(struct avs_resnet *m, const char *path, struct avs_err *err);
/* The official ResNet-50 at random (`--random-init SEED`), torchvision's init: convs normal
 * with std sqrt(2 / (k*k*out)) (kaiming, fan_out; drawn truncated at 2 std, model/randinit.h),
 * BatchNorm weight 1, bias 0, running mean 0,
 * var 1; fc PyTorch's default (U(+-1/sqrt(fan_in)) for weight and bias). width: conv1
 * channels (64 official; planes are width x 1, 2, 4, 8); classes: fc outputs (0 = none). */
void avs_resnet_init_random(struct avs_resnet *m, int width, int classes, uint64_t seed);
void avs_resnet_free(struct avs_resnet *m);
/* Side of stage s (0-based) for an input side (conv arithmetic: 4x, then 2x reductions). */
int avs_resnet_side(int side, int s);

struct avs_resnet_keep; /* internal: every block's kept activations (model/resnet_internal.h) */

/* What a workspace is made for: each mode also serves the ones above it. */
enum avs_resnet_mode {
    AVS_RESNET_GRADCAM, /* forward and the Grad-CAM backward (every block's activations kept) */
    AVS_RESNET_TRAIN,   /* + every parameter's gradient (the BatchNorms' inputs kept too) */
    AVS_RESNET_TRAIN_BATCHSTATS, /* TRAIN with BatchNorm in train mode, as AVSBench's train.py:
                                  * every forward on this workspace normalises with the batch's
                                  * statistics and updates m's running statistics (momentum 0.1,
                                  * unbiased variance), and the backward goes through them */
};

/* Memory of passes on up to N images of H x W (multiples of 32): every block's activations
 * (what the Grad-CAM backward needs), conv workspace and gradient buffers, in the backend's
 * memory; the host one-hot staging of Grad-CAM. One pass at a time per workspace. */
struct avs_resnet_ws {
    int N, H, W;
    enum avs_resnet_mode mode;
    struct avs_arena mem;
    struct avs_resnet_keep *k;
    float *onehot; /* host [N,classes] */
    int n, kept;   /* the last kept forward: batch */
};

void avs_resnet_ws_init(struct avs_resnet_ws *w, const struct avs_resnet *m, int N, int H, int W);
/* The same for a mode (avs_resnet_ws_init: AVS_RESNET_GRADCAM). */
void avs_resnet_ws_init_mode(struct avs_resnet_ws *w, const struct avs_resnet *m, int N, int H,
                             int W, enum avs_resnet_mode mode);
void avs_resnet_ws_free(struct avs_resnet_ws *w); /* NULL-safe, any state of a zeroed struct */
size_t avs_resnet_ws_floats(const struct avs_resnet_ws *w);

/* image [N,3,H,W] -> stage[s] [N,dims[s],H_s,W_s] (NULL entries: not wanted), logits
 * [N,classes] (NULL: not wanted). N <= w->N; H, W as w's. */
void avs_resnet_fwd(const struct avs_resnet *m, struct avs_resnet_ws *w, float *const stage[4],
                    float *logits, const float *image, int N);
/* The forward, kept for a Grad-CAM backward (avs_resnet_gradcam_kept), then the weights
 * gradcam[s] [N,dims[s]] for the class target[n] (host ints) of each image (BatchNorm in eval
 * mode: not on a TRAIN_BATCHSTATS workspace). */
void avs_resnet_fwd_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                         float *const stage[4], float *logits, const float *image, int N);
void avs_resnet_gradcam_kept(const struct avs_resnet *m, struct avs_resnet_ws *w,
                             float *const gradcam[4], const int *target);
/* Both in one call. */
void avs_resnet_gradcam(const struct avs_resnet *m, struct avs_resnet_ws *w,
                        float *const gradcam[4], float *const stage[4], float *logits,
                        const float *image, const int *target, int N);

/* Forward (stage, logits written as avs_resnet_fwd), then backward from dstage[s] (gradients of
 * the stage maps; NULL entries: zero) and dlogits [N,classes] (NULL: zero; logits NULL: the head
 * is not run and needs no dlogits): every parameter's gradient ADDED into grads (a tensor set
 * over m->specs.v, m->specs.n, zeroed by the caller; the running statistics' entries are left
 * as they are). A TRAIN workspace (BatchNorm on the running statistics) or a
 * TRAIN_BATCHSTATS one (batch statistics; m's running statistics updated once by the forward).
 * The signature of avs_swin_bwd and avs_pvt_bwd. */
void avs_resnet_bwd(const struct avs_resnet *m, struct avs_resnet_ws *w,
                    struct avs_tensor_set *grads, float *const stage[4], float *logits,
                    const float *image, const float *const dstage[4], const float *dlogits, int N);

/* ResNet on safetensors files (avs-model run resnet50, model/resnet_files.c): image [N,3,H,W]
 * (H, W multiples of 32) and optionally target [N] (int64/int32) from `inputs`; weights from
 * `weights`; stage1..4, logits and (with target) gradcam1..4 [N,C_s] written to `out`.
 * -1 with err naming the file on any error. */
int avs_resnet_run_files(const char *weights, const char *inputs, const char *out,
                         struct avs_err *err);

#endif
