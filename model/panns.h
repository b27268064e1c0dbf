/* model/panns.h: PANNs CNN14 (Kong et al. 2020), the `Cnn14_16k` variant that C3N's PANNs
 * audio encoder uses: a 2048-d embedding (what feeds TPAVI) and the 527 AudioSet
 * `clipwise_output` probabilities (what feeds C3IM). Inference only (frozen, as in the paper).
 *
 *   struct avs_panns m;
 *   if (avs_panns_load(&m, "Cnn14_16k.safetensors", &err)) ...;    or avs_panns_init_random
 *   float *ws = avs_dev_alloc(avs_panns_ws(&m, N, T), "CNN14 scratch");
 *   avs_panns_fwd(&m, emb, clip, logmel, N, T, ws);    logmel [N,T,64] (features/panns_mel.h)
 *   avs_panns_free(&m);
 *
 * Tensors (log-mel, embedding, clipwise output, scratch) are device memory of the active backend.
 *
 * Architecture and parameter names are qiuqiangkong/audioset_tagging_cnn's (pytorch/models.py
 * Cnn14_16k, the code of the released `Cnn14_16k_mAP=0.438.pth`), so its `model` state_dict
 * converts 1:1 (tools/convert_checkpoint.py takes the nested "model" key):
 *   bn0              BatchNorm2d over the 64 mel bins (eps 1e-5, running statistics)
 *   conv_blockB      B = 1..6, widths 64,128,256,512,1024,2048: conv1 3x3 (pad 1, no bias) ->
 *                    bn1 -> ReLU -> conv2 3x3 -> bn2 -> ReLU -> 2x2 average pool (blocks 1-5;
 *                    block 6 pools 1x1 = nothing); dropout is off in eval
 *   pooling          mean over the mel axis, then max over time + mean over time -> [N,2048]
 *   fc1              Linear 2048->2048, ReLU = `embedding`
 *   fc_audioset      Linear 2048->527, sigmoid = `clipwise_output`
 * ref: audioset_tagging_cnn pytorch/models.py Cnn14_16k.forward and ConvBlock.forward.
 * The front end's tensors of the checkpoint (spectrogram_extractor.stft.conv_real/imag.weight,
 * logmel_extractor.melW) are not parameters here (features/panns_mel.h computes the same
 * log-mel with an FFT); their shapes are checked so that a CNN14 of another front end (the
 * 32 kHz `Cnn14`, 1024-point window: same layer shapes) is refused with a clear message.
 * BatchNorms' num_batches_tracked are ignored. Widths are read from the shapes (any block
 * widths, e.g. the reduced test model); the mel bins must be 64.
 */
#ifndef AVS_MODEL_PANNS_H
#define AVS_MODEL_PANNS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/common.h"
#include "core/tensor.h"

#define AVS_PANNS_NBLOCK 6
#define AVS_PANNS_MELS 64

struct avs_panns {
    int ch[AVS_PANNS_NBLOCK]; /* conv block widths (official: 64, 128, ..., 2048) */
    int emb;                  /* fc1 width = embedding size (official 2048) */
    int classes;              /* fc_audioset outputs (AudioSet: 527) */
    struct avs_spec_list specs; /* bn0 (4 tensors), per block conv1, bn1 (4), conv2, bn2 (4), fc1, fc_audioset */
    struct avs_tensor_set params;
};

/* The weights from path (official names, see above). -1 with err naming the file, the tensor
 * and the fix. */
int avs_panns_load(struct avs_panns *m, const char *path, struct avs_err *err);
/* Random parameters at the official widths (`--random-init SEED`): PANNs' own init (convs and
 * linears Xavier-uniform, linear biases 0; BatchNorm weight 1, bias 0, running mean 0, var 1). */
void avs_panns_init_random(struct avs_panns *m, uint64_t seed);
void avs_panns_free(struct avs_panns *m);
/* Floats of scratch (device memory) for N log-mel inputs of T frames. */
size_t avs_panns_ws(const struct avs_panns *m, int N, int T);
/* emb [N,emb]; clip [N,classes] (may be NULL); x [N,T,64] log-mel (T >= 32: five 2x2 pools);
 * ws [avs_panns_ws]: all device memory. Allocates nothing. */
void avs_panns_fwd(const struct avs_panns *m, float *emb, float *clip, const float *x, int N, int T,
                   float *ws);

#endif
