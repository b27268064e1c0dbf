/* model/vggish.h: the VGGish audio encoder (128-d embedding) and a linear AudioSet head.
 *
 *   struct avs_vggish m;
 *   if (avs_vggish_load(&m, "vggish.safetensors", "audioset_head.safetensors", &err)) ...;
 *   float *ws = avs_dev_alloc(avs_vggish_ws(&m, N), "VGGish scratch");
 *   avs_vggish_fwd(&m, emb, logits, examples, N, ws);   examples [N,96,64] (features/logmel.h)
 *   avs_vggish_free(&m);
 *
 * Tensors (examples, embeddings, logits, scratch) are device memory of the active backend
 * (backend/backend.h): callers upload the log-mel examples and download what they keep.
 *
 * Architecture and parameter names are torchvggish's (harritaylor/torchvggish, the port of the
 * TF VGGish used by AVSBench), so `vggish-10086976.pth` converts 1:1:
 *   features.0  conv3x3 1->64, ReLU, maxpool 2     features.3  conv 64->128, ReLU, maxpool 2
 *   features.6  conv 128->256, ReLU                features.8  conv 256->256, ReLU, maxpool 2
 *   features.11 conv 256->512, ReLU                features.13 conv 512->512, ReLU, maxpool 2
 *   -> [N,512,6,4], transposed to [N,6,4,512] (the TF channel-last order) and flattened
 *   embeddings.0 Linear 12288->4096, ReLU; embeddings.2 4096->4096, ReLU; embeddings.4 4096->128,
 *   ReLU  => embedding [N,128]        (no PCA/quantisation postprocessing)
 *   head.weight [K,128], head.bias [K]: logits [N,K] = embedding W^T + b (AudioSet: K = 527),
 *   from the head file (or the VGGish file); optional. Or, when the head file is Kong's
 *   attention network (fc_final.weight, attention.att.weight: avs-audiohead --model attention,
 *   a converted md_50000_iters), as C3N's audio branch runs it: the embedding postprocessed
 *   (VGGish PCA from the head file, else from the VGGish file, else an error; clip, 8-bit
 *   quantisation, (byte - 128) / 128), each second a clip of one step (eval statistics), and
 *   logits = fc_final's output.
 * Widths are read from the weights' shapes (any channel/FC widths, e.g. the reduced test model);
 * the input is always 96x64 log-mel frames. Inference only (the audio encoder is frozen).
 */
#ifndef AVS_MODEL_VGGISH_H
#define AVS_MODEL_VGGISH_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "backend/backend.h"
#include "core/tensor.h"
#include "model/audioset_head.h"

#define AVS_VGGISH_NCONV 6
#define AVS_VGGISH_NFC 3

struct avs_vggish {
    int ch[AVS_VGGISH_NCONV]; /* output channels of each conv (official: 64,128,256,256,512,512) */
    int fc[AVS_VGGISH_NFC];   /* FC widths (official: 4096, 4096, 128); fc[2] = embedding size */
    int classes;              /* head outputs, 0 without a head */
    struct avs_spec_list specs; /* the size table: conv l at 2l, 2l+1; FC l at 2(6+l), ...; head */
    struct avs_tensor_set params;
    struct avs_ash *att;      /* an attention head file (model/audioset_head.h), else NULL */
};

/* The weights from path (torchvggish names; other tensors, e.g. the PCA parameters, are
 * ignored) and the head from head_path (NULL: from path when it has one). Widths are read
 * from the shapes. -1 with err naming the file and the tensor. */
int avs_vggish_load(struct avs_vggish *m, const char *path, const char *head_path,
                    struct avs_err *err);
void avs_vggish_free(struct avs_vggish *m);
/* Random parameters at the official widths (`--random-init SEED`), PyTorch's default init for
 * Conv2d/Linear (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))); a head of `classes`
 * outputs (0 = none). */
void avs_vggish_init_random(struct avs_vggish *m, int classes, uint64_t seed);
/* Floats of scratch (device memory) for a batch of N examples. */
size_t avs_vggish_ws(const struct avs_vggish *m, int N);
/* emb [N,fc[2]]; logits [N,classes] or NULL; x [N,96,64]; ws [avs_vggish_ws]: all device
 * memory. Allocates nothing. */
void avs_vggish_fwd(const struct avs_vggish *m, float *emb, float *logits, const float *x, int N,
                    float *ws);

#endif
