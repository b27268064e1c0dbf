/* features/clip.h: the encoders of a feature set on any clip, in memory (no store, no cache):
 * what avs-predict runs before the C3N head.
 *
 *   struct avs_feat_enc e;
 *   struct avs_enc_files files = {.visual = "pvt_v2_b0.safetensors", .audio = "vggish.safetensors",
 *                                 .audio_head = "audioset_head.safetensors"};  (NULL: random-init set)
 *   if (avs_feat_enc_open(&e, db, "my-set", &files, &err)) ...;
 *   struct avs_clip_feat f;
 *   if (avs_feat_clip(&e, "in.mp4", &f, &err)) ...;     f.stage[s] [f.n, C_s, H_s, W_s] ...
 *   avs_clip_feat_free(&f);
 *   avs_feat_enc_close(&e);
 *
 * Same values as the set's records: the clip is decoded as avs-ingest does (ingest/decode.h with
 * the set's image_size, the default AVSBench frame rule, 16 kHz mono s16 audio, zero-padded;
 * no audio stream = silence), then the one compute routine of avs-features
 * (avs_feat_compute, features/run.h) runs on the frames and the joined wave. With an fp32 set and
 * the same clip the values are bit-identical to the records (an fp16 set's records are these
 * values rounded to half). The store frames are lossless PNGs of exactly these RGB bytes, and
 * libsndfile's s16 -> float is v / 32768, as here.
 * Frame-rule or max-seconds options of the original ingest are not in the set's config: a
 * store ingested with --frame-at timestamp or --seconds gives other frames than this path.
 */
#ifndef AVS_FEATURES_CLIP_H
#define AVS_FEATURES_CLIP_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"
#include "features/run.h"

/* Weight files for a set made with files (names as recorded are not required to match; the
 * murmur3 content hashes are). Any may be NULL. */
struct avs_enc_files {
    const char *visual, *audio, *audio_head;
};

/* Rebuild the encoders of feature set `set` from its recorded config (feature_sets.config):
 * "random-init N" encoders are re-created from seed N; otherwise the file in `files` is loaded
 * and its hash must equal the recorded one. S: from label_similarity by the recorded
 * vectors_hash, or the random-init seed. Also the set's log-mel policy (e->policy) and image
 * size (e->H, e->W). db: the store index (read only is enough). 0, or -1 with err naming the set, the
 * file and the fix; e is left zeroed/closable either way. */
int avs_feat_enc_open(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                      const struct avs_enc_files *files, struct avs_err *err);

struct avs_clip_feat {
    int n;                            /* seconds: floor(duration) */
    int H, W;                         /* frame size (the set's image_size) */
    int C[4], Hs[4], Ws[4];           /* stage map shapes */
    int E;                            /* audio embedding width */
    uint8_t *rgb;                     /* [n,H,W,3] the chosen frames (for overlays) */
    float *audio_emb;                 /* [n,E] */
    float *stage[4];                  /* [n,C_s,H_s,W_s] after the stage norm */
    float *gradcam[4], *gradcam_v[4]; /* [n,C_s] Grad-CAM weights for CC and CC-V */
    int *target, *target_v;           /* [n] CC and CC-V classes */
    double duration, fps;             /* of the clip */
    int has_audio;
};

/* One clip through the encoders. 0, or -1 with err (unreadable clip, no video stream, shorter
 * than 1 s). out is untouched on failure. */
int avs_feat_clip(struct avs_feat_enc *e, const char *path, struct avs_clip_feat *out,
                  struct avs_err *err);
/* Free every array and zero the struct (NULL-safe, twice-safe). */
void avs_clip_feat_free(struct avs_clip_feat *f);

#endif
