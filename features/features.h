/* features/features.h: the public side of features/ (DESIGN §2, §5): the avs-features
 * pipeline over a store (every second of every ok video through the frozen encoders, C3IM and
 * Grad-CAM into one feature set), looking at a set (show, dump), merging the sets of shards,
 * and a set's encoders rebuilt from its recorded config and run on any clip in memory (what
 * avs-predict runs before the C3N head, and the backbone fine-tuning starts from).
 *
 *   struct avs_features_opts o = {.root = "avsdata", .visual = "pvt_v2_b0", .random_init = 1};
 *   struct avs_features_stats st;
 *   int rc = avs_features_run(&o, &st, &err);     0 ok, 2 some videos failed, -1 fatal
 *
 *   struct avs_feat_enc e;
 *   struct avs_enc_files files = {.visual = "pvt_v2_b0.safetensors",     (NULL: random-init set)
 *                                 .audio = "vggish.safetensors",
 *                                 .audio_head = "audioset_head.safetensors"};
 *   if (avs_feat_enc_open(&e, db, "my-set", &files, &err)) ...;
 *   struct avs_clip_feat f;
 *   if (avs_feat_clip(&e, "in.mp4", &f, &err)) ...;     f.stage[s] [f.n, C_s, H_s, W_s] ...
 *   avs_clip_feat_free(&f);
 *   avs_feat_enc_close(&e);
 *
 * The feature cache file (features/cache.h), the log-mel front end (features/logmel.h) and the
 * label similarity (features/labelsim.h) are public parts of their own, included here;
 * features/run.h is internal to features/. Frames, waves and masks come from the store through
 * store/store.h, the one read path that fine-tuning and prediction share.
 *
 * Per video (all its seconds in one go):
 *   audio   the 1-second WAVs joined into one wave, log-mel by the policy (default `stream`, the
 *           official one: 96-frame examples at 0.96 s hop, the last repeated to n seconds) ->
 *           VGGish embedding and AudioSet logits; or (--audio panns_cnn14) each second alone
 *           (C3N's PANNs loader) -> PANNs log-mel [101,64] -> CNN14 embedding [2048] and
 *           clipwise_output [527] (in the audio_logits field; C3IM takes it as the official
 *           code does: softmax(clipwise_output)^0.1)
 *   visual  each frame as float (v/255 - ImageNet mean) / std, NCHW (AVSBench's transform,
 *           store/store.h);
 *           PVTv2 forward -> logits -> C3IM targets CC and CC-V with S -> Grad-CAM pass for CC
 *           (stage maps, logits, weights) and one for the frames whose CC-V differs
 *   record  one cache record per (second, flipped), fields in this order:
 *             logmel [96 or 101,64], audio_emb [E], audio_logits [A], stage1..4 [C_s,H_s,W_s],
 *             vlogits [V], gradcam1..4 [C_s] (CC), gradcam_v1..4 [C_s] (CC-V)
 *           flipped records (--flip) use the mirrored frame and the same audio.
 * Crash safety: records are appended to features/<set>.bin and fsync'd, then the video's
 * feature_entries rows commit in one transaction. A video is done when its rows exist; a run
 * killed in between leaves at most one video's unreferenced records at the file's end (never
 * read; the cache drops a record cut mid-write). One writer per set (flock on
 * features/.<set>.lock).
 *
 * A clip in memory (avs_feat_clip):
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
#ifndef AVS_FEATURES_FEATURES_H
#define AVS_FEATURES_FEATURES_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/common.h"
#include "features/cache.h"
#include "features/labelsim.h"
#include "features/logmel.h"
#include "features/vis.h"
#include "model/pvt.h"
#include "model/panns.h"
#include "model/vggish.h"
#include "features/panns_mel.h"

struct avs_features_opts {
    const char *root;            /* store root */
    const char *db_path;         /* NULL: root/avs.db */
    const char *visual;          /* "pvt_v2_b0".."pvt_v2_b5", "swin_b", "resnet50" ... (features/vis.h) */
    const char *visual_weights;  /* NULL: random (needs random_init) */
    const char *audio;           /* audio encoder: "vggish" (NULL: vggish) or "panns_cnn14" */
    const char *audio_weights;   /* its safetensors; NULL: random (needs random_init) */
    const char *audio_head;      /* AudioSet head; NULL: from audio_weights */
    const char *vectors;         /* word vectors for S; NULL: random S (needs random_init) */
    const char *classes_visual, *classes_audio; /* NULL: features/data/ lists */
    int random_init;
    uint64_t seed;
    const char *set;             /* NULL: a name from the configuration */
    const char *split;           /* NULL: every split */
    const char *subset;          /* NULL: every subset (s4, ms3, avss, other) */
    int flip, fp16;
    enum avs_logmel_policy policy;
    int progress;                /* progress bar on a TTY */
    int shard_i, shard_n;        /* videos with index % shard_n == shard_i (0/1: all) */
    int rebuild;                 /* recompute the set from scratch: its rows and file go first
                                    (same name; the options must describe the same set) */
    double alpha, beta;          /* C3IM exponents of the visual and audio probabilities
                                    (model/c3im.h); 0: the official 0.1. Recorded in the config
                                    as "c3im" {"alpha", "beta"} when not both 0.1 (a config
                                    without it means 0.1, 0.1: sets made before the option) */
};

