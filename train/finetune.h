/* train/finetune.h: the backbone side of `avs-train --mode finetune` (DESIGN §6, the paper's
 * recipe), for C3N and for AVSBench's TPAVI baseline (`--model tpavi`): the feature set's
 * visual encoder is trained (PVTv2, Swin or ResNet-50: the encoders with a backward in
 * features/vis_train.c; others are refused at open); every step runs it on the (augmented)
 * store frames and, after the head's backward, runs the full backward into the backbone +
 * Adam. With CCAM (C3N's CC / CC-V switches: use_ccv >= 0) it also recomputes the C3IM target
 * from the CURRENT visual logits (audio logits and S stay the set's: VGGish is frozen, as
 * AVSBench freezes the audio backbone) and the Grad-CAM backward for that class; without
 * (use_ccv < 0: the baseline, or C3N without CC) neither runs and the gradient reaches the
 * backbone through the head's inputs alone (for the baseline: its Classifier_Module neck's
 * data gradient, model/c3n_neck.c).
 *
 *   struct avs_finetune *ft;
 *   avs_finetune_open(&ft, db, root, &train_set, &files, &err);  the set's encoder, S
 *   per step:
 *     avs_finetune_batch(ft, &train_set, idx, flip, aug_seed, 1, use_ccv, &b, &err);
 *     avs_c3n_fwd(&m, b.stage, b.gc, b.audio, 1); loss ...; zero dstage;
 *     avs_c3n_bwd(&m, dlogits, dstage);  avs_c3n_head_adam(&m.head, lr);
 *     avs_finetune_step(ft, dstage, lr);                          backbone grads + Adam
 *   validation: avs_finetune_batch(ft, &val_set, idx, NULL, 0, 0, use_ccv, &b, &err)
 *   avs_finetune_save(ft, "runs/x/backbone_last.safetensors", 1, &err); ... _load
 *   avs_finetune_close(&ft);
 *
 * Data: frame k of a video is the store PNG frames/<uid>/<k>.png (the `seconds` table), read
 * through store/store.h as avs-features reads it; audio embeddings and AudioSet logits come
 * from the set's cache (unflipped records: the flipped ones carry the same audio); masks from
 * the struct avs_tset.
 * Augmentation (train != 0): per-video horizontal flip flip[i] (mask mirrored too) and per-frame
 * colour jitter as torchvision ColorJitter(0.4, 0.4, 0.4, 0.1) on the float RGB in [0,1]
 * (tensor formulas of torchvision.transforms.functional 0.14: brightness = blend with 0, contrast
 * = blend with the mean of the grayscale image, saturation = blend with the grayscale image, hue
 * = shift in HSV; each blend clamped to [0,1]; the four in a random order per frame), then the
 * ImageNet normalisation. Every random number is a pure function of (aug_seed, video index in
 * the set, k): no global RNG state, so a resumed run repeats its augmentation bit-exactly;
 * callers vary aug_seed per epoch. train == 0: no jitter, no flip: the network input is then
 * bit-identical to avs-features' (avs_store_frame, store/store.h). The baseline fine-tunes with
 * this same augmentation (a deviation: AVSBench's dataloader, avs_s4/dataloader.py, only
 * resizes and normalises its frames).
 *
 * Gradients: the Grad-CAM weights are constants of the step (the official C3N code turns them
 * into numpy arrays and back: torch.tensor(weight_per_layer[i])), so the backbone gradient is
 * d loss / d theta through the stage maps only (dstage from avs_c3n_bwd, which already includes
 * CCAM). The Grad-CAM's own backward (target logit) is not added to the parameters: AVSBench's
 * loop zeroes the gradients after the forward (where C3N's Grad-CAM backward runs), before
 * loss.backward().
 * Cost per step: two backbone forwards (one kept for C3IM's logits and the Grad-CAM backward,
 * stages 4..2; one inside the full backward, recomputed rather than kept through the head's
 * step, whose memory would grow with the backbone) + the two backwards; without CCAM the
 * first forward keeps nothing and there is no Grad-CAM backward.
 * Memory: the backbone, its gradients and Adam moments are tensor sets of the active backend;
 * the passes run in one encoder workspace (TRAIN mode) and one arena of device buffers, made for
 * the batch size at the first batch (made again only for a larger one). Frames are made on the
 * host and uploaded; C3IM runs on downloaded logits. The batch (struct avs_tbatch) and dstage
 * are device memory: the batch's stage maps and Grad-CAM weights are device copies.
 */
#ifndef AVS_TRAIN_FINETUNE_H
#define AVS_TRAIN_FINETUNE_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"
#include "backend/backend.h"
#include "core/tensor.h"
#include "features/features.h"
#include "features/vis.h"
#include "model/pvt.h"
#include "train/data.h"

struct avs_finetune; /* the backbone being trained, its grads + Adam state, S, step state */

/* The set's visual encoder (and S) as avs_feat_enc_open rebuilds it (files: weight files for
 * sets not made with --random-init), ready to train. t gives the set and the shapes; db and
 * root are borrowed until close (frames are looked up in the `seconds` table per batch). */
