/* features/run.h: the avs-features pipeline: every second of every ok video of the store through
 * the frozen encoders, C3IM and Grad-CAM, into one feature set (DESIGN §2, §5).
 *
 *   struct avs_features_opts o = {.root = "avsdata", .visual = "pvt_v2_b0", .random_init = 1};
 *   struct avs_features_stats st;
 *   int rc = avs_features_run(&o, &st, &err);     0 ok, 2 some videos failed, -1 fatal
 *
 * Per video (all its seconds in one go):
 *   audio   the 1-second WAVs joined into one wave, log-mel by the policy (default `stream`, the
 *           official one: 96-frame examples at 0.96 s hop, the last repeated to n seconds) ->
 *           VGGish embedding and AudioSet logits
 *   visual  each frame as float (v/255 - ImageNet mean) / std, NCHW (AVSBench's transform);
 *           PVTv2 forward -> logits -> C3IM targets CC and CC-V with S -> Grad-CAM pass for CC
 *           (stage maps, logits, weights) and one for the frames whose CC-V differs
 *   record  one cache record per (second, flipped), fields in this order:
 *             logmel [96,64], audio_emb [E], audio_logits [A], stage1..4 [C_s,H_s,W_s],
 *             vlogits [V], gradcam1..4 [C_s] (CC), gradcam_v1..4 [C_s] (CC-V)
 *           flipped records (--flip) use the mirrored frame and the same audio.
 * Crash safety: records are appended to features/<set>.bin and fsync'd, then the video's
 * feature_entries rows commit in one transaction. A video is done when its rows exist; a run
 * killed in between leaves at most one video's unreferenced records at the file's end (never
 * read; the cache drops a record cut mid-write). One writer per set (flock on
 * features/.<set>.lock).
 */
#ifndef AVS_FEATURES_RUN_H
#define AVS_FEATURES_RUN_H

#include <stdint.h>

#include "core/common.h"
#include "features/logmel.h"

struct avs_features_opts {
    const char *root;            /* store root */
    const char *db_path;         /* NULL: root/avs.db */
    const char *visual;          /* "pvt_v2_b0".."pvt_v2_b5" */
    const char *visual_weights;  /* NULL: random (needs random_init) */
    const char *audio_weights;   /* vggish safetensors; NULL: random (needs random_init) */
    const char *audio_head;      /* AudioSet head; NULL: from audio_weights */
    const char *vectors;         /* word vectors for S; NULL: random S (needs random_init) */
    const char *classes_visual, *classes_audio; /* NULL: features/data/ lists */
    int random_init;
    uint64_t seed;
    const char *set;             /* NULL: a name from the configuration */
    const char *split;           /* NULL: every split */
    int flip, fp16;
    enum avs_logmel_policy policy;
    int progress;                /* progress bar on a TTY */
    int shard_i, shard_n;        /* videos with index % shard_n == shard_i (0/1: all) */
    int rebuild;                 /* recompute the set from scratch: its rows and file go first
                                    (same name; the options must describe the same set) */
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
};

int avs_features_run(const struct avs_features_opts *o, struct avs_features_stats *st,
                     struct avs_err *err);

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

/* ---- internal to features/run*.c ---- */
#include <sqlite3.h>

#include "features/cache.h"
#include "model/pvt.h"
#include "model/vggish.h"

#define AVS_FEAT_NFIELDS 16

struct avs_feat_bufs; /* compute buffers of avs_feat_compute (features/run_video.c) */

struct avs_feat_enc {
    struct avs_pvt pvt;
    struct avs_vggish vg;
    struct avs_logmel mel;
    int have_pvt, have_vg, have_mel;
    struct avs_feat_bufs *bufs; /* made by the first avs_feat_compute, NULL before */
    float *S;                 /* [V,A] label similarity */
    int V, A, E;              /* visual classes, audio classes, embedding width */
    int H, W;                 /* frame size of the store */
    enum avs_logmel_policy policy; /* the set's (set by avs_feat_enc_open, features/clip.h) */
    struct avs_cache_field fields[AVS_FEAT_NFIELDS];
    int nf;
};