struct avs_features_stats {
    int videos;          /* ok videos selected */
    int done;            /* computed now */
    int unchanged;       /* already in the set */
    int failed;          /* could not be computed (each logged with its reason) */
    int64_t records;     /* records written now */
    int64_t set_id;
    char set[128];
    double seconds;
    double wait_seconds; /* rank 0 under ranks: waiting for the other ranks' videos */
};

int avs_features_run(const struct avs_features_opts *o, struct avs_features_stats *st,
                     struct avs_err *err);

/* Audio encoder names: "vggish" (NULL: vggish) -> 0, "panns_cnn14" -> 1; -1 if unknown. */
int avs_feat_audio_parse(const char *name);

/* One record of a set as a safetensors file: every cache field, plus "image" [1,3,H,W] (the
 * network input of that frame), "wave" [n*16000] (the video's joined audio), "target" and
 * "target_v" [1] (int64), for checking against `avs-model run`. */
int avs_features_dump(const char *root, const char *db_path, const char *set, const char *uid,
                      int k, int flipped, const char *out, struct avs_err *err);

/* The set's row (name, path, records, status, random_init, config) as text on stdout. */
int avs_features_show(const char *root, const char *db_path, const char *set,
                      struct avs_err *err);

/* `avs-features merge` (features/merge.c): the set `set` of each source store srcs[0..nsrc)
 * (shard roots, each with its avs.db) copied into the store at root (index db_path, NULL:
 * root/avs.db). Videos are matched by uid and must have the same content; the sets must have
 * the same configuration, cache version and layout (the destination's is created from the
 * first source's when missing). Videos the destination set already has are left alone, so a
 * merge run again (or after a kill) only finishes what is missing. 0 ok, 2 some videos could
 * not be merged (each logged), -1 fatal (err). */
struct avs_features_merge_stats {
    int videos;       /* videos of the sources' sets */
    int merged;       /* copied now */
    int unchanged;    /* already in the destination set */
    int failed;       /* not in the destination store, or other content there */
    int64_t records;  /* records copied now */
    double seconds;
};
int avs_features_merge(const char *root, const char *db_path, const char *set, char *const *srcs,
                       int nsrc, struct avs_features_merge_stats *st, struct avs_err *err);

#define AVS_FEAT_NFIELDS 16

struct avs_feat_bufs; /* compute buffers of the encoders (features/run_video.c) */

struct avs_feat_enc {
    struct avs_feat_vis vis;  /* the visual encoder: PVTv2 or Swin (features/vis.h) */
    struct avs_vggish vg;
    struct avs_logmel mel;
    struct avs_panns pn;        /* the audio encoder when panns (else vg) */
    struct avs_panns_mel pmel;  /* PANNs' front end (1-second chunks) */
    int have_vis, have_vg, have_mel, have_pn, have_pmel;
    int panns;                  /* the audio encoder is PANNs CNN14: audio_logits hold its
                                   clipwise_output (sigmoid probabilities), as C3N's PANNs
                                   variant hands them to C3IM; audio_emb its 2048-d embedding */
    int mel_T;                  /* log-mel frames of a record: 96 (VGGish), 101 (PANNs) */
    struct avs_feat_bufs *bufs; /* device buffers + PVTv2 workspace, made by the first video */
    float *S;                 /* [V,A] label similarity */
    int V, A, E;              /* visual classes, audio classes, embedding width */
    int H, W;                 /* frame size of the store */
    enum avs_logmel_policy policy; /* the set's (set by avs_feat_enc_open, features/clip.h) */
    float alpha, beta;        /* C3IM exponents of the set (avs_feat_enc_open: from its config) */
    struct avs_cache_field fields[AVS_FEAT_NFIELDS];
    int nf;
};

/* Free what the struct owns (any state of a zeroed struct) and zero it. */
void avs_feat_enc_close(struct avs_feat_enc *e);

/* Weight files for a set made with files (names as recorded are not required to match; the
 * murmur3 content hashes are). Any may be NULL. */
struct avs_enc_files {
    const char *visual, *audio, *audio_head;
};

/* Rebuild the encoders of feature set `set` from its recorded config (feature_sets.config):
 * "random-init N" encoders are re-created from seed N; otherwise the file in `files` is loaded
 * and its hash must equal the recorded one. S: from label_similarity by the recorded
 * vectors_hash, or the random-init seed. Also the set's log-mel policy (e->policy) and image
 * size (e->H, e->W). db: the store index (read only is enough). 0, or -1 with err naming the
 * set, the file and the fix; e is left zeroed/closable either way. */
int avs_feat_enc_open(struct avs_feat_enc *e, sqlite3 *db, const char *set,
                      const struct avs_enc_files *files, struct avs_err *err);

/* The C3IM exponents a set was made with, from its config text (feature_sets.config): its
 * "c3im" {"alpha", "beta"}, or 0.1, 0.1 when the config has none (features/c3im_cfg.c).
 * 0, or -1 with err naming the set when the entry is there but not two numbers > 0. */
int avs_feat_c3im_config(const char *set, const char *config, double *alpha, double *beta,
                         struct avs_err *err);
/* Refuse a set made with other exponents than a run asks for (alpha_given/beta_given: the
 * options were given). what names the asking option set, e.g. "avs-train". 0 or -1 (err says
 * which values the set has and how to make one with the asked ones). */
int avs_feat_c3im_check(const char *set, const char *config, int alpha_given, double alpha,
                        int beta_given, double beta, const char *what, struct avs_err *err);

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