int avs_finetune_open(struct avs_finetune **ft, sqlite3 *db, const char *root,
                      const struct avs_tset *t, const struct avs_enc_files *files,
                      struct avs_err *err);
/* Same from an encoder in hand (tests, other tools): on success *vis is moved in (zeroed here;
 * on failure the caller still owns it), S [V,A] copied (V = vis->classes, A = the set's
 * audio_logits width). The encoder must have a backward (avs_feat_vis_trainable: the error
 * names t->visual) and its stage shapes on t's frame size must equal the set's. */
int avs_finetune_open_vis(struct avs_finetune **ft, sqlite3 *db, const char *root,
                          const struct avs_tset *t, struct avs_feat_vis *vis, const float *S,
                          struct avs_err *err);
/* The same for a PVTv2 in hand (*pvt moved in on success). */
int avs_finetune_open_pvt(struct avs_finetune **ft, sqlite3 *db, const char *root,
                          const struct avs_tset *t, struct avs_pvt *pvt, const float *S,
                          struct avs_err *err);
void avs_finetune_close(struct avs_finetune **ft);

/* b->stage[s], b->gc[s] (CC, or CC-V when use_ccv > 0; use_ccv < 0: no Grad-CAM pass, gc
 * zeroed, for runs without CCAM), b->audio, b->mask, b->frame_mask for videos idx[0..b->nb) of
 * t (flip NULL: none; ignored when train == 0). Keeps the network input for the next
 * avs_finetune_step. 0, or -1 with err naming the video, second and file. */
int avs_finetune_batch(struct avs_finetune *ft, const struct avs_tset *t, const int *idx,
                       const int *flip, uint64_t aug_seed, int train, int use_ccv,
                       struct avs_tbatch *b, struct avs_err *err);
/* Parameter gradients (zeroed, then filled) from dstage[s] [B,C_s,H_s,W_s] (device memory) of the
 * last batch (the gradient of the loss w.r.t. b->stage), then one PyTorch Adam step (betas
 * 0.9/0.999, eps 1e-8, no weight decay) with learning rate lr. */
void avs_finetune_step(struct avs_finetune *ft, float *const dstage[4], double lr);
/* The step in two halves: the gradients (tests; data-parallel training sums them over the
 * ranks between the two), then the Adam step on whatever the gradient set holds. */
void avs_finetune_grads(struct avs_finetune *ft, float *const dstage[4]);
void avs_finetune_adam(struct avs_finetune *ft, double lr);

/* Backbone weights (the encoder's official names) + with_optim: Adam moments (adam.m.<name>,
 * adam.v.<name>) and the Adam step (metadata "adam_step"); metadata format
 * "avs-<family>-finetune" (avs-pvt-finetune, avs-swin-finetune: avs_feat_vis_family), version
 * "1". Atomic (temp + rename). */
int avs_finetune_save(const struct avs_finetune *ft, const char *path, int with_optim,
                      struct avs_err *err);
/* Load what save wrote (with_optim: the moments and step must be there). Errors name the file
 * and the tensor. On failure the model may be partly overwritten (reload or stop). */
int avs_finetune_load(struct avs_finetune *ft, const char *path, int with_optim,
                      struct avs_err *err);
/* The weights of a finetune checkpoint into a loaded encoder of the same variant (avs-predict
 * on a finetuned run: avs_feat_enc_open, then this on &e.vis). Also takes plain official
 * checkpoints. */
int avs_finetune_load_vis(struct avs_feat_vis *vis, const char *path, struct avs_err *err);

/* The backbone (_model: a PVTv2 backbone only), its gradients (device memory: for tests,
 * reports) and the Adam step count. */
struct avs_feat_vis *avs_finetune_vis(struct avs_finetune *ft);
struct avs_pvt *avs_finetune_model(struct avs_finetune *ft);
struct avs_tensor_set *avs_finetune_grad_set(struct avs_finetune *ft);
long avs_finetune_adam_step(const struct avs_finetune *ft);
/* The network input of the last batch [*B,3,H,W] (host memory; normalised, augmented; *B = 0:
 * none). */
const float *avs_finetune_input(const struct avs_finetune *ft, int *B);

/* ColorJitter(0.4, 0.4, 0.4, 0.1) parameters of one frame. */
struct avs_jitter {
    int order[4];           /* 0 brightness, 1 contrast, 2 saturation, 3 hue (a permutation;
                               avs_jitter_apply skips entries < 0) */
    float bright, contrast, sat; /* in [0.6, 1.4] */
    float hue;              /* in [-0.1, 0.1] */
};
/* The parameters for (seed, video, k): pure function. */
void avs_jitter_params(struct avs_jitter *j, uint64_t seed, int video, int k);
/* img [3,H,W] float RGB in [0,1], in place. */
void avs_jitter_apply(float *img, int H, int W, const struct avs_jitter *j);

#endif