/* The encoders by name and files (NULL file: random from seed, PyTorch-style init); the visual
 * ImageNet head and the AudioSet head are required. Sets V, A, E. 0 or -1 (err names the file). */
int avs_feat_enc_load(struct avs_feat_enc *e, const char *visual, const char *visual_file,
                      const char *audio_file, const char *audio_head, uint64_t seed,
                      struct avs_err *err);
/* Free avs_feat_compute's buffers (device memory, the PVTv2 workspace); NULL-safe
 * (avs_feat_enc_close calls it). */
void avs_feat_bufs_free(struct avs_feat_bufs **b);
/* The random S [V,A] of `--random-init seed` without --vectors (V, A set). */
void avs_feat_sim_random(struct avs_feat_enc *e, uint64_t seed);
/* Free what the struct owns (any state of a zeroed struct) and zero it. */
void avs_feat_enc_close(struct avs_feat_enc *e);
/* The record layout (see the top of this file) from the loaded encoders and H, W. */
void avs_feat_fields(struct avs_feat_enc *e);
/* One video: 0 done (records synced, rows committed), 1 this video failed (err says why; the
 * run goes on), -1 fatal (cache or index write failed). */
int avs_feat_video(struct avs_feat_enc *e, const struct avs_features_opts *o, sqlite3 *db,
                   struct avs_cache_writer *cw, int64_t set_id, int64_t video_id, int n,
                   struct avs_err *err);
/* The one compute routine of a video's records, shared by the store path (avs_feat_video) and
 * the in-memory clip path (features/clip.h): wave [n*16000] -> log-mel by `policy`, VGGish;
 * frames from get_frame(ctx, k 1..n, flip, dst [3,H,W] normalised) in chunks -> PVTv2, C3IM,
 * Grad-CAM CC and CC-V; put(ctx, i, rec [AVS_FEAT_NFIELDS] in field order, CC, CC-V) for record
 * i = 0..B-1 (B = n, or 2n with flip: i >= n are the mirrored frames of second i-n+1), in order.
 * wave, dst and rec are host memory: the encoders run on the active backend in buffers made
 * once per encoder (e->bufs), and what the records need is downloaded per chunk.
 * Callbacks return 0, or -1 with err set. Returns 0; 1 when get_frame or the log-mel failed
 * (an input problem); -1 when put failed. */
typedef int (*avs_feat_frame_fn)(void *ctx, int k, int flip, float *dst, struct avs_err *err);
typedef int (*avs_feat_record_fn)(void *ctx, int i, const float *const *rec, int target,
                                  int target_v, struct avs_err *err);
int avs_feat_compute(struct avs_feat_enc *e, enum avs_logmel_policy policy, const float *wave,
                     int n, int flip, avs_feat_frame_fn get_frame, avs_feat_record_fn put,
                     void *ctx, struct avs_err *err);
/* dst [3,H,W] = (v/255 - ImageNet mean) / std of px [H,W,c] (c 1..4; gray repeated), mirrored
 * when flip. */
void avs_feat_norm_frame(float *dst, const uint8_t *px, int c, int H, int W, int flip);
/* frame [3,H,W] normalised network input from a store PNG (mirrored when flip). 0 or -1. */
int avs_feat_load_frame(float *dst, const char *root, const char *rel, int H, int W, int flip,
                        struct avs_err *err);
/* wave [n*16000] from the video's 1-second WAVs (a NULL path is silence). 0 or -1. */
int avs_feat_load_wave(float *wave, const char *root, char *const *rel, int n, struct avs_err *err);
/* The video's seconds: frame and audio paths [n] (malloc'd, free with avs_feat_paths_free). */
int avs_feat_seconds(sqlite3 *db, int64_t video_id, int n, char ***frames, char ***audio,
                     struct avs_err *err);
void avs_feat_paths_free(char **p, int n);
/* A usable set name: letters, digits, '-', '_', '.', not starting with '.', < 100 chars. */
int avs_feat_set_name_ok(const char *s);
/* feature_sets.status of the set: 'complete' when every ok video of the store has rows. */
void avs_feat_set_status(sqlite3 *db, int64_t set_id);

#endif
